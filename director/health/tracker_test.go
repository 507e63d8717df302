package health

import (
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

func feed(t *testing.T, tr *Tracker, results string) string {
	t.Helper()
	out := ""
	for _, r := range results {
		if tr.Observe(r == '+') {
			out += string(tr.Health[0]) // 'u' or 'd'
		} else {
			out += "."
		}
	}
	return out
}

func TestRiseAndFall(t *testing.T) {
	for _, c := range []struct {
		from    fsm.Health
		in, out string
	}{
		{fsm.HealthUp, "++--+---", ".......d"},   // fall 3: two failures, a success resets, three fail
		{fsm.HealthDown, "+-++-+++", "...u...."}, // rise 2 once the streak is unbroken
		{fsm.HealthUnknown, "+", "u"},            // unknown: a success records up
		{fsm.HealthUnknown, "---", "..d"},        // unknown counts as up: fall applies
		{fsm.HealthDown, "-----", "....."},       // down stays down
		{fsm.HealthUp, "---+++---", "..d.u...d"}, // flip, rise 2 (third + no-op), fall again
	} {
		tr := NewTracker(2, 3, c.from)
		if got := feed(t, tr, c.in); got != c.out {
			t.Errorf("from %s, %s: got %s, want %s", c.from, c.in, got, c.out)
		}
	}
}

// Alpha: an unknown server counts as down until its first check passes,
// and its first result is its verdict, either way; after that, rise and
// fall as usual.
func TestAlpha(t *testing.T) {
	for _, c := range []struct {
		from    fsm.Health
		in, out string
	}{
		{fsm.HealthUnknown, "+---", "u..d"}, // up at the first success, then fall 3
		{fsm.HealthUnknown, "-++", "d.u"},   // down at the first failure, then rise 2
		{fsm.HealthUp, "---", "..d"},        // a committed verdict: alpha changes nothing
		{fsm.HealthDown, "+", "."},
	} {
		tr := NewTracker(2, 3, c.from)
		tr.Alpha = true
		if got := feed(t, tr, c.in); got != c.out {
			t.Errorf("alpha, from %s, %s: got %s, want %s", c.from, c.in, got, c.out)
		}
	}
}
