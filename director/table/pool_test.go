package table

import (
	"maps"
	"net/netip"
	"slices"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

// A service's pool servers are in no kernel table, and do not count as
// usable: a service whose assigned servers are all down gets its sorry
// server however many servers wait in its pool.
func TestDesiredLeavesPoolServersOut(t *testing.T) {
	key := fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.10"), Port: 80}
	rs := func(ip string) *fsm.RealServer {
		return &fsm.RealServer{Address: netip.MustParseAddr(ip), Port: 80, Forward: fsm.DirectRoute, Weight: 5, State: fsm.Active}
	}
	st := fsm.NewState()
	svc := &fsm.Service{Key: key, Scheduler: "rr", Servers: map[string]*fsm.RealServer{}, Pool: map[string]*fsm.RealServer{},
		Sorry: rs("10.9.0.1")}
	svc.Servers["10.3.0.1:80"] = rs("10.3.0.1")
	svc.Pool["10.3.0.2:80"] = rs("10.3.0.2")
	svc.Pool["10.3.0.3:80"] = rs("10.3.0.3")
	st.Config.Services[key.String()] = svc
	dests := func() []string {
		return slices.Sorted(maps.Keys(Desired(st)[key.String()].Dests))
	}
	if got := dests(); len(got) != 1 || got[0] != "10.3.0.1:80" {
		t.Fatalf("destinations %v, want the assigned server alone", got)
	}
	st.Verdicts[fsm.VerdictKey(key.String(), "10.3.0.1:80")] = fsm.Verdict{Health: fsm.HealthDown}
	if got := dests(); !slices.Equal(got, []string{"10.3.0.1:80", "10.9.0.1:80"}) {
		t.Fatalf("destinations with the assigned server down %v, want it at weight 0 and the sorry server", got)
	}
}
