package cluster

import (
	"strings"
	"testing"
	"time"
)

func TestPilotPromotesACaughtUpNonVoterAfterItsDelay(t *testing.T) {
	p := &pilot{PromoteAfter: 3 * time.Second}
	t0 := time.Unix(1000, 0)
	view := func(applied uint64, gossip string) []pilotServer {
		return []pilotServer{
			{ID: "a", Voter: true, Self: true, Gossip: GossipAlive},
			{ID: "b", Voter: true, Gossip: GossipAlive, Applied: 1000},
			{ID: "c", Gossip: gossip, Applied: applied},
		}
	}
	steps := []struct {
		at      time.Duration
		applied uint64
		gossip  string
		want    bool
	}{
		{0, 1000, GossipAlive, false},                      // caught up: the clock starts
		{2 * time.Second, 1000, GossipAlive, false},        // not long enough
		{2500 * time.Millisecond, 700, GossipAlive, false}, // fell behind by more than MaxPromoteLag: restart
		{3 * time.Second, 1000, GossipAlive, false},
		{5 * time.Second, 1000, GossipSuspect, false}, // not alive: restart
		{6 * time.Second, 990, GossipAlive, false},    // within MaxPromoteLag
		{9 * time.Second, 990, GossipAlive, true},
	}
	for _, s := range steps {
		act, _ := p.plan(t0.Add(s.at), view(s.applied, s.gossip), 1000)
		if got := act != nil && act.Promote && act.ID == "c"; got != s.want {
			t.Fatalf("at %s (applied %d, %s): promote = %v (%+v), want %v", s.at, s.applied, s.gossip, got, act, s.want)
		}
	}
}

func TestPilotRemovesDeadMembersOnlyWhenAskedAndSafe(t *testing.T) {
	t0 := time.Unix(1000, 0)
	dead := t0.Add(-time.Minute)
	cluster := func(n int, deadIDs ...string) []pilotServer {
		var out []pilotServer
		for i := 0; i < n; i++ {
			s := pilotServer{ID: string(rune('a' + i)), Voter: true, Gossip: GossipAlive, Self: i == 0}
			for _, d := range deadIDs {
				if d == s.ID {
					s.Gossip, s.Since = GossipDead, dead
				}
			}
			out = append(out, s)
		}
		return out
	}
	for _, tc := range []struct {
		name    string
		after   time.Duration
		servers []pilotServer
		remove  string // "" = nothing
		note    string
	}{
		{"off by default", 0, cluster(5, "e"), "", ""},
		{"not dead long enough", 2 * time.Minute, cluster(5, "e"), "", ""},
		{"five voters, one dead", 30 * time.Second, cluster(5, "e"), "e", ""},
		{"three voters: would leave two", 30 * time.Second, cluster(3, "c"), "", "leave 2 voters"},
		{"five voters, three dead: no majority left", 30 * time.Second, cluster(5, "c", "d", "e"), "", "not a majority"},
		{"left is not dead", 30 * time.Second, func() []pilotServer {
			s := cluster(5)
			s[4].Gossip, s[4].Since = GossipLeft, dead
			return s
		}(), "", ""},
		{"a dead non-voter goes", 30 * time.Second, func() []pilotServer {
			s := cluster(3, "c")
			s[2].Voter = false
			return s
		}(), "c", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &pilot{PromoteAfter: time.Second, RemoveDeadAfter: tc.after}
			act, notes := p.plan(t0, tc.servers, 10)
			got := ""
			if act != nil && !act.Promote {
				got = act.ID
			}
			if got != tc.remove {
				t.Fatalf("removed %q (%+v), want %q", got, act, tc.remove)
			}
			if tc.note != "" && !strings.Contains(strings.Join(notes, "\n"), tc.note) {
				t.Fatalf("notes %q, want them to say %q", notes, tc.note)
			}
			if _, again := p.plan(t0, tc.servers, 10); tc.note != "" && len(again) != 0 {
				t.Fatalf("the same reason was noted twice: %q", again)
			}
		})
	}
}

// A member dead for over DeadAfter is reported once per episode, whether
// or not removal is on.
func TestPilotReportsLongDeadMembersOnce(t *testing.T) {
	t0 := time.Unix(1000, 0)
	p := &pilot{PromoteAfter: time.Second, DeadAfter: 30 * time.Second}
	view := func(gossip string, since time.Time) []pilotServer {
		return []pilotServer{
			{ID: "a", Voter: true, Self: true, Gossip: GossipAlive},
			{ID: "b", Voter: true, Gossip: GossipAlive},
			{ID: "c", Voter: true, Gossip: gossip, Since: since},
		}
	}
	count := func(at time.Duration, gossip string, since time.Time) int {
		act, notes := p.plan(t0.Add(at), view(gossip, since), 10)
		if act != nil {
			t.Fatalf("at %s: action %+v with removal off", at, act)
		}
		return len(notes)
	}
	if n := count(10*time.Second, GossipDead, t0); n != 0 {
		t.Fatalf("dead 10s: %d notes, want 0", n)
	}
	if n := count(31*time.Second, GossipDead, t0); n != 1 {
		t.Fatalf("dead 31s: %d notes, want 1", n)
	}
	if n := count(40*time.Second, GossipDead, t0); n != 0 {
		t.Fatalf("dead 40s: reported again (%d notes)", n)
	}
	if n := count(50*time.Second, GossipAlive, t0.Add(45*time.Second)); n != 0 {
		t.Fatalf("alive again: %d notes", n)
	}
	if n := count(100*time.Second, GossipDead, t0.Add(60*time.Second)); n != 1 {
		t.Fatalf("dead again for 40s: %d notes, want 1", n)
	}
	if n := count(101*time.Second, GossipLeft, t0.Add(60*time.Second)); n != 0 {
		t.Fatalf("left: %d notes, want 0", n)
	}
}
