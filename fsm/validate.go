package fsm

import (
	"fmt"
	"maps"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

var netipZero netip.Addr

var (
	nameRe  = regexp.MustCompile(`^[A-Za-z0-9_.\-]{1,64}$`)
	ifaceRe = regexp.MustCompile(`^[A-Za-z0-9_.\-@]{1,15}$`)
)

// ValidateService checks a normalized service's own attributes. Errors name
// the field and the value.
func ValidateService(s *Service) error {
	k := s.Key
	switch k.Protocol {
	case TCP, UDP, SCTP:
		if !k.Address.IsValid() {
			return fmt.Errorf("service address: missing")
		}
		if k.Address.Zone() != "" {
			return fmt.Errorf("service address %s: a zoned address cannot be a virtual service", k.Address)
		}
		if k.Address.IsMulticast() {
			return fmt.Errorf("service address %s: multicast is not a virtual service address", k.Address)
		}
		if k.Port == 0 && s.Persistence == nil {
			return fmt.Errorf("service %s: port 0 is only valid for a persistent service (-p)", k)
		}
	case FWMark:
		if k.Mark == 0 {
			return fmt.Errorf("service fwmark 0: a firewall mark must be 1 or more")
		}
	default:
		return fmt.Errorf("service protocol %q: want tcp, udp, sctp or fwmark", k.Protocol)
	}
	if s.Name != "" && !nameRe.MatchString(s.Name) {
		return fmt.Errorf("service %s name %q: use 1-64 letters, digits, '_', '.', '-'", k, s.Name)
	}
	if err := ValidateSchedulerName(s.Scheduler); err != nil {
		return fmt.Errorf("service %s %w", k, err)
	}
	for _, f := range s.Flags {
		if !slices.Contains(SchedulerFlags, f) {
			return fmt.Errorf("service %s scheduler flag %q: unknown (want one of %s)", k, f, strings.Join(SchedulerFlags, ", "))
		}
		if p, _, ok := strings.Cut(f, "-"); ok && (p == "sh" || p == "mh") && p != s.Scheduler {
			return fmt.Errorf("service %s scheduler flag %q: only valid with scheduler %s, not %s", k, f, p, s.Scheduler)
		}
	}
	switch s.OnFailure {
	case "", OnFailureRemove:
	default:
		return fmt.Errorf("service %s on_failure %q: want quiescent or remove", k, s.OnFailure)
	}
	if r := s.Sorry; r != nil {
		if err := ValidateServer(s, r); err != nil {
			return fmt.Errorf("sorry server: %w", err)
		}
	}
	if s.OnePacket && (k.Protocol == TCP || k.Protocol == SCTP) {
		return fmt.Errorf("service %s: one-packet scheduling (-o) is only for UDP and fwmark services", k)
	}
	if p := s.Persistence; p != nil {
		if p.Timeout > MaxPersistence {
			return fmt.Errorf("service %s persistence timeout %d: above the kernel's maximum %d (31 days)", k, p.Timeout, MaxPersistence)
		}
		if err := validateNetmask(k, p.Netmask); err != nil {
			return err
		}
		if err := validateEngine(k, p.Engine); err != nil {
			return err
		}
	}
	if s.Check != nil {
		if err := ValidateHealthCheck(fmt.Sprintf("service %s check", k), s.Check); err != nil {
			return err
		}
	}
	return validateQuorum(s)
}

func validateNetmask(k ServiceKey, mask string) error {
	if mask == "" {
		return nil
	}
	if k.Family() == "inet6" {
		n, err := strconv.Atoi(mask)
		if err != nil || n < 1 || n > 128 {
			return fmt.Errorf("service %s persistence netmask %q: want an IPv6 prefix length 1-128", k, mask)
		}
		return nil
	}
	a, err := netip.ParseAddr(mask)
	if err != nil || !a.Is4() {
		return fmt.Errorf("service %s persistence netmask %q: want a dotted IPv4 netmask", k, mask)
	}
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	if v == 0 || (^v)&(^v+1) != 0 {
		return fmt.Errorf("service %s persistence netmask %q: not a contiguous netmask", k, mask)
	}
	return nil
}

// ValidateServer checks a normalized real server against its service.
func ValidateServer(svc *Service, r *RealServer) error {
	where := fmt.Sprintf("real server %s of service %s", r.Key(), svc.Key)
	if !r.Address.IsValid() {
		return fmt.Errorf("real server address: missing (service %s)", svc.Key)
	}
	if r.Address.Zone() != "" {
		return fmt.Errorf("%s: zoned address %s: give the address without %%zone", where, r.Address)
	}
	if r.Address.IsUnspecified() || r.Address.IsMulticast() {
		return fmt.Errorf("%s: address %s is not a unicast address", where, r.Address)
	}
	if r.Name != "" && !nameRe.MatchString(r.Name) {
		return fmt.Errorf("%s name %q: use 1-64 letters, digits, '_', '.', '-'", where, r.Name)
	}
	switch r.Forward {
	case DirectRoute, Tunnel, Masquerade:
	case LocalNode:
		// The kernel delivers to the director's own stack whatever the
		// address; a loopback one is the only address that means "this
		// director" on every director, and what -S prints restores to it.
		if !r.Address.IsLoopback() {
			return fmt.Errorf("%s forwarding local: only for a loopback address (127.0.0.1, ::1), the director itself", where)
		}
	default:
		return fmt.Errorf("%s forwarding %q: want droute (-g), tunnel (-i), masq (-m) or local", where, r.Forward)
	}
	fam6 := svc.Key.Family() == "inet6"
	if r.Address.Is6() != fam6 && r.Forward != Tunnel {
		return fmt.Errorf("%s: address family differs from the service's (only tunnelling may mix IPv4 and IPv6)", where)
	}
	if r.Weight < 0 || r.Weight > MaxWeight {
		return fmt.Errorf("%s weight %d: out of range 0-%d", where, r.Weight, MaxWeight)
	}
	if r.Upper > 0 && r.Lower > r.Upper {
		return fmt.Errorf("%s lower threshold %d: above the upper threshold %d", where, r.Lower, r.Upper)
	}
	switch r.State {
	case Active, Suspended, Draining:
	default:
		return fmt.Errorf("%s state %q: want active, suspended or draining", where, r.State)
	}
	if r.Check != nil {
		if err := ValidateHealthCheck(where+" check", r.Check); err != nil {
			return err
		}
	}
	return validateTunnel(where, r)
}

func validateTunnel(where string, r *RealServer) error {
	if r.Forward != Tunnel {
		if r.TunnelType != "" || r.TunnelPort != 0 || r.TunnelCsum != "" {
			return fmt.Errorf("%s: tunnel type, port and checksum are only for tunnelling (-i)", where)
		}
		return nil
	}
	switch r.TunnelType {
	case "":
		if r.TunnelPort != 0 || r.TunnelCsum != "" {
			return fmt.Errorf("%s: ipip tunnels have no port or checksum option (use gue or gre)", where)
		}
	case TunnelGUE:
		if r.TunnelPort == 0 {
			return fmt.Errorf("%s tunnel type gue: needs a tunnel port", where)
		}
	case TunnelGRE:
		if r.TunnelPort != 0 {
			return fmt.Errorf("%s tunnel type gre: takes no tunnel port (%d)", where, r.TunnelPort)
		}
	default:
		return fmt.Errorf("%s tunnel type %q: want ipip, gue or gre", where, r.TunnelType)
	}
	switch r.TunnelCsum {
	case "", TunnelCsumOn:
	case TunnelRemCsum:
		if r.TunnelType == TunnelGRE { // as ipvsadm: remote checksum offload is GUE's
			return fmt.Errorf("%s tunnel checksum remcsum: only with gue, not gre", where)
		}
	default:
		return fmt.Errorf("%s tunnel checksum %q: want nocsum, csum or remcsum", where, r.TunnelCsum)
	}
	return nil
}

// checkSorry refuses a sorry server that is also one of the real servers:
// it would be removed from the table exactly when it is needed.
func checkSorry(s *Service) error {
	if s.Sorry == nil {
		return nil
	}
	if _, clash := s.Servers[s.Sorry.Key()]; clash {
		return fmt.Errorf("service %s sorry server %s: also a real server of the service", s.Key, s.Sorry.Key())
	}
	return nil
}

// MaxTimeout bounds the kernel timeouts, as for persistence: 31 days.
const MaxTimeout = MaxPersistence

// ValidateTimeouts checks ipvsadm --set values.
func ValidateTimeouts(t *Timeouts) error {
	for _, f := range []struct {
		name string
		v    uint32
	}{{"tcp", t.TCP}, {"tcpfin", t.TCPFin}, {"udp", t.UDP}} {
		if f.v > MaxTimeout {
			return fmt.Errorf("timeout %s %d: above the maximum %d (31 days)", f.name, f.v, MaxTimeout)
		}
	}
	return nil
}

// ValidateNodeID checks a node's name: 1-64 letters, digits, '_', '.', '-'.
func ValidateNodeID(id string) error {
	if !nameRe.MatchString(id) {
		return fmt.Errorf("node id %q: want 1-64 letters, digits, '_', '.' or '-'", id)
	}
	return nil
}

// ValidateVIP checks a VIP definition.
func ValidateVIP(v VIP) error {
	if !v.Prefix.IsValid() {
		return fmt.Errorf("vip address: missing or malformed")
	}
	if v.Prefix.Addr().Zone() != "" || v.Prefix.Addr().IsUnspecified() || v.Prefix.Addr().IsMulticast() {
		return fmt.Errorf("vip %s: not a unicast address", v.Prefix)
	}
	if err := validateMode(v); err != nil {
		return err
	}
	// An ecmp VIP without an interface is held on lo (NormalizeVIP).
	if !ifaceRe.MatchString(v.Interface) && (v.Interface != "" || !v.ECMP()) {
		return fmt.Errorf("vip %s interface %q: want an interface name of 1-15 characters", v.Prefix, v.Interface)
	}
	for _, n := range slices.Sorted(maps.Keys(v.Interfaces)) {
		if err := ValidateNodeID(n); err != nil {
			return fmt.Errorf("vip %s interfaces: %w", v.Prefix, err)
		}
		if i := v.Interfaces[n]; !ifaceRe.MatchString(i) {
			return fmt.Errorf("vip %s interface on node %s %q: want an interface name of 1-15 characters", v.Prefix, n, i)
		}
	}
	return nil
}

// ValidateConfig normalizes and checks a whole config, as a topology file
// compiles to it. It reports the first problem, naming the item.
func ValidateConfig(c *Config) error {
	for _, key := range c.SortedServiceKeys() {
		svc := c.Services[key]
		NormalizeService(svc)
		if err := ValidateService(svc); err != nil {
			return err
		}
		if svc.Key.String() != key {
			return fmt.Errorf("service %s: listed under key %q", svc.Key, key)
		}
		servers := make(map[string]*RealServer, len(svc.Servers))
		for _, rk := range svc.SortedServerKeys() {
			r := svc.Servers[rk]
			NormalizeServer(svc, r)
			if err := ValidateServer(svc, r); err != nil {
				return err
			}
			if _, dup := servers[r.Key()]; dup {
				return fmt.Errorf("real server %s of service %s: listed twice", r.Key(), svc.Key)
			}
			servers[r.Key()] = r
		}
		svc.Servers = servers
		if err := validatePool(svc); err != nil {
			return err
		}
		if err := checkSorry(svc); err != nil {
			return err
		}
	}
	if err := validateGroups(c); err != nil {
		return err
	}
	if c.Timeouts != nil {
		if err := ValidateTimeouts(c.Timeouts); err != nil {
			return err
		}
	}
	if c.Sync != nil {
		if err := ValidateSync(c.Sync); err != nil {
			return err
		}
	}
	for _, key := range sortedKeys(c.VIPs) {
		v := c.VIPs[key]
		NormalizeVIP(&v)
		if err := ValidateVIP(v); err != nil {
			return err
		}
		if key != v.Prefix.String() {
			return fmt.Errorf("vip %s: listed under key %q", v.Prefix, key)
		}
		if v.Interface != c.VIPs[key].Interface {
			c.VIPs[key] = v // written only when normalized: the map may be read elsewhere
		}
	}
	// After the VIPs: a VIP's own error (its mode, its prefix) is the
	// first thing to fix when switching it to ecmp, its services next.
	return validateECMP(c)
}

// Limits of the kernel's names (IP_VS_SCHEDNAME_MAXLEN and
// IP_VS_PENAME_MAXLEN are 16 bytes with the NUL).
const (
	MaxSchedulerName = 15
	MaxEngineName    = 15
)

// kernelNameRe is what a scheduler or persistence engine name may hold:
// the kernel loads it as module ip_vs_NAME (ip_vs_pe_NAME), and module
// names are letters, digits and '_' ('-' reads as '_', so it would name
// another module than the scheduler registers).
var kernelNameRe = regexp.MustCompile(`^[a-z0-9_]+$`)

// ValidateSchedulerName checks a scheduler name's syntax only. Which
// schedulers exist is the kernel's to say (any ip_vs_NAME module, loaded
// on first use), not a list in the model: the leader asks its kernel
// before a write commits (director.Modules), and a node whose kernel
// lacks one reports the failure. The ip_vs modules that are not
// schedulers are refused here, since they would load and still fail.
func ValidateSchedulerName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("scheduler: missing")
	case len(name) > MaxSchedulerName:
		return fmt.Errorf("scheduler %q: longer than the kernel's %d characters", name, MaxSchedulerName)
	case !kernelNameRe.MatchString(name):
		return fmt.Errorf("scheduler %q: want lower-case letters, digits and '_' (the kernel module is ip_vs_NAME)", name)
	case name == "ftp" || strings.HasPrefix(name, "pe_"):
		return fmt.Errorf("scheduler %q: ip_vs_%s is not a scheduler (the FTP helper or a persistence engine)", name, name)
	}
	return nil
}

// validateEngine checks a persistence engine (--pe). Linux has one, sip,
// which reads the Call-ID of SIP over UDP: a TCP or SCTP service would
// never match it, so they are refused rather than silently not persisting.
func validateEngine(k ServiceKey, engine string) error {
	if engine == "" {
		return nil
	}
	if len(engine) > MaxEngineName || !kernelNameRe.MatchString(engine) {
		return fmt.Errorf("service %s persistence engine %q: want lower-case letters, digits and '_', at most %d (the kernel module is ip_vs_pe_NAME)", k, engine, MaxEngineName)
	}
	if k.Protocol == TCP || k.Protocol == SCTP {
		return fmt.Errorf("service %s persistence engine %q: only for UDP and fwmark services (SIP over UDP)", k, engine)
	}
	return nil
}
