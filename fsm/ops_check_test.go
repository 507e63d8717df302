package fsm

import (
	"bytes"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

// checkedWeb is web with a masquerading server on 8080 and a direct-routed
// one on the service's port.
func checkedWeb(t *testing.T) *Config {
	t.Helper()
	cfg, err := ApplyOps(NewConfig(), []Op{
		addSvc(web, "wlc"),
		addSrv(web, "10.3.0.10", 8080, Masquerade, 3),
		addSrv(web, "10.3.0.11", 0, DirectRoute, 2),
	})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func setCheck(k ServiceKey, server string, port uint16, c HealthCheck) Op {
	op := Op{Kind: OpSetCheck, ServiceKey: k, Check: &c}
	if server != "" {
		op.Server = &RealServer{Address: netip.MustParseAddr(server), Port: port}
	}
	return op
}

func clearCheck(k ServiceKey, server string, port uint16) Op {
	op := setCheck(k, server, port, HealthCheck{})
	op.Kind, op.Check = OpClearCheck, nil
	return op
}

func TestCheckOps(t *testing.T) {
	base := checkedWeb(t)
	before := base.Services[web.String()]
	httpCheck := HealthCheck{Type: "http", IntervalMS: 1000, TimeoutMS: 500, Path: "/health", Status: []int{200, 204}}
	tcpCheck := HealthCheck{Type: "tcp", Port: 9000}

	op := setCheck(web, "", 0, httpCheck)
	cfg, err := ApplyOps(base, []Op{op, setCheck(web, "10.3.0.10", 8080, tcpCheck)})
	if err != nil {
		t.Fatal(err)
	}
	svc := cfg.Services[web.String()]
	if svc.Check == nil || !reflect.DeepEqual(*svc.Check, httpCheck) {
		t.Errorf("service check = %+v, want %+v", svc.Check, httpCheck)
	}
	if r := svc.Servers["10.3.0.10:8080"]; r.Check == nil || !reflect.DeepEqual(*r.Check, tcpCheck) ||
		r.Weight != 3 || r.Forward != Masquerade || r.State != Active {
		t.Errorf("server 10.3.0.10:8080 = %+v check %+v", r, r.Check)
	}
	if r := svc.Servers["10.3.0.11:80"]; r.Check != nil {
		t.Errorf("server 10.3.0.11:80 got a check of its own: %+v", r.Check)
	}
	if base.Services[web.String()] != before || before.Check != nil || before.Servers["10.3.0.10:8080"].Check != nil {
		t.Fatal("ApplyOps changed its input")
	}
	// The config keeps a copy, not the op's check.
	op.Check.Status[0], op.Check.Path = 500, "/x"
	if svc.Check.Status[0] != 200 || svc.Check.Path != "/health" {
		t.Errorf("config shares memory with the op: %+v", svc.Check)
	}

	// Port 0 names the server on the service's port, as for set-state.
	cfg2, err := ApplyOps(cfg, []Op{setCheck(web, "10.3.0.11", 0, HealthCheck{Type: "icmp"})})
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg2.Services[web.String()].Servers["10.3.0.11:80"]; r.Check == nil || r.Check.Type != "icmp" {
		t.Errorf("10.3.0.11:80 check = %+v", r.Check)
	}
	if cfg.Services[web.String()].Servers["10.3.0.11:80"].Check != nil {
		t.Fatal("ApplyOps changed its input")
	}

	// What ipvsadm cannot say, its commands keep.
	cfg3, err := ApplyOps(cfg, []Op{
		{Kind: OpEditService, Service: &Service{Key: web, Scheduler: "rr"}},
		{Kind: OpEditServer, ServiceKey: web, Server: &RealServer{Address: netip.MustParseAddr("10.3.0.10"), Port: 8080, Forward: Masquerade, Weight: 7}},
		{Kind: OpSetState, ServiceKey: web, Server: &RealServer{Address: netip.MustParseAddr("10.3.0.10"), Port: 8080, State: Draining}},
	})
	if err != nil {
		t.Fatal(err)
	}
	svc3 := cfg3.Services[web.String()]
	if svc3.Scheduler != "rr" || svc3.Check == nil || svc3.Check.Path != "/health" {
		t.Errorf("-E dropped the service check: %+v", svc3)
	}
	if r := svc3.Servers["10.3.0.10:8080"]; r.Weight != 7 || r.State != Draining || r.Check == nil || !reflect.DeepEqual(*r.Check, tcpCheck) {
		t.Errorf("-e or set-state dropped the server check: %+v %+v", r, r.Check)
	}

	// Clearing a server's check puts it back on the service's; clearing the
	// service's leaves servers with their own.
	cfg4, err := ApplyOps(cfg, []Op{clearCheck(web, "10.3.0.10", 8080)})
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg4.Services[web.String()]; s.Servers["10.3.0.10:8080"].Check != nil || s.Check == nil {
		t.Errorf("after clearing the server's: service %+v server %+v", s.Check, s.Servers["10.3.0.10:8080"].Check)
	}
	cfg5, err := ApplyOps(cfg, []Op{clearCheck(web, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	if s := cfg5.Services[web.String()]; s.Check != nil || s.Servers["10.3.0.10:8080"].Check == nil {
		t.Errorf("after clearing the service's: service %+v server %+v", s.Check, s.Servers["10.3.0.10:8080"].Check)
	}
	if err := ValidateConfig(cfg3); err != nil {
		t.Errorf("result fails ValidateConfig: %v", err)
	}
}

// TestServerCheckThroughTheLog applies a per-server check as a cluster
// does: encoded, decoded, applied, versioned.
func TestServerCheckThroughTheLog(t *testing.T) {
	s := NewState()
	applyLog(t, s, makeLog(t, addSvc(web, "wlc"), addSrv(web, "10.3.0.10", 8080, Masquerade, 3)))
	want := HealthCheck{Type: "dns", Query: "example.com.", QType: "AAAA", Port: 53, Rise: 1, Fall: 5}
	rs := applyLog(t, s, makeLog(t, setCheck(web, "10.3.0.10", 8080, want), clearCheck(web, "10.3.0.10", 8080)))
	if rs[0].Err != "" || !rs[0].Changed || rs[1].Err != "" || !rs[1].Changed {
		t.Fatalf("results %+v", rs)
	}
	got := s.History[len(s.History)-2].Config.Services[web.String()].Servers["10.3.0.10:8080"].Check
	if got == nil || !reflect.DeepEqual(*got, want) {
		t.Errorf("check after the log = %+v, want %+v", got, want)
	}
	if s.Config.Services[web.String()].Servers["10.3.0.10:8080"].Check != nil {
		t.Errorf("clear-check left %+v", s.Config.Services[web.String()].Servers["10.3.0.10:8080"].Check)
	}
}

func TestRejectedCheckOpsChangeNothing(t *testing.T) {
	other := ServiceKey{Protocol: TCP, Address: netip.MustParseAddr("10.9.9.9"), Port: 80}
	noCheck := Op{Kind: OpSetCheck, ServiceKey: web}
	badServerCheck := addSrv(web, "10.3.0.12", 0, DirectRoute, 1)
	badServerCheck.Server.Check = &HealthCheck{Type: "http", Path: "health"}
	cases := []struct {
		name string
		op   any
		want string
	}{
		{"unknown type", setCheck(web, "", 0, HealthCheck{Type: "sip"}), `service tcp:193.123.45.12:80 check type "sip": want one of`},
		{"interval", setCheck(web, "", 0, HealthCheck{Type: "tcp", IntervalMS: 50}), "service tcp:193.123.45.12:80 check interval_ms 50: out of range"},
		{"timeout above interval", setCheck(web, "10.3.0.10", 8080, HealthCheck{Type: "tcp", IntervalMS: 1000, TimeoutMS: 1500}),
			"real server 10.3.0.10:8080 of service tcp:193.123.45.12:80 check timeout_ms 1500: out of range 10-1000"},
		{"dns without query", setCheck(web, "10.3.0.11", 0, HealthCheck{Type: "dns"}), `real server 10.3.0.11:80 of service tcp:193.123.45.12:80 check query "": required`},
		{"missing check", noCheck, "set-check on service tcp:193.123.45.12:80: check: missing"},
		{"no such service", setCheck(other, "", 0, HealthCheck{Type: "tcp"}), "service tcp:10.9.9.9:80: no such service"},
		{"no such server", setCheck(web, "10.3.0.10", 0, HealthCheck{Type: "tcp"}), "real server 10.3.0.10:80 of service tcp:193.123.45.12:80: no such real server"},
		{"clear without a check", clearCheck(web, "", 0), "service tcp:193.123.45.12:80: has no check to clear"},
		{"clear a server's without one", clearCheck(web, "10.3.0.11", 80), "real server 10.3.0.11:80 of service tcp:193.123.45.12:80: has no check of its own to clear"},
		{"batch fails on its second op", []Op{setCheck(web, "", 0, HealthCheck{Type: "tcp"}), setCheck(web, "10.3.0.10", 8080, HealthCheck{Type: "udp"})},
			`command 2 of 2: real server 10.3.0.10:8080 of service tcp:193.123.45.12:80 check send "": required`},
		{"add-server with a bad check", badServerCheck, `real server 10.3.0.12:80 of service tcp:193.123.45.12:80 check path "health": must start with /`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := NewState()
			applyLog(t, s, makeLog(t, addSvc(web, "wlc"), addSrv(web, "10.3.0.10", 8080, Masquerade, 3), addSrv(web, "10.3.0.11", 0, DirectRoute, 2)))
			before, _ := s.Marshal()
			log := makeLog(t, tc.op)
			c, _ := Decode(log[0])
			if err := s.Check(c); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check error = %v, want it to contain %q", err, tc.want)
			}
			r := applyLog(t, s, log)[0]
			if !strings.Contains(r.Err, tc.want) {
				t.Fatalf("Apply error = %q, want it to contain %q", r.Err, tc.want)
			}
			after, _ := s.Marshal()
			if !bytes.Equal(before, after) {
				t.Fatalf("rejected command changed the state")
			}
		})
	}
}
