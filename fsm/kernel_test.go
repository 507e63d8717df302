package fsm

import (
	"net/netip"
	"strings"
	"testing"
)

// Each thing KernelProtocol added makes a configuration need it, and a
// configuration with none of them needs no more than before.
func TestConfigNeedsKernelProtocol(t *testing.T) {
	base := func() *Config {
		c := NewConfig()
		svc := &Service{Key: web, Scheduler: "wlc", Servers: map[string]*RealServer{}}
		rs := &RealServer{Address: netip.MustParseAddr("10.3.0.1"), Port: 80, Forward: DirectRoute, Weight: 1, State: Active}
		svc.Servers[rs.Key()] = rs
		c.Services[web.String()] = svc
		return c
	}
	if need, what := base().Needs(); need != BaseCommandProtocol {
		t.Fatalf("plain configuration needs %d (%s)", need, what)
	}
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		want string
	}{
		{"sctp", func(c *Config) {
			k := ServiceKey{Protocol: SCTP, Address: netip.MustParseAddr("10.0.0.10"), Port: 5000}
			c.Services[k.String()] = &Service{Key: k, Scheduler: "rr"}
		}, ": sctp"},
		{"scheduler", func(c *Config) { c.Services[web.String()].Scheduler = "newsched" }, "scheduler newsched"},
		{"engine", func(c *Config) {
			c.Services[web.String()].Persistence = &Persistence{Timeout: 60, Engine: "sip"}
		}, "persistence engine sip"},
		{"local node", func(c *Config) {
			for _, rs := range c.Services[web.String()].Servers {
				rs.Forward = LocalNode
			}
		}, "local node"},
		{"local sorry", func(c *Config) {
			c.Services[web.String()].Sorry = &RealServer{Address: netip.MustParseAddr("127.0.0.1"), Port: 80, Forward: LocalNode}
		}, "local sorry server"},
	} {
		c := base()
		tc.mod(c)
		if need, what := c.Needs(); need != KernelProtocol || !strings.Contains(what, tc.want) {
			t.Errorf("%s: needs %d (%s), want %d (%s)", tc.name, need, what, KernelProtocol, tc.want)
		}
	}
}

// A pool server's check counts for what a configuration needs: an older
// member would drop its new fields from its copy of the pool too.
func TestPoolServersCheckCountsForNeeds(t *testing.T) {
	c := NewConfig()
	svc := &Service{Key: web, Scheduler: "wlc", Servers: map[string]*RealServer{}, Pool: map[string]*RealServer{}}
	rs := &RealServer{Address: netip.MustParseAddr("10.3.0.2"), Port: 80, Forward: DirectRoute, Weight: 1, State: Active,
		Check: &HealthCheck{Type: "smtp"}}
	svc.Pool[rs.Key()] = rs
	c.Services[web.String()] = svc
	if need, what := c.Needs(); need != ChecksProtocol || !strings.Contains(what, "pool server 10.3.0.2:80") {
		t.Fatalf("needs %d (%s), want %d for the pool server's smtp check", need, what, ChecksProtocol)
	}
}
