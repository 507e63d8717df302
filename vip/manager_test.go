package vip

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"

	"github.com/ipvsman/ipvsman/fsm"
)

// fakeNet records every change and keeps the interfaces' addresses.
type fakeNet struct {
	t        *testing.T
	on       map[Addr]bool
	calls    []string
	failAdd  int // the next n Adds fail
	onAdd    func(a Addr)
	announce []string
}

func newFake(t *testing.T) *fakeNet { return &fakeNet{t: t, on: map[Addr]bool{}} }

func (f *fakeNet) Add(iface string, p netip.Prefix) error {
	a := Addr{p, iface}
	if f.onAdd != nil {
		f.onAdd(a)
	}
	if f.failAdd > 0 {
		f.failAdd--
		f.calls = append(f.calls, "add! "+a.String())
		return errors.New("operation not permitted")
	}
	f.calls = append(f.calls, "add "+a.String())
	f.on[a] = true
	return nil
}

func (f *fakeNet) Del(iface string, p netip.Prefix) error {
	a := Addr{p, iface}
	f.calls = append(f.calls, "del "+a.String())
	delete(f.on, a)
	return nil
}

func (f *fakeNet) Has(iface string, p netip.Prefix) (bool, error) {
	return f.on[Addr{p, iface}], nil
}

func (f *fakeNet) Announce(iface string, a netip.Addr) error {
	f.announce = append(f.announce, a.String()+"@"+iface)
	return nil
}

func (f *fakeNet) take() []string { c := f.calls; f.calls = nil; return c }

func vips(t *testing.T, spec ...string) map[string]fsm.VIP {
	out := map[string]fsm.VIP{}
	for _, s := range spec {
		f := strings.Fields(s)
		v := fsm.VIP{Prefix: netip.MustParsePrefix(f[0]), Interface: f[1]}
		for _, o := range f[2:] {
			n, i, _ := strings.Cut(o, "=")
			if v.Interfaces == nil {
				v.Interfaces = map[string]string{}
			}
			v.Interfaces[n] = i
		}
		if err := fsm.ValidateVIP(v); err != nil {
			t.Fatal(err)
		}
		out[v.Prefix.String()] = v
	}
	return out
}

func newManager(t *testing.T, f *fakeNet) *Manager {
	m := &Manager{Node: "d2", Addrs: f, Announcer: f, StateFile: filepath.Join(t.TempDir(), "vips.json"), Log: slog.New(slog.DiscardHandler)}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	return m
}

func want(t *testing.T, got []string, w ...string) {
	t.Helper()
	if !slices.Equal(got, w) {
		t.Errorf("got  %q\nwant %q", got, w)
	}
}

func TestLeadAddsAnnouncesAndFollowDrops(t *testing.T) {
	f := newFake(t)
	m := newManager(t, f)
	m.Update(vips(t, "10.0.0.10/32 eth0", "10.1.0.1/24 eth1 d2=ens4", "fd00::10/128 eth0"))
	want(t, f.take()) // a follower holds nothing and adds nothing
	m.Lead("leadership gained")
	want(t, f.take(), "add 10.0.0.10/32 on eth0", "add 10.1.0.1/24 on ens4", "add fd00::10/128 on eth0")
	want(t, f.announce, "10.0.0.10@eth0", "10.1.0.1@ens4", "fd00::10@eth0")
	if s := m.Stats(); s.Adds != 3 || s.Announcements != 3 || len(s.Held) != 3 || !strings.Contains(s.LastChange, "leadership gained") {
		t.Errorf("stats = %+v", s)
	}
	m.Follow("leadership lost")
	want(t, f.take(), "del 10.0.0.10/32 on eth0", "del 10.1.0.1/24 on ens4", "del fd00::10/128 on eth0")
	if s := m.Stats(); s.Removes != 3 || len(s.Held) != 0 || len(f.on) != 0 {
		t.Errorf("after Follow: stats = %+v, on = %v", s, f.on)
	}
	if got, _ := m.rec().load(); len(got) != 0 {
		t.Errorf("state file still lists %v", got)
	}
}

func TestAnnouncementSchedule(t *testing.T) {
	f := newFake(t)
	m := newManager(t, f)
	m.Schedule = []time.Duration{0, 50 * time.Millisecond, time.Second}
	m.Update(vips(t, "10.0.0.10/32 eth0"))
	m.Lead("test")
	since := m.held[Addr{netip.MustParsePrefix("10.0.0.10/32"), "eth0"}].since
	for _, step := range []struct {
		at   time.Duration
		sent int
	}{{10 * time.Millisecond, 1}, {50 * time.Millisecond, 2}, {999 * time.Millisecond, 2}, {time.Second, 3}, {time.Hour, 3}} {
		m.Tick(since.Add(step.at))
		if len(f.announce) != step.sent {
			t.Errorf("at +%s: %d announcements, want %d", step.at, len(f.announce), step.sent)
		}
	}
	// A late tick sends what is due once, not a backlog per missed tick.
	m.Follow("x")
	m.Lead("again")
	f.announce = nil
	since = m.held[Addr{netip.MustParsePrefix("10.0.0.10/32"), "eth0"}].since
	m.Tick(since.Add(time.Hour))
	if len(f.announce) != 1 {
		t.Errorf("late tick sent %d rounds, want 1", len(f.announce))
	}
}

func TestRecordedBeforeAddedAndRemovedAtStart(t *testing.T) {
	f := newFake(t)
	m := newManager(t, f)
	f.onAdd = func(a Addr) {
		got, err := m.rec().load()
		if err != nil || !slices.Contains(got, a) {
			t.Errorf("adding %s while the state file has %v (%v)", a, got, err)
		}
	}
	m.Update(vips(t, "10.0.0.10/32 eth0", "fd00::10/128 eth0"))
	m.Lead("test")
	f.take()
	// The process dies holding both; the next one removes them first.
	f.onAdd = nil
	next := &Manager{Node: "d2", Addrs: f, Announcer: f, StateFile: m.StateFile, Log: m.Log}
	if err := next.Start(); err != nil {
		t.Fatal(err)
	}
	want(t, f.take(), "del 10.0.0.10/32 on eth0", "del fd00::10/128 on eth0")
	if len(f.on) != 0 || next.Stats().Removes != 2 {
		t.Errorf("after start-up: on = %v, stats %+v", f.on, next.Stats())
	}
}

func TestUpdateWhileLeading(t *testing.T) {
	f := newFake(t)
	m := newManager(t, f)
	m.Update(vips(t, "10.0.0.10/32 eth0", "10.1.0.1/24 eth1"))
	m.Lead("test")
	f.take()
	// The gateway moves to another interface on this node only: it leaves
	// the old one before it appears on the new one.
	m.Update(vips(t, "10.0.0.10/32 eth0", "10.1.0.1/24 eth1 d2=ens4", "10.0.0.20/32 eth0"))
	want(t, f.take(), "del 10.1.0.1/24 on eth1", "add 10.0.0.20/32 on eth0", "add 10.1.0.1/24 on ens4")
	m.Update(vips(t, "10.0.0.20/32 eth0", "10.1.0.1/24 eth1 d2=ens4"))
	want(t, f.take(), "del 10.0.0.10/32 on eth0")
	m.Update(vips(t, "10.0.0.20/32 eth0", "10.1.0.1/24 eth1 d2=ens4")) // unchanged: no work
	want(t, f.take())
}

func TestFollowerRemovesStrays(t *testing.T) {
	f := newFake(t)
	m := newManager(t, f)
	stray := Addr{netip.MustParsePrefix("10.0.0.10/32"), "eth0"}
	f.on[stray] = true
	m.Update(vips(t, "10.0.0.10/32 eth0", "10.0.0.11/32 eth0"))
	want(t, f.take(), "del 10.0.0.10/32 on eth0")
	if m.Stats().Removes != 1 {
		t.Errorf("stats = %+v", m.Stats())
	}
}

func TestGuardDropsWhenRaftSaysNotLeader(t *testing.T) {
	f := newFake(t)
	m := newManager(t, f)
	leading := true
	m.IsLeader = func() bool { return leading }
	m.Update(vips(t, "10.0.0.10/32 eth0"))
	m.Lead("test")
	f.take()
	m.Tick(time.Now())
	want(t, f.take())
	leading = false
	m.Tick(time.Now())
	want(t, f.take(), "del 10.0.0.10/32 on eth0")
	if !strings.Contains(m.Stats().LastChange, "no longer leader") {
		t.Errorf("last change = %q", m.Stats().LastChange)
	}
}

func TestFailedAddIsRetriedAndReported(t *testing.T) {
	f := newFake(t)
	m := newManager(t, f)
	m.RetryEvery = time.Minute
	f.failAdd = 1
	m.Update(vips(t, "10.0.0.10/32 eth0"))
	m.Lead("test")
	want(t, f.take(), "add! 10.0.0.10/32 on eth0")
	if s := m.Stats(); s.Errors != 1 || !strings.Contains(s.LastError, "not permitted") || len(s.Held) != 0 {
		t.Errorf("stats = %+v", s)
	}
	m.Tick(time.Now()) // too early for a retry
	want(t, f.take())
	m.Tick(time.Now().Add(time.Minute))
	want(t, f.take(), "add 10.0.0.10/32 on eth0")
	// One round with the add, one from the same tick (its clock is a minute
	// ahead, so the rest of the schedule is due).
	if len(f.announce) != 2 {
		t.Errorf("announcements after the retry: %v", f.announce)
	}
}

func TestCloseIsFinal(t *testing.T) {
	f := newFake(t)
	m := newManager(t, f)
	m.Update(vips(t, "10.0.0.10/32 eth0"))
	m.Lead("test")
	m.Close("shutdown")
	m.Lead("late notification")
	want(t, f.take(), "add 10.0.0.10/32 on eth0", "del 10.0.0.10/32 on eth0")
	if len(f.on) != 0 {
		t.Errorf("on = %v", f.on)
	}
}

func TestStateFileSurvivesGarbage(t *testing.T) {
	f := newFake(t)
	path := filepath.Join(t.TempDir(), "vips.json")
	if err := os.WriteFile(path, []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	m := &Manager{Node: "d1", Addrs: f, Announcer: f, StateFile: path}
	if err := m.Start(); err == nil || !strings.Contains(err.Error(), path) {
		t.Errorf("Start with a corrupt state file: %v, want an error naming it", err)
	}
}

// TestRunTicksOnlyWhileThereIsWork: a follower, or a leader without VIPs,
// has nothing for Tick to do, so Run does not wake every interval; once
// the manager holds addresses it ticks (the announcements follow their
// schedule and the leadership guard runs), and it stops again once they
// are dropped.
func TestRunTicksOnlyWhileThereIsWork(t *testing.T) {
	f := newFake(t)
	m := newManager(t, f)
	m.Schedule = []time.Duration{0, 20 * time.Millisecond} // a late tick merges later rounds
	m.Update(vips(t, "10.0.0.10/32 eth0"))
	if m.busy() {
		t.Fatal("a follower with VIPs configured is busy")
	}
	done := make(chan struct{})
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		m.Run(done, time.Millisecond)
	}()
	defer func() { close(done); <-ran }()
	m.Lead("test")
	if !m.busy() {
		t.Fatal("a leader holding a VIP is not busy")
	}
	harness.Eventually(t, 5*time.Second, "the announcement schedule", func() (bool, string) {
		m.mu.Lock()
		n := m.stats.Announcements
		m.mu.Unlock()
		return n == 2, fmt.Sprintf("%d announcements, %d ticks", n, m.ticks.Load())
	})
	m.Follow("test")
	if m.busy() {
		t.Fatalf("busy after the VIPs were dropped: held %v, failing %v", m.held, m.failing)
	}
	f.failAdd = 1
	m.Lead("test again")
	if !m.busy() {
		t.Fatal("a failed add to retry is not busy")
	}
}
