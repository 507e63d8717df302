package director

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

// quorumWeb is web with real servers .21 (weight 2), .22 and .23 (weight
// 1), quorum 3 and hysteresis 1, and, when sorry, the sorry server .99.
func quorumWeb(t *testing.T, onFailure string, sorry bool) *fsm.State {
	t.Helper()
	return state(t,
		addSvc(web, "wlc", func(s *fsm.Service) {
			s.OnFailure = onFailure
			if sorry {
				s.Sorry = &fsm.RealServer{Address: netip.MustParseAddr("10.1.0.99"), Port: 8080, Forward: fsm.Masquerade, Weight: 1}
			}
		}),
		addSrv(web, "10.1.0.21", 2, fsm.Active),
		addSrv(web, "10.1.0.22", 1, fsm.Active),
		addSrv(web, "10.1.0.23", 1, fsm.Active),
		fsm.Op{Kind: fsm.OpSetQuorum, ServiceKey: web, Quorum: &fsm.QuorumSetting{Quorum: 3, Hysteresis: 1}},
	)
}

func health(t *testing.T, s *fsm.State, ip string, h fsm.Health) {
	t.Helper()
	apply(t, s, fsm.CmdSetVerdicts, fsm.SetVerdictsPayload{Verdicts: []fsm.VerdictChange{{Service: web.String(), Server: ip + ":8080", Health: h}}})
}

// weights renders the kernel's web service: "10.1.0.21:8080=2 ...", sorted.
func weights(k *fakeKernel) string {
	var out []string
	for dk, d := range k.table[web.String()].Dests {
		out = append(out, fmt.Sprintf("%s=%d", strings.TrimSuffix(dk, ":8080"), d.Weight))
	}
	slices.Sort(out)
	return strings.Join(out, " ")
}

// TestQuorumLostServesFromTheSorryServer: through the reconciler and the
// recording kernel, a service below quorum-hysteresis holds the sorry
// server and its live servers at weight 0 (quiescent) or not at all
// (on_failure remove); at quorum+hysteresis they are back and the sorry
// server leaves; between the two the table stays as it was.
func TestQuorumLostServesFromTheSorryServer(t *testing.T) {
	for _, c := range []struct {
		onFailure string
		steps     []string // the kernel after each step below
	}{
		{"", []string{
			"10.1.0.21=2 10.1.0.22=1 10.1.0.23=1",
			"10.1.0.21=0 10.1.0.22=1 10.1.0.23=1",             // live 2: held
			"10.1.0.21=0 10.1.0.22=0 10.1.0.23=0 10.1.0.99=1", // live 1: lost, .23 out
			"10.1.0.21=0 10.1.0.22=0 10.1.0.23=0 10.1.0.99=1", // live 2: still lost
			"10.1.0.21=2 10.1.0.22=1 10.1.0.23=1",             // live 4: regained
		}},
		{fsm.OnFailureRemove, []string{
			"10.1.0.21=2 10.1.0.22=1 10.1.0.23=1",
			"10.1.0.22=1 10.1.0.23=1",
			"10.1.0.99=1",
			"10.1.0.99=1",
			"10.1.0.21=2 10.1.0.22=1 10.1.0.23=1",
		}},
	} {
		t.Run("on_failure="+c.onFailure, func(t *testing.T) {
			s := quorumWeb(t, c.onFailure, true)
			var g Targets
			k := newFake()
			r := rec(k)
			steps := []func(){
				func() {},
				func() { health(t, s, "10.1.0.21", fsm.HealthDown) },
				func() { health(t, s, "10.1.0.22", fsm.HealthDown) },
				func() { health(t, s, "10.1.0.22", fsm.HealthUp) },
				func() { health(t, s, "10.1.0.21", fsm.HealthUp) },
			}
			for i, step := range steps {
				step()
				if rep := r.Step(g.Target(s, uint64(i+1))); rep.Failed != 0 {
					t.Fatalf("step %d: %+v", i, rep)
				}
				if got := weights(k); got != c.steps[i] {
					t.Fatalf("step %d: kernel %s, want %s", i, got, c.steps[i])
				}
				if got, want := k.table.Canonical(), Desired(s).Canonical(); got != want {
					t.Fatalf("step %d: the incremental target differs from Desired:\n%s\nwant\n%s", i, got, want)
				}
			}
		})
	}
}

// Without a sorry server a lost quorum leaves the table alone, as
// keepalived does: the live servers serve on rather than nothing.
func TestQuorumLostWithoutSorryServer(t *testing.T) {
	s := quorumWeb(t, "", false)
	health(t, s, "10.1.0.21", fsm.HealthDown)
	health(t, s, "10.1.0.22", fsm.HealthDown)
	if !s.QuorumLost(web.String()) {
		t.Fatal("live 1 of quorum 3-1: not lost")
	}
	k := newFake()
	rec(k).Step(target(s))
	if got, want := weights(k), "10.1.0.21=0 10.1.0.22=0 10.1.0.23=1"; got != want {
		t.Fatalf("kernel %s, want %s", got, want)
	}
}

// TestQuorumTargetsSeries: random commands with quorums and sorry servers
// set now and then, and the state replaced by its restored snapshot now
// and then: every Targets table equals Desired of the state, so a quorum
// flip always reaches the memo.
func TestQuorumTargetsSeries(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	s := fsm.NewState()
	var g Targets
	flips := 0
	for i := range 3000 {
		typ, p := randomCommand(r, s, i/400)
		if d := r.IntN(100); d < 15 {
			k := []fsm.ServiceKey{web, dns, fwm}[r.IntN(3)]
			q := r.IntN(6)
			typ, p = fsm.CmdOps, fsm.OpsPayload{Ops: []fsm.Op{{Kind: fsm.OpSetQuorum, ServiceKey: k, Quorum: &fsm.QuorumSetting{Quorum: q, Hysteresis: r.IntN(max(q, 1))}}}}
		} else if d < 20 {
			k := []fsm.ServiceKey{web, dns, fwm}[r.IntN(3)]
			if svc := s.Config.Services[k.String()]; svc != nil && svc.Sorry == nil {
				sorry := *svc
				sorry.Sorry = &fsm.RealServer{Address: netip.MustParseAddr("10.1.0.99"), Port: 8080, Forward: fsm.Masquerade, Weight: 1}
				if k == dns {
					sorry.Sorry.Address = netip.MustParseAddr("fd00::99")
				}
				if k == fwm {
					sorry.Sorry.Port = 0
				}
				typ, p = fsm.CmdOps, fsm.OpsPayload{Ops: []fsm.Op{{Kind: fsm.OpEditService, Service: &sorry}}}
			}
		}
		c, err := fsm.NewCommand(typ, int64(i), "test", p)
		if err != nil {
			t.Fatal(err)
		}
		lostBefore := s.QuorumLost(web.String())
		if _, err := s.Apply(c); err != nil {
			t.Fatal(err)
		}
		if s.QuorumLost(web.String()) != lostBefore {
			flips++
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
		if a, b := g.Target(s, uint64(i+1)).Table.Canonical(), Desired(s).Canonical(); a != b {
			t.Fatalf("command %d: target\n%s\nwant\n%s", i, a, b)
		}
	}
	if flips < 10 {
		t.Fatalf("web's quorum flipped %d times in 3000 commands: the series tests too little", flips)
	}
	t.Logf("web's quorum flipped %d times", flips)
}
