package vip

import (
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

// fakeProber answers for the addresses in holders (by the hardware address
// given), or fails with err.
type fakeProber struct {
	holders map[netip.Addr]net.HardwareAddr
	err     error
	probes  int
}

func (p *fakeProber) Probe(_ string, a netip.Addr, _ time.Duration) (net.HardwareAddr, error) {
	p.probes++
	if p.err != nil {
		return nil, p.err
	}
	return p.holders[a], nil
}

var (
	oldLeader = net.HardwareAddr{2, 0, 0, 0, 0, 1}
	vip10     = netip.MustParseAddr("10.0.0.10")
)

func probing(t *testing.T) (*fakeNet, *Manager, *fakeProber) {
	f := newFake(t)
	m := newManager(t, f)
	p := &fakeProber{holders: map[netip.Addr]net.HardwareAddr{vip10: oldLeader}}
	m.Prober = p
	m.Update(vips(t, "10.0.0.10/32 eth0", "10.0.0.11/32 eth0"))
	return f, m, p
}

func TestAnAddressAnotherNodeAnswersForIsLeftUntilItLetsGo(t *testing.T) {
	f, m, p := probing(t)
	m.Lead("leadership gained")
	want(t, f.take(), "add 10.0.0.11/32 on eth0")
	// Probed again on the ticks while the other node answers; nothing added.
	at := time.Now()
	for i := 1; i <= 3; i++ {
		at = at.Add(2 * DefaultProbeWait)
		m.Tick(at)
	}
	want(t, f.take())
	if p.probes < 3 {
		t.Errorf("%d probes, want the first and at least two more on the ticks", p.probes)
	}
	delete(p.holders, vip10) // the former leader let go
	m.Tick(at.Add(time.Hour))
	want(t, f.take(), "add 10.0.0.10/32 on eth0")
	if len(m.contested) != 0 {
		t.Errorf("contested after the add: %v", m.contested)
	}
}

func TestAnAddressStillAnsweredAfterTheLimitIsTaken(t *testing.T) {
	f, m, _ := probing(t)
	m.Lead("leadership gained")
	want(t, f.take(), "add 10.0.0.11/32 on eth0")
	a := Addr{netip.MustParsePrefix("10.0.0.10/32"), "eth0"}
	c := m.contested[a]
	if c == nil || c.by != oldLeader.String() {
		t.Fatalf("contest = %+v, want one by %s", c, oldLeader)
	}
	c.since = c.since.Add(-DefaultProbeLimit) // as if the limit has passed
	m.Tick(time.Now().Add(time.Hour))
	want(t, f.take(), "add 10.0.0.10/32 on eth0")
}

func TestAFailedProbeNeverKeepsALeaderFromServing(t *testing.T) {
	f, m, p := probing(t)
	p.err = errors.New("socket: operation not permitted")
	m.Lead("leadership gained")
	want(t, f.take(), "add 10.0.0.10/32 on eth0", "add 10.0.0.11/32 on eth0")
}

func TestLosingLeadershipForgetsTheWait(t *testing.T) {
	f, m, p := probing(t)
	m.Lead("leadership gained")
	m.Follow("leadership lost")
	want(t, f.take(), "add 10.0.0.11/32 on eth0", "del 10.0.0.11/32 on eth0")
	if len(m.contested) != 0 {
		t.Errorf("contested after Follow: %v", m.contested)
	}
	delete(p.holders, vip10)
	m.Tick(time.Now().Add(time.Hour))
	want(t, f.take()) // a follower adds nothing when the other node lets go
}

func arpFrame(t *testing.T, op arp.Operation, from net.HardwareAddr, sender netip.Addr, target netip.Addr) []byte {
	t.Helper()
	p, err := arp.NewPacket(op, from, sender, ethernet.Broadcast, target)
	if err != nil {
		t.Fatal(err)
	}
	body, err := p.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	f := ethernet.Frame{Destination: ethernet.Broadcast, Source: from, EtherType: ethernet.EtherTypeARP, Payload: body}
	b, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestProbeAnswer(t *testing.T) {
	mine := net.HardwareAddr{2, 0, 0, 0, 0, 2}
	zero := netip.IPv4Unspecified()
	other := netip.MustParseAddr("10.0.0.99")
	for _, c := range []struct {
		name  string
		frame []byte
		want  net.HardwareAddr
	}{
		{"the holder's reply", arpFrame(t, arp.OperationReply, oldLeader, vip10, zero), oldLeader},
		{"the holder's gratuitous request", arpFrame(t, arp.OperationRequest, oldLeader, vip10, vip10), oldLeader},
		{"our own probe, seen by the packet socket", arpFrame(t, arp.OperationRequest, mine, zero, vip10), nil},
		{"another node probing at the same time", arpFrame(t, arp.OperationRequest, oldLeader, zero, vip10), nil},
		{"an answer for another address", arpFrame(t, arp.OperationReply, oldLeader, other, zero), nil},
		{"our own announcement", arpFrame(t, arp.OperationReply, mine, vip10, vip10), nil},
		{"not a frame", []byte{1, 2, 3}, nil},
	} {
		if got := probeAnswer(c.frame, mine, vip10); got.String() != c.want.String() {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
	f, err := probeFrame(mine, vip10)
	if err != nil {
		t.Fatal(err)
	}
	if got := probeAnswer(f, oldLeader, vip10); got != nil {
		t.Errorf("a probe (sender 0.0.0.0) counted as an answer from %v", got)
	}
}

func TestAdvertised(t *testing.T) {
	vip6 := netip.MustParseAddr("fd00::10")
	na := func(target netip.Addr, opts ...byte) []byte {
		b := []byte{136, 0, 0, 0, 0x60, 0, 0, 0}
		a := target.As16()
		return append(append(b, a[:]...), opts...)
	}
	lladdr := append([]byte{2, 1}, oldLeader...)
	for _, c := range []struct {
		name string
		msg  []byte
		want net.HardwareAddr
	}{
		{"the holder's advertisement", na(vip6, lladdr...), oldLeader},
		{"after another option", na(vip6, append([]byte{1, 1, 9, 9, 9, 9, 9, 9}, lladdr...)...), oldLeader},
		{"for another address", na(netip.MustParseAddr("fd00::11"), lladdr...), nil},
		{"without a link-layer address", na(vip6), nil},
		{"a zero-length option", na(vip6, 2, 0, 0, 0, 0, 0, 0, 0), nil},
		{"a solicitation", append([]byte{135}, na(vip6, lladdr...)[1:]...), nil},
		{"short", []byte{136, 0}, nil},
	} {
		if got := advertised(c.msg, vip6); got.String() != c.want.String() {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}
