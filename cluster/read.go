package cluster

import (
	"context"
	"fmt"

	"github.com/hashicorp/raft"
)

// ConsistentRead waits until this node has applied everything the leader
// had committed when asked, so that a read through a follower shows every
// write acknowledged before it. The leader's commit index comes from
// leaderCommit (an API call), or from Raft when this node leads.
func (n *Node) ConsistentRead(ctx context.Context, leaderCommit func(ctx context.Context) (uint64, error)) error {
	var idx uint64
	if n.IsLeader() {
		if err := n.raft.VerifyLeader().Error(); err != nil {
			return fmt.Errorf("%w: %w", ErrNotLeader, err)
		}
		idx = n.raft.CommitIndex()
	} else {
		var err error
		if idx, err = leaderCommit(ctx); err != nil {
			return err
		}
	}
	return n.waitApplied(ctx, idx)
}

// waitApplied blocks until the state holds every command up to index.
// Raft's own applied index cannot say so: raft counts an entry applied once
// it has handed it to the FSM's goroutine, before Apply ran, and it also
// counts entries that never reach the FSM (no-ops, membership), which the
// machine's index never shows. So once raft is there, the wait is for the
// machine to reach the last command at or below index.
func (n *Node) waitApplied(ctx context.Context, index uint64) error {
	return n.machine.waitApplied(ctx, index, func() bool {
		at := n.machine.appliedIndex()
		if at >= index {
			return true
		}
		if n.raft.AppliedIndex() < index {
			return false
		}
		for i := index; i > at; i-- {
			var l raft.Log
			// An entry missing from the log is covered by a snapshot the
			// machine restored, which moved its index past it; a read
			// error is not proof of anything: wait on.
			if err := n.logs.GetLog(i, &l); err != nil || l.Type == raft.LogCommand {
				return false
			}
		}
		return true
	})
}
