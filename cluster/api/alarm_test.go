package api

import (
	"strings"
	"testing"
)

func readAt(id string, index uint64, fp string, drift ...string) NodeView {
	return NodeView{ID: id, Status: &NodeStatus{Director: &Report{Index: index, KernelIndex: index, Fingerprint: fp, TargetFingerprint: "target", Drift: drift, Drifted: len(drift)}}}
}

func TestTableAlarmComparesNodesAtOneAppliedIndex(t *testing.T) {
	// A health verdict moved d3 on (index 41) without a new configuration
	// version: its table differs and that is no alarm.
	storm := ClusterStatus{Nodes: []NodeView{readAt("d1", 40, "aa"), readAt("d2", 40, "aa"), readAt("d3", 41, "bb")}}
	if a := TableAlarm(storm); a != "" {
		t.Fatalf("nodes at different indexes raised %q", a)
	}
	// Not read back against a known table yet (the first dump): no basis.
	fresh := ClusterStatus{Nodes: []NodeView{readAt("d1", 40, "aa"), readAt("d2", 0, "cc", "tcp:10.0.0.10:80")}}
	if a := TableAlarm(fresh); a != "" {
		t.Fatalf("a node without a known table raised %q", a)
	}

	planted := ClusterStatus{Nodes: []NodeView{readAt("d1", 40, "aa"), readAt("d2", 40, "cc", "tcp:10.0.0.10:80"), readAt("d3", 40, "aa")}}
	a := TableAlarm(planted)
	for _, want := range []string{"ALARM: ", "d2's kernel held something else", "kernel tables differ at applied index 40", "aa on d1,d3", "cc on d2", "services: tcp:10.0.0.10:80"} {
		if !strings.Contains(a, want) {
			t.Errorf("alarm %q lacks %q", a, want)
		}
	}

	// Each kernel holds its own target, but the targets differ.
	diverged := ClusterStatus{Nodes: []NodeView{readAt("d1", 40, "aa"), readAt("d2", 40, "cc")}}
	if a := TableAlarm(diverged); !strings.Contains(a, "kernel tables differ at applied index 40") || !strings.Contains(a, "the models differ") {
		t.Fatalf("diverged models: %q", a)
	}

	// One node alone can still tell that its kernel held something else.
	alone := ClusterStatus{Nodes: []NodeView{readAt("d1", 40, "cc", "udp:[fd00::10]:53")}}
	if a := TableAlarm(alone); !strings.Contains(a, "udp:[fd00::10]:53") {
		t.Fatalf("a lone node's drift: %q", a)
	}
}
