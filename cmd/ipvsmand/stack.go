package main

import (
	"context"
	"sync"
)

// closer stops or releases one part of the daemon, at most once.
type closer struct {
	name string
	once sync.Once
	f    func(ctx context.Context)
}

// close runs the closer unless it has run; a nil closer (a part that is
// off) does nothing.
func (c *closer) close(ctx context.Context) {
	if c != nil {
		c.once.Do(func() { c.f(ctx) })
	}
}

// stack holds the closer of every part newDaemon built, newest last. An
// error while building unwinds it; shutdown runs some closers first, in
// its order, and then unwinds the rest.
type stack struct{ closers []*closer }

// push adds a part's closer and returns it.
func (s *stack) push(name string, f func(ctx context.Context)) *closer {
	c := &closer{name: name, f: f}
	s.closers = append(s.closers, c)
	return c
}

// unwind closes every part not closed yet, newest first.
func (s *stack) unwind(ctx context.Context) {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i].close(ctx)
	}
}

// start runs f on a goroutine of its own until f's closer runs, which
// cancels f's context and waits for f to return (or for the closer's
// context to end).
func start(f func(ctx context.Context)) func(context.Context) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(ctx)
	}()
	return func(wait context.Context) {
		cancel()
		select {
		case <-done:
		case <-wait.Done():
		}
	}
}
