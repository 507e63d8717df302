package director

import (
	"context"
	"sync"
)

// owner runs one loop on a goroutine it owns, and stops it: the Start and
// Stop of the Reconciler and the SyncDaemons. stop returns only once the
// loop has returned, so nothing the loop does (a pass in progress, the
// sync master's stop on the way out) outlives it.
type owner struct {
	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// start stops and awaits the loop an earlier start began, then runs run
// until ctx ends or stop is called.
func (o *owner) start(ctx context.Context, run func(context.Context)) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stopLocked()
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	o.cancel, o.done = cancel, done
	go func() {
		defer close(done)
		run(ctx)
	}()
}

// stop ends the loop and waits until it has returned; without one it
// returns at once.
func (o *owner) stop() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.stopLocked()
}

func (o *owner) stopLocked() {
	if o.cancel == nil {
		return
	}
	o.cancel()
	<-o.done
	o.cancel, o.done = nil, nil
}
