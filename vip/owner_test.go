package vip

import (
	"sync"
	"testing"
	"time"
)

// within fails the test unless f returns within d.
func within(t *testing.T, d time.Duration, what string, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %s", what, d)
	}
}

// holdFirstAdd makes the fake's first Add block until release is closed;
// entered is closed once it does.
func holdFirstAdd(f *fakeNet) (entered, release chan struct{}) {
	entered, release = make(chan struct{}), make(chan struct{})
	var once sync.Once
	f.onAdd = func(Addr) {
		once.Do(func() {
			close(entered)
			<-release
		})
	}
	return entered, release
}

func waitFor(t *testing.T, c <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: not within 10s", what)
	}
}

// Stats and Tick never wait for a change held in netlink: they answer
// with the state after the last step.
func TestStatsAndTickDoNotWaitForAChange(t *testing.T) {
	f := newFake(t)
	m := newManager(t, f)
	m.IsLeader = func() bool { return true }
	m.Update(vips(t, "10.0.0.10/32 eth0", "10.0.0.11/32 eth0"))
	entered, release := holdFirstAdd(f)
	led := make(chan struct{})
	go func() {
		defer close(led)
		m.Lead("leadership gained")
	}()
	waitFor(t, entered, "the add")
	var s Stats
	within(t, 2*time.Second, "Stats during an add", func() { s = m.Stats() })
	if len(s.Held) != 0 || s.Adds != 0 {
		t.Errorf("stats during the first add = %+v", s)
	}
	within(t, 2*time.Second, "Tick during an add", func() { m.Tick(time.Now()) })
	close(release)
	waitFor(t, led, "Lead")
	if s := m.Stats(); len(s.Held) != 2 || s.Adds != 2 {
		t.Errorf("stats after Lead = %+v", s)
	}
}

// A Follow told while a Lead is held in netlink wins: the Lead adds
// nothing more, and the VIPs are dropped before Follow returns.
func TestFollowDuringALeadDropsTheVIPs(t *testing.T) {
	f := newFake(t)
	m := newManager(t, f)
	m.Update(vips(t, "10.0.0.10/32 eth0", "10.0.0.11/32 eth0"))
	f.take()
	entered, release := holdFirstAdd(f)
	led, followed := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(led)
		m.Lead("leadership gained")
	}()
	waitFor(t, entered, "the add")
	go func() {
		defer close(followed)
		m.Follow("leadership lost")
	}()
	// Follow is told at once, whatever the change in progress.
	within(t, 2*time.Second, "telling", func() {
		for m.intent().leader {
			time.Sleep(time.Millisecond)
		}
	})
	close(release)
	waitFor(t, followed, "Follow")
	waitFor(t, led, "Lead")
	want(t, f.take(), "add 10.0.0.10/32 on eth0", "del 10.0.0.10/32 on eth0")
	if s := m.Stats(); len(s.Held) != 0 || len(f.on) != 0 {
		t.Errorf("after Follow: stats = %+v, on = %v", s, f.on)
	}
}

// Of a Lead, a Follow and a Lead told while a change is held, the last
// wins: the VIPs are held.
func TestLastToldWins(t *testing.T) {
	f := newFake(t)
	m := newManager(t, f)
	m.Update(vips(t, "10.0.0.10/32 eth0", "10.0.0.11/32 eth0"))
	entered, release := holdFirstAdd(f)
	var wg sync.WaitGroup
	wg.Go(func() { m.Lead("first") })
	waitFor(t, entered, "the add")
	m.tell("second", func() { m.leader = false }) // Follow's telling, without its wait
	wg.Go(func() { m.Lead("third") })
	within(t, 2*time.Second, "telling", func() {
		for !m.intent().leader {
			time.Sleep(time.Millisecond)
		}
	})
	close(release)
	within(t, 10*time.Second, "the changes", wg.Wait)
	if s := m.Stats(); len(s.Held) != 2 || len(f.on) != 2 {
		t.Errorf("stats = %+v, on = %v", s, f.on)
	}
}

// Close stops Run and drops the VIPs; Run started after Close returns at
// once.
func TestCloseStopsRun(t *testing.T) {
	f := newFake(t)
	m := newManager(t, f)
	m.Update(vips(t, "10.0.0.10/32 eth0"))
	m.Lead("test")
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		m.Run(nil, time.Millisecond)
	}()
	within(t, 5*time.Second, "Close", func() { m.Close("shutdown") })
	waitFor(t, ran, "Run's return after Close")
	if len(f.on) != 0 {
		t.Errorf("on = %v", f.on)
	}
	within(t, 2*time.Second, "Run after Close", func() { m.Run(nil, time.Millisecond) })
}
