// Package table is the IPVS table as the kernel holds it, computed from the
// model (Desired) and rendered back into it (Config), and the kernel's
// connection table as /proc prints it.
//
// It is pure but for ReadConnsFrom, which reads that /proc file. It imports
// only fsm, never opens netlink and never writes the kernel (reading the
// table is package director's, writing it the Reconciler's), so the CLI and
// the console use it without linking netlink.
package table

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/ipvsman/ipvsman/fsm"
)

// Kernel service flags (linux/ip_vs.h). moby/ipvs does not name them.
const (
	FlagPersistent = 0x1
	FlagHashed     = 0x2 // set by the kernel on every service; never ours to set
	FlagOnePacket  = 0x4
	FlagSched1     = 0x8  // sh-fallback, mh-fallback
	FlagSched2     = 0x10 // sh-port, mh-port
	FlagSched3     = 0x20
)

// Service is one virtual service as the kernel holds it.
type Service struct {
	Key       fsm.ServiceKey
	Scheduler string
	Flags     uint32 // kernel flags without FlagHashed
	Timeout   uint32 // persistence, seconds
	Netmask   uint32 // IPv4: mask as a number; IPv6: prefix length
	Engine    string // persistence engine ("sip"), "" for none
	Dests     map[string]Dest
	// Order is the destinations' keys in the kernel's list order, as a
	// dump returns them; nil means the canonical order (DestOrder). It
	// matters to the hashing schedulers only (Hashing).
	Order []string
}

// Hashing reports whether the scheduler builds its lookup from the order
// of the destination list (ip_vs_mh.c, ip_vs_sh.c walk svc->destinations
// to fill their tables), so that the same set in another order sends the
// same client elsewhere.
func Hashing(scheduler string) bool { return scheduler == "mh" || scheduler == "sh" }

// CanonicalOrder is the destination list order every node keeps for a
// hashing scheduler: descending address:port. The kernel puts a new
// destination at the head of the list, so servers added in ascending order
// (the usual way) each land in place with one operation.
func CanonicalOrder(dests map[string]Dest) []string {
	keys := slices.Collect(maps.Keys(dests))
	slices.SortFunc(keys, func(a, b string) int {
		x, y := dests[a], dests[b]
		return netip.AddrPortFrom(y.Address, y.Port).Compare(netip.AddrPortFrom(x.Address, x.Port))
	})
	return keys
}

// DestOrder is the service's destination list order: Order when a dump
// set it, else the canonical order.
func (s Service) DestOrder() []string {
	if s.Order != nil {
		return s.Order
	}
	return CanonicalOrder(s.Dests)
}

// Dest is one real server as the kernel holds it.
type Dest struct {
	Address    netip.Addr
	Port       uint16
	Forward    fsm.Forward
	Weight     int
	Upper      uint32
	Lower      uint32
	TunnelType fsm.TunnelType // "" = ipip
	TunnelPort uint16
	TunnelCsum fsm.TunnelCsum // "" = nocsum
}

// Key is the destination's address:port.
func (d Dest) Key() string { return netip.AddrPortFrom(d.Address, d.Port).String() }

// Table is a kernel IPVS table, keyed by fsm.ServiceKey.String().
type Table map[string]Service

// Desired computes the table every node must hold for a state. Pure: the
// same state gives the same table on every node.
//
// A real server the operator suspended, or whose health verdict is down,
// stays in the table with weight 0 (quiescent: the kernel sends it no new
// connections but lets established ones finish), or is left out when its
// service says on_failure: remove. A draining server is always quiescent.
// The service's sorry server is in the table only while no real server is
// usable (active and not down), or while the service has lost its quorum
// (fsm/quorum.go, DesiredService). A service group (fsm/group.go) is one
// kernel service per key, each with the service's destinations
// (DesiredGroup).
func Desired(st *fsm.State) Table {
	t := make(Table, len(st.Config.Services))
	for key, svc := range st.Config.Services {
		ks := DesiredService(key, svc, st.Verdicts, st.QuorumLost(key))
		t[key] = ks
		for _, m := range DesiredGroup(svc, ks) {
			t[m.Key.String()] = m
		}
	}
	return t
}

// DesiredGroup is the kernel services of svc's group members, given ks,
// the service's own entry: each is ks under the member's key, with a
// copy of its destinations, since a member's list is the kernel's own
// (each is added to, and dumped from, its kernel service) and a reader may
// set its Order.
func DesiredGroup(svc *fsm.Service, ks Service) []Service {
	if len(svc.Group) == 0 {
		return nil
	}
	out := make([]Service, len(svc.Group))
	for i, k := range svc.Group {
		m := ks
		m.Key, m.Dests = k, maps.Clone(ks.Dests)
		out[i] = m
	}
	return out
}

// DesiredService is the entry of Desired for the service at key, from the
// service, the state's verdicts (by fsm.VerdictKey) and whether the service
// has lost its quorum (fsm.State.QuorumLost). A service that lost it and has
// a sorry server serves from the sorry server alone: its usable servers
// leave as unusable ones do (weight 0, or removed with on_failure: remove),
// as keepalived takes its alive servers out of the pool. Without a sorry
// server the loss changes nothing here, as in keepalived.
func DesiredService(key string, svc *fsm.Service, verdicts map[string]fsm.Verdict, quorumLost bool) Service {
	ks := Service{Key: svc.Key, Scheduler: svc.Scheduler, Flags: serviceFlags(svc), Netmask: netmask(svc), Dests: make(map[string]Dest, len(svc.Servers))}
	if p := svc.Persistence; p != nil {
		ks.Timeout, ks.Engine = p.Timeout, p.Engine
	}
	sorryOnly := quorumLost && svc.Sorry != nil
	usable := 0
	for rk, rs := range svc.Servers {
		v := verdicts[fsm.VerdictKey(key, rk)]
		w := fsm.EffectiveWeight(rs, v)
		switch {
		case fsm.Usable(svc, rs, v) && !sorryOnly:
			usable++
		case rs.State == fsm.Draining:
			w = 0 // always quiescent: draining means let its connections finish
		case svc.OnFailure == fsm.OnFailureRemove:
			continue
		default:
			w = 0
		}
		d := dest(rs)
		d.Weight = w
		ks.Dests[d.Key()] = d
	}
	if (usable == 0 || sorryOnly) && svc.Sorry != nil {
		d := dest(svc.Sorry)
		ks.Dests[d.Key()] = d
	}
	return ks
}

func dest(r *fsm.RealServer) Dest {
	return Dest{Address: r.Address, Port: r.Port, Forward: r.Forward, Weight: r.Weight, Upper: r.Upper, Lower: r.Lower,
		TunnelType: r.TunnelType, TunnelPort: r.TunnelPort, TunnelCsum: r.TunnelCsum}
}

func serviceFlags(s *fsm.Service) uint32 {
	var f uint32
	if s.Persistence != nil {
		f |= FlagPersistent
	}
	if s.OnePacket {
		f |= FlagOnePacket
	}
	for _, fl := range s.Flags {
		switch fl {
		case "sh-fallback", "mh-fallback", "flag-1":
			f |= FlagSched1
		case "sh-port", "mh-port", "flag-2":
			f |= FlagSched2
		case "flag-3":
			f |= FlagSched3
		}
	}
	return f
}

// netmask is the kernel's form: IPv4 a 32-bit mask, IPv6 a prefix length;
// "host" when the model leaves it empty.
func netmask(s *fsm.Service) uint32 {
	v6 := s.Key.Family() == "inet6"
	mask := ""
	if s.Persistence != nil {
		mask = s.Persistence.Netmask
	}
	if v6 {
		if n, err := strconv.Atoi(mask); err == nil {
			return uint32(n)
		}
		return 128
	}
	if a, err := netip.ParseAddr(mask); err == nil && a.Is4() {
		b := a.As4()
		return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	}
	return 0xFFFFFFFF
}

// SameService reports whether two services need no update (dests aside).
func SameService(a, b Service) bool {
	return a.Scheduler == b.Scheduler && a.Flags == b.Flags && a.Timeout == b.Timeout && a.Netmask == b.Netmask && a.Engine == b.Engine
}

// Canonical renders the table one line per service and destination, in
// sorted order: readable, and what the fingerprint digests.
func (t Table) Canonical() string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(t)) {
		canonicalService(&b, k, t[k])
	}
	return b.String()
}

func canonicalService(b *strings.Builder, k string, s Service) {
	fmt.Fprintf(b, "%s %s flags=%#x timeout=%d netmask=%#x", k, s.Scheduler, s.Flags, s.Timeout, s.Netmask)
	if s.Engine != "" { // only when set: tables without one keep their fingerprints
		b.WriteString(" pe=" + s.Engine)
	}
	b.WriteByte('\n')
	for _, d := range slices.Sorted(maps.Keys(s.Dests)) {
		x := s.Dests[d]
		fmt.Fprintf(b, "  %s %s w=%d x=%d y=%d", d, x.Forward, x.Weight, x.Upper, x.Lower)
		if x.TunnelType != "" {
			fmt.Fprintf(b, " tun=%s:%d:%s", x.TunnelType, x.TunnelPort, x.TunnelCsum)
		}
		b.WriteByte('\n')
	}
	if Hashing(s.Scheduler) {
		// The list order is part of the table for these: the same set in
		// another order is another table.
		fmt.Fprintf(b, "  order %s\n", strings.Join(s.DestOrder(), ","))
	}
}

// ServiceDigest is one service's share of the fingerprint.
func ServiceDigest(k string, s Service) uint64 {
	var b strings.Builder
	canonicalService(&b, k, s)
	sum := sha256.Sum256([]byte(b.String()))
	return binary.BigEndian.Uint64(sum[:8])
}

// Fingerprint is a short, order-independent digest of the table: the sum
// of its services' digests, so that equal tables give equal fingerprints on
// every node and a pass can update it for just the services it changed.
func (t Table) Fingerprint() string {
	var sum uint64
	for k, s := range t {
		sum += ServiceDigest(k, s)
	}
	return FormatFingerprint(sum, len(t))
}

// FormatFingerprint renders a sum of service digests over services as
// the fingerprint.
func FormatFingerprint(sum uint64, services int) string {
	return fmt.Sprintf("%016x", sum+uint64(services))
}

// Managed lists every service key the model holds now or held in any
// version of its history, group members included. Releases that kept no record of the services a
// node created deleted these when they left the model; a node upgraded
// from one seeds its record with them once (director.Owned), so that it
// forgets none of the services it programmed.
func Managed(st *fsm.State) map[string]bool {
	m := map[string]bool{}
	add := func(c *fsm.Config) {
		for k, svc := range c.Services {
			m[k] = true
			for _, g := range svc.Group {
				m[g.String()] = true
			}
		}
	}
	add(st.Config)
	for _, h := range st.History {
		add(h.Config)
	}
	return m
}

// Config renders a kernel table as a model config, so that the kernel view
// of a node prints with the same ipvsadm formatter as the model.
func (t Table) Config() *fsm.Config {
	c := fsm.NewConfig()
	for k, s := range t {
		svc := &fsm.Service{Key: s.Key, Scheduler: s.Scheduler, OnePacket: s.Flags&FlagOnePacket != 0, Servers: map[string]*fsm.RealServer{}}
		if s.Flags&FlagPersistent != 0 {
			svc.Persistence = &fsm.Persistence{Timeout: s.Timeout, Netmask: maskString(s), Engine: s.Engine}
		}
		names := [2]string{"sh", "mh"}
		for i, bit := range []uint32{FlagSched1, FlagSched2} {
			if s.Flags&bit == 0 {
				continue
			}
			prefix, suffix := "flag", []string{"-1", "-2"}[i]
			for _, n := range names {
				if s.Scheduler == n {
					prefix, suffix = n, []string{"-fallback", "-port"}[i]
				}
			}
			svc.Flags = append(svc.Flags, prefix+suffix)
		}
		if s.Flags&FlagSched3 != 0 {
			svc.Flags = append(svc.Flags, "flag-3")
		}
		for dk, d := range s.Dests {
			svc.Servers[dk] = &fsm.RealServer{Address: d.Address, Port: d.Port, Forward: d.Forward, Weight: d.Weight, Upper: d.Upper, Lower: d.Lower, State: fsm.Active,
				TunnelType: d.TunnelType, TunnelPort: d.TunnelPort, TunnelCsum: d.TunnelCsum}
		}
		c.Services[k] = svc
	}
	return c
}

// maskString is the model's netmask text for a kernel netmask; "" = host.
func maskString(s Service) string {
	if s.Key.Family() == "inet6" {
		if s.Netmask == 128 {
			return ""
		}
		return strconv.Itoa(int(s.Netmask))
	}
	if s.Netmask == 0xFFFFFFFF {
		return ""
	}
	m := s.Netmask
	return netip.AddrFrom4([4]byte{byte(m >> 24), byte(m >> 16), byte(m >> 8), byte(m)}).String()
}
