package figures

import (
	"testing"
	"time"
)

func TestSpreadIsMinMedianMax(t *testing.T) {
	for _, c := range []struct {
		xs          []float64
		lo, med, hi float64
		ok          bool
	}{
		{[]float64{1.2, 0.8, 1.0}, 0.8, 1.0, 1.2, true},
		{[]float64{3, 1, 4, 2}, 1, 2.5, 4, true},
		{[]float64{0.9}, 0.9, 0.9, 0.9, true},
		{nil, 0, 0, 0, false},
	} {
		lo, med, hi, ok := Spread(c.xs)
		if lo != c.lo || med != c.med || hi != c.hi || ok != c.ok {
			t.Errorf("Spread(%v) = %v %v %v %v; want %v %v %v %v", c.xs, lo, med, hi, ok, c.lo, c.med, c.hi, c.ok)
		}
	}
}

func TestEffectiveIntervalIsWindowOverChecksPerServer(t *testing.T) {
	for _, c := range []struct {
		window   time.Duration
		servers  int
		answered uint64
		want     time.Duration
	}{
		{30 * time.Second, 1000, 30000, time.Second},
		{60 * time.Second, 5000, 39240, 7645259938}, // 654 answers/s for 5,000 servers: 7.6 s
		{30 * time.Second, 1000, 0, 0},
	} {
		if got := EffectiveInterval(c.window, c.servers, c.answered); got != c.want {
			t.Errorf("EffectiveInterval(%s, %d, %d) = %s, want %s", c.window, c.servers, c.answered, got, c.want)
		}
	}
}

func TestSustainableStopsAtTheFirstRungThatFails(t *testing.T) {
	s := time.Second
	held := func(n int) Rung { return Rung{Checks: n, Interval: 1020 * time.Millisecond} }
	for _, c := range []struct {
		name  string
		rungs []Rung
		want  int
		ok    bool
	}{
		{"all held", []Rung{held(500), held(1000), held(2000)}, 2000, true},
		{"false downs at 2000", []Rung{held(500), held(1000), {Checks: 2000, FalseDowns: 3, Interval: s}}, 1000, true},
		{"interval stretched at 1000", []Rung{held(500), {Checks: 1000, Interval: 1500 * time.Millisecond}}, 500, true},
		// A rung after a failed one is not believed: the sweep stops.
		{"held again after a failure", []Rung{held(500), {Checks: 1000, FalseDowns: 1, Interval: s}, held(2000)}, 500, true},
		{"nothing answered", []Rung{{Checks: 500}}, 0, false},
		{"none held", []Rung{{Checks: 500, FalseDowns: 1, Interval: s}}, 0, false},
		{"no rung", nil, 0, false},
	} {
		got, ok := Sustainable(c.rungs, s, 0.1)
		if got != c.want || ok != c.ok {
			t.Errorf("%s: Sustainable = %d, %v; want %d, %v", c.name, got, ok, c.want, c.ok)
		}
	}
}
