package fsm

import (
	"net/netip"
	"strings"
	"testing"
)

func TestConfigNeedsAlphaProtocol(t *testing.T) {
	key := ServiceKey{Protocol: TCP, Address: netip.MustParseAddr("10.0.0.10"), Port: 80}
	rs := &RealServer{Address: netip.MustParseAddr("10.3.0.1"), Port: 80}
	svc := &Service{Key: key, Scheduler: "rr", Servers: map[string]*RealServer{rs.Key(): rs}}
	c := NewConfig()
	c.Services[key.String()] = svc
	if need, _ := c.Needs(); need != BaseCommandProtocol {
		t.Errorf("without alpha: needs %d", need)
	}
	rs.Check = &HealthCheck{Type: "tcp", Alpha: true}
	if need, what := c.Needs(); need != AlphaProtocol || !strings.Contains(what, "real server 10.3.0.1:80") {
		t.Errorf("a server's alpha: needs %d (%s)", need, what)
	}
	if !Alpha(svc, rs) {
		t.Error("the server's own check has alpha")
	}
	rs.Check = &HealthCheck{Type: "tcp"}
	svc.Check = &HealthCheck{Type: "tcp", Alpha: true}
	if Alpha(svc, rs) {
		t.Error("the server's own check, without alpha, wins over the service's")
	}
	if need, what := c.Needs(); need != AlphaProtocol || !strings.Contains(what, "service tcp:10.0.0.10:80") {
		t.Errorf("the service's alpha: needs %d (%s)", need, what)
	}
}
