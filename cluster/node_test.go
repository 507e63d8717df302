package cluster

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"strings"
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
