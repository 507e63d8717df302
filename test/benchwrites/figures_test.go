package benchwrites

import (
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

func TestRestoreInputParses(t *testing.T) {
	ops, err := ipvsadm.ParseRestore(strings.NewReader(RestoreInput(3, 300)))
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 3+900 {
		t.Fatalf("%d ops, want 903", len(ops))
	}
	cfg, err := fsm.ApplyOps(&fsm.Config{}, ops)
	if err != nil {
		t.Fatalf("the input does not apply: %v", err)
	}
	servers := 0
	for _, s := range cfg.Services {
		servers += len(s.Servers)
	}
	if len(cfg.Services) != 3 || servers != 900 {
		t.Fatalf("%d services, %d real servers; want 3 and 900", len(cfg.Services), servers)
	}
}

func TestSpreadOf(t *testing.T) {
	s := time.Second
	if _, ok := SpreadOf(nil); ok {
		t.Fatal("no rounds: want ok false")
	}
	got, _ := SpreadOf([]time.Duration{3 * s, 1 * s, 2 * s})
	if got != (Spread{Min: s, Median: 2 * s, Max: 3 * s, N: 3}) {
		t.Fatalf("odd count: %+v", got)
	}
	got, _ = SpreadOf([]time.Duration{4 * s, 1 * s})
	if got.Median != 2500*time.Millisecond {
		t.Fatalf("even count: median %v, want 2.5s", got.Median)
	}
}

func TestFigure(t *testing.T) {
	if got := Figure(73.14, true); got != "73.1" {
		t.Fatalf("Figure(73.14) = %q", got)
	}
	if got := Figure(0, false); got != "n/a" {
		t.Fatalf("Figure(not ok) = %q", got)
	}
}

func TestRouteLines(t *testing.T) {
	listing := `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  172.16.0.1:80 wlc
  -> 10.0.0.1:80                  Route   1      0          0
  -> 10.0.0.2:80                  Masq    1      0          0
`
	if got := RouteLines(listing); got != 2 {
		t.Fatalf("RouteLines = %d, want 2", got)
	}
}

func TestLeadershipIgnoresARestartedFollower(t *testing.T) {
	var l Leadership
	if _, ok := l.Changes(); ok {
		t.Fatal("nothing seen: want ok false")
	}
	l.Observe("n1", 2, "n1", 0)
	l.Observe("n2", 2, "n1", 0)
	// n2 restarts: it knows its term from disk but no leader, then hears
	// from the same leader in the same term.
	l.Observe("n2", 2, "", time.Second)
	l.Observe("n2", 2, "n1", 2*time.Second)
	if n, _ := l.Changes(); n != 0 {
		t.Fatalf("changes = %d, want 0; seen %v", n, l.Seen())
	}
	// A real election, then the old leader wins again in a later term.
	l.Observe("n3", 3, "", 3*time.Second)
	l.Observe("n3", 3, "n2", 3*time.Second)
	l.Observe("n1", 3, "n2", 3*time.Second)
	l.Observe("n1", 4, "n1", 4*time.Second)
	l.Observe("n1", 4, "n1", 4*time.Second)
	if n, _ := l.Changes(); n != 2 {
		t.Fatalf("changes = %d, want 2; seen %v", n, l.Seen())
	}
}

func TestLeadershipNeedsASecondReport(t *testing.T) {
	var l Leadership
	l.Observe("n1", 5, "n1", 0)
	l.Observe("n1", 5, "n1", 0)
	// A torn read: n2 reports a term with the leader of the one before.
	l.Observe("n2", 6, "n1", time.Second)
	l.Observe("n2", 6, "n3", time.Second)
	if n, _ := l.Changes(); n != 0 {
		t.Fatalf("changes = %d, want 0 (one report of each new pair); seen %v", n, l.Seen())
	}
	l.Observe("n3", 6, "n3", time.Second)
	if n, _ := l.Changes(); n != 1 {
		t.Fatalf("changes = %d, want 1 (term 6 led by n3, reported twice); seen %v", n, l.Seen())
	}
}
