package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/harness"
)

// openLeader starts a single bootstrapped node and waits for it to lead.
func openLeader(t *testing.T, fatal func(error)) *Node {
	t.Helper()
	n, err := Open(Config{
		NodeID: "t1", DataDir: t.TempDir(), RaftAddr: harness.FreeAddr(t), APIAddr: "127.0.0.1:1", Bootstrap: true,
		Logger: slog.New(slog.DiscardHandler), Fatal: fatal,
		Clock: func() time.Time { return time.Unix(1_700_000_000, 0) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	deadline := time.Now().Add(10 * time.Second)
	for !n.IsLeader() {
		if time.Now().After(deadline) {
			t.Fatal("single node did not become leader within 10s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	return n
}

func TestProposeValidatesStampsAndCommits(t *testing.T) {
	n := openLeader(t, func(err error) { t.Errorf("fatal: %v", err) })
	ctx := context.Background()
	svc := &fsm.Service{Key: fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: 80}, Scheduler: "rr"}
	add := fsm.OpsPayload{Ops: []fsm.Op{{Kind: fsm.OpAddService, Service: svc}}}
	res, err := n.Propose(ctx, fsm.CmdOps, add, "alice@host")
	if err != nil || !res.Changed || res.Version != 1 {
		t.Fatalf("first add: %+v, %v", res, err)
	}
	_, err = n.Propose(ctx, fsm.CmdOps, add, "alice@host")
	var rej *RejectedError
	if !errors.As(err, &rej) || rej.Reason != "service tcp:10.0.0.1:80: already exists" {
		t.Fatalf("duplicate add: %v", err)
	}
	var h fsm.HistoryEntry
	n.View(func(s *fsm.State, _ uint64) { h = s.History[len(s.History)-1] })
	if h.Actor != "alice@host" || h.Time != time.Unix(1_700_000_000, 0).UnixNano() || h.Version != 1 {
		t.Fatalf("history entry not stamped by the leader: %+v", h)
	}
	diff, err := n.Preview(fsm.CmdRollback, fsm.RollbackPayload{Version: 1})
	if err != nil || len(diff) != 0 {
		t.Fatalf("preview of a rollback to the current version: %v %v", diff, err)
	}
}

// The log may hold a command from a newer version: an ignorable one is
// skipped, any other stops the node through Fatal instead of diverging.
func TestUnknownCommandInTheLog(t *testing.T) {
	fatal := make(chan error, 1)
	n := openLeader(t, func(err error) { fatal <- err })
	ign, _ := fsm.Command{Type: 100, Ignorable: true, Payload: []byte(`{}`)}.Encode()
	if err := n.raft.Apply(ign, 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	var skipped uint64
	n.View(func(s *fsm.State, _ uint64) { skipped = s.Skipped })
	if skipped != 1 {
		t.Fatalf("skipped = %d, want 1", skipped)
	}
	bad, _ := fsm.Command{Type: 101, Payload: []byte(`{}`)}.Encode()
	if err := n.raft.Apply(bad, 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-fatal:
		var unknown *fsm.UnknownCommandError
		if !errors.As(err, &unknown) || unknown.Type != 101 {
			t.Fatalf("fatal error = %v, want UnknownCommandError(101)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("an unknown non-ignorable command did not stop the node")
	}
}

func TestDataDirOfAnotherNodeIsRefused(t *testing.T) {
	dir := t.TempDir()
	if err := checkNodeID(dir, "a"); err != nil {
		t.Fatal(err)
	}
	if err := checkNodeID(dir, "a"); err != nil {
		t.Fatalf("same node again: %v", err)
	}
	err := checkNodeID(dir, "b")
	if err == nil || err.Error() != `data-dir "`+dir+`" belongs to node "a", not "b"` {
		t.Fatalf("other node: %v", err)
	}
}

func TestLeaseWithinTheHeartbeat(t *testing.T) {
	if err := checkLease(DefaultLeaderLeaseTimeout, DefaultHeartbeatTimeout); err != nil {
		t.Errorf("the defaults: %v", err)
	}
	err := checkLease(200*time.Millisecond, 150*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "leader lease timeout 200ms") || !strings.Contains(err.Error(), "heartbeat timeout 150ms") {
		t.Errorf("lease 200ms, heartbeat 150ms: %v", err)
	}
}

// Half a heartbeat timeout always separates an isolated leader's step-down
// from the next leader's first act, whatever the lease.
func TestFenceKeepsHalfAHeartbeat(t *testing.T) {
	for _, c := range []struct{ lease, heartbeat, fence time.Duration }{
		{75 * time.Millisecond, 150 * time.Millisecond, 0},
		{150 * time.Millisecond, 150 * time.Millisecond, 75 * time.Millisecond},
		{500 * time.Millisecond, 1000 * time.Millisecond, 0},
		{100 * time.Millisecond, 150 * time.Millisecond, 25 * time.Millisecond},
	} {
		f := vipFence(c.lease, c.heartbeat)
		if f != c.fence {
			t.Errorf("lease %s heartbeat %s: fence %s, want %s", c.lease, c.heartbeat, f, c.fence)
		}
		if margin := c.heartbeat + f - c.lease; margin < c.heartbeat/2 {
			t.Errorf("lease %s heartbeat %s: margin %s below half the heartbeat", c.lease, c.heartbeat, margin)
		}
	}
}

// Raft counts an entry applied once it has handed it to the FSM, before
// Apply ran: a consistent read that waited on raft's index alone was served
// without the write the leader had just acknowledged (a console assignment
// read back through a follower, missing).
func TestConsistentReadWaitsForTheStateItself(t *testing.T) {
	var hold atomic.Bool
	entered, release := make(chan struct{}, 1), make(chan struct{})
	var once sync.Once
	let := func() { once.Do(func() { close(release) }) }
	n, err := Open(Config{
		NodeID: "t1", DataDir: t.TempDir(), RaftAddr: harness.FreeAddr(t), APIAddr: "127.0.0.1:1", Bootstrap: true,
		Logger: slog.New(slog.DiscardHandler), Fatal: func(err error) { t.Errorf("fatal: %v", err) },
		// Once armed, only a large entry's apply runs as bulk work here
		// (raft.Apply below skips the leader's planning): hold it.
		Bulk: func(f func()) {
			if hold.Load() {
				select {
				case entered <- struct{}{}:
				default:
				}
				<-release
			}
			f()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	t.Cleanup(let) // runs first: Shutdown waits for the held apply
	// The new leader records itself through a planned write: armed only
	// after that, the hold catches the test's entry alone.
	harness.Eventually(t, 10*time.Second, "t1 leads and has recorded itself", func() (bool, string) {
		var rec bool
		n.View(func(s *fsm.State, _ uint64) { rec = s.Members["t1"].APIAddr != "" })
		return n.IsLeader() && rec, "not yet"
	})
	hold.Store(true)

	svc := &fsm.Service{Key: fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: 80}, Scheduler: "rr",
		Servers: map[string]*fsm.RealServer{}}
	for i := range 2000 {
		rs := &fsm.RealServer{Address: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Port: 80, Weight: 1, Forward: fsm.Masquerade}
		svc.Servers[rs.Key()] = rs
	}
	payload, err := json.Marshal(fsm.OpsPayload{Ops: []fsm.Op{{Kind: fsm.OpAddService, Service: svc}}})
	if err != nil {
		t.Fatal(err)
	}
	b, err := fsm.Command{Type: fsm.CmdOps, Payload: payload}.Encode()
	if err != nil || len(b) < bulkBytes {
		t.Fatalf("entry of %d bytes (%v): too small to be bulk work", len(b), err)
	}
	applied := make(chan error, 1)
	go func() { applied <- n.raft.Apply(b, 10*time.Second).Error() }()
	<-entered
	harness.Eventually(t, 10*time.Second, "raft counts the held entry applied", func() (bool, string) {
		return n.raft.AppliedIndex() == n.raft.LastIndex(), fmt.Sprintf("raft applied %d of %d", n.raft.AppliedIndex(), n.raft.LastIndex())
	})

	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	err = n.ConsistentRead(ctx, nil)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("consistent read while the entry is held: %v, want it to wait (deadline exceeded)", err)
	}
	let()
	if err := n.ConsistentRead(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	var have bool
	n.View(func(s *fsm.State, _ uint64) { have = s.Config.Services[svc.Key.String()] != nil })
	if !have {
		t.Fatal("consistent read returned without the acknowledged service")
	}
	if err := <-applied; err != nil {
		t.Fatal(err)
	}
}
