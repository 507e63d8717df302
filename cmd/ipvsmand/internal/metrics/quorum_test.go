package metrics

import (
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

// One series per service with a quorum, and the count of those that lost
// it, from the replicated quorum states.
func TestQuorumSeries(t *testing.T) {
	src := fakeSources()
	st := fakeState()
	st.QuorumUp = map[string]bool{"tcp:10.0.0.10:80": false, "fwmark:7": true}
	src.Model = func(f func(*fsm.State, uint64)) { f(st, 42) }
	compare(t, New(src), `
# HELP ipvsman_service_quorum_up 1 while the service holds its quorum, 0 while it has lost it (fsm/quorum.go); one series per service with a quorum.
# TYPE ipvsman_service_quorum_up gauge
ipvsman_service_quorum_up{service="fwmark:7"} 1
ipvsman_service_quorum_up{service="tcp:10.0.0.10:80"} 0
# HELP ipvsman_services_quorum_lost Services that have lost their quorum.
# TYPE ipvsman_services_quorum_lost gauge
ipvsman_services_quorum_lost 1
`, "ipvsman_service_quorum_up", "ipvsman_services_quorum_lost")
	if n := count(t, New(fakeSources()), "ipvsman_service_quorum_up"); n != 0 {
		t.Errorf("no quorum configured: %d quorum series", n)
	}
}
