package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ipvsman/ipvsman/fsm"
)

// OutcomeUnknownError is a write that may or may not have been committed:
// it was handed to Raft, and the answer did not come (leadership was lost,
// the deadline passed). A retry with the same request ID settles it: a
// caught-up leader answers with the remembered outcome if the command was
// committed, and applies it once if it never can be.
type OutcomeUnknownError struct {
	Request string
	Cause   error
}

func (e *OutcomeUnknownError) Error() string {
	if e.Request == "" {
		return fmt.Sprintf("outcome unknown: %v", e.Cause)
	}
	return fmt.Sprintf("outcome unknown (request %s): %v", e.Request, e.Cause)
}

func (e *OutcomeUnknownError) Unwrap() error { return e.Cause }

// Write is one write to propose.
type Write struct {
	Type    fsm.CommandType
	Payload any
	// Complete, when set, gives the payload from the configuration it will
	// apply to (the leader fills in what an op leaves implicit, so that
	// the logged op is whole); it replaces Payload.
	Complete func(c *fsm.Config) any
	Actor    string
	// Request is the client's request ID ("" for the cluster's own
	// commands). A request the state remembers is answered with its first
	// outcome and not proposed again.
	Request string
	// Admit, when set, sees the configuration the command would leave
	// (nil: unchanged) and may refuse it before the log (size limits).
	Admit func(next *fsm.Config) error
	// Inspect, when set, is shown the current configuration and the one
	// the command would leave (nil: unchanged), as validated, for a diff.
	Inspect func(cur, next *fsm.Config)
	// DryRun validates and inspects without proposing.
	DryRun bool
}

// Propose validates a command against the current state, stamps it with the
// leader's clock and the actor, commits it and returns the applied result.
func (n *Node) Propose(ctx context.Context, typ fsm.CommandType, payload any, actor string) (fsm.Result, error) {
	return n.ProposeWrite(ctx, Write{Type: typ, Payload: payload, Actor: actor})
}

// ProposeWrite commits w on the leader. It validates w only against a state
// that has applied every entry in the leader's log (waiting for it within
// ctx), so a leader still replaying its log never refuses a valid write.
// Its error tells what happened: *RejectedError (nothing changed),
// ErrNotLeader (not proposed), or *OutcomeUnknownError (proposed; a retry
// with the same request ID settles it).
func (n *Node) ProposeWrite(ctx context.Context, w Write) (fsm.Result, error) {
	n.writeMu.Lock()
	defer n.writeMu.Unlock()
	if n.raft.State() != raft.Leader {
		return fsm.Result{}, ErrNotLeader
	}
	if err := n.catchUp(ctx); err != nil {
		return fsm.Result{}, err
	}
	if err := n.Gate(w.Type); err != nil {
		return fsm.Result{}, err
	}
	if w.Request != "" {
		if err := fsm.ValidateRequestID(w.Request); err != nil {
			return fsm.Result{}, &RejectedError{Reason: err.Error()}
		}
	}
	// Request IDs and compressed entries only once every member reads them.
	have, _ := n.MinProtocol()
	modern := have >= fsm.RequestProtocol
	var p prepared
	var err error
	n.machine.bulk(func() { p, err = n.prepare(w, modern) })
	switch {
	case err != nil:
		return fsm.Result{}, err
	case p.seen:
		return p.dup, resultError(p.dup)
	}
	// A configuration some member could not apply alike is refused
	// before it is proposed, as a command type would be.
	// Needs walks every real server: skipped while every member speaks
	// all this build knows, as in any cluster not amid an upgrade.
	if next := p.plan.Config(); next != nil && have < fsm.CommandProtocol {
		if err := n.gate(next.Needs()); err != nil {
			return fsm.Result{}, err
		}
	}
	if w.DryRun {
		return fsm.Result{}, nil
	}
	var b []byte
	n.machine.bulk(func() {
		if b, err = p.cmd.Encode(); err == nil && modern && len(b) > fsm.CompressAbove {
			b, err = fsm.Compress(b)
		}
	})
	if err != nil {
		return fsm.Result{}, err
	}
	enqueue := n.cfg.ApplyTimeout
	if dl, ok := ctx.Deadline(); ok {
		enqueue = max(time.Until(dl), time.Millisecond)
	}
	n.machine.keep(b, p.gen, p.plan)
	f := n.raft.Apply(b, enqueue)
	if err := n.awaitFuture(ctx, f); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrEnqueueTimeout) {
			// Raft never appended it: nothing can commit.
			return fsm.Result{}, fmt.Errorf("%w: %w", ErrNotLeader, err)
		}
		return fsm.Result{}, &OutcomeUnknownError{Request: w.Request, Cause: fmt.Errorf("commit %s: %w", w.Type, err)}
	}
	resp, _ := f.Response().(applyResponse)
	return resp.Result, resultError(resp.Result)
}

// prepared is a write made into a command and planned against the state.
type prepared struct {
	cmd  fsm.Command
	plan fsm.Prepared
	gen  uint64     // the state's generation the plan fits
	dup  fsm.Result // the remembered outcome, when seen
	seen bool
}

// prepare makes w a command (its request ID stamped when stamp) and plans
// it against the current state under the read lock: the remembered outcome
// of its request, or the plan, which Admit and Inspect see. A refusal is a
// *RejectedError.
func (n *Node) prepare(w Write, stamp bool) (prepared, error) {
	var p prepared
	var err, planErr error
	request := ""
	if stamp {
		request = w.Request
	}
	p.gen = n.machine.viewGen(func(s *fsm.State) {
		if p.dup, p.seen = s.Requested(request); p.seen {
			return
		}
		payload := w.Payload
		if w.Complete != nil {
			payload = w.Complete(s.Config)
		}
		if p.cmd, err = fsm.NewCommand(w.Type, n.cfg.Clock().UnixNano(), w.Actor, payload); err != nil {
			return
		}
		p.cmd.Ignorable, p.cmd.Request = w.Type.Ignorable(), request
		p.plan, planErr = s.Prepare(p.cmd)
		next := p.plan.Config()
		if planErr == nil && w.Admit != nil && next != nil {
			planErr = w.Admit(next)
		}
		if planErr == nil && n.cfg.Admit != nil && next != nil {
			planErr = n.cfg.Admit(s.Config, next)
		}
		if planErr == nil && w.Inspect != nil {
			w.Inspect(s.Config, next)
		}
	})
	switch {
	case err != nil:
		return p, err
	case planErr != nil:
		return p, &RejectedError{Reason: planErr.Error()}
	}
	return p, nil
}

// resultError is the rejection an applied result carries, if any.
func resultError(r fsm.Result) error {
	if r.Err != "" {
		return &RejectedError{Reason: r.Err}
	}
	return nil
}

// catchUp waits until this leader's state holds every entry of its log,
// so that validation sees every command that can still commit before the
// new one: the entries of earlier terms (applied once the barrier of this
// term has completed, see watchLeadership) and a write of its own whose
// caller stopped waiting before it was applied. The caller holds writeMu.
// Raft's own applied index cannot tell: it counts entries handed to the
// state machine, not applied by it.
func (n *Node) catchUp(ctx context.Context) error {
	for n.readyTerm.Load() != n.raft.CurrentTerm() {
		if n.raft.State() != raft.Leader {
			return ErrNotLeader
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: the new leader is still applying its log: %w", ErrNotLeader, ctx.Err())
		case <-n.done:
			return ErrNotLeader
		case <-time.After(5 * time.Millisecond):
		}
	}
	if n.inFlight != nil {
		select {
		case <-n.inFlight:
			n.inFlight = nil
		case <-ctx.Done():
			return fmt.Errorf("%w: an earlier write is still being committed: %w", ErrNotLeader, ctx.Err())
		}
	}
	if n.raft.State() != raft.Leader {
		return ErrNotLeader
	}
	return nil
}

// awaitFuture waits for a Raft future within ctx. Raft resolves every
// future it has accepted (committed, leadership lost, or shut down), so the
// waiting goroutine ends with it even when ctx gives up first; the next
// write then waits on inFlight for that resolution before it validates.
// The caller holds writeMu.
func (n *Node) awaitFuture(ctx context.Context, f raft.Future) error {
	done := make(chan error, 1)
	resolved := make(chan struct{})
	go func() {
		err := f.Error()
		close(resolved)
		done <- err
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		n.inFlight = resolved
		return fmt.Errorf("no answer from Raft: %w", ctx.Err())
	}
}
