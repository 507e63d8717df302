package fsm

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"reflect"
	"strings"
	"testing"
)

func poolOp(kind OpKind, k ServiceKey, addr string, port uint16) Op {
	return Op{Kind: kind, ServiceKey: k, Server: &RealServer{Address: netip.MustParseAddr(addr), Port: port}}
}

// poolState is sampleLog plus a checked, named, suspended masquerading
// server of web, with a verdict, and a server defined in web's pool.
func poolState(t *testing.T) *State {
	t.Helper()
	s := NewState()
	applyLog(t, s, sampleLog(t))
	spare := &RealServer{Name: "spare", Address: netip.MustParseAddr("10.3.0.20"), Port: 8081, Forward: Masquerade, Weight: 7,
		Upper: 100, Lower: 10, Check: &HealthCheck{Type: "tcp", Port: 9000}}
	for i, r := range applyLog(t, s, makeLog(t,
		Op{Kind: OpAddServer, ServiceKey: web, Server: &RealServer{Name: "web12", Address: netip.MustParseAddr("10.3.0.12"), Port: 8080,
			Forward: Masquerade, Weight: 4, State: Suspended, Check: &HealthCheck{Type: "http", Path: "/up"}}},
		mustCmd(t, CmdSetVerdicts, SetVerdictsPayload{Verdicts: []VerdictChange{{Service: web.String(), Server: "10.3.0.12:8080", Health: HealthUp}}}),
		Op{Kind: OpPoolServer, ServiceKey: web, Server: spare},
	)) {
		if r.Err != "" {
			t.Fatalf("setup entry %d: %s", i, r.Err)
		}
	}
	return s
}

func apply1(t *testing.T, s *State, op Op) Result {
	t.Helper()
	return applyLog(t, s, makeLog(t, op))[0]
}

// Unassign moves a server, whole, into the pool; assign brings it back as
// it was: name, forwarding, port, weight, thresholds, state and check.
// The verdict goes with the unassign: a pool server is not checked.
func TestUnassignAndAssignKeepTheDefinition(t *testing.T) {
	s := poolState(t)
	before := *s.Config.Services[web.String()].Servers["10.3.0.12:8080"]
	committed := s.Config
	r := apply1(t, s, poolOp(OpUnassignServer, web, "10.3.0.12", 8080))
	if r.Err != "" || !r.Changed {
		t.Fatalf("unassign: %+v", r)
	}
	svc := s.Config.Services[web.String()]
	if _, ok := svc.Servers["10.3.0.12:8080"]; ok {
		t.Fatal("unassigned server still among the real servers")
	}
	if p := svc.Pool["10.3.0.12:8080"]; p == nil || !reflect.DeepEqual(*p, before) {
		t.Fatalf("pool entry %+v, want %+v", p, before)
	}
	if _, ok := s.Verdicts[VerdictKey(web.String(), "10.3.0.12:8080")]; ok {
		t.Error("the unassigned server's verdict is kept: pool servers are not checked")
	}
	if _, ok := committed.Services[web.String()].Servers["10.3.0.12:8080"]; !ok {
		t.Error("the unassign changed the configuration committed before it")
	}
	if want := "- real server tcp:193.123.45.12:80 -> 10.3.0.12:8080 (web12) masq weight=4 suspended check="; !strings.Contains(r.Summary, want) ||
		!strings.Contains(r.Summary, "+ pool server tcp:193.123.45.12:80 -> 10.3.0.12:8080 (web12) masq weight=4 suspended") {
		t.Errorf("summary %q", r.Summary)
	}

	r = apply1(t, s, poolOp(OpAssignServer, web, "10.3.0.12", 8080))
	if r.Err != "" || !r.Changed {
		t.Fatalf("assign: %+v", r)
	}
	svc = s.Config.Services[web.String()]
	if got := svc.Servers["10.3.0.12:8080"]; got == nil || !reflect.DeepEqual(*got, before) {
		t.Fatalf("assigned back as %+v, want %+v", got, before)
	}
	if _, ok := svc.Pool["10.3.0.12:8080"]; ok {
		t.Error("assigned server still in the pool")
	}
	if len(svc.Pool) != 1 {
		t.Errorf("pool %v, want the spare alone", svc.Pool)
	}

	// The spare, never assigned, joins as defined; the last pool server
	// gone, the pool is nil, not empty: one spelling of "no pool".
	if r := apply1(t, s, poolOp(OpAssignServer, web, "10.3.0.20", 8081)); r.Err != "" {
		t.Fatalf("assign spare: %s", r.Err)
	}
	svc = s.Config.Services[web.String()]
	if got := svc.Servers["10.3.0.20:8081"]; got == nil || got.Name != "spare" || got.Weight != 7 || got.Check == nil || got.Check.Port != 9000 || got.State != Active {
		t.Fatalf("spare assigned as %+v", got)
	}
	if svc.Pool != nil {
		t.Errorf("pool after the last assign: %#v, want nil", svc.Pool)
	}
}

func TestPoolOpsRefuseWhatTheyCannotDo(t *testing.T) {
	for _, c := range []struct {
		name string
		op   Op
		want string
	}{
		{"assign an assigned server", poolOp(OpAssignServer, web, "10.3.0.12", 8080), "real server 10.3.0.12:8080 of service tcp:193.123.45.12:80: already assigned"},
		{"assign an unknown server", poolOp(OpAssignServer, web, "10.3.0.99", 8080), "real server 10.3.0.99:8080 of service tcp:193.123.45.12:80: not in the pool"},
		{"forget an assigned server", poolOp(OpForgetServer, web, "10.3.0.12", 8080), "assigned, not in the pool (ipvsman -d deletes it"},
		{"unassign a pool server", poolOp(OpUnassignServer, web, "10.3.0.20", 8081), "real server 10.3.0.20:8081 of service tcp:193.123.45.12:80: no such real server"},
		{"pool an assigned server", Op{Kind: OpPoolServer, ServiceKey: web, Server: &RealServer{Address: netip.MustParseAddr("10.3.0.12"), Port: 8080, Forward: Masquerade}},
			"real server 10.3.0.12:8080 of service tcp:193.123.45.12:80: assigned to the service"},
		{"pool a pool server again", Op{Kind: OpPoolServer, ServiceKey: web, Server: &RealServer{Address: netip.MustParseAddr("10.3.0.20"), Port: 8081, Forward: Masquerade}},
			"real server 10.3.0.20:8081 of service tcp:193.123.45.12:80: already in the pool"},
		{"-a a pool server", addSrv(web, "10.3.0.20", 8081, Masquerade, 1), "real server 10.3.0.20:8081 of service tcp:193.123.45.12:80: in the service's pool"},
		{"pool a bad weight", Op{Kind: OpPoolServer, ServiceKey: web, Server: &RealServer{Address: netip.MustParseAddr("10.3.0.30"), Weight: 70000}},
			"real server 10.3.0.30:80 of service tcp:193.123.45.12:80 weight 70000: out of range 0-65535"},
		{"pool op without a server", Op{Kind: OpAssignServer, ServiceKey: web}, "assign-server on service tcp:193.123.45.12:80: server: missing"},
		{"pool op on no service", poolOp(OpForgetServer, ServiceKey{Protocol: TCP, Address: netip.MustParseAddr("10.9.9.9"), Port: 1}, "10.3.0.20", 8081), "service tcp:10.9.9.9:1: no such service"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := poolState(t)
			before, _ := s.Marshal()
			r := apply1(t, s, c.op)
			if !strings.Contains(r.Err, c.want) {
				t.Fatalf("error %q, want %q", r.Err, c.want)
			}
			after, _ := s.Marshal()
			if !bytes.Equal(before, after) {
				t.Error("a refused op changed the state")
			}
		})
	}
}

// Forget drops the definition; -E of the service keeps the pool, as it
// keeps the real servers, and -D takes it with the service.
func TestForgetEditAndDeleteService(t *testing.T) {
	s := poolState(t)
	r := apply1(t, s, Op{Kind: OpEditService, Service: &Service{Key: web, Scheduler: "rr"}})
	if r.Err != "" {
		t.Fatal(r.Err)
	}
	if svc := s.Config.Services[web.String()]; svc.Scheduler != "rr" || svc.Pool["10.3.0.20:8081"] == nil {
		t.Fatalf("after -E: scheduler %s, pool %v", svc.Scheduler, svc.Pool)
	}
	r = apply1(t, s, poolOp(OpForgetServer, web, "10.3.0.20", 8081))
	if r.Err != "" || r.Summary != "- pool server tcp:193.123.45.12:80 -> 10.3.0.20:8081 (spare) masq weight=7 x=100 y=10 check={\"type\":\"tcp\",\"port\":9000}" {
		t.Fatalf("forget: %+v", r)
	}
	if p := s.Config.Services[web.String()].Pool; p != nil {
		t.Fatalf("pool after forget: %v", p)
	}
	// In one batch: define, edit the service, assign: the edit must not
	// lose what the batch put in the pool.
	cfg, err := ApplyOps(s.Config, []Op{
		{Kind: OpPoolServer, ServiceKey: web, Server: &RealServer{Address: netip.MustParseAddr("10.3.0.40"), Forward: DirectRoute}},
		{Kind: OpEditService, Service: &Service{Key: web, Scheduler: "wrr"}},
		poolOp(OpAssignServer, web, "10.3.0.40", 0),
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Services[web.String()].Servers["10.3.0.40:80"] == nil || s.Config.Services[web.String()].Pool != nil {
		t.Fatalf("batch: %v; committed pool %v", cfg.Services[web.String()].Servers, s.Config.Services[web.String()].Pool)
	}
	if r := apply1(t, s, poolOp(OpUnassignServer, web, "10.3.0.12", 8080)); r.Err != "" {
		t.Fatal(r.Err)
	}
	if r := apply1(t, s, Op{Kind: OpDeleteService, ServiceKey: web}); r.Err != "" || !strings.Contains(r.Summary, "- service tcp:193.123.45.12:80") {
		t.Fatalf("-D: %+v", r)
	}
}

// The pool survives both snapshot encodings, history and rollback; a
// plain snapshot of an older build, without pools, loads as before.
func TestPoolSurvivesSnapshotsAndRollback(t *testing.T) {
	s := poolState(t)
	withPool := s.Version
	apply1(t, s, poolOp(OpUnassignServer, web, "10.3.0.12", 8080))
	plain, pooled := encodeBoth(t, s)
	for name, b := range map[string][]byte{"plain": plain, "pooled": pooled} {
		r, err := UnmarshalState(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		again, _ := r.Marshal()
		if !bytes.Equal(again, plain) {
			t.Errorf("%s snapshot: the restored state encodes differently", name)
		}
		if p := r.Config.Services[web.String()].Pool; len(p) != 2 || p["10.3.0.12:8080"].Check.Path != "/up" {
			t.Errorf("%s snapshot: pool %v", name, p)
		}
	}
	if !bytes.Contains(plain, []byte(`"pool":{"10.3.0.12:8080":`)) {
		t.Error(`the plain snapshot has no "pool" key`)
	}
	r := applyLog(t, s, makeLog(t, mustCmd(t, CmdRollback, RollbackPayload{Version: withPool})))[0]
	if r.Err != "" || !strings.Contains(r.Summary, "- pool server tcp:193.123.45.12:80 -> 10.3.0.12:8080") ||
		!strings.Contains(r.Summary, "+ real server tcp:193.123.45.12:80 -> 10.3.0.12:8080") {
		t.Fatalf("rollback: %+v", r)
	}
	if p := s.Config.Services[web.String()].Pool; len(p) != 1 || p["10.3.0.20:8081"] == nil {
		t.Fatalf("pool after rollback: %v", p)
	}

	old := NewState()
	applyLog(t, old, sampleLog(t))
	b, _ := old.Marshal()
	if bytes.Contains(b, []byte(`"pool"`)) {
		t.Fatal("a state without pools encodes a pool key: older builds' snapshots would differ")
	}
	r2, err := UnmarshalState(b)
	if err != nil {
		t.Fatal(err)
	}
	if again, _ := r2.Marshal(); !bytes.Equal(again, b) {
		t.Error("an older snapshot does not load as it was")
	}
}

func TestConfigNeedsPoolProtocol(t *testing.T) {
	s := poolState(t)
	if need, what := s.Config.Needs(); need != PoolProtocol || what != "service tcp:193.123.45.12:80 pool" {
		t.Errorf("with a pool: needs %d (%s)", need, what)
	}
	apply1(t, s, poolOp(OpForgetServer, web, "10.3.0.20", 8081))
	if need, _ := s.Config.Needs(); need != BaseCommandProtocol {
		t.Errorf("without a pool: needs %d", need)
	}
	if CommandProtocol < PoolProtocol {
		t.Errorf("this build speaks protocol %d, below the pool's %d", CommandProtocol, PoolProtocol)
	}
}

// A whole configuration (apply -f) is checked pool and all: a key in both
// the pool and the real servers is refused; pool servers are normalized
// as real servers are.
func TestValidateConfigChecksThePool(t *testing.T) {
	mk := func() *Config {
		c := NewConfig()
		rs := &RealServer{Address: netip.MustParseAddr("10.3.0.1")}
		c.Services[web.String()] = &Service{Key: web, Servers: map[string]*RealServer{"x": rs},
			Pool: map[string]*RealServer{"y": {Address: netip.MustParseAddr("10.3.0.2"), Port: 9999}}}
		return c
	}
	c := mk()
	if err := ValidateConfig(c); err != nil {
		t.Fatal(err)
	}
	if p := c.Services[web.String()].Pool["10.3.0.2:80"]; p == nil || p.Forward != DirectRoute || p.State != Active {
		t.Fatalf("normalized pool: %v", c.Services[web.String()].Pool)
	}
	c = mk()
	c.Services[web.String()].Pool["y"].Port = 80
	c.Services[web.String()].Pool["z"] = &RealServer{Address: netip.MustParseAddr("10.3.0.1")}
	if err := ValidateConfig(c); err == nil || err.Error() != "pool server 10.3.0.1:80 of service tcp:193.123.45.12:80: also an assigned real server of the service" {
		t.Fatalf("a key in both: %v", err)
	}
	c = mk()
	c.Services[web.String()].Pool["y"].Weight = -1
	if err := ValidateConfig(c); err == nil || !strings.Contains(err.Error(), "pool: real server 10.3.0.2:80 of service tcp:193.123.45.12:80 weight -1") {
		t.Fatalf("a bad pool server: %v", err)
	}
	c = mk()
	c.Services[web.String()].Pool = map[string]*RealServer{}
	if err := ValidateConfig(c); err != nil || c.Services[web.String()].Pool != nil {
		t.Fatalf("an empty pool: %v, %#v", err, c.Services[web.String()].Pool)
	}
}

func TestCountTalliesPoolServers(t *testing.T) {
	s := poolState(t)
	a := s.Config
	apply1(t, s, poolOp(OpUnassignServer, web, "10.3.0.12", 8080))
	got := Count(a, s.Config)
	if got != (Tally{ServersRemoved: 1, PoolAdded: 1}) || got.String() != "removes 1 real server; adds 1 pool server" {
		t.Fatalf("Count = %+v (%s)", got, got)
	}
	b, _ := json.Marshal(Count(a, a))
	if strings.Contains(string(b), "pool") {
		t.Errorf("a tally without pool changes mentions the pool: %s", b)
	}
}
