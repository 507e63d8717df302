package fsm

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

var (
	web   = ServiceKey{Protocol: TCP, Address: netip.MustParseAddr("193.123.45.12"), Port: 80}
	dns   = ServiceKey{Protocol: UDP, Address: netip.MustParseAddr("2001:db8::53"), Port: 53}
	mark1 = ServiceKey{Protocol: FWMark, Mark: 1}
)

// makeLog encodes commands as the leader would, with a fixed clock.
func makeLog(t testing.TB, cmds ...any) [][]byte {
	t.Helper()
	var out [][]byte
	for i, c := range cmds {
		var cmd Command
		switch v := c.(type) {
		case Command:
			cmd = v
		case []Op:
			cmd = mustCmd(t, CmdOps, OpsPayload{Ops: v})
		case Op:
			cmd = mustCmd(t, CmdOps, OpsPayload{Ops: []Op{v}})
		default:
			t.Fatalf("makeLog: %T", c)
		}
		cmd.Time = int64(1_700_000_000_000_000_000 + i)
		if cmd.Actor == "" {
			cmd.Actor = "test"
		}
		b, err := cmd.Encode()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

func mustCmd(t testing.TB, typ CommandType, payload any) Command {
	t.Helper()
	c, err := NewCommand(typ, 0, "", payload)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func applyLog(t testing.TB, s *State, log [][]byte) []Result {
	t.Helper()
	var rs []Result
	for _, b := range log {
		c, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.Apply(c)
		if err != nil {
			t.Fatal(err)
		}
		rs = append(rs, r)
	}
	return rs
}

func addSvc(k ServiceKey, sched string) Op {
	return Op{Kind: OpAddService, Service: &Service{Key: k, Scheduler: sched}}
}

func addSrv(k ServiceKey, addr string, port uint16, fwd Forward, w int) Op {
	return Op{Kind: OpAddServer, ServiceKey: k, Server: &RealServer{Address: netip.MustParseAddr(addr), Port: port, Forward: fwd, Weight: w}}
}

func sampleLog(t testing.TB) [][]byte {
	return makeLog(t,
		addSvc(web, "wlc"),
		addSrv(web, "10.3.0.10", 8080, Masquerade, 3),
		addSrv(web, "10.3.0.11", 0, DirectRoute, 2),
		[]Op{addSvc(dns, "rr"), addSrv(dns, "2001:db8::10", 0, DirectRoute, 1)},
		Op{Kind: OpAddService, Service: &Service{Key: mark1, Scheduler: "sh", Flags: []string{"sh-port", "sh-fallback"}, Persistence: &Persistence{Netmask: "255.255.255.0"}}},
		mustCmd(t, CmdSetMember, SetMemberPayload{Member: Member{ID: "n1", RaftAddr: "127.0.0.1:7000", APIAddr: "127.0.0.1:8000"}}),
		mustCmd(t, CmdSetVerdicts, SetVerdictsPayload{Verdicts: []VerdictChange{{Service: web.String(), Server: "10.3.0.10:8080", Health: HealthDown, Reason: "connect refused"}}}),
		Op{Kind: OpEditServer, ServiceKey: web, Server: &RealServer{Address: netip.MustParseAddr("10.3.0.10"), Port: 8080, Forward: Masquerade, Weight: 5}},
		mustCmd(t, CmdZeroCounters, ZeroCountersPayload{Service: web.String()}),
	)
}

func TestEveryCommandTypeApplies(t *testing.T) {
	s := NewState()
	rs := applyLog(t, s, sampleLog(t))
	for i, r := range rs {
		if r.Err != "" {
			t.Fatalf("entry %d rejected: %s", i, r.Err)
		}
	}
	if s.Version != 6 {
		t.Fatalf("version = %d, want 6 (six configuration changes)", s.Version)
	}
	svc := s.Config.Services[web.String()]
	if got := svc.Servers["10.3.0.10:8080"].Weight; got != 5 {
		t.Errorf("edited weight = %d, want 5", got)
	}
	if got := svc.Servers["10.3.0.11:80"]; got == nil || got.Forward != DirectRoute {
		t.Errorf("real server without port did not take the service port: %+v", svc.Servers)
	}
	if got := svc.Servers["10.3.0.10:8080"].State; got != Active {
		t.Errorf("edit kept state = %q, want active", got)
	}
	if s.Config.Services[mark1.String()].Persistence.Timeout != DefaultPersistence {
		t.Errorf("persistence without timeout should default to %d", DefaultPersistence)
	}
	if v := s.Verdicts[VerdictKey(web.String(), "10.3.0.10:8080")]; v.Health != HealthDown || v.Since == 0 {
		t.Errorf("verdict = %+v", v)
	}
	if s.Members["n1"].APIAddr != "127.0.0.1:8000" {
		t.Errorf("members = %+v", s.Members)
	}
	if s.ZeroGeneration != 1 || s.ZeroService != web.String() {
		t.Errorf("zero = %d %q", s.ZeroGeneration, s.ZeroService)
	}

	// The remaining types: remove member, replace config, rollback, delete, clear.
	more := makeLog(t,
		mustCmd(t, CmdRemoveMember, RemoveMemberPayload{ID: "n1"}),
		Op{Kind: OpDeleteServer, ServiceKey: web, Server: &RealServer{Address: netip.MustParseAddr("10.3.0.10"), Port: 8080, Forward: Masquerade}},
		Op{Kind: OpDeleteService, ServiceKey: dns},
		mustCmd(t, CmdRollback, RollbackPayload{Version: 2}),
		Op{Kind: OpClear},
		mustCmd(t, CmdReplaceConfig, ReplaceConfigPayload{Config: history(s, 5), Reason: "apply classic.topo"}),
	)
	rs = applyLog(t, s, more[:1])
	if _, ok := s.Verdicts[VerdictKey(web.String(), "10.3.0.10:8080")]; !ok {
		t.Errorf("verdict of a configured server was dropped")
	}
	rs = append(rs, applyLog(t, s, more[1:])...)
	for i, r := range rs {
		if r.Err != "" {
			t.Fatalf("entry %d rejected: %s", i, r.Err)
		}
	}
	if len(s.Members) != 0 {
		t.Errorf("member not removed")
	}
	if _, ok := s.Verdicts[VerdictKey(web.String(), "10.3.0.10:8080")]; ok {
		t.Errorf("verdict of a deleted real server was kept")
	}
	if s.Version != 11 || len(s.Config.Services) != 3 {
		t.Fatalf("version %d with %d services, want 11 with 3", s.Version, len(s.Config.Services))
	}
	if !strings.HasPrefix(s.History[8].Summary, "rollback to version 2") {
		t.Errorf("rollback summary = %q", s.History[8].Summary)
	}
	if got := len(s.History[8].Config.Services); got != 1 {
		t.Errorf("rollback to v2 gave %d services, want 1", got)
	}
}

func history(s *State, v uint64) *Config { return s.entry(v).Config }

func TestDeterministicSnapshots(t *testing.T) {
	log := sampleLog(t)
	a, b := NewState(), NewState()
	applyLog(t, a, log)
	applyLog(t, b, log)
	sa, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	sb, _ := b.Marshal()
	if !bytes.Equal(sa, sb) {
		t.Fatalf("two states fed the same log differ:\n%s\n%s", sa, sb)
	}
	// A restored state must snapshot to the same bytes and keep applying identically.
	r, err := UnmarshalState(sa)
	if err != nil {
		t.Fatal(err)
	}
	sr, _ := r.Marshal()
	if !bytes.Equal(sa, sr) {
		t.Fatalf("snapshot/restore round trip differs:\n%s\n%s", sa, sr)
	}
	next := makeLog(t, addSrv(web, "10.3.0.12", 0, Tunnel, 1))
	applyLog(t, a, next)
	applyLog(t, r, next)
	sa, _ = a.Marshal()
	sr, _ = r.Marshal()
	if !bytes.Equal(sa, sr) {
		t.Fatalf("restored state diverged after one more entry")
	}
}

func TestRejectedCommandsChangeNothing(t *testing.T) {
	cases := []struct {
		name string
		op   any
		want string
	}{
		{"duplicate service", addSvc(web, "rr"), "service tcp:193.123.45.12:80: already exists"},
		{"bad scheduler name", addSvc(ServiceKey{Protocol: TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: 80}, "fast-est"), `scheduler "fast-est": want lower-case letters`},
		{"server for missing service", addSrv(ServiceKey{Protocol: TCP, Address: netip.MustParseAddr("10.9.9.9"), Port: 80}, "10.0.0.1", 80, DirectRoute, 1), "service tcp:10.9.9.9:80: no such service"},
		{"weight out of range", addSrv(web, "10.3.0.99", 0, DirectRoute, 70000), "weight 70000: out of range 0-65535"},
		{"family mismatch", addSrv(web, "2001:db8::1", 0, Masquerade, 1), "address family differs"},
		{"flag for other scheduler", Op{Kind: OpAddService, Service: &Service{Key: mark1, Scheduler: "rr", Flags: []string{"mh-port"}}}, `flag "mh-port": only valid with scheduler mh`},
		{"bad netmask", Op{Kind: OpAddService, Service: &Service{Key: ServiceKey{Protocol: FWMark, Mark: 7}, Scheduler: "rr", Persistence: &Persistence{Netmask: "255.0.255.0"}}}, "not a contiguous netmask"},
		{"port zero without persistence", addSvc(ServiceKey{Protocol: TCP, Address: netip.MustParseAddr("10.0.0.1")}, "rr"), "port 0 is only valid for a persistent service"},
		{"batch fails on its second op", []Op{addSrv(web, "10.3.0.50", 0, DirectRoute, 1), addSvc(web, "rr")}, "command 2 of 2: service tcp:193.123.45.12:80: already exists"},
		{"rollback to missing version", mustCmd(t, CmdRollback, RollbackPayload{Version: 99}), "rollback version 99: not in history (have versions 1-1)"},
		{"verdict for missing server", mustCmd(t, CmdSetVerdicts, SetVerdictsPayload{Verdicts: []VerdictChange{{Service: web.String(), Server: "1.1.1.1:80", Health: HealthUp}}}), "no such real server"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := NewState()
			applyLog(t, s, makeLog(t, addSvc(web, "wlc")))
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

func TestUnknownCommands(t *testing.T) {
	s := NewState()
	before, _ := s.Marshal()
	ign := Command{Type: 120, Ignorable: true, Payload: []byte(`{"future":true}`)}
	b, _ := ign.Encode()
	c, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if r, err := s.Apply(c); err != nil || r.Err != "" {
		t.Fatalf("ignorable unknown command: %v %q", err, r.Err)
	}
	if s.Skipped != 1 || s.Version != 0 {
		t.Fatalf("skipped=%d version=%d, want 1 and 0", s.Skipped, s.Version)
	}
	stop := Command{Type: 121, Payload: []byte(`{}`)}
	b, _ = stop.Encode()
	c, _ = Decode(b)
	_, err = s.Apply(c)
	var unknown *UnknownCommandError
	if !errors.As(err, &unknown) || unknown.Type != 121 {
		t.Fatalf("non-ignorable unknown command: err = %v, want *UnknownCommandError(121)", err)
	}
	s.Skipped = 0
	after, _ := s.Marshal()
	if !bytes.Equal(before, after) {
		t.Fatalf("unknown commands changed the model")
	}
	if _, err := Decode(nil); !errors.Is(err, ErrEmptyCommand) {
		t.Fatalf("empty entry: %v", err)
	}
	if _, err := Decode([]byte{1, '{'}); err == nil {
		t.Fatalf("truncated entry decoded")
	}
}

func TestHistory(t *testing.T) {
	s := NewState()
	applyLog(t, s, sampleLog(t))
	h := s.History
	if len(h) != 6 {
		t.Fatalf("history has %d entries, want 6", len(h))
	}
	for i, e := range h {
		if e.Version != uint64(i+1) || e.Actor != "test" || e.Time == 0 || e.Summary == "" || e.Config == nil {
			t.Fatalf("entry %d = %+v", i, e)
		}
	}
	if h[0].Summary != "+ service tcp:193.123.45.12:80 wlc" {
		t.Errorf("summary = %q", h[0].Summary)
	}
	if want := "~ real server tcp:193.123.45.12:80 -> 10.3.0.10:8080 masq weight=3 => 10.3.0.10:8080 masq weight=5"; h[5].Summary != want {
		t.Errorf("summary = %q, want %q", h[5].Summary, want)
	}
	// An old version's config must not change when later versions do.
	if got := h[1].Config.Services[web.String()].Servers["10.3.0.10:8080"].Weight; got != 3 {
		t.Errorf("version 2 weight changed to %d", got)
	}
	// A command that changes nothing makes no version.
	r := applyLog(t, s, makeLog(t, mustCmd(t, CmdReplaceConfig, ReplaceConfigPayload{Config: s.Config})))[0]
	if r.Changed || s.Version != 6 {
		t.Errorf("no-op replace made a version: %+v", r)
	}
	// The history keeps the last HistoryLimit versions.
	for i := 0; i < HistoryLimit+5; i++ {
		w := 1 + i%2
		applyLog(t, s, makeLog(t, Op{Kind: OpEditServer, ServiceKey: web, Server: &RealServer{Address: netip.MustParseAddr("10.3.0.11"), Forward: DirectRoute, Weight: w}}))
	}
	if len(s.History) != HistoryLimit || s.History[len(s.History)-1].Version != s.Version {
		t.Fatalf("history len %d last %d version %d", len(s.History), s.History[len(s.History)-1].Version, s.Version)
	}
}

func TestServiceKeyRoundTrip(t *testing.T) {
	sctp := ServiceKey{Protocol: SCTP, Address: netip.MustParseAddr("2001:db8::1"), Port: 5000}
	for _, k := range []ServiceKey{web, dns, mark1, {Protocol: FWMark, Mark: 9, IPv6: true}, sctp} {
		got, err := ParseServiceKey(k.String())
		if err != nil || got != k {
			t.Errorf("ParseServiceKey(%q) = %+v, %v", k.String(), got, err)
		}
	}
	for _, bad := range []string{"tcp", "icmp:1.2.3.4:1", "tcp:1.2.3.4", "sctp:1.2.3.4", "fwmark:x"} {
		if _, err := ParseServiceKey(bad); err == nil {
			t.Errorf("ParseServiceKey(%q) succeeded", bad)
		}
	}
}

func FuzzDecodeApply(f *testing.F) {
	for _, b := range sampleLog(f) {
		f.Add(b)
	}
	f.Add([]byte{0x81, '{', '}'})
	f.Fuzz(func(t *testing.T, b []byte) {
		s := NewState()
		applyLog(t, s, sampleLog(t)[:3])
		before, _ := s.Marshal()
		c, err := Decode(b)
		if err != nil {
			return
		}
		checkErr := s.Check(c)
		r, err := s.Apply(c)
		if (checkErr == nil) != (r.Err == "") {
			t.Fatalf("Check (%v) and Apply (%q) disagree", checkErr, r.Err)
		}
		if r.Err != "" || err != nil {
			after, _ := s.Marshal()
			if !bytes.Equal(before, after) {
				t.Fatalf("rejected command changed the state")
			}
		}
	})
}

func TestSorryServerAndOnFailure(t *testing.T) {
	s := NewState()
	sorry := &RealServer{Address: netip.MustParseAddr("10.3.0.99"), Forward: Masquerade, Port: 8080, Weight: 1}
	cfg := NewConfig()
	cfg.Services[web.String()] = &Service{Key: web, Scheduler: "wlc", OnFailure: "remove", Sorry: sorry, Servers: map[string]*RealServer{
		"10.3.0.10:8080": {Address: netip.MustParseAddr("10.3.0.10"), Port: 8080, Forward: Masquerade, Weight: 1},
	}}
	r := applyLog(t, s, makeLog(t, mustCmd(t, CmdReplaceConfig, ReplaceConfigPayload{Config: cfg})))[0]
	if r.Err != "" || !strings.Contains(r.Summary, "on-failure=remove sorry=10.3.0.99:8080 masq weight=1") {
		t.Fatalf("replace: %+v", r)
	}
	// ipvsadm -E cannot express these: it keeps them.
	r = applyLog(t, s, makeLog(t, Op{Kind: OpEditService, Service: &Service{Key: web, Scheduler: "rr"}}))[0]
	if got := s.Config.Services[web.String()]; r.Err != "" || got.Sorry == nil || got.OnFailure != "remove" {
		t.Fatalf("edit dropped sorry/on_failure: %+v %s", got, r.Err)
	}
	// A real server equal to the sorry server is refused.
	r = applyLog(t, s, makeLog(t, addSrv(web, "10.3.0.99", 8080, Masquerade, 1)))[0]
	if !strings.Contains(r.Err, "sorry server 10.3.0.99:8080: also a real server") {
		t.Fatalf("clash: %q", r.Err)
	}
	bad := cfg.Clone()
	b := bad.Services[web.String()].Clone()
	b.OnFailure = "explode"
	bad.Services[web.String()] = b
	c, _ := Decode(makeLog(t, mustCmd(t, CmdReplaceConfig, ReplaceConfigPayload{Config: bad}))[0])
	if err := s.Check(c); err == nil || !strings.Contains(err.Error(), `on_failure "explode"`) {
		t.Fatalf("bad on_failure: %v", err)
	}
}

func TestSetStateKeepsEverythingElse(t *testing.T) {
	s := NewState()
	applyLog(t, s, makeLog(t, addSvc(web, "wlc"), addSrv(web, "10.3.0.10", 8080, Masquerade, 3)))
	set := func(port uint16, st ServerState) string {
		return applyLog(t, s, makeLog(t, Op{Kind: OpSetState, ServiceKey: web, Server: &RealServer{Address: netip.MustParseAddr("10.3.0.10"), Port: port, State: st}}))[0].Err
	}
	if err := set(8080, Suspended); err != "" {
		t.Fatal(err)
	}
	r := s.Config.Services[web.String()].Servers["10.3.0.10:8080"]
	if r.State != Suspended || r.Weight != 3 || r.Forward != Masquerade {
		t.Fatalf("after suspend: %+v", r)
	}
	if !strings.Contains(s.History[len(s.History)-1].Summary, "masq weight=3 suspended") {
		t.Fatalf("summary %q", s.History[len(s.History)-1].Summary)
	}
	if err := set(80, Active); !strings.Contains(err, "real server 10.3.0.10:80 of service tcp:193.123.45.12:80: no such real server") {
		t.Fatalf("wrong port: %q", err)
	}
	if err := set(8080, "asleep"); !strings.Contains(err, `state "asleep": want active, suspended or draining`) {
		t.Fatalf("bad state: %q", err)
	}
}
