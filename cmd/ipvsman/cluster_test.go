package main

import (
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/director"
)

func nodeAt(id string, version uint64, fp string, failed int) api.NodeView {
	return api.NodeView{ID: id, Status: &api.NodeStatus{Director: &director.Report{Version: version, Fingerprint: fp, Failed: failed}}}
}

func TestFingerprintAlarm(t *testing.T) {
	same := api.ClusterStatus{Nodes: []api.NodeView{nodeAt("d1", 7, "aa", 0), nodeAt("d2", 7, "aa", 0), nodeAt("d3", 6, "bb", 0)}}
	if a := fingerprintAlarm(same); a != "" {
		t.Fatalf("equal tables at version 7 (d3 still at 6) raised %q", a)
	}
	differ := api.ClusterStatus{Nodes: []api.NodeView{nodeAt("d1", 7, "aa", 0), nodeAt("d2", 7, "cc", 0)}}
	if a := fingerprintAlarm(differ); !strings.HasPrefix(a, "ALARM: kernel tables differ at configuration version 7") {
		t.Fatalf("differing tables: %q", a)
	}
	failing := api.ClusterStatus{Nodes: []api.NodeView{nodeAt("d1", 7, "aa", 0), nodeAt("d2", 7, "", 1)}}
	if a := fingerprintAlarm(failing); a != "" {
		t.Fatalf("a node with failed operations is reported by its failures, not as an alarm: %q", a)
	}
}
