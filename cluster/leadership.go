package cluster

import (
	"fmt"
	"time"
)

// watchLeadership tells cfg.Leadership and the log of every leadership
// change and, on gaining it, waits for the log to be applied (Barrier)
// before acting on the state.
//
// Raft's notifications can queue up while a barrier runs (a long replay):
// each wake-up takes every queued one and acts once on what is true now,
// so the gains and losses of terms that are already over are coalesced
// instead of moving the VIPs once each.
func (n *Node) watchLeadership() {
	defer n.wg.Done()
	var stopPilot chan struct{}
	endPilot := func() {
		if stopPilot != nil {
			close(stopPilot)
			stopPilot = nil
		}
	}
	defer endPilot()
	var toldTerm uint64 // the term this node was told it leads; 0: not leading
	for {
		select {
		case <-n.done:
			return
		case <-n.notifyCh:
		}
		n.drainNotify()
		term := n.raft.CurrentTerm()
		leader := n.IsLeader()
		if toldTerm != 0 && (!leader || term != toldTerm) {
			endPilot()
			start := time.Now()
			n.tell(false, "leadership lost")
			n.log.Info("leadership lost", "node", n.cfg.NodeID, "term", toldTerm, "now_term", term, "handled", time.Since(start).String())
			toldTerm = 0
		}
		if !leader || toldTerm != 0 {
			continue
		}
		start := time.Now()
		if !n.barrier() {
			continue
		}
		barrier := time.Since(start)
		n.readyTerm.Store(term)
		if n.draining.Load() {
			// A draining node must not take the VIPs: hand over at once.
			// The hand-over is the node's (its wait group): Transfer
			// gives up when the node stops, and stop waits for it.
			n.log.Info("leadership gained while draining; handing it over", "node", n.cfg.NodeID)
			n.wg.Add(1)
			go func() {
				defer n.wg.Done()
				if _, err := n.Transfer(""); err != nil {
					n.log.Warn("hand-over while draining failed", "node", n.cfg.NodeID, "err", err)
				}
			}()
			continue
		}
		if !n.fence(start, term) {
			continue
		}
		toldTerm = term
		n.tell(true, "leadership gained")
		n.log.Info("leadership gained", "node", n.cfg.NodeID, "term", term, "barrier", barrier.String(), "fence", n.vipFence.String(), "handled", time.Since(start).String())
		n.recordSelf()
		endPilot()
		stopPilot = make(chan struct{})
		n.wg.Add(1)
		go func(stop <-chan struct{}) {
			defer n.wg.Done()
			n.runPilot(stop)
		}(stopPilot)
	}
}

// fence waits until vipFence has passed since leadership was seen at
// start, so that an isolated former leader has stepped down before this one
// acts. It reports false when leadership (or the term) is gone meanwhile,
// or the node stops; the next notification then says what is true.
func (n *Node) fence(start time.Time, term uint64) bool {
	if wait := n.vipFence - time.Since(start); wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-n.done:
			return false
		case <-t.C:
		}
	}
	return n.IsLeader() && n.raft.CurrentTerm() == term
}

// drainNotify empties the queue of Raft's leadership notifications; the
// caller then reads the current state instead.
func (n *Node) drainNotify() {
	for {
		select {
		case <-n.notifyCh:
		default:
			return
		}
	}
}

// barrier waits until this leader has applied its whole log, retrying while
// it still leads in the same term: a leader replaying a long log must not
// give up its duties because one barrier timed out. It reports false when
// leadership (or the term) is gone, or the node stops; the next
// notification then says what is true.
func (n *Node) barrier() bool {
	term := n.raft.CurrentTerm()
	for attempt := 1; ; attempt++ {
		err := n.raft.Barrier(n.cfg.ApplyTimeout).Error()
		if !n.IsLeader() || n.raft.CurrentTerm() != term {
			return false
		}
		if err == nil {
			return true
		}
		select {
		case <-n.done:
			return false
		default:
		}
		n.log.Warn("leadership gained but the barrier has not completed; waiting again", "node", n.cfg.NodeID, "term", term, "attempt", attempt, "err", err)
	}
}

// tell passes a leadership change to Config.Leadership, one at a time.
func (n *Node) tell(leader bool, reason string) {
	if n.cfg.Leadership == nil {
		return
	}
	n.tellMu.Lock()
	defer n.tellMu.Unlock()
	if leader && n.draining.Load() {
		return
	}
	n.cfg.Leadership(leader, reason)
}

// checkLease keeps the lease within what Raft accepts: a leader must notice
// a lost quorum before its followers stop waiting for it.
func checkLease(lease, heartbeat time.Duration) error {
	if lease > heartbeat {
		return fmt.Errorf("leader lease timeout %s: must be at most the heartbeat timeout %s, so that an isolated leader steps down before another node can be elected", lease, heartbeat)
	}
	return nil
}

// vipFence is how long a new leader waits, after winning, before it acts
// as leader (VIPs, checks): the one-VIP-owner guarantee. An isolated leader
// steps down one lease after its last contact with a quorum; a follower
// cannot win an election before one heartbeat timeout after the last
// heartbeat it got (less one heartbeat interval, a tenth of the timeout).
// The fence keeps half a heartbeat timeout between the two whatever the
// lease, for dropping the VIPs and for scheduling delays: a longer lease
// rides out longer stalls of a busy leader, and the fence pays for it with
// the same time added to a failover.
func vipFence(lease, heartbeat time.Duration) time.Duration {
	return max(0, lease-heartbeat/2)
}
