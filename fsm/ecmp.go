package fsm

import (
	"fmt"
	"slices"
	"strings"
)

// VIPModeECMP is the VIP mode in which every node that is ready to serve
// announces the VIP over BGP and the router spreads flows over them by
// equal-cost multipath; the default mode ("") has the leader alone hold it.
const VIPModeECMP = "ecmp"

// ECMPProtocol is the protocol that knows the ecmp VIP mode. An older
// build would drop the mode from its copy of the model and hold the VIP
// on its leader alone beside the nodes announcing it, so a configuration
// with an ecmp VIP is refused until every member speaks it.
const ECMPProtocol = QuorumProtocol + 1

// ECMPInterface is where an ecmp VIP is held when its interface is not
// given: the address only has to be local on every node, the router
// reaches it through the BGP next hops, so no NIC needs to carry it.
const ECMPInterface = "lo"

// ECMP reports whether every ready node serves the VIP (VIPModeECMP).
func (v VIP) ECMP() bool { return v.Mode == VIPModeECMP }

// NormalizeVIP gives an ecmp VIP without an interface its default one.
func NormalizeVIP(v *VIP) {
	if v.ECMP() && v.Interface == "" {
		v.Interface = ECMPInterface
	}
}

// validateMode checks a VIP's mode and what the mode asks of the prefix:
// an ecmp VIP is announced as a host route, so it is one address.
func validateMode(v VIP) error {
	switch v.Mode {
	case "":
		return nil
	case VIPModeECMP:
		if !v.Prefix.IsSingleIP() {
			return fmt.Errorf("vip %s: mode ecmp: want a single address (/%d), the route every node announces", v.Prefix, v.Prefix.Addr().BitLen())
		}
		return nil
	default:
		return fmt.Errorf("vip %s mode %q: want ecmp or none (the leader holds it)", v.Prefix, v.Mode)
	}
}

// ecmpAddrs maps the address of every ecmp VIP to its prefix's text; nil
// when there is none.
func (c *Config) ecmpAddrs() map[string]string {
	var m map[string]string
	for _, v := range c.VIPs {
		if v.ECMP() {
			if m == nil {
				m = map[string]string{}
			}
			m[v.Prefix.Addr().Unmap().String()] = v.Prefix.Addr().String()
		}
	}
	return m
}

// HasECMP reports whether any VIP of the config is in the ecmp mode: the
// nodes then run both sync threads and set sloppy_tcp and sloppy_sctp.
func (c *Config) HasECMP() bool {
	for _, v := range c.VIPs {
		if v.ECMP() {
			return true
		}
	}
	return false
}

// checkECMPService refuses a service of an ecmp VIP (one whose virtual
// address is the VIP's address) that does not schedule with mh, mh-port
// and mh-fallback: every director must pick the same real server for a
// flow, whichever of them the router sends it to, and a flow that moves
// must keep it. The scheduler is named first, since switching it is the
// change that also allows the flags. fwmark services carry no address and
// are not tied to a VIP: the operator answers for them.
func checkECMPService(s *Service, ecmp map[string]string) error {
	if s == nil || s.Key.Protocol == FWMark || ecmp == nil {
		return nil
	}
	vip, ok := ecmp[s.Key.Address.Unmap().String()]
	if !ok {
		return nil
	}
	want := fmt.Sprintf("a service of ecmp VIP %s must use mh with mh-port and mh-fallback", vip)
	if s.Scheduler != "mh" {
		return fmt.Errorf("service %s: scheduler %s: %s", s.Key, s.Scheduler, want)
	}
	var missing []string
	for _, f := range []string{"mh-port", "mh-fallback"} {
		if !slices.Contains(s.Flags, f) {
			missing = append(missing, f)
		}
	}
	if len(missing) > 0 {
		have := strings.Join(s.Flags, ",")
		if have == "" {
			have = "none"
		}
		return fmt.Errorf("service %s: scheduler flags %s (missing %s): %s", s.Key, have, strings.Join(missing, " and "), want)
	}
	return nil
}

// validateECMP checks every service of every ecmp VIP of a whole config.
// It reports the first in key order and how many more there are, so that
// an operator switching a VIP to ecmp learns the size of the change.
func validateECMP(c *Config) error {
	ecmp := c.ecmpAddrs()
	if ecmp == nil {
		return nil
	}
	var first error
	more := 0
	for _, k := range c.SortedServiceKeys() {
		if err := checkECMPService(c.Services[k], ecmp); err != nil {
			if first == nil {
				first = err
			} else {
				more++
			}
		}
	}
	if more > 0 {
		return fmt.Errorf("%w (and %d more services of ecmp VIPs)", first, more)
	}
	return first
}

// checkECMP checks the services one ApplyOps call changed: ops change no
// VIP, so the services it did not touch were checked when committed.
func (b *batch) checkECMP() error {
	ecmp := b.c.ecmpAddrs()
	if ecmp == nil {
		return nil
	}
	var changed []*Service
	for svc := range b.owned {
		if b.c.Services[svc.Key.String()] == svc {
			changed = append(changed, svc)
		}
	}
	slices.SortFunc(changed, func(x, y *Service) int { return strings.Compare(x.Key.String(), y.Key.String()) })
	for _, svc := range changed {
		if err := checkECMPService(svc, ecmp); err != nil {
			return err
		}
	}
	return nil
}

// needsECMP is ECMPProtocol once any VIP is in the ecmp mode.
func (c *Config) needsECMP() (int, string) {
	for _, k := range sortedKeys(c.VIPs) {
		if c.VIPs[k].ECMP() {
			return ECMPProtocol, "vip " + k + " mode ecmp"
		}
	}
	return BaseCommandProtocol, ""
}
