package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/harness"
)

// snapshotBytes takes a snapshot of n and returns what it wrote.
func snapshotBytes(t *testing.T, n *Node) []byte {
	t.Helper()
	f := n.raft.Snapshot()
	if err := f.Error(); err != nil {
		t.Fatal(err)
	}
	_, rc, err := f.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A node's snapshot holds each real server once however many history
// versions repeat it, while every member reads that form; with a member
// that may not (here one gossip has never seen), it is the plain form
// every build reads. On a build that wrote every version in full, the
// first snapshot below was 200 copies of the table.
func TestSnapshotsArePooledWhileEveryMemberReadsThem(t *testing.T) {
	n := openLeader(t, func(err error) { t.Errorf("fatal: %v", err) })
	ctx := context.Background()
	key := fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: 80}
	ops := []fsm.Op{{Kind: fsm.OpAddService, Service: &fsm.Service{Key: key, Scheduler: "wlc"}}}
	for i := range 2000 {
		ops = append(ops, fsm.Op{Kind: fsm.OpAddServer, ServiceKey: key, Server: &fsm.RealServer{
			Address: netip.AddrFrom4([4]byte{10, 1, byte(i >> 8), byte(i)}), Port: 80, Forward: fsm.DirectRoute, Weight: 1}})
	}
	if _, err := n.Propose(ctx, fsm.CmdOps, fsm.OpsPayload{Ops: ops}, "test"); err != nil {
		t.Fatal(err)
	}
	edit := func(w int) {
		t.Helper()
		op := fsm.Op{Kind: fsm.OpEditServer, ServiceKey: key, Server: &fsm.RealServer{Address: netip.MustParseAddr("10.1.0.0"), Port: 80, Forward: fsm.DirectRoute, Weight: w}}
		if _, err := n.Propose(ctx, fsm.CmdOps, fsm.OpsPayload{Ops: []fsm.Op{op}}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	for i := range fsm.HistoryLimit - 1 {
		edit(2 + i%5)
	}
	var want []byte // the plain form
	n.machine.view(func(s *fsm.State, _ uint64) { want, _ = s.Marshal() })

	pooled := snapshotBytes(t, n)
	if !bytes.HasPrefix(pooled, []byte(`{"format":"pooled/1"`)) || 20*len(pooled) > len(want) {
		t.Fatalf("snapshot of %d versions, every member on protocol %d: %d bytes starting %.40q; want the pooled form, under a twentieth of the plain form's %d",
			fsm.HistoryLimit, fsm.CommandProtocol, len(pooled), pooled, len(want))
	}
	t.Logf("snapshot of %d versions of 2,000 real servers: %d bytes pooled, %d plain", fsm.HistoryLimit, len(pooled), len(want))
	restored, err := fsm.UnmarshalState(pooled)
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := restored.Marshal(); !bytes.Equal(got, want) {
		t.Fatalf("the pooled snapshot restores a state of %d bytes that differs from the node's %d", len(got), len(want))
	}

	// A member nobody has gossiped with may be of any version.
	if err := n.raft.AddNonvoter("old", raft.ServerAddress(harness.FreeAddr(t)), 0, 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	edit(9)
	plain := snapshotBytes(t, n)
	var old fsm.State
	if err := json.Unmarshal(plain, &old); err != nil || len(old.History) != fsm.HistoryLimit {
		t.Fatalf("snapshot with a member of unknown version: %s; a plain decoder read %d versions (err %v), want %d",
			fmt.Sprintf("%.40q", plain), len(old.History), err, fsm.HistoryLimit)
	}
}
