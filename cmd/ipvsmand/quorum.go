package main

import (
	"context"
	"fmt"
	"maps"

	"github.com/ipvsman/ipvsman/cmd/ipvsmand/internal/notify"
	"github.com/ipvsman/ipvsman/fsm"
)

// watchQuorum logs every service's quorum transition, on every node (each
// builds its kernel table from it), and tells the hooks on the leader only,
// as for real servers' verdicts, so that a quorum-up or quorum-down hook
// runs once per transition in the cluster. The states are few (services
// with a quorum), so each change of the state costs a copy of them only.
func (d *daemon) watchQuorum(ctx context.Context) {
	changes := d.node.Subscribe()
	var before map[string]bool
	first := true
	for {
		var now map[string]bool
		reasons := map[string]string{}
		d.node.View(func(st *fsm.State, _ uint64) {
			now = maps.Clone(st.QuorumUp)
			for k, up := range now {
				if was, known := before[k]; first || !known || was != up {
					reasons[k] = quorumReason(k, st)
				}
			}
		})
		if !first {
			events := notify.Quorums(before, now, func(k string) string { return reasons[k] })
			for _, ev := range events {
				d.log.Info("quorum transition", "service", ev.Service, "quorum", string(ev.Kind), "why", ev.Reason)
			}
			if d.node.IsLeader() {
				for _, ev := range events {
					d.hooks.Notify(ev)
				}
			}
		}
		before, first = now, false
		select {
		case <-ctx.Done():
			return
		case <-changes:
		}
	}
}

// quorumReason says where the service at key stands: "live weight 1,
// lost below 2 (quorum 3 - hysteresis 1), gained at 4".
func quorumReason(key string, st *fsm.State) string {
	svc := st.Config.Services[key]
	if svc == nil {
		return ""
	}
	return fmt.Sprintf("live weight %d, lost below %d (quorum %d - hysteresis %d), gained at %d",
		fsm.LiveWeight(key, svc, st.Verdicts), svc.Quorum-svc.Hysteresis, svc.Quorum, svc.Hysteresis, svc.Quorum+svc.Hysteresis)
}
