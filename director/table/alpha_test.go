package table

import (
	"net/netip"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

// Without a verdict a server is usable, unless its check (its own, else
// its service's) has alpha; a verdict of up makes it usable either way.
func TestDesiredAlpha(t *testing.T) {
	key := fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.10"), Port: 80}
	rs := func(ip string, check *fsm.HealthCheck) *fsm.RealServer {
		return &fsm.RealServer{Address: netip.MustParseAddr(ip), Port: 80, Forward: fsm.DirectRoute, Weight: 5, State: fsm.Active, Check: check}
	}
	st := fsm.NewState()
	svc := &fsm.Service{Key: key, Scheduler: "rr", Check: &fsm.HealthCheck{Type: "tcp", Alpha: true}, Servers: map[string]*fsm.RealServer{}}
	for _, r := range []*fsm.RealServer{
		rs("10.3.0.1", nil),                           // the service's alpha, no verdict: weight 0
		rs("10.3.0.2", nil),                           // the service's alpha, verdict up: 5
		rs("10.3.0.3", &fsm.HealthCheck{Type: "tcp"}), // its own check, without alpha: 5
	} {
		svc.Servers[r.Key()] = r
	}
	st.Config.Services[key.String()] = svc
	st.Verdicts[fsm.VerdictKey(key.String(), "10.3.0.2:80")] = fsm.Verdict{Health: fsm.HealthUp}
	got := Desired(st)[key.String()].Dests
	for addr, want := range map[string]int{"10.3.0.1": 0, "10.3.0.2": 5, "10.3.0.3": 5} {
		var w = -1
		for _, d := range got {
			if d.Address.String() == addr {
				w = int(d.Weight)
			}
		}
		if w != want {
			t.Errorf("%s: weight %d, want %d", addr, w, want)
		}
	}
}
