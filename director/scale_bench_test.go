package director

import (
	"net/netip"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

// scaleState is the largest published keepalived shape (2,277 services,
// 37,205 real servers, as make bench-scale builds it) with verdicts on
// checked servers and a history of versions, as a node holds it after an
// apply and some changes.
func scaleState(tb testing.TB, services, servers, checked, versions int) *fsm.State {
	tb.Helper()
	s := fsm.NewState()
	var ops []fsm.Op
	var verdicts []fsm.VerdictChange
	n := 0
	for i := range services {
		k := scaleKey(i)
		ops = append(ops, fsm.Op{Kind: fsm.OpAddService, Service: &fsm.Service{Key: k, Scheduler: "wlc"}})
		per := servers / services
		if i < servers%services {
			per++
		}
		for range per {
			rs := &fsm.RealServer{Address: netip.AddrFrom4([4]byte{10, 201, byte(n >> 8), byte(n)}), Port: 80, Forward: fsm.DirectRoute, Weight: 1, State: fsm.Active}
			ops = append(ops, fsm.Op{Kind: fsm.OpAddServer, ServiceKey: k, Server: rs})
			if n%(servers/max(checked, 1)) == 0 && len(verdicts) < checked {
				verdicts = append(verdicts, fsm.VerdictChange{Service: k.String(), Server: netip.AddrPortFrom(rs.Address, rs.Port).String(), Health: fsm.HealthUp})
			}
			n++
		}
	}
	apply(tb, s, fsm.CmdOps, fsm.OpsPayload{Ops: ops})
	apply(tb, s, fsm.CmdSetVerdicts, fsm.SetVerdictsPayload{Verdicts: verdicts})
	for v := range versions {
		scaleEdit(tb, s, v)
	}
	return s
}

func scaleKey(i int) fsm.ServiceKey {
	return fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.AddrFrom4([4]byte{10, 200, byte(i >> 8), byte(i)}), Port: 80}
}

// scaleEdit changes one real server's weight (ipvsadm -e), on service v.
func scaleEdit(tb testing.TB, s *fsm.State, v int) {
	k := scaleKey(v % len(s.Config.Services))
	svc := s.Config.Services[k.String()]
	for _, rs := range svc.Servers {
		e := *rs
		e.Weight = rs.Weight%100 + 1
		e.State = ""
		apply(tb, s, fsm.CmdOps, fsm.OpsPayload{Ops: []fsm.Op{{Kind: fsm.OpEditServer, ServiceKey: k, Server: &e}}})
		return
	}
}

func apply(tb testing.TB, s *fsm.State, kind fsm.CommandType, p any) {
	tb.Helper()
	c, err := fsm.NewCommand(kind, 1, "bench", p)
	if err != nil {
		tb.Fatal(err)
	}
	if r, err := s.Apply(c); err != nil || r.Err != "" {
		tb.Fatalf("%v %s", err, r.Err)
	}
}

// BenchmarkSingleChangeAtScale is one weight change as every node makes
// it: the command applied to the state, the reconciler's target taken from
// it, and the pass that programs it (against a fake kernel: the kernel's
// own cost is the lab's to measure). "series" is the daemon's way
// (Targets); "afresh" builds each target from nothing (TargetOf), which
// walks all 37,205 real servers.
func BenchmarkSingleChangeAtScale(b *testing.B) {
	for _, c := range []struct {
		name   string
		target func() func(*fsm.State, uint64) Target
	}{
		{"series", func() func(*fsm.State, uint64) Target { return new(Targets).Target }},
		{"afresh", func() func(*fsm.State, uint64) Target { return TargetOf }},
	} {
		b.Run(c.name, func(b *testing.B) {
			s := scaleState(b, 2277, 37205, 2000, 50)
			target := c.target()
			r := rec(newFake())
			r.Step(target(s, 1))
			i := 0
			for b.Loop() {
				scaleEdit(b, s, 7*i)
				if rep := r.Step(target(s, uint64(i+2))); rep.Ops != 1 || rep.Failed != 0 {
					b.Fatalf("pass: %+v", rep)
				}
				i++
			}
		})
	}
}

// The same pass's parts, to see where its time goes.
func BenchmarkSingleChangeAtScaleParts(b *testing.B) {
	s := scaleState(b, 2277, 37205, 2000, 50)
	b.Run("apply", func(b *testing.B) {
		i := 0
		for b.Loop() {
			scaleEdit(b, s, 7*i)
			i++
		}
	})
	b.Run("target", func(b *testing.B) {
		for b.Loop() {
			TargetOf(s, 1)
		}
	})
	t := TargetOf(s, 1)
	b.Run("plan", func(b *testing.B) {
		for b.Loop() {
			Plan(t.Table, t.Table, nil, false)
		}
	})
}
