package cluster

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"slices"
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
	gen     uint64 // counts every change of state: a plan made at one gen fits only it
	// prepared is the leader's plan of the entry it proposed last (see
	// prepare); Apply commits it instead of planning the entry again.
	prepared *preparedEntry
	reused   uint64 // entries applied from the leader's plan (for tests)

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
	self          string // this node's ID: its rank among the members spreads the threshold

	// bulk runs work that takes a CPU for long (Config.Bulk).
	bulk func(func())
	// pooled reports whether every member reads pooled snapshots
	// (fsm.PooledProtocol); nil: none is assumed to.
	pooled func() bool
}

// bulkBytes is the entry size from which applying it is bulk work: health
// verdicts and single edits stay below it and keep their priority.
const bulkBytes = 32 << 10

// DefaultSnapshotBytes is how many bytes of log entries may accumulate
// before the node takes a snapshot of its own accord.
const DefaultSnapshotBytes = 64 << 20

func newMachine(log *slog.Logger, fatal func(error), snapshotBytes int64) *machine {
	return &machine{state: fsm.NewState(), log: log, fatal: fatal, applyCh: make(chan struct{}),
		snapshotBytes: snapshotBytes, snapshotDue: make(chan struct{}, 1), bulk: func(f func()) { f() }}
}

// waitApplied blocks until done() holds, rechecked after every apply and
// every 10 ms: some of what done() reads (raft's applied index) moves
// without an apply.
func (m *machine) waitApplied(ctx context.Context, index uint64, done func() bool) error {
	for {
		m.subMu.Lock()
		ch := m.applyCh
		m.subMu.Unlock()
		if done() {
			return nil
		}
		select {
		case <-ch:
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return fmt.Errorf("wait for log index %d (applied %d): %w", index, m.appliedIndex(), ctx.Err())
		}
	}
}

// appliedIndex is the index of the last entry this machine applied.
func (m *machine) appliedIndex() uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.applied
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
	var out any
	if len(l.Data) >= bulkBytes {
		m.bulk(func() { out = m.apply(l) })
	} else {
		out = m.apply(l)
	}
	return out
}

func (m *machine) apply(l *raft.Log) any {
	cmd, err := fsm.Decode(l.Data)
	if err != nil {
		m.fatal(fmt.Errorf("log index %d: %w", l.Index, err))
		return applyResponse{Result: fsm.Result{Err: err.Error()}, Index: l.Index}
	}
	m.mu.Lock()
	var res fsm.Result
	if p := m.prepared; p != nil && p.gen == m.gen && bytes.Equal(p.data, l.Data) {
		res = m.state.ApplyPrepared(cmd, p.plan)
		m.reused++
	} else {
		res, err = m.state.Apply(cmd)
	}
	m.prepared = nil
	m.gen++
	m.applied = l.Index
	m.mu.Unlock()
	if err != nil {
		m.fatal(fmt.Errorf("log index %d: %w", l.Index, err))
	}
	if res.Changed {
		m.log.Info("configuration changed", "version", res.Version, "index", l.Index, "actor", cmd.Actor, "command", cmd.Type.String(), "request", cmd.Request)
	}
	// Counted decoded: a compressed entry costs its full size to replay.
	if m.snapshotBytes > 0 {
		if since := m.sinceSnapshot.Add(int64(len(cmd.Payload))); since >= m.snapshotBytes && since >= m.snapshotThreshold() {
			select {
			case m.snapshotDue <- struct{}{}:
			default:
			}
		}
	}
	m.notify()
	return applyResponse{Result: res, Index: l.Index}
}

// snapshotThreshold is this node's own threshold of bytes applied since
// the last snapshot: snapshotBytes times 1 + rank/members, by its ID's rank
// among the members. Every node applies the same entries, so with one
// threshold every node crossed it at the same entry and encoded its
// snapshot at the same moment (2.9 to 3.5 s each, on the same cores), which
// starved Raft's heartbeats: two leader changes in make bench-writes.
func (m *machine) snapshotThreshold() int64 {
	m.mu.RLock()
	ids := make([]string, 0, len(m.state.Members))
	for id := range m.state.Members {
		ids = append(ids, id)
	}
	m.mu.RUnlock()
	return spreadThreshold(m.snapshotBytes, m.self, ids)
}

// spreadThreshold is base × (1 + rank/len(ids)), rank being self's place
// among ids sorted; base itself when self is not among them.
func spreadThreshold(base int64, self string, ids []string) int64 {
	slices.Sort(ids)
	rank := slices.Index(ids, self)
	if rank <= 0 {
		return base
	}
	return base + base*int64(rank)/int64(len(ids))
}

// Snapshot freezes the state and leaves the encoding to Persist, which
// raft runs beside Apply: the log keeps being applied while a large state
// is written out.
func (m *machine) Snapshot() (raft.FSMSnapshot, error) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	m.sinceSnapshot.Store(0)
	return snapshot{state: m.state.Frozen(), bulk: m.bulk, pooled: m.pooled != nil && m.pooled()}, nil
}

func (m *machine) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	index, known := restoredIndex(rc)
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	var s *fsm.State
	m.bulk(func() { s, err = fsm.UnmarshalState(b) })
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.state = s
	m.prepared = nil
	m.gen++
	if known {
		m.applied = index
	}
	m.mu.Unlock()
	m.log.Info("snapshot restored", "index", index, "index_known", known, "version", s.Version)
	m.notify()
	return nil
}

// indexedSnapshots is the snapshot store raft uses, with every snapshot it
// opens telling its log index. raft.FSM's Restore gets only the bytes, and
// the snapshot's content cannot carry the index without changing the format
// older members read; without it the applied index would stay at what it
// was before the install (or 0 after a restart) until the next command.
type indexedSnapshots struct {
	raft.SnapshotStore
}

func (s indexedSnapshots) Open(id string) (*raft.SnapshotMeta, io.ReadCloser, error) {
	meta, rc, err := s.SnapshotStore.Open(id)
	if err != nil {
		return meta, rc, err
	}
	return meta, indexedReader{ReadCloser: rc, index: meta.Index}, nil
}

// indexedReader is an opened snapshot that knows its log index.
type indexedReader struct {
	io.ReadCloser
	index uint64
}

// restoredIndex finds the log index of the snapshot rc reads, looking
// through the readers raft wraps around the one the store opened.
func restoredIndex(rc io.ReadCloser) (uint64, bool) {
	for rc != nil {
		switch r := rc.(type) {
		case indexedReader:
			return r.index, true
		case raft.ReadCloserWrapper:
			rc = r.WrappedReadCloser()
		default:
			return 0, false
		}
	}
	return 0, false
}

// preparedEntry is a plan of entry data made at state generation gen.
type preparedEntry struct {
	data []byte
	gen  uint64
	plan fsm.Prepared
}

// viewGen is view that also returns the state's generation, for keep.
func (m *machine) viewGen(f func(s *fsm.State)) uint64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	f(m.state)
	return m.gen
}

// keep offers the plan of data, made at generation gen, to Apply: if the
// entry is the next one applied and nothing changed the state meanwhile,
// Apply commits the plan instead of planning again.
func (m *machine) keep(data []byte, gen uint64, p fsm.Prepared) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.gen == gen {
		m.prepared = &preparedEntry{data: data, gen: gen, plan: p}
	}
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

// snapshot is a frozen state to persist: pooled (fsm.State.EncodePooled)
// when every member reads that, so that its size follows what the history
// versions changed rather than their number times the table; plain
// otherwise, since raft may send it to any member.
type snapshot struct {
	state  *fsm.State
	bulk   func(func())
	pooled bool
}

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	var err error
	s.bulk(func() {
		w := bufio.NewWriterSize(sink, 1<<20)
		encode := s.state.Encode
		if s.pooled {
			encode = s.state.EncodePooled
		}
		if err = encode(w); err == nil {
			err = w.Flush()
		}
	})
	if err != nil {
		sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	return sink.Close()
}

func (s snapshot) Release() {}
