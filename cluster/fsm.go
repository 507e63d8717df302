package cluster

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ipvsman/ipvsman/fsm"
)

// machine is the raft.FSM over the pure fsm.State. It is kept off the public
// API: only raft calls Apply, Snapshot and Restore.
type machine struct {
	mu      sync.RWMutex
	state   *fsm.State
	applied uint64 // raft index of the last entry applied

	log   *slog.Logger
	fatal func(error) // an entry this build must not skip: stop the node

	subMu   sync.Mutex
	subs    []chan struct{}
	applyCh chan struct{} // closed and replaced after every apply: a broadcast

	// Bytes of log applied since the last snapshot. Raft snapshots after a
	// count of entries, but one entry can hold a whole table: past
	// snapshotBytes the machine asks for a snapshot (on snapshotDue), so a
	// restart replays a bounded amount whatever the entries were.
	sinceSnapshot atomic.Int64
	snapshotBytes int64
	snapshotDue   chan struct{}
}

// DefaultSnapshotBytes is how many bytes of log entries may accumulate
// before the node takes a snapshot of its own accord.
const DefaultSnapshotBytes = 16 << 20

func newMachine(log *slog.Logger, fatal func(error), snapshotBytes int64) *machine {
	return &machine{state: fsm.NewState(), log: log, fatal: fatal, applyCh: make(chan struct{}),
		snapshotBytes: snapshotBytes, snapshotDue: make(chan struct{}, 1)}
}

// waitApplied blocks until applied() reaches index. Raft's own applied
// index also counts entries that never reach the FSM (no-ops, membership),
// so it is polled between apply notifications.
func (m *machine) waitApplied(ctx context.Context, index uint64, applied func() uint64) error {
	for {
		m.subMu.Lock()
		ch := m.applyCh
		m.subMu.Unlock()
		a := applied()
		if a >= index {
			return nil
		}
		select {
		case <-ch:
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("wait for log index %d (applied %d): %w", index, a, ctx.Err())
		}
	}
}

// applyResponse is what raft.ApplyFuture.Response() carries back.
type applyResponse struct {
	Result fsm.Result
	Index  uint64
}

func (m *machine) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	cmd, err := fsm.Decode(l.Data)
	if err != nil {
		m.fatal(fmt.Errorf("log index %d: %w", l.Index, err))
		return applyResponse{Result: fsm.Result{Err: err.Error()}, Index: l.Index}
	}
	m.mu.Lock()
	res, err := m.state.Apply(cmd)
	m.applied = l.Index
	m.mu.Unlock()
	if err != nil {
		m.fatal(fmt.Errorf("log index %d: %w", l.Index, err))
	}
	if res.Changed {
		m.log.Info("configuration changed", "version", res.Version, "index", l.Index, "actor", cmd.Actor, "command", cmd.Type.String(), "request", cmd.Request)
	}
	if m.snapshotBytes > 0 && m.sinceSnapshot.Add(int64(len(l.Data))) >= m.snapshotBytes {
		select {
		case m.snapshotDue <- struct{}{}:
		default:
		}
	}
	m.notify()
	return applyResponse{Result: res, Index: l.Index}
}

func (m *machine) Snapshot() (raft.FSMSnapshot, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	m.sinceSnapshot.Store(0)
	b, err := m.state.Marshal()
	if err != nil {
		return nil, err
	}
	return snapshot(b), nil
}

func (m *machine) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	s, err := fsm.UnmarshalState(b)
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.state = s
	m.mu.Unlock()
	m.notify()
	return nil
}

// view runs f with the state read-locked; f must not keep references to the
// state's maps (Config values are immutable and may be kept).
func (m *machine) view(f func(s *fsm.State, applied uint64)) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	f(m.state, m.applied)
}

// subscribe returns a channel that receives a (coalesced) signal after every
// change of the state.
func (m *machine) subscribe() <-chan struct{} {
	ch := make(chan struct{}, 1)
	m.subMu.Lock()
	m.subs = append(m.subs, ch)
	m.subMu.Unlock()
	return ch
}

func (m *machine) notify() {
	m.subMu.Lock()
	defer m.subMu.Unlock()
	close(m.applyCh)
	m.applyCh = make(chan struct{})
	for _, ch := range m.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

type snapshot []byte

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	return sink.Close()
}

func (s snapshot) Release() {}
