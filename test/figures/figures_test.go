package figures

import "testing"

func TestLookupSaysNAForWhatNoRunMeasured(t *testing.T) {
	m := map[string]int{"droute sync false": 0, "droute sync true": 100}
	for key, want := range map[string]string{"droute sync false": "0", "droute sync true": "100", "masq sync false": "n/a"} {
		if got := Lookup(m, key); got != want {
			t.Errorf("Lookup(%q) = %q, want %q", key, got, want)
		}
	}
}

func TestMostPerTickCountsTheStamps(t *testing.T) {
	a := func(n uint64) Stamp { return Stamp{"ipvsmand@d1", n} }
	for _, c := range []struct {
		name   string
		stamps []Stamp
		most   int
		ok     bool
	}{
		{"one entry per tick", []Stamp{a(3), a(4), a(6)}, 1, true},
		{"two entries in tick 4", []Stamp{a(3), a(4), a(4), a(5)}, 2, true},
		// Entries close in time but of different ticks are not bunched:
		// the count follows the stamps, not the clock.
		{"two runners, same numbers", []Stamp{a(7), {"ipvsmand@d2", 7}}, 1, true},
		{"an unstamped entry", []Stamp{a(3), {"ipvsmand@d1", 0}}, 0, false},
		{"no entries", nil, 0, false},
	} {
		most, ok := MostPerTick(c.stamps)
		if most != c.most || ok != c.ok {
			t.Errorf("%s: MostPerTick = %d, %v; want %d, %v", c.name, most, ok, c.most, c.ok)
		}
		if got, want := Int(most, ok), map[bool]string{true: Int(c.most, true), false: NA}[c.ok]; got != want {
			t.Errorf("%s: printed %q, want %q", c.name, got, want)
		}
	}
}
