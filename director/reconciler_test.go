package director

import (
	"log/slog"
	"net/netip"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

func state(t *testing.T, ops ...fsm.Op) *fsm.State {
	t.Helper()
	s := fsm.NewState()
	for i, op := range ops {
		c, err := fsm.NewCommand(fsm.CmdOps, int64(i+1), "test", fsm.OpsPayload{Ops: []fsm.Op{op}})
		if err != nil {
			t.Fatal(err)
		}
		if r, err := s.Apply(c); err != nil || r.Err != "" {
			t.Fatalf("op %d: %v %s", i, err, r.Err)
		}
	}
	return s
}

var (
	web = fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.10"), Port: 80}
	dns = fsm.ServiceKey{Protocol: fsm.UDP, Address: netip.MustParseAddr("fd00::10"), Port: 53}
	fwm = fsm.ServiceKey{Protocol: fsm.FWMark, Mark: 3}
)

func addSvc(k fsm.ServiceKey, sched string, mod ...func(*fsm.Service)) fsm.Op {
	s := &fsm.Service{Key: k, Scheduler: sched}
	for _, m := range mod {
		m(s)
	}
	return fsm.Op{Kind: fsm.OpAddService, Service: s}
}

func addSrv(k fsm.ServiceKey, addr string, w int, state fsm.ServerState) fsm.Op {
	return fsm.Op{Kind: fsm.OpAddServer, ServiceKey: k, Server: &fsm.RealServer{Address: netip.MustParseAddr(addr), Forward: fsm.Masquerade, Port: 8080, Weight: w, State: state}}
}

func sample(t *testing.T) *fsm.State {
	return state(t,
		addSvc(web, "wlc", func(s *fsm.Service) { s.Persistence = &fsm.Persistence{Timeout: 600, Netmask: "255.255.255.0"} }),
		addSrv(web, "10.1.0.21", 3, fsm.Active),
		addSrv(web, "10.1.0.22", 2, fsm.Suspended),
		addSrv(web, "10.1.0.23", 2, fsm.Draining),
		addSvc(dns, "mh", func(s *fsm.Service) { s.Flags = []string{"mh-fallback", "mh-port"} }),
		addSrv(dns, "fd00::21", 1, fsm.Active),
		addSvc(fwm, "rr"),
	)
}

func target(st *fsm.State) Target {
	return Target{Table: Desired(st), Timeouts: st.Config.Timeouts, Version: st.Version}
}

func rec(k Kernel) *Reconciler { return &Reconciler{Kernel: k, Log: slog.New(slog.DiscardHandler)} }

func TestDesiredTable(t *testing.T) {
	st := sample(t)
	st.Verdicts[fsm.VerdictKey(web.String(), "10.1.0.21:8080")] = fsm.Verdict{Health: fsm.HealthDown}
	d := Desired(st)
	w := d[web.String()]
	if w.Flags != FlagPersistent || w.Timeout != 600 || w.Netmask != 0xFFFFFF00 {
		t.Errorf("web service = %+v", w)
	}
	for k, want := range map[string]int{"10.1.0.21:8080": 0, "10.1.0.22:8080": 0, "10.1.0.23:8080": 0} {
		if got := w.Dests[k].Weight; got != want {
			t.Errorf("%s weight %d, want %d (down, suspended, draining are quiescent)", k, got, want)
		}
	}
	delete(st.Verdicts, fsm.VerdictKey(web.String(), "10.1.0.21:8080"))
	if got := Desired(st)[web.String()].Dests["10.1.0.21:8080"].Weight; got != 3 {
		t.Errorf("healthy active weight %d, want 3", got)
	}
	if got := d[dns.String()]; got.Flags != FlagSched1|FlagSched2 || got.Netmask != 128 {
		t.Errorf("dns service = %+v", got)
	}
	if got := d[fwm.String()]; got.Netmask != 0xFFFFFFFF || got.Flags != 0 {
		t.Errorf("fwmark service = %+v", got)
	}
}

func TestReconcileConvergesAndIsIdempotent(t *testing.T) {
	st := sample(t)
	k := newFake()
	r := rec(k)
	rep := r.Step(target(st))
	if rep.Failed != 0 || rep.Ops != 7 || rep.Services != 3 {
		t.Fatalf("first pass: %+v", rep)
	}
	if got, want := k.table.Canonical(), Desired(st).Canonical(); got != want {
		t.Fatalf("kernel after first pass:\n%s\nwant:\n%s", got, want)
	}
	k.applied = nil
	if rep2 := r.StepFull(target(st)); rep2.Ops != 0 || len(k.applied) != 0 || rep2.Fingerprint != rep.TargetFingerprint || rep2.TargetFingerprint != rep.TargetFingerprint {
		t.Fatalf("second pass changed something: %+v %v", rep2, k.applied)
	}
	// A state change is planned against what the last pass left: one weight,
	// one operation, no dump of the kernel.
	reads := k.reads
	c, _ := fsm.NewCommand(fsm.CmdOps, 50, "test", fsm.OpsPayload{Ops: []fsm.Op{{Kind: fsm.OpEditServer, ServiceKey: web, Server: &fsm.RealServer{Address: netip.MustParseAddr("10.1.0.21"), Port: 8080, Forward: fsm.Masquerade, Weight: 7}}}})
	st.Apply(c)
	k.applied = nil
	rep3 := r.Step(target(st))
	if rep3.Ops != 1 || k.reads != reads || len(k.applied) != 1 {
		t.Fatalf("one weight change: %+v, %d dumps, applied %v", rep3, k.reads-reads, k.applied)
	}
	if want := Desired(st).Fingerprint(); rep3.TargetFingerprint != want || rep3.TargetFingerprint == rep.TargetFingerprint {
		t.Fatalf("incremental fingerprint %s, full %s, before %s", rep3.TargetFingerprint, want, rep.TargetFingerprint)
	}

	// Hand edits: a weight changed, a destination deleted, a foreign service added.
	s := k.table[web.String()]
	d := s.Dests["10.1.0.21:8080"]
	d.Weight = 50
	s.Dests["10.1.0.21:8080"] = d
	delete(s.Dests, "10.1.0.22:8080")
	foreign := fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: 25}
	k.table[foreign.String()] = Service{Key: foreign, Scheduler: "rr", Netmask: 0xFFFFFFFF, Dests: map[string]Dest{}}
	k.applied = nil
	r.StepFull(target(st))
	if want := []string{"update-dest tcp:10.0.0.10:80 -> 10.1.0.21:8080", "create-dest tcp:10.0.0.10:80 -> 10.1.0.22:8080"}; strings.Join(k.applied, ";") != strings.Join(want, ";") && strings.Join(k.applied, ";") != want[1]+";"+want[0] {
		t.Fatalf("repair touched %v, want exactly %v", k.applied, want)
	}
	if _, ok := k.table[foreign.String()]; !ok {
		t.Fatalf("a service the model never had was deleted without exclusive ownership")
	}
	r.Exclusive = true
	r.StepFull(target(st))
	if _, ok := k.table[foreign.String()]; ok {
		t.Fatalf("exclusive ownership left a foreign service")
	}
	r.Exclusive = false

	// Flushed by hand: everything comes back.
	k.table = Table{}
	r.StepFull(target(st))
	if got, want := k.table.Canonical(), Desired(st).Canonical(); got != want {
		t.Fatalf("after flush:\n%s\nwant:\n%s", got, want)
	}
}

func TestServiceLeavingTheModelIsDeleted(t *testing.T) {
	st := sample(t)
	k := newFake()
	r := rec(k)
	r.Step(target(st))
	c, _ := fsm.NewCommand(fsm.CmdOps, 99, "test", fsm.OpsPayload{Ops: []fsm.Op{{Kind: fsm.OpDeleteService, ServiceKey: dns}}})
	st.Apply(c)
	k.applied = nil
	r.Step(target(st))
	if len(k.applied) != 1 || k.applied[0] != "delete-service udp:[fd00::10]:53" {
		t.Fatalf("applied %v, want the one deletion", k.applied)
	}
}

func TestOneFailureDoesNotStopTheOthers(t *testing.T) {
	st := sample(t)
	k := newFake()
	bad := "create-dest tcp:10.0.0.10:80 -> 10.1.0.22:8080"
	k.failOn[bad] = true
	r := rec(k)
	rep := r.Step(target(st))
	if rep.Failed != 1 || !strings.Contains(rep.Errors[0], "injected failure") {
		t.Fatalf("report %+v", rep)
	}
	if _, ok := k.table[dns.String()].Dests["[fd00::21]:8080"]; !ok {
		t.Fatalf("operations after the failure were not applied")
	}
	delete(k.failOn, bad)
	k.applied = nil
	rep = r.Step(target(st))
	if rep.Failed != 0 || len(k.applied) != 1 || k.applied[0] != bad {
		t.Fatalf("retry pass: %+v %v", rep, k.applied)
	}
}

func TestPlanIsDeterministic(t *testing.T) {
	st := sample(t)
	a := Plan(Desired(st), Table{}, nil, false)
	for i := 0; i < 20; i++ {
		b := Plan(Desired(st), Table{}, nil, false)
		for j := range a {
			if a[j].String() != b[j].String() {
				t.Fatalf("plan order differs at %d: %s vs %s", j, a[j], b[j])
			}
		}
	}
	if a[0].Kind != CreateService {
		t.Fatalf("first op %s", a[0])
	}
}

// A kernel table rendered back as a config prints exactly like the model
// (the kernel view of `ipvsman -L --node` relies on it).
func TestTableConfigPrintsLikeTheModel(t *testing.T) {
	st := state(t,
		addSvc(web, "wlc", func(s *fsm.Service) { s.Persistence = &fsm.Persistence{Timeout: 600, Netmask: "255.255.255.0"} }),
		addSrv(web, "10.1.0.21", 3, fsm.Active),
		addSvc(dns, "mh", func(s *fsm.Service) {
			s.Flags = []string{"mh-fallback", "mh-port"}
			s.Persistence = &fsm.Persistence{Timeout: 60, Netmask: "64"}
		}),
		addSrv(dns, "fd00::21", 1, fsm.Active),
		addSvc(fwm, "sh", func(s *fsm.Service) { s.Flags = []string{"sh-port"} }),
	)
	var model, kernel strings.Builder
	if err := ipvsadm.FormatSave(&model, st.Config, true, nil); err != nil {
		t.Fatal(err)
	}
	if err := ipvsadm.FormatSave(&kernel, Desired(st).Config(), true, nil); err != nil {
		t.Fatal(err)
	}
	if model.String() != kernel.String() {
		t.Fatalf("kernel view:\n%s\nmodel:\n%s", kernel.String(), model.String())
	}
}

func TestDesiredSorryServerAndRemoval(t *testing.T) {
	st := sample(t)
	sorry := &fsm.RealServer{Address: netip.MustParseAddr("10.1.0.99"), Port: 8080, Forward: fsm.Masquerade, Weight: 1, State: fsm.Active}
	edit := func(f func(s *fsm.Service)) {
		s := st.Config.Services[web.String()].Clone()
		f(s)
		st.Config.Services[web.String()] = s
	}
	edit(func(s *fsm.Service) { s.Sorry = sorry })
	if _, ok := Desired(st)[web.String()].Dests["10.1.0.99:8080"]; ok {
		t.Fatal("sorry server in the table while 10.1.0.21 is usable")
	}
	st.Verdicts[fsm.VerdictKey(web.String(), "10.1.0.21:8080")] = fsm.Verdict{Health: fsm.HealthDown}
	d := Desired(st)[web.String()].Dests
	if len(d) != 4 || d["10.1.0.99:8080"].Weight != 1 || d["10.1.0.21:8080"].Weight != 0 {
		t.Fatalf("no usable server, quiescent: %+v", d)
	}
	edit(func(s *fsm.Service) { s.OnFailure = fsm.OnFailureRemove })
	d = Desired(st)[web.String()].Dests
	// 10.1.0.21 (down) and .22 (suspended) are removed; .23 drains at weight 0.
	if len(d) != 2 || d["10.1.0.23:8080"].Weight != 0 || d["10.1.0.99:8080"].Weight != 1 {
		t.Fatalf("removal: %+v", d)
	}
}

func TestTimeoutsOnlyWhenManagedAndDifferent(t *testing.T) {
	st := sample(t)
	k := newFake()
	r := rec(k)
	r.Step(target(st))
	for _, a := range k.applied {
		if strings.HasPrefix(a, "set-timeouts") {
			t.Fatalf("timeouts set although the model manages none: %v", k.applied)
		}
	}
	st.Config.Timeouts = &fsm.Timeouts{TCP: 901, UDP: 301}
	k.applied = nil
	r.Step(target(st))
	if len(k.applied) != 1 || k.applied[0] != "set-timeouts 901 120 301" {
		t.Fatalf("applied %v, want tcp and udp set, tcpfin kept", k.applied)
	}
	k.applied = nil
	if rep := r.Step(target(st)); rep.Ops != 0 || len(k.applied) != 0 {
		t.Fatalf("second pass: %+v %v", rep, k.applied)
	}
}

func TestTunnelDestinations(t *testing.T) {
	gue := fsm.Op{Kind: fsm.OpAddServer, ServiceKey: web, Server: &fsm.RealServer{Address: netip.MustParseAddr("fd00::21"), Forward: fsm.Tunnel, Weight: 1, TunnelType: fsm.TunnelGUE, TunnelPort: 6080, TunnelCsum: fsm.TunnelCsumOn}}
	st := state(t, addSvc(web, "rr"), gue)
	d := Desired(st)[web.String()].Dests["[fd00::21]:80"]
	if d.TunnelType != fsm.TunnelGUE || d.TunnelPort != 6080 || d.TunnelCsum != fsm.TunnelCsumOn {
		t.Fatalf("desired dest %+v", d)
	}
	nd := toNetlinkDest(d)
	var back Dest
	back = fromNetlinkDest(nd)
	back.Weight = d.Weight
	if back != d {
		t.Fatalf("netlink round trip: %+v, want %+v", back, d)
	}
	k := newFake()
	r := rec(k)
	r.Step(target(st))
	// A changed tunnel port is an update of the destination, nothing else.
	st2 := state(t, addSvc(web, "rr"), gue)
	st2.Config.Services[web.String()].Servers["[fd00::21]:80"].TunnelPort = 6081
	k.applied = nil
	r.Step(target(st2))
	if len(k.applied) != 1 || k.applied[0] != "update-dest tcp:10.0.0.10:80 -> [fd00::21]:80" {
		t.Fatalf("applied %v", k.applied)
	}
}

// Every attribute the kernel holds, changed alone, is repaired by exactly
// one operation of the right kind, and the pass after it makes none.
func TestEveryAttributeIsOneOperation(t *testing.T) {
	base := func() Table {
		return Table{web.String(): {Key: web, Scheduler: "wlc", Flags: FlagPersistent, Timeout: 300, Netmask: 0xFFFFFFFF, Dests: map[string]Dest{
			"10.1.0.21:80": {Address: netip.MustParseAddr("10.1.0.21"), Port: 80, Forward: fsm.Tunnel, Weight: 3},
		}}}
	}
	svc := func(f func(*Service)) func(Table) {
		return func(t Table) { s := t[web.String()]; f(&s); t[web.String()] = s }
	}
	dst := func(f func(*Dest)) func(Table) {
		return func(t Table) {
			d := t[web.String()].Dests["10.1.0.21:80"]
			f(&d)
			t[web.String()].Dests["10.1.0.21:80"] = d
		}
	}
	for name, c := range map[string]struct {
		change func(Table)
		want   string
	}{
		"scheduler":   {svc(func(s *Service) { s.Scheduler = "rr" }), "update-service tcp:10.0.0.10:80"},
		"flags":       {svc(func(s *Service) { s.Flags |= FlagOnePacket }), "update-service tcp:10.0.0.10:80"},
		"timeout":     {svc(func(s *Service) { s.Timeout = 60 }), "update-service tcp:10.0.0.10:80"},
		"netmask":     {svc(func(s *Service) { s.Netmask = 0xFFFFFF00 }), "update-service tcp:10.0.0.10:80"},
		"weight":      {dst(func(d *Dest) { d.Weight = 0 }), "update-dest tcp:10.0.0.10:80 -> 10.1.0.21:80"},
		"forward":     {dst(func(d *Dest) { d.Forward = fsm.DirectRoute }), "update-dest tcp:10.0.0.10:80 -> 10.1.0.21:80"},
		"upper":       {dst(func(d *Dest) { d.Upper = 100 }), "update-dest tcp:10.0.0.10:80 -> 10.1.0.21:80"},
		"lower":       {dst(func(d *Dest) { d.Lower = 10 }), "update-dest tcp:10.0.0.10:80 -> 10.1.0.21:80"},
		"tunnel type": {dst(func(d *Dest) { d.TunnelType, d.TunnelPort = fsm.TunnelGUE, 6080 }), "update-dest tcp:10.0.0.10:80 -> 10.1.0.21:80"},
		"tunnel csum": {dst(func(d *Dest) { d.TunnelCsum = fsm.TunnelCsumOn }), "update-dest tcp:10.0.0.10:80 -> 10.1.0.21:80"},
		"new dest": {func(t Table) {
			t[web.String()].Dests["10.1.0.22:80"] = Dest{Address: netip.MustParseAddr("10.1.0.22"), Port: 80, Forward: fsm.DirectRoute, Weight: 1}
		}, "create-dest tcp:10.0.0.10:80 -> 10.1.0.22:80"},
		"gone dest":    {func(t Table) { delete(t[web.String()].Dests, "10.1.0.21:80") }, "delete-dest tcp:10.0.0.10:80 -> 10.1.0.21:80"},
		"gone service": {func(t Table) { delete(t, web.String()) }, "delete-service tcp:10.0.0.10:80"},
	} {
		t.Run(name, func(t *testing.T) {
			k := newFake()
			k.table = base()
			r := rec(k)
			r.Owned = ownedOf(0, web.String()) // as if a pass had created it
			want := base()
			c.change(want)
			r.StepFull(Target{Table: want})
			if len(k.applied) != 1 || k.applied[0] != c.want {
				t.Fatalf("applied %v, want [%s]", k.applied, c.want)
			}
			if k.table.Canonical() != want.Canonical() {
				t.Fatalf("kernel:\n%s\nwant:\n%s", k.table.Canonical(), want.Canonical())
			}
			k.applied = nil
			if r.StepFull(Target{Table: want}); len(k.applied) != 0 {
				t.Fatalf("second pass applied %v", k.applied)
			}
		})
	}
}

// An exec check's weight replaces the configured one; a down verdict still
// means weight 0.
func TestDesiredVerdictWeight(t *testing.T) {
	st := sample(t)
	k := fsm.VerdictKey(web.String(), "10.1.0.21:8080")
	seven := 7
	st.Verdicts[k] = fsm.Verdict{Health: fsm.HealthUp, Weight: &seven}
	if w := Desired(st)[web.String()].Dests["10.1.0.21:8080"].Weight; w != 7 {
		t.Errorf("weight with an exec verdict of 7: %d", w)
	}
	st.Verdicts[k] = fsm.Verdict{Health: fsm.HealthDown, Weight: &seven}
	if w := Desired(st)[web.String()].Dests["10.1.0.21:8080"].Weight; w != 0 {
		t.Errorf("weight of a down server: %d", w)
	}
}

// BenchmarkStepOneServiceManyDests is the first pass of a service with
// 2,000 real servers (bench-health's shape): 2,001 operations on one
// service, whose digest must be taken once, not once per operation.
func BenchmarkStepOneServiceManyDests(b *testing.B) {
	k := fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.10"), Port: 80}
	svc := Service{Key: k, Scheduler: "rr", Dests: map[string]Dest{}}
	for i := range 2000 {
		d := Dest{Address: netip.MustParseAddr("10.0.0.21"), Port: uint16(20000 + i), Forward: fsm.Masquerade, Weight: 1}
		svc.Dests[d.Key()] = d
	}
	tgt := Target{Table: Table{k.String(): svc}}
	for b.Loop() {
		b.StopTimer()
		r := rec(newFake())
		r.Step(Target{Table: Table{}}) // the daemon's first pass, before the model has services
		b.StartTimer()
		if rep := r.Step(tgt); rep.Ops != 2001 || rep.Failed != 0 {
			b.Fatalf("report %+v", rep)
		}
	}
}
