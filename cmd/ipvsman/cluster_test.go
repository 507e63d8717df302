package main

import (
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/cluster/api"
)

func nodeAt(id string, version uint64, fp string, failed int) api.NodeView {
	return api.NodeView{ID: id, Status: &api.NodeStatus{Director: &api.Report{Version: version, Fingerprint: fp, Failed: failed}}}
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

func holding(id string, held ...string) api.NodeView {
	return api.NodeView{ID: id, Status: &api.NodeStatus{VIPs: &api.VIPStats{Held: held}}}
}

func TestVIPColumnAndAlarm(t *testing.T) {
	one := api.ClusterStatus{Nodes: []api.NodeView{holding("d1", "10.0.0.10/32 on eth0", "fd00::10/128 on eth0"), holding("d2"), {ID: "d3"}}}
	if a := vipAlarm(one); a != "" {
		t.Fatalf("one holder raised %q", a)
	}
	if c := vipColumn(one.Nodes[0].Status); c != "10.0.0.10/32,fd00::10/128" {
		t.Errorf("column = %q", c)
	}
	if c := vipColumn(one.Nodes[1].Status); c != "-" {
		t.Errorf("column of a node holding none = %q", c)
	}
	if c := vipColumn(&api.NodeStatus{}); c != "off" {
		t.Errorf("column with --vips=off = %q", c)
	}
	two := api.ClusterStatus{Nodes: []api.NodeView{holding("d1", "10.0.0.10/32 on eth0"), holding("d2", "10.0.0.10/32 on eth1")}}
	if a := vipAlarm(two); a != "ALARM: VIP held by more than one node: 10.0.0.10/32 held by d1 and d2" {
		t.Errorf("two holders: %q", a)
	}
}
