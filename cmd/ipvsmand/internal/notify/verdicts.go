package notify

import (
	"sort"
	"strings"

	"github.com/ipvsman/ipvsman/fsm"
)

// Verdicts lists the real servers whose verdict turned up or down from
// before to after, in key order so that hooks see a stable sequence. A
// server that is new and up is reported (it came into service); one that
// was removed is not (it is gone, not down), and unknown is neither.
func Verdicts(before, after map[string]fsm.Verdict) []Event {
	var out []Event
	for key, v := range after {
		var kind Kind
		switch v.Health {
		case fsm.HealthUp:
			kind = Up
		case fsm.HealthDown:
			kind = Down
		default:
			continue
		}
		if old, ok := before[key]; ok && old.Health == v.Health {
			continue
		}
		service, server, _ := strings.Cut(key, "/")
		out = append(out, Event{Kind: kind, Service: service, Server: server, Reason: v.Reason})
	}
	sort.Slice(out, func(i, j int) bool {
		return fsm.VerdictKey(out[i].Service, out[i].Server) < fsm.VerdictKey(out[j].Service, out[j].Server)
	})
	return out
}
