package vip

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

// withMode is vips(spec...) with the VIPs at the prefixes ecmp in mode ecmp.
func withMode(t *testing.T, in map[string]fsm.VIP, ecmp ...string) map[string]fsm.VIP {
	t.Helper()
	for _, p := range ecmp {
		v, ok := in[p]
		if !ok {
			t.Fatalf("no vip %s", p)
		}
		v.Mode = fsm.VIPModeECMP
		if err := fsm.ValidateVIP(v); err != nil {
			t.Fatal(err)
		}
		in[p] = v
	}
	return in
}

func TestFollowerHoldsECMPVIPWithoutAnnouncing(t *testing.T) {
	f := newFake(t)
	m := newManager(t, f)
	// Another node answers for the ecmp VIP, as every node does.
	p := &fakeProber{holders: map[netip.Addr]net.HardwareAddr{netip.MustParseAddr("10.0.0.50"): oldLeader}}
	m.Prober = p
	m.Schedule = []time.Duration{0, 50 * time.Millisecond}
	m.Update(withMode(t, vips(t, "10.0.0.50/32 lo", "10.0.0.10/32 eth0"), "10.0.0.50/32"))
	want(t, f.take(), "add 10.0.0.50/32 on lo")
	if len(f.announce) != 0 || p.probes != 0 {
		t.Errorf("follower: announced %v, probed %d times", f.announce, p.probes)
	}
	if m.busy() {
		t.Error("a follower holding only ecmp VIPs is busy: Run would tick for nothing")
	}
	m.Lead("leadership gained")
	want(t, f.take(), "add 10.0.0.10/32 on eth0")
	m.Tick(time.Now().Add(time.Hour))
	want(t, f.announce, "10.0.0.10@eth0", "10.0.0.10@eth0")
	if p.probes != 1 {
		t.Errorf("probes %d, want 1 (the leader-mode VIP)", p.probes)
	}
	m.Follow("leadership lost")
	want(t, f.take(), "del 10.0.0.10/32 on eth0")
	if s := m.Stats(); len(s.Held) != 1 || s.Held[0] != "10.0.0.50/32 on lo" {
		t.Errorf("held after Follow: %v", s.Held)
	}
	if got, _ := m.rec().load(); len(got) != 1 {
		t.Errorf("state file lists %v, want the ecmp VIP", got)
	}
	m.Close("shutdown")
	want(t, f.take(), "del 10.0.0.50/32 on lo")
	if len(f.on) != 0 {
		t.Errorf("after Close: %v", f.on)
	}
}

func TestSwitchLeaderModeToECMPAndBack(t *testing.T) {
	f := newFake(t)
	leader, follower := newManager(t, f), newManager(t, newFake(t))
	follower.Node = "d3"
	leader.Schedule = []time.Duration{0, time.Second}
	plain := vips(t, "10.0.0.50/32 lo")
	ecmp := withMode(t, vips(t, "10.0.0.50/32 lo"), "10.0.0.50/32")
	leader.Update(plain)
	leader.Lead("test")
	follower.Update(plain)
	want(t, f.take(), "add 10.0.0.50/32 on lo")
	want(t, follower.Addrs.(*fakeNet).take())
	f.announce = nil

	// To ecmp: the leader keeps the address (no flap) and stops announcing
	// it; the follower adds it.
	leader.Update(ecmp)
	follower.Update(ecmp)
	want(t, f.take())
	want(t, follower.Addrs.(*fakeNet).take(), "add 10.0.0.50/32 on lo")
	leader.Tick(time.Now().Add(time.Hour))
	want(t, f.announce)

	// Back to leader mode: the follower drops it, the leader announces it
	// from the first round, as for a new address.
	leader.Update(plain)
	follower.Update(plain)
	want(t, f.take())
	want(t, follower.Addrs.(*fakeNet).take(), "del 10.0.0.50/32 on lo")
	want(t, f.announce, "10.0.0.50@lo")
	leader.Tick(time.Now().Add(2 * time.Second))
	want(t, f.announce, "10.0.0.50@lo", "10.0.0.50@lo")
	if !leader.busy() {
		t.Error("a leader announcing a VIP is not busy")
	}
}

func TestStartRemovesECMPAddressesThenHoldsThem(t *testing.T) {
	f := newFake(t)
	m := newManager(t, f)
	v := withMode(t, vips(t, "10.0.0.50/32 lo"), "10.0.0.50/32")
	m.Update(v)
	f.take()
	// The process dies; the next one starts from nothing, as for any VIP.
	next := &Manager{Node: "d2", Addrs: f, Announcer: f, StateFile: m.StateFile, Log: m.Log}
	if err := next.Start(); err != nil {
		t.Fatal(err)
	}
	want(t, f.take(), "del 10.0.0.50/32 on lo")
	next.Update(v)
	want(t, f.take(), "add 10.0.0.50/32 on lo")
}

func TestWantECMP(t *testing.T) {
	v := withMode(t, vips(t, "10.0.0.50/32 lo d3=dummy0", "10.0.0.51/32 lo", "10.0.0.10/24 eth0"), "10.0.0.50/32", "10.0.0.51/32")
	got := WantECMP("d3", v)
	if len(got) != 2 || got[0].String() != "10.0.0.50/32 on dummy0" || got[1].String() != "10.0.0.51/32 on lo" {
		t.Errorf("WantECMP = %v", got)
	}
	if all := Want("d3", v); len(all) != 3 {
		t.Errorf("Want = %v", all)
	}
}

func TestStatsNameTheECMPVIPs(t *testing.T) {
	f := newFake(t)
	m := newManager(t, f)
	v := vips(t, "10.0.0.50/32 lo", "10.0.0.10/32 eth0")
	m.Update(v)
	m.Lead("test")
	if s := m.Stats(); len(s.Held) != 2 || len(s.ECMP) != 0 {
		t.Errorf("leader mode: %+v", s)
	}
	m.Update(withMode(t, v, "10.0.0.50/32"))
	if s := m.Stats(); len(s.Held) != 2 || len(s.ECMP) != 1 || s.ECMP[0] != "10.0.0.50/32 on lo" {
		t.Errorf("ecmp: held %v, ecmp %v", s.Held, s.ECMP)
	}
}
