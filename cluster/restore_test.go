package cluster

import (
	"context"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/harness"
)

// A node whose state comes from a snapshot reports the snapshot's index as
// applied, not what it held before (here 0, after a restart with nothing to
// replay past the snapshot): the table each node reports, and the alarm that
// compares nodes at equal indexes, read that index.
func TestRestoreSetsTheAppliedIndex(t *testing.T) {
	dir := t.TempDir()
	open := func(lead bool) *Node {
		n, err := Open(Config{
			NodeID: "r1", DataDir: dir, RaftAddr: harness.FreeAddr(t), APIAddr: "127.0.0.1:1", Bootstrap: true,
			Logger: slog.New(slog.DiscardHandler), Fatal: func(err error) { t.Errorf("fatal: %v", err) },
			SnapshotBytes: -1,
		})
		if err != nil {
			t.Fatal(err)
		}
		if lead {
			harness.Eventually(t, 10*time.Second, "r1 leads", func() (bool, string) { return n.IsLeader(), "not leader" })
		}
		return n
	}
	n := open(true)
	key := fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: 80}
	for i := range 3 {
		ops := []fsm.Op{{Kind: fsm.OpAddServer, ServiceKey: key, Server: &fsm.RealServer{Address: netip.AddrFrom4([4]byte{10, 3, 0, byte(i + 1)}), Weight: 1}}}
		if i == 0 {
			ops = append([]fsm.Op{{Kind: fsm.OpAddService, Service: &fsm.Service{Key: key, Scheduler: "rr"}}}, ops...)
		}
		if _, err := n.Propose(context.Background(), fsm.CmdOps, fsm.OpsPayload{Ops: ops}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	var before uint64
	n.View(func(_ *fsm.State, applied uint64) { before = applied })
	if before == 0 {
		t.Fatal("applied index 0 after three writes")
	}
	if err := n.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	snapIndex := n.raft.Stats()["last_snapshot_index"]
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Raft restores the snapshot inside Open; read before this node can
	// lead again and commit entries of its own.
	n = open(false)
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	var after uint64
	var servers int
	n.View(func(s *fsm.State, applied uint64) {
		after = applied
		if svc := s.Config.Services[key.String()]; svc != nil {
			servers = len(svc.Servers)
		}
	})
	if servers != 3 {
		t.Fatalf("restored state holds %d real servers, want 3", servers)
	}
	if after < before {
		t.Fatalf("applied index after restoring the snapshot (index %s) is %d, want at least %d, the index applied before", snapIndex, after, before)
	}
}

// passThrough wraps an opened snapshot as raft does before Restore (its
// byte counter), exposing the reader it wraps.
type passThrough struct{ io.ReadCloser }

func (p passThrough) WrappedReadCloser() io.ReadCloser { return p.ReadCloser }

// The index comes from the snapshot store, through raft's wrapping: a
// snapshot written at index 42 restores a machine to applied 42.
func TestRestoreTakesTheIndexOfTheOpenedSnapshot(t *testing.T) {
	store, err := raft.NewFileSnapshotStore(t.TempDir(), 1, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	snaps := indexedSnapshots{store}
	src := newMachine(slog.New(slog.DiscardHandler), func(err error) { t.Error(err) }, 0)
	snap, err := src.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink, err := snaps.Create(raft.SnapshotVersionMax, 42, 3, raft.Configuration{}, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	_, rc, err := snaps.Open(sink.ID())
	if err != nil {
		t.Fatal(err)
	}
	dst := newMachine(slog.New(slog.DiscardHandler), func(err error) { t.Error(err) }, 0)
	if err := dst.Restore(passThrough{rc}); err != nil {
		t.Fatal(err)
	}
	var applied uint64
	dst.view(func(_ *fsm.State, a uint64) { applied = a })
	if applied != 42 {
		t.Fatalf("applied %d after restoring the snapshot of index 42", applied)
	}
}
