package notify

import "sort"

// Quorums lists the services whose quorum state (fsm.State.QuorumUp: true
// while held) turned from before to after, in key order, with reason(key)
// as each event's reason. A service whose quorum was just set is reported
// when it starts without it, as keepalived runs quorum_down for a virtual
// server that starts below its quorum and nothing for one that starts with
// it; one whose quorum was removed, or that was deleted, is not reported.
func Quorums(before, after map[string]bool, reason func(service string) string) []Event {
	var out []Event
	for key, up := range after {
		was, known := before[key]
		if (known && was == up) || (!known && up) {
			continue
		}
		kind := QuorumDown
		if up {
			kind = QuorumUp
		}
		out = append(out, Event{Kind: kind, Service: key, Reason: reason(key)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Service < out[j].Service })
	return out
}
