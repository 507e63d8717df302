package vip

import (
	"slices"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

// The ecmp mode (docs/ecmp.md): every node holds an ecmp VIP, leader or
// follower, and the router picks among them by the routes each announces
// over BGP. So the manager adds such an address in both roles, sends no
// gratuitous ARP or unsolicited NA for it (several nodes answering for it
// is the point, and the router is not reached by ARP for it), and does not
// probe whether another node answers for it first. Only Close drops it.

// WantECMP lists the addresses node holds for the ecmp VIPs of vips,
// whatever its role: a subset of Want.
func WantECMP(node string, vips map[string]fsm.VIP) []Addr {
	var out []Addr
	for _, v := range vips {
		if v.ECMP() {
			out = append(out, Addr{Prefix: v.Prefix, Interface: v.InterfaceOn(node)})
		}
	}
	slices.SortFunc(out, compareAddr)
	return out
}

// wanted is what a pass holds: every VIP on the leader, the ecmp VIPs on
// a follower, nothing once closed.
func (in intent) wanted() []Addr {
	switch {
	case in.leader:
		return in.want
	case in.closed:
		return nil
	}
	return in.ecmp
}

// leaderOnly is what a follower must not hold: the VIPs that are not ecmp.
func (in intent) leaderOnly() []Addr {
	out := make([]Addr, 0, len(in.want))
	for _, a := range in.want {
		if !slices.Contains(in.ecmp, a) {
			out = append(out, a)
		}
	}
	return out
}

// setModes marks each held address ecmp or not as the model says. One that
// leaves the ecmp mode while this node leads starts its announcements from
// the first round: the followers drop it now, and the segment must learn
// that this node alone answers for it.
func (m *Manager) setModes(in intent) {
	changed := false
	for a, h := range m.held {
		e := slices.Contains(in.ecmp, a)
		if h.ecmp && !e {
			h.since, h.next = time.Now(), 0
		}
		changed = changed || h.ecmp != e
		h.ecmp = e
	}
	if changed {
		m.publishHeld()
	}
}

// announcing reports whether an address held is announced by ARP/NA (so
// Tick has work while its schedule runs); under opMu.
func (m *Manager) announcing() bool {
	for _, h := range m.held {
		if !h.ecmp {
			return true
		}
	}
	return false
}
