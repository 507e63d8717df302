package director

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/director/ipvsnl"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/harness"
)

// fakeSync records the calls and behaves as the kernel does: one thread
// per state, a second start of a state refused, max length from the MTU
// when none is asked for.
type fakeSync struct {
	mu      sync.Mutex
	threads []ipvsnl.Daemon
	calls   []string
	fail    error // every start fails with it, when set
}

func (f *fakeSync) Daemons() ([]ipvsnl.Daemon, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.threads), nil
}

func (f *fakeSync) StartDaemon(d ipvsnl.Daemon) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf("start %s", stateName(d.State)))
	if f.fail != nil {
		return f.fail
	}
	if _, ok := daemonIn(f.threads, d.State); ok {
		return errors.New("file exists")
	}
	if d.MaxLen == 0 {
		d.MaxLen = 1472
	}
	f.threads = append(f.threads, d)
	return nil
}

func (f *fakeSync) StopDaemon(state uint32) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, "stop "+stateName(state))
	i := slices.IndexFunc(f.threads, func(d ipvsnl.Daemon) bool { return d.State == state })
	if i < 0 {
		return errors.New("no such process")
	}
	f.threads = slices.Delete(f.threads, i, i+1)
	return nil
}

func (f *fakeSync) took() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.calls
	f.calls = nil
	return c
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func syncTarget(leader bool) SyncTarget {
	return SyncTarget{Settings: fsm.SyncOf(fsm.NewConfig()), Leader: leader, Iface: "eth0"}
}

func TestWantDaemons(t *testing.T) {
	got := WantDaemons(syncTarget(true))
	if len(got) != 2 || got[0].State != ipvsnl.DaemonBackup || got[1].State != ipvsnl.DaemonMaster {
		t.Fatalf("leader: %+v, want a backup and a master", got)
	}
	if d := got[1]; d.Iface != "eth0" || d.SyncID != 1 || d.Group != netip.MustParseAddr("224.0.0.81") || d.Port != 8848 || d.TTL != 1 {
		t.Errorf("master %+v: want the defaults on eth0", d)
	}
	if got := WantDaemons(syncTarget(false)); len(got) != 1 || got[0].State != ipvsnl.DaemonBackup {
		t.Errorf("follower: %+v, want a backup only", got)
	}
	off := syncTarget(true)
	off.Settings.Off = true
	noIface := syncTarget(true)
	noIface.Iface = ""
	if WantDaemons(off) != nil || WantDaemons(noIface) != nil {
		t.Error("threads wanted with sync off or without an interface")
	}
}

func TestSyncFollowsLeadership(t *testing.T) {
	k := &fakeSync{}
	s := &SyncDaemons{Kernel: k, Log: quiet}
	steps := []struct {
		name  string
		t     SyncTarget
		calls string
	}{
		{"follower", syncTarget(false), "start backup"},
		{"again: nothing to do", syncTarget(false), ""},
		{"gains the lead", syncTarget(true), "start master"},
		{"leader again", syncTarget(true), ""},
		{"loses the lead", syncTarget(false), "stop master"},
		{"new sync id: both restarted", func() SyncTarget {
			t := syncTarget(true)
			t.Settings.ID = 9
			return t
		}(), "stop backup,start master,start backup"},
		{"max length asked", func() SyncTarget {
			t := syncTarget(true)
			t.Settings.ID, t.Settings.MaxLen = 9, 1000
			return t
		}(), "stop master,stop backup,start master,start backup"},
		{"sync off", func() SyncTarget {
			t := syncTarget(true)
			t.Settings.Off = true
			return t
		}(), "stop master,stop backup"},
	}
	for _, st := range steps {
		if err := s.Pass(st.t); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := strings.Join(k.took(), ","); got != st.calls {
			t.Fatalf("%s: calls %q, want %q", st.name, got, st.calls)
		}
	}
}

// A failed start is reported and retried; the report shows what runs.
func TestSyncRetriesAndReports(t *testing.T) {
	k := &fakeSync{fail: errors.New("no such device")}
	s := &SyncDaemons{Kernel: k, Log: quiet}
	err := s.Pass(syncTarget(true))
	if err == nil || !strings.Contains(err.Error(), "start master on eth0") || !strings.Contains(err.Error(), "no such device") {
		t.Fatalf("err %v, want the failed start named", err)
	}
	if got := strings.Join(k.took(), ","); got != "start master,start backup" {
		t.Fatalf("calls %q: want both tried", got)
	}
	if r := s.Last(); r.Err == "" || len(r.Threads) != 0 {
		t.Fatalf("report %+v", r)
	}
	k.fail = nil
	if err := s.Pass(syncTarget(true)); err != nil {
		t.Fatal(err)
	}
	r := s.Last()
	if r.Err != "" || len(r.Threads) != 2 || r.Threads[0].State != "master" || r.Threads[0].Group != "224.0.0.81:8848" || r.Threads[0].MaxLen != 1472 {
		t.Fatalf("report %+v", r)
	}
}

// Run passes on a wake, and stops the master when it ends.
func TestSyncRunStopsTheMasterAtTheEnd(t *testing.T) {
	k := &fakeSync{}
	s := &SyncDaemons{Kernel: k, Every: time.Hour, Log: quiet}
	wake := make(chan struct{}, 1)
	var mu sync.Mutex
	leader := false
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s.Run(ctx, wake, func() SyncTarget { mu.Lock(); defer mu.Unlock(); return syncTarget(leader) })
		close(done)
	}()
	running := func(n int) bool { d, _ := k.Daemons(); return len(d) == n }
	harness.Eventually(t, 10*time.Second, "the backup", func() (bool, string) { return running(1), "" })
	mu.Lock()
	leader = true
	mu.Unlock()
	wake <- struct{}{}
	harness.Eventually(t, 10*time.Second, "the master", func() (bool, string) { return running(2), "" })
	cancel()
	<-done
	if d, _ := k.Daemons(); len(d) != 1 || d[0].State != ipvsnl.DaemonBackup {
		t.Fatalf("after Run: %+v, want the backup only", d)
	}
}

// After leadership is lost the master runs on for MasterLinger, so that it
// sends the connections it still holds, then stops without another wake.
func TestSyncMasterLingersAfterLeadershipLoss(t *testing.T) {
	k := &fakeSync{}
	s := &SyncDaemons{Kernel: k, Every: time.Hour, MasterLinger: 300 * time.Millisecond, Log: quiet}
	wake := make(chan struct{}, 1)
	var mu sync.Mutex
	leader := true
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx, wake, func() SyncTarget { mu.Lock(); defer mu.Unlock(); return syncTarget(leader) })
	running := func(n int) bool { d, _ := k.Daemons(); return len(d) == n }
	harness.Eventually(t, 10*time.Second, "master and backup", func() (bool, string) { return running(2), "" })
	mu.Lock()
	leader = false
	mu.Unlock()
	lost := time.Now()
	wake <- struct{}{}
	harness.Eventually(t, 10*time.Second, "the master stopped", func() (bool, string) { return running(1), "" })
	if held := time.Since(lost); held < 300*time.Millisecond {
		t.Fatalf("master stopped %s after the loss, before its linger of 300ms", held)
	}
	if d, _ := k.Daemons(); d[0].State != ipvsnl.DaemonBackup {
		t.Fatalf("left running: %+v, want the backup", d)
	}
}
