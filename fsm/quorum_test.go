package fsm

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"strings"
	"testing"
)

// Real servers of the quorum tests: a (weight 2), b and c (weight 1).
const (
	qa = "10.3.0.1:80"
	qb = "10.3.0.2:80"
	qc = "10.3.0.3:80"
)

// quorumState is web with a, b, c, a sorry server, quorum q and
// hysteresis h, every server without a verdict (usable).
func quorumState(t *testing.T, q, h int) *State {
	t.Helper()
	s := NewState()
	svc := addSvc(web, "wlc")
	svc.Service.Sorry = &RealServer{Address: netip.MustParseAddr("10.3.0.9"), Port: 80, Forward: DirectRoute, Weight: 1}
	for i, r := range applyLog(t, s, makeLog(t, []Op{svc,
		addSrv(web, "10.3.0.1", 80, DirectRoute, 2), addSrv(web, "10.3.0.2", 80, DirectRoute, 1), addSrv(web, "10.3.0.3", 80, DirectRoute, 1),
		{Kind: OpSetQuorum, ServiceKey: web, Quorum: &QuorumSetting{Quorum: q, Hysteresis: h}},
	})) {
		if r.Err != "" {
			t.Fatalf("setup %d: %s", i, r.Err)
		}
	}
	return s
}

// verdict applies one verdict of web's server rs.
func verdict(t *testing.T, s *State, rs string, h Health) {
	t.Helper()
	c := mustCmd(t, CmdSetVerdicts, SetVerdictsPayload{Verdicts: []VerdictChange{{Service: web.String(), Server: rs, Health: h}}})
	if r := applyLog(t, s, makeLog(t, c))[0]; r.Err != "" {
		t.Fatalf("verdict %s %s: %s", rs, h, r.Err)
	}
}

func TestQuorumRefusesBadValues(t *testing.T) {
	for _, c := range []struct {
		q, h int
		want string
	}{
		{-1, 0, "quorum -1: out of range"},
		{1, -1, "hysteresis -1: must be 0 or more"},
		{0, 1, "hysteresis 1: needs a quorum (quorum is 0)"},
		{2, 2, "hysteresis 2: must be below the quorum 2"},
		{3, 5, "hysteresis 5: must be below the quorum 3"},
		{MaxQuorum + 1, 0, fmt.Sprintf("quorum %d: out of range", MaxQuorum+1)},
	} {
		s := quorumState(t, 3, 1)
		before := s.Config
		r := applyLog(t, s, makeLog(t, Op{Kind: OpSetQuorum, ServiceKey: web, Quorum: &QuorumSetting{Quorum: c.q, Hysteresis: c.h}}))[0]
		if !strings.Contains(r.Err, "service "+web.String()+" "+c.want) || s.Config != before {
			t.Errorf("set-quorum %d/%d: error %q, config changed %v; want %q and no change", c.q, c.h, r.Err, s.Config != before, c.want)
		}
		// The same values in a whole configuration (a topology file).
		cfg := NewConfig()
		cfg.Services[web.String()] = &Service{Key: web, Scheduler: "rr", Quorum: c.q, Hysteresis: c.h}
		if err := ValidateConfig(cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("config with quorum %d/%d: %v, want %q", c.q, c.h, err, c.want)
		}
	}
	s := quorumState(t, 3, 1)
	if r := applyLog(t, s, makeLog(t, Op{Kind: OpSetQuorum, ServiceKey: web}))[0]; !strings.Contains(r.Err, "quorum: missing") {
		t.Errorf("set-quorum without a setting: %q", r.Err)
	}
}

// Quorum 3, hysteresis 1, weights 2+1+1: lost below 2 (or at 0), gained
// again at 4, and between the two the state stays what it was.
func TestQuorumHysteresis(t *testing.T) {
	s := quorumState(t, 3, 1)
	steps := []struct {
		rs   string
		h    Health
		live int
		lost bool
	}{
		{qa, HealthDown, 2, false}, // 2 >= 3-1: held, though below the quorum
		{qb, HealthDown, 1, true},  // 1 < 2: lost
		{qb, HealthUp, 2, true},    // 2 < 3+1: still lost
		{qc, HealthDown, 1, true},
		{qc, HealthUp, 2, true},
		{qa, HealthUp, 4, false}, // 4 >= 4: gained
		{qc, HealthDown, 3, false},
		{qb, HealthDown, 2, false},
		{qa, HealthDown, 0, true},
	}
	if s.QuorumLost(web.String()) || !s.QuorumUp[web.String()] {
		t.Fatalf("start at live weight 4: lost %v, state %v", s.QuorumLost(web.String()), s.QuorumUp)
	}
	for i, st := range steps {
		gen := s.VerdictGeneration(web.String())
		verdict(t, s, st.rs, st.h)
		svc := s.Config.Services[web.String()]
		if live := LiveWeight(web.String(), svc, s.Verdicts); live != st.live {
			t.Fatalf("step %d (%s %s): live weight %d, want %d", i, st.rs, st.h, live, st.live)
		}
		if got := s.QuorumLost(web.String()); got != st.lost {
			t.Fatalf("step %d (%s %s, live %d): lost %v, want %v", i, st.rs, st.h, st.live, got, st.lost)
		}
		// Every verdict bumps the generation; a flip must too, and is
		// seen by the reconciler's memo only through it.
		if s.VerdictGeneration(web.String()) == gen {
			t.Fatalf("step %d: verdict generation unchanged", i)
		}
	}
}

// Without hysteresis the service loses its quorum below the quorum and
// regains it at the quorum; 0 live weight always loses it.
func TestQuorumWithoutHysteresis(t *testing.T) {
	s := quorumState(t, 2, 0)
	verdict(t, s, qb, HealthDown) // 3
	verdict(t, s, qa, HealthDown) // 1
	if !s.QuorumLost(web.String()) {
		t.Fatal("live 1 < quorum 2: not lost")
	}
	verdict(t, s, qb, HealthUp) // 2
	if s.QuorumLost(web.String()) {
		t.Fatal("live 2 = quorum 2: still lost")
	}
}

// Suspended and draining servers are not live; a verdict's weight counts
// instead of the configured one.
func TestQuorumLiveWeight(t *testing.T) {
	s := quorumState(t, 3, 1)
	svc := s.Config.Services[web.String()]
	w := 5
	verdicts := map[string]Verdict{VerdictKey(web.String(), qb): {Health: HealthUp, Weight: &w}}
	if got := LiveWeight(web.String(), svc, verdicts); got != 2+5+1 {
		t.Errorf("with b at verdict weight 5: %d, want 8", got)
	}
	c := svc.Clone()
	c.Servers[qa].State = Suspended
	c.Servers[qc].State = Draining
	if got := LiveWeight(web.String(), c, nil); got != 1 {
		t.Errorf("a suspended, c draining: %d, want 1", got)
	}
	// A suspended server's loss is a configuration change: it settles too.
	r := applyLog(t, s, makeLog(t, Op{Kind: OpSetState, ServiceKey: web, Server: &RealServer{Address: netip.MustParseAddr("10.3.0.1"), Port: 80, State: Suspended}},
		Op{Kind: OpSetState, ServiceKey: web, Server: &RealServer{Address: netip.MustParseAddr("10.3.0.2"), Port: 80, State: Draining}}))
	if r[1].Err != "" || !s.QuorumLost(web.String()) {
		t.Fatalf("a suspended, b draining (live 1): lost %v, %+v", s.QuorumLost(web.String()), r)
	}
}

// The quorum state is in the snapshot: a node that restores it builds the
// table of the nodes that applied the log, in the hysteresis band too.
func TestQuorumSurvivesSnapshot(t *testing.T) {
	s := quorumState(t, 3, 1)
	verdict(t, s, qa, HealthDown)
	verdict(t, s, qb, HealthDown) // lost at 1
	verdict(t, s, qb, HealthUp)   // 2: in the band, lost by memory
	plain, pooled := encodeBoth(t, s)
	for name, b := range map[string][]byte{"plain": plain, "pooled": pooled} {
		r, err := UnmarshalState(b)
		if err != nil {
			t.Fatal(err)
		}
		if !r.QuorumLost(web.String()) {
			t.Errorf("%s: restored state holds the quorum; the log's lost it", name)
		}
		again, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(again, plain) {
			t.Errorf("%s: restored state encodes differently", name)
		}
		// Both go on alike.
		verdict(t, r, qa, HealthUp)
		if r.QuorumLost(web.String()) {
			t.Errorf("%s: restored state did not regain the quorum at 4", name)
		}
	}
	// The frozen copy a snapshot encodes does not move with the state.
	f := s.Frozen()
	verdict(t, s, qa, HealthUp)
	if s.QuorumLost(web.String()) || !f.QuorumLost(web.String()) {
		t.Errorf("after a up: state lost %v, frozen copy lost %v; want false, true", s.QuorumLost(web.String()), f.QuorumLost(web.String()))
	}
}

// A snapshot without quorum states (written before QuorumProtocol, or
// edited) reads as keepalived starts: held only at quorum+hysteresis.
func TestQuorumOldSnapshot(t *testing.T) {
	for _, c := range []struct {
		down []string
		lost bool
	}{
		{nil, false},         // 4 >= 4
		{[]string{qc}, true}, // 3: in the band, no memory: lost
	} {
		s := quorumState(t, 3, 1)
		for _, rs := range c.down {
			verdict(t, s, rs, HealthDown)
		}
		b, err := s.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m["quorum_up"]; !ok {
			t.Fatalf("snapshot has no quorum_up: %s", b)
		}
		delete(m, "quorum_up")
		old, _ := json.Marshal(m)
		r, err := UnmarshalState(old)
		if err != nil {
			t.Fatal(err)
		}
		if got := r.QuorumLost(web.String()); got != c.lost {
			t.Errorf("down %v: restored without states: lost %v, want %v", c.down, got, c.lost)
		}
		if _, ok := r.QuorumUp[web.String()]; !ok {
			t.Errorf("down %v: restore did not record the state", c.down)
		}
	}
	// A snapshot without any quorum service encodes as an older build's.
	s := NewState()
	applyLog(t, s, makeLog(t, addSvc(web, "rr"), addSrv(web, "10.3.0.1", 80, DirectRoute, 1)))
	if b, _ := s.Marshal(); bytes.Contains(b, []byte("quorum")) {
		t.Errorf("no quorum configured, yet the snapshot names one: %s", b)
	}
}

// -E keeps the quorum (ipvsadm cannot say one); set-quorum 0 removes it
// and its state; the history shows it; a configuration with a quorum needs
// QuorumProtocol.
func TestQuorumOps(t *testing.T) {
	s := quorumState(t, 3, 1)
	if p, what := s.Config.Needs(); p < QuorumProtocol || !strings.Contains(what, "quorum") {
		t.Errorf("Needs = %d %q, want %d for the quorum", p, what, QuorumProtocol)
	}
	if h := s.History[len(s.History)-1].Summary; !strings.Contains(h, "quorum=3 hysteresis=1") {
		t.Errorf("history summary %q does not show the quorum", h)
	}
	r := apply1(t, s, Op{Kind: OpEditService, Service: &Service{Key: web, Scheduler: "rr"}})
	if svc := s.Config.Services[web.String()]; r.Err != "" || svc.Quorum != 3 || svc.Hysteresis != 1 {
		t.Fatalf("-E: %+v, quorum %d/%d", r, svc.Quorum, svc.Hysteresis)
	}
	r = apply1(t, s, Op{Kind: OpSetQuorum, ServiceKey: web, Quorum: &QuorumSetting{}})
	if svc := s.Config.Services[web.String()]; r.Err != "" || svc.Quorum != 0 || len(s.QuorumUp) != 0 {
		t.Fatalf("set-quorum 0: %+v, quorum %d, states %v", r, svc.Quorum, s.QuorumUp)
	}
	if p, _ := s.Config.Needs(); p >= QuorumProtocol {
		t.Errorf("without a quorum Needs = %d", p)
	}
	// A service deleted takes its state along.
	apply1(t, s, Op{Kind: OpSetQuorum, ServiceKey: web, Quorum: &QuorumSetting{Quorum: 1}})
	apply1(t, s, Op{Kind: OpDeleteService, ServiceKey: web})
	if len(s.QuorumUp) != 0 {
		t.Errorf("service deleted, states %v", s.QuorumUp)
	}
}

// A quorum set on a service whose live weight is in the band starts as
// keepalived does, lost; raising it later keeps the state it has.
func TestQuorumSetStartsLikeKeepalived(t *testing.T) {
	s := quorumState(t, 2, 1) // live 4 >= 3: held
	if s.QuorumLost(web.String()) {
		t.Fatal("quorum 2/1 at live 4: lost")
	}
	apply1(t, s, Op{Kind: OpSetQuorum, ServiceKey: web, Quorum: &QuorumSetting{Quorum: 5, Hysteresis: 1}})
	if s.QuorumLost(web.String()) {
		t.Error("quorum raised to 5/1 at live 4 (>= 4): lost, but it held it and 4 is not below 4")
	}
	apply1(t, s, Op{Kind: OpSetQuorum, ServiceKey: web, Quorum: &QuorumSetting{Quorum: 6, Hysteresis: 1}})
	if !s.QuorumLost(web.String()) {
		t.Error("quorum raised to 6/1 at live 4 (< 5): held")
	}
	n := quorumState(t, 4, 1) // set at live 4 < 5: starts lost
	if !n.QuorumLost(web.String()) {
		t.Error("quorum 4/1 set at live 4: held, keepalived starts it lost")
	}
}
