package director

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/director/ipvsnl"
	"github.com/ipvsman/ipvsman/test/harness"
)

// gate holds the first call made through it until released, and counts
// the calls in progress.
type gate struct {
	once     sync.Once
	entered  chan struct{}
	release  chan struct{}
	inFlight atomic.Int64
}

func newGate() *gate { return &gate{entered: make(chan struct{}), release: make(chan struct{})} }

func (g *gate) pass() func() {
	g.inFlight.Add(1)
	g.once.Do(func() {
		close(g.entered)
		<-g.release
	})
	return func() { g.inFlight.Add(-1) }
}

// stopWhileHeld calls stop, waits until g holds a call (made before stop
// or by it), checks that stop waits for it, releases it, and checks that
// stop then returns with no call in progress.
func stopWhileHeld(t *testing.T, g *gate, stop func()) {
	t.Helper()
	stopped := make(chan int64, 1)
	go func() {
		stop()
		stopped <- g.inFlight.Load()
	}()
	select {
	case <-g.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("no call reached the kernel")
	}
	select {
	case n := <-stopped:
		t.Fatalf("Stop returned while a kernel call was held (%d in flight)", n)
	case <-time.After(50 * time.Millisecond): // it must not return before the release
	}
	close(g.release)
	select {
	case n := <-stopped:
		if n != 0 {
			t.Fatalf("Stop returned with %d kernel calls in flight", n)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Stop did not return after the held call was released")
	}
}

type gatedKernel struct {
	*fakeKernel
	g *gate
}

func (k gatedKernel) Read() (Table, error) { defer k.g.pass()(); return k.fakeKernel.Read() }
func (k gatedKernel) Apply(op Op) error    { defer k.g.pass()(); return k.fakeKernel.Apply(op) }

// Stop returns only once the reconciler's loop has exited: a pass in
// progress has finished and makes no further kernel call.
func TestReconcilerStopAwaitsThePass(t *testing.T) {
	g := newGate()
	r := rec(gatedKernel{newFake(), g})
	st := sample(t)
	r.Start(context.Background(), make(chan struct{}), func() Target { return target(st) })
	select {
	case <-g.entered: // the first pass's dump is held
	case <-time.After(10 * time.Second):
		t.Fatal("the first pass never read the kernel")
	}
	stopWhileHeld(t, g, r.Stop)
	r.Stop() // twice is harmless
}

type gatedSync struct {
	*fakeSync
	g *gate
}

func (k gatedSync) StopDaemon(state uint32) error {
	defer k.g.pass()()
	return k.fakeSync.StopDaemon(state)
}

// Stop returns only once the sync loop has exited, which includes its
// stop of the master thread on the way out.
func TestSyncStopAwaitsTheMasterStop(t *testing.T) {
	k := &fakeSync{}
	g := newGate()
	s := &SyncDaemons{Kernel: gatedSync{k, g}, Every: time.Hour, Log: quiet}
	s.Start(context.Background(), make(chan struct{}), func() SyncTarget { return syncTarget(true) })
	running := func(n int) bool { d, _ := k.Daemons(); return len(d) == n }
	harness.Eventually(t, 10*time.Second, "backup and master", func() (bool, string) { return running(2), "" })
	stopWhileHeld(t, g, s.Stop)
	if d, _ := k.Daemons(); len(d) != 1 || d[0].State != ipvsnl.DaemonBackup {
		t.Fatalf("after Stop: %+v, want the backup only", d)
	}
}
