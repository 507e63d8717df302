package fsm

import (
	"net/netip"
	"strings"
	"testing"
)

func TestValidateHealthCheck(t *testing.T) {
	good := []HealthCheck{
		{Type: "tcp"},
		{Type: "http", Path: "/health", Status: []int{200, 204}, Body: "^ok"},
		{Type: "https", SNI: "www.example.com", Insecure: true, IntervalMS: 1000, TimeoutMS: 500, Rise: 1, Fall: 1},
		{Type: "dns", Query: "example.com.", QType: "AAAA", Proto: "tcp", RCode: "NXDOMAIN"},
		{Type: "udp", Send: "ping", Expect: "pong"},
		{Type: "icmp"},
		{Type: "exec", Command: []string{"/bin/true"}},
	}
	for _, c := range good {
		if err := ValidateHealthCheck("check", &c); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	bad := []struct {
		c    HealthCheck
		want string
	}{
		{HealthCheck{Type: "sip"}, `check type "sip": want one of tcp,`},
		{HealthCheck{Type: "tcp", IntervalMS: 50}, "check interval_ms 50: out of range 100-3600000"},
		{HealthCheck{Type: "tcp", IntervalMS: 1000, TimeoutMS: 2000}, "check timeout_ms 2000: out of range 10-1000 (the interval)"},
		{HealthCheck{Type: "tcp", Rise: 101}, "check rise 101: out of range 1-100"},
		{HealthCheck{Type: "tcp", Fall: -1}, "check fall -1: out of range 1-100"},
		{HealthCheck{Type: "http", Status: []int{700}}, "check status 700: not an HTTP status code"},
		{HealthCheck{Type: "http", Body: "("}, `check body "(": error parsing regexp`},
		{HealthCheck{Type: "http", Path: "health"}, `check path "health": must start with /`},
		{HealthCheck{Type: "http", Method: "DELETE"}, `check method "DELETE"`},
		{HealthCheck{Type: "dns"}, "check query \"\": required for a dns check"},
		{HealthCheck{Type: "dns", Query: "x.", QType: "ANY"}, `check qtype "ANY"`},
		{HealthCheck{Type: "udp"}, `check send "": required`},
		{HealthCheck{Type: "exec"}, "check command []: required"},
	}
	for _, b := range bad {
		err := ValidateHealthCheck("check", &b.c)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%+v: %v, want %q", b.c, err, b.want)
		}
	}
	d := HealthCheck{Type: "tcp", IntervalMS: 500}.WithDefaults()
	if d.TimeoutMS != 500 || d.Rise != DefaultCheckRise || d.Fall != DefaultCheckFall {
		t.Errorf("defaults: %+v", d)
	}
}

// A check is configuration: changing only a check is a change, with a
// summary that shows it.
func TestCheckChangeIsAConfigChange(t *testing.T) {
	key := ServiceKey{Protocol: TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: 80}
	mk := func(c *HealthCheck) *Config {
		cfg := NewConfig()
		cfg.Services[key.String()] = &Service{Key: key, Scheduler: "rr", Check: c, Servers: map[string]*RealServer{}}
		return cfg
	}
	d := DiffConfig(mk(&HealthCheck{Type: "tcp"}), mk(&HealthCheck{Type: "http", Path: "/h"}))
	if len(d) != 1 || !strings.Contains(d[0], `"type":"tcp"`) || !strings.Contains(d[0], `"path":"/h"`) {
		t.Errorf("diff = %q", d)
	}
}
