package fsm

import (
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// TestPruneKeepsExactlyTheConfiguredServersVerdicts drives a state through
// random commands, with verdicts set on every configured real server after
// each, and checks after every command that the verdicts left are exactly
// those of configured servers (what a scan of every verdict gives), and
// that a service's VerdictGeneration moved whenever its verdicts did.
func TestPruneKeepsExactlyTheConfiguredServersVerdicts(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	s := NewState()
	for i := range 2000 {
		ops, _, _ := randomCall(r, s.Config, 1+r.IntN(5))
		before := maps.Clone(s.Verdicts)
		gens := map[string]uint64{}
		for k := range before {
			svc, _, _ := strings.Cut(k, "/")
			gens[svc] = s.VerdictGeneration(svc)
		}
		if _, err := s.Apply(mustCmd(t, CmdOps, OpsPayload{Ops: ops})); err != nil {
			t.Fatal(err)
		}
		want := map[string]Verdict{}
		for k, v := range before {
			svc, srv, _ := strings.Cut(k, "/")
			if sv, ok := s.Config.Services[svc]; ok && sv.Servers[srv] != nil {
				want[k] = v
			}
		}
		if !maps.Equal(s.Verdicts, want) {
			t.Fatalf("command %d (%v): verdicts %v, want %v", i, ops, slices.Sorted(maps.Keys(s.Verdicts)), slices.Sorted(maps.Keys(want)))
		}
		for k := range before {
			if _, kept := s.Verdicts[k]; kept {
				continue
			}
			svc, _, _ := strings.Cut(k, "/")
			if s.VerdictGeneration(svc) == gens[svc] {
				t.Fatalf("command %d: verdict %s dropped, generation of %s unchanged", i, k, svc)
			}
		}
		// A verdict on every configured server, for the next command.
		var vs []VerdictChange
		for key, svc := range s.Config.Services {
			for rk := range svc.Servers {
				vs = append(vs, VerdictChange{Service: key, Server: rk, Health: []Health{HealthUp, HealthDown}[r.IntN(2)]})
			}
		}
		if len(vs) == 0 {
			continue
		}
		gen := s.VerdictGeneration(vs[0].Service)
		if res, err := s.Apply(mustCmd(t, CmdSetVerdicts, SetVerdictsPayload{Verdicts: vs})); err != nil || res.Err != "" {
			t.Fatalf("verdicts: %v %s", err, res.Err)
		}
		if s.VerdictGeneration(vs[0].Service) == gen {
			t.Fatalf("command %d: verdicts of %s set, generation unchanged", i, vs[0].Service)
		}
	}
}
