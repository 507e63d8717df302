package top

import (
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

func TestRates(t *testing.T) {
	prev := ipvsadm.Stats{
		"a": {Conns: 100, InBytes: 1000, OutBytes: 4000},
		"b": {Conns: 500, InBytes: 9000, OutBytes: 9000}, // then reset
		"c": {Conns: 1},                                  // then gone
	}
	cur := ipvsadm.Stats{
		"a": {Conns: 130, InBytes: 1600, OutBytes: 10000},
		"b": {Conns: 4, InBytes: 100, OutBytes: 0},
		"d": {Conns: 9}, // new: no base
	}
	r := Rates(prev, cur, 2*time.Second)
	if got := r["a"]; got.Conns != 15 || got.InBytes != 300 || got.OutBytes != 3000 || got.Bytes() != 3300 {
		t.Errorf("a: %+v", got)
	}
	// Reset: the new value is the increase since; never negative.
	if got := r["b"]; got.Conns != 2 || got.InBytes != 50 || got.OutBytes != 0 {
		t.Errorf("b (reset): %+v", got)
	}
	if _, ok := r["c"]; ok {
		t.Error("c has a rate without a current read")
	}
	if _, ok := r["d"]; ok {
		t.Error("d has a rate without a base")
	}
	if Rates(prev, cur, 0) != nil || Rates(nil, cur, time.Second) != nil || Rates(prev, nil, time.Second) != nil {
		t.Error("no rate without two reads and elapsed time")
	}
}

func TestHumanAndCount(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{{0, "0"}, {0.5, "0.5"}, {7, "7"}, {999, "999"}, {1000, "1.0K"}, {12345, "12K"}, {999999, "1000K"}, {7.8e6, "7.8M"}, {3e9, "3.0G"}, {-1, "0"}} {
		if got := human(tc.v); got != tc.want || len(got) > 6 {
			t.Errorf("human(%v) = %q, want %q", tc.v, got, tc.want)
		}
	}
	for _, tc := range []struct {
		v    uint64
		want string
	}{{0, "0"}, {99999, "99999"}, {100000, "100K"}, {2500000, "2.5M"}} {
		if got := count(tc.v); got != tc.want {
			t.Errorf("count(%d) = %q, want %q", tc.v, got, tc.want)
		}
	}
}
