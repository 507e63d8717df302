package faults

import (
	"strings"
	"testing"
)

// TestRunProblems: the suite's closing check names a scenario recorded
// fewer or more times than RUNS, and only those.
func TestRunProblems(t *testing.T) {
	res := map[string]*result{"a": {runs: 5}, "b": {runs: 1}, "c": {runs: 10}}
	got := runProblems([]string{"a", "b", "c"}, res, 5)
	if len(got) != 2 || !strings.Contains(got[0], `"b" recorded 1 runs, RUNS asked 5`) || !strings.Contains(got[1], `"c" recorded 10 runs`) {
		t.Fatalf("runProblems = %q", got)
	}
	if got := runProblems([]string{"a"}, res, 5); len(got) != 0 {
		t.Fatalf("runProblems of a scenario run 5 of 5 times = %q", got)
	}
}
