package fsm

import (
	"net/netip"
	"testing"
)

func TestCountTalliesRemovedServicesWithTheirServers(t *testing.T) {
	svc := func(port uint16, servers ...string) *Service {
		s := &Service{Key: ServiceKey{Protocol: TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: port}, Scheduler: "wlc", Servers: map[string]*RealServer{}}
		for _, a := range servers {
			r := &RealServer{Address: netip.MustParseAddr(a), Port: port, Forward: DirectRoute, Weight: 1, State: Active}
			s.Servers[r.Key()] = r
		}
		return s
	}
	a := NewConfig()
	a.Services["tcp:10.0.0.1:80"] = svc(80, "10.3.0.1", "10.3.0.2")
	a.Services["tcp:10.0.0.1:443"] = svc(443, "10.3.0.1")
	b := NewConfig()
	b.Services["tcp:10.0.0.1:443"] = svc(443, "10.3.0.1", "10.3.0.9")
	got := Count(a, b)
	want := Tally{ServicesRemoved: 1, ServersRemoved: 2, ServersAdded: 1}
	if got != want {
		t.Fatalf("Count = %+v, want %+v", got, want)
	}
	if s := got.String(); s != "removes 1 service, 2 real servers; adds 1 real server" {
		t.Errorf("String = %q", s)
	}
	if s := Count(a, NewConfig()).String(); s != "removes 2 services, 3 real servers" {
		t.Errorf("emptying: %q", s)
	}
	if s := Count(a, a).String(); s != "no changes to services or VIPs" {
		t.Errorf("no change: %q", s)
	}
}
