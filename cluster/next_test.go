//go:build next

package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/harness"
)

// The rolling-upgrade gate: a command of a newer protocol enters the log only
// while every member of the configuration is known to speak it. A member
// gossip has never seen counts as too old.
func TestGateRefusesANewCommandWhileAMemberMayBeOld(t *testing.T) {
	n := openLeader(t, func(err error) { t.Error(err) })
	ctx := context.Background()
	want := fsm.NoteProtocol // one above the release: the newest protocol of this build
	if got := fsm.CmdNote.Since(); got != want || !fsm.CmdNote.Ignorable() {
		t.Fatalf("note: since %d, ignorable %v; want %d, true", got, fsm.CmdNote.Ignorable(), want)
	}
	if _, err := n.Propose(ctx, fsm.CmdNote, fsm.NotePayload{Text: "alone"}, "test"); err != nil {
		t.Fatalf("single member at protocol %d: %v", want, err)
	}
	// A member nobody has gossiped with: its version is unknown.
	if err := n.raft.AddNonvoter("old", raft.ServerAddress(harness.FreeAddr(t)), 0, 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	_, err := n.Propose(ctx, fsm.CmdNote, fsm.NotePayload{Text: "mixed"}, "test")
	var rej *RejectedError
	if !errors.As(err, &rej) || !strings.Contains(err.Error(), fmt.Sprintf("needs protocol %d on every member", want)) || !strings.Contains(err.Error(), "old (version unknown") {
		t.Fatalf("with an unknown member: err = %v, want a rejection naming it", err)
	}
	if p, low := n.MinProtocol(); p != 0 || len(low) != 1 || low[0].ID != "old" {
		t.Fatalf("MinProtocol = %d, %+v; want 0 and [old]", p, low)
	}
	var note string
	n.View(func(s *fsm.State, _ uint64) { note = s.Annotations["note"] })
	if note != "alone" {
		t.Fatalf("note = %q after the refusal, want the earlier %q", note, "alone")
	}
	// Base-protocol commands are never gated.
	if _, err := n.Propose(ctx, fsm.CmdZeroCounters, fsm.ZeroCountersPayload{}, "test"); err != nil {
		t.Fatalf("a base command with an unknown member: %v", err)
	}
}
