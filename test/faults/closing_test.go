package faults

import (
	"strings"
	"testing"
)

func TestClosingFiguresOfACleanRun(t *testing.T) {
	lines, code := closing([]figure{{name: "writes_lost", value: 0}, {name: "vip_overlap_ms", value: 3}, {name: "scenarios", value: 7}}, 7, 0, true)
	if code != 0 || strings.Join(lines, "\n") != "writes_lost: 0\nvip_overlap_ms: 3\nscenarios: 7" {
		t.Fatalf("code %d, lines %q", code, lines)
	}
}

// A failed run's totals are not a result: the report says the run failed
// and no figure reads as a clean number.
func TestClosingFiguresOfAFailedRun(t *testing.T) {
	lines, code := closing([]figure{{name: "writes_lost", value: 0}, {name: "vip_overlap_ms", value: 5}, {name: "scenarios", value: 7}}, 7, 1, true)
	if code != 1 {
		t.Fatalf("code %d, want 1", code)
	}
	if !strings.Contains(lines[0], "FAILED") {
		t.Fatalf("first line %q does not say the run failed", lines[0])
	}
	for _, l := range lines[1:] {
		if !strings.Contains(l, ": n/a (run failed;") {
			t.Errorf("%q reads as a clean figure beside a failed run", l)
		}
	}
}

// Under make faults a run in which no scenario ran fails, even when the
// test binary itself exited 0 (a -test.run filter that matched nothing).
func TestClosingFiguresOfAnEmptyRun(t *testing.T) {
	lines, code := closing([]figure{{name: "writes_lost", value: 0}, {name: "vip_overlap_ms", value: 0}, {name: "scenarios", value: 0}}, 0, 0, true)
	if code == 0 || !strings.Contains(lines[0], "no scenario ran") {
		t.Fatalf("code %d, lines %q; want a failure saying no scenario ran", code, lines)
	}
	// Outside make faults (a unit test run alone) an empty table is fine.
	if _, code := closing(nil, 0, 0, false); code != 0 {
		t.Fatalf("outside the suite: code %d, want 0", code)
	}
}

// Missing is what faults_lab's "lost" counts: acknowledged writes the
// converged model lacks.
func TestMissingIsWhatTheModelLacks(t *testing.T) {
	acked := []string{"10.0.0.1:80", "10.0.0.2:80", "10.0.0.3:80"}
	if got := Missing(acked, []string{"10.0.0.1:80", "10.0.0.3:80", "10.0.0.9:80"}); len(got) != 1 || got[0] != "10.0.0.2:80" {
		t.Fatalf("Missing = %q, want [10.0.0.2:80]", got)
	}
	if got := Missing(acked, acked); len(got) != 0 {
		t.Fatalf("Missing of a model holding every write = %q, want none", got)
	}
}
