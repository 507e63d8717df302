package main

import "testing"

// The daemon runs two processors beyond the runtime's default, so that a
// goroutine in a long copy and the collector's worker waiting on it never
// hold every one; GOMAXPROCS in the environment is the operator's word.
func TestProcsLeaveSparesUnlessTheOperatorSetThem(t *testing.T) {
	for _, c := range []struct {
		current int
		fromEnv bool
		want    int
	}{
		{2, false, 4},
		{1, false, 3},
		{16, false, 18},
		{2, true, 2},
		{7, true, 7},
	} {
		if got := procsFor(c.current, c.fromEnv); got != c.want {
			t.Errorf("procsFor(%d, from environment %v) = %d, want %d", c.current, c.fromEnv, got, c.want)
		}
	}
}
