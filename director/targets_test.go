package director

import (
	"maps"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

// randomCommand is a command drawn by r on four services of up to five
// real servers: topology ops (valid or not), group ops among them, or
// verdicts. The fourth
// service's port moves on every era commands, so that services leave the
// model and, 200 versions later, its history.
func randomCommand(r *rand.Rand, s *fsm.State, era int) (fsm.CommandType, any) {
	keys := []fsm.ServiceKey{web, dns, fwm, {Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.11"), Port: uint16(443 + era)}}
	k := keys[r.IntN(len(keys))]
	addr := netip.AddrFrom4([4]byte{10, 1, 0, byte(20 + r.IntN(5))})
	if k == dns {
		addr = netip.AddrFrom16([16]byte{0xfd, 15: byte(20 + r.IntN(5))})
	}
	srv := &fsm.RealServer{Address: addr, Port: 8080, Forward: fsm.Masquerade, Weight: r.IntN(4)}
	if k == fwm {
		srv.Port = 0
	}
	if d := r.IntN(100); d < 25 {
		var vs []fsm.VerdictChange
		for key, svc := range s.Config.Services {
			for rk := range svc.Servers {
				if r.IntN(3) == 0 {
					vs = append(vs, fsm.VerdictChange{Service: key, Server: rk, Health: []fsm.Health{fsm.HealthUp, fsm.HealthDown}[r.IntN(2)]})
				}
			}
		}
		return fsm.CmdSetVerdicts, fsm.SetVerdictsPayload{Verdicts: vs}
	}
	if r.IntN(100) < 8 {
		return fsm.CmdOps, fsm.OpsPayload{Ops: []fsm.Op{randomGroupOp(r, k)}}
	}
	var op fsm.Op
	switch d := r.IntN(100); {
	case d < 10:
		op = addSvc(k, []string{"rr", "wlc", "mh"}[r.IntN(3)])
	case d < 15:
		op = fsm.Op{Kind: fsm.OpEditService, Service: &fsm.Service{Key: k, Scheduler: "wrr", OnFailure: []string{"", fsm.OnFailureRemove}[r.IntN(2)]}}
	case d < 20:
		op = fsm.Op{Kind: fsm.OpDeleteService, ServiceKey: k}
	case d < 22:
		op = fsm.Op{Kind: fsm.OpClear}
	case d < 50:
		op = fsm.Op{Kind: fsm.OpAddServer, ServiceKey: k, Server: srv}
	case d < 70:
		op = fsm.Op{Kind: fsm.OpEditServer, ServiceKey: k, Server: srv}
	case d < 80:
		op = fsm.Op{Kind: fsm.OpDeleteServer, ServiceKey: k, Server: srv}
	default:
		srv.State = []fsm.ServerState{fsm.Active, fsm.Suspended, fsm.Draining}[r.IntN(3)]
		op = fsm.Op{Kind: fsm.OpSetState, ServiceKey: k, Server: srv}
	}
	return fsm.CmdOps, fsm.OpsPayload{Ops: []fsm.Op{op}}
}

// randomGroupOp adds to service k's group, or removes from it, one of a
// few keys of k's family: keys that other services' groups may hold too
// (refused), or that leave with the service.
func randomGroupOp(r *rand.Rand, k fsm.ServiceKey) fsm.Op {
	var m fsm.ServiceKey
	switch {
	case k.Family() == "inet6":
		m = fsm.ServiceKey{Protocol: fsm.UDP, Address: netip.AddrFrom16([16]byte{0xfd, 15: byte(0x30 + r.IntN(3))}), Port: 53}
	case r.IntN(2) == 0:
		m = fsm.ServiceKey{Protocol: fsm.FWMark, Mark: uint32(4 + r.IntN(3))}
	default:
		m = fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.AddrFrom4([4]byte{10, 0, 0, byte(20 + r.IntN(3))}), Port: 80}
	}
	kind := []fsm.OpKind{fsm.OpGroupAdd, fsm.OpGroupRemove}[r.IntN(2)]
	return fsm.Op{Kind: kind, ServiceKey: k, Group: []fsm.ServiceKey{m}}
}

// TestTargetsSeriesIsTargetOf: a series of targets made by Targets, over
// random commands (and, now and then, the state replaced by its restored
// snapshot), equals TargetOf of each state; and every service that differs
// from the previous target's table is named in Changed.
func TestTargetsSeriesIsTargetOf(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	s := fsm.NewState()
	var g Targets
	var prev Target
	for i := range 3000 {
		typ, p := randomCommand(r, s, i/400)
		c, err := fsm.NewCommand(typ, int64(i), "test", p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Apply(c); err != nil {
			t.Fatal(err)
		}
		if r.IntN(200) == 0 {
			b, err := s.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if s, err = fsm.UnmarshalState(b); err != nil {
				t.Fatal(err)
			}
		}
		idx := uint64(i + 1)
		got, want := g.Target(s, idx), TargetOf(s, idx)
		if a, b := got.Table.Canonical(), want.Table.Canonical(); a != b {
			t.Fatalf("command %d: table\n%s\nwant\n%s", i, a, b)
		}
		if got.Index != idx || got.Version != want.Version || got.Timeouts != want.Timeouts {
			t.Fatalf("command %d: %+v, want %+v", i, got, want)
		}
		if got.Changed == nil {
			prev = got
			continue
		}
		if got.Base != prev.Index {
			t.Fatalf("command %d: base %d, want the previous target's index %d", i, got.Base, prev.Index)
		}
		for k := range maps.Keys(mergeKeys(got.Table, prev.Table)) {
			a, inNew := got.Table[k]
			b, inOld := prev.Table[k]
			same := inNew == inOld && (!inNew || Table{k: a}.Canonical() == Table{k: b}.Canonical())
			if !same && !got.Changed[k] {
				t.Fatalf("command %d: service %s differs from the previous target, not in Changed %v", i, k, got.Changed)
			}
		}
		prev = got
	}
}

func mergeKeys(a, b Table) map[string]bool {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return m
}

// TestSingleChangeBuildsOneService: at the largest published size, one
// weight change recomputes one service's entry and the pass plans one
// operation, reading nothing back; and a verdict changes the entry of the
// service it is about only.
func TestSingleChangeBuildsOneService(t *testing.T) {
	s := scaleState(t, 2277, 37205, 2000, 5)
	var g Targets
	k := newFake()
	r := rec(k)
	r.Step(g.Target(s, 1))
	if g.built != 2277 {
		t.Fatalf("first target built %d services, want 2277", g.built)
	}
	scaleEdit(t, s, 3)
	tg := g.Target(s, 2)
	if g.built != 2278 || len(tg.Changed) != 1 {
		t.Fatalf("after one weight change: %d services built in all, changed %v; want 2278, one", g.built, tg.Changed)
	}
	if rep := r.Step(tg); rep.Ops != 1 || rep.Failed != 0 || k.reads != 1 {
		t.Fatalf("pass: %+v after %d reads; want one op and the first read only", rep, k.reads)
	}
	if got, want := k.table.Fingerprint(), Desired(s).Fingerprint(); got != want {
		t.Fatalf("kernel fingerprint %s, want %s", got, want)
	}
	key := scaleKey(9).String()
	var srv string
	for rk := range s.Config.Services[key].Servers {
		srv = rk
		break
	}
	apply(t, s, fsm.CmdSetVerdicts, fsm.SetVerdictsPayload{Verdicts: []fsm.VerdictChange{{Service: key, Server: srv, Health: fsm.HealthDown}}})
	if tg := g.Target(s, 3); g.built != 2279 || !maps.Equal(tg.Changed, map[string]bool{key: true}) {
		t.Fatalf("after one verdict: %d built, changed %v; want 2279, only %s", g.built, tg.Changed, key)
	}
	if tg := g.Target(s, 3); g.built != 2279 || len(tg.Changed) != 0 {
		t.Fatalf("the same state again: %d built, changed %v; want nothing new", g.built, tg.Changed)
	}
}

// TestPassesOverATargetSeriesKeepTheKernelEqual: the reconciler fed a
// Targets series (planning only the changed services when the kernel holds
// the previous target) leaves the kernel equal to the model after every
// command, through fresh dumps, hand edits and failed passes between.
func TestPassesOverATargetSeriesKeepTheKernelEqual(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	s := fsm.NewState()
	var g Targets
	k := newFake()
	rc := rec(k)
	for i := range 3000 {
		typ, p := randomCommand(r, s, i/400)
		c, err := fsm.NewCommand(typ, int64(i), "test", p)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Apply(c); err != nil {
			t.Fatal(err)
		}
		tg := g.Target(s, uint64(i+1))
		switch d := r.IntN(100); {
		case d < 3:
			rc.StepFull(tg)
		case d < 6:
			// A failing pass: the next one dumps the kernel.
			k.readErr = nil
			for _, op := range Plan(tg.Table, k.table, rc.owned().set(), false) {
				k.failOn[op.String()] = true
			}
			rc.Step(tg)
			clear(k.failOn)
			rc.Step(tg)
		default:
			rc.Step(tg)
		}
		if got, want := k.table.Canonical(), Desired(s).Canonical(); got != want {
			t.Fatalf("command %d: kernel\n%s\nwant\n%s", i, got, want)
		}
	}
}
