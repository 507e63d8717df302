package failover

import (
	"slices"
	"testing"
	"time"
)

// at is a fixed origin plus n milliseconds.
func at(n int) time.Time {
	return time.Unix(1_700_000_000, 0).Add(time.Duration(n) * time.Millisecond)
}

func iv(from, to int) Interval {
	if to < 0 {
		return Interval{From: at(from)} // open
	}
	return Interval{at(from), at(to)}
}

func TestOverlap(t *testing.T) {
	for _, c := range []struct {
		name         string
		held, uncnt  map[string][]Interval
		from, to     int
		total, worst int // ms
	}{
		{
			name: "one holder",
			held: map[string][]Interval{"d1": {iv(0, 100)}},
			from: 0, to: 1000,
		},
		{
			name: "clean hand-over, back to back",
			held: map[string][]Interval{"d1": {iv(0, 100)}, "d2": {iv(100, 200)}},
			from: 0, to: 1000,
		},
		{
			name: "two overlaps, total and worst",
			held: map[string][]Interval{"d1": {iv(0, 100), iv(300, 400)}, "d2": {iv(90, 300), iv(350, 500)}},
			from: 0, to: 1000, total: 10 + 50, worst: 50,
		},
		{
			name: "three at once is one stretch",
			held: map[string][]Interval{"d1": {iv(0, 100)}, "d2": {iv(50, 150)}, "d3": {iv(60, 70)}},
			from: 0, to: 1000, total: 50, worst: 50,
		},
		{
			name: "stretch continues across a change of partners",
			held: map[string][]Interval{"d1": {iv(0, 100)}, "d2": {iv(50, 80)}, "d3": {iv(80, 120)}},
			from: 0, to: 1000, total: 50, worst: 50,
		},
		{
			name:  "a crashed node is not counted",
			held:  map[string][]Interval{"d1": {iv(0, 500)}, "d2": {iv(200, 600)}},
			uncnt: map[string][]Interval{"d1": {iv(150, 450)}},
			from:  0, to: 1000, total: 50, worst: 50, // 450..500
		},
		{
			name:  "still crashed (open) at the end of the window",
			held:  map[string][]Interval{"d1": {iv(0, -1)}, "d2": {iv(200, -1)}},
			uncnt: map[string][]Interval{"d1": {iv(150, -1)}},
			from:  0, to: 1000,
		},
		{
			name:  "revived while still holding: counted again",
			held:  map[string][]Interval{"d1": {iv(0, -1)}, "d2": {iv(200, 700)}},
			uncnt: map[string][]Interval{"d1": {iv(150, 600)}},
			from:  0, to: 1000, total: 100, worst: 100,
		},
		{
			name:  "uncounted spans split a presence",
			held:  map[string][]Interval{"d1": {iv(0, 1000)}, "d2": {iv(0, 1000)}},
			uncnt: map[string][]Interval{"d1": {iv(100, 200), iv(150, 180), iv(400, 500)}},
			from:  0, to: 1000, total: 800, worst: 500, // 0-100, 200-400, 500-1000
		},
		{
			name: "open intervals close at the window's end",
			held: map[string][]Interval{"d1": {iv(0, -1)}, "d2": {iv(900, -1)}},
			from: 0, to: 1000, total: 100, worst: 100,
		},
		{
			name: "window clips",
			held: map[string][]Interval{"d1": {iv(0, 500)}, "d2": {iv(0, 500)}},
			from: 100, to: 250, total: 150, worst: 150,
		},
		{
			name: "nothing",
			from: 0, to: 1000,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			total, worst := overlap(c.held, c.uncnt, at(c.from), at(c.to))
			if total != time.Duration(c.total)*time.Millisecond || worst != time.Duration(c.worst)*time.Millisecond {
				t.Fatalf("overlap = %v total, %v worst; want %dms, %dms", total, worst, c.total, c.worst)
			}
		})
	}
}

func TestHoldersAndFirstHeld(t *testing.T) {
	held := map[string][]Interval{"d1": {iv(0, 100), iv(300, -1)}, "d2": {iv(50, 200)}}
	for _, c := range []struct {
		at   int
		want []string
	}{
		{-1, nil}, {0, []string{"d1"}}, {60, []string{"d1", "d2"}}, {100, []string{"d2"}},
		{250, nil}, {300, []string{"d1"}}, {5000, []string{"d1"}},
	} {
		if got := holdersAt(held, at(c.at)); !slices.Equal(got, c.want) {
			t.Errorf("holders at %d = %v, want %v", c.at, got, c.want)
		}
	}
	for _, c := range []struct {
		after int
		want  int
		ok    bool
	}{
		{-5, 0, true}, {50, 50, true}, {100, 300, true}, {400, 400, true},
	} {
		got, ok := firstHeld(held["d1"], at(c.after))
		if ok != c.ok || (ok && !got.Equal(at(c.want))) {
			t.Errorf("firstHeld(d1, %d) = %v, %v; want %d", c.after, got, ok, c.want)
		}
	}
	if _, ok := firstHeld(held["d2"], at(200)); ok {
		t.Error("d2 never holds again after 200")
	}
}
