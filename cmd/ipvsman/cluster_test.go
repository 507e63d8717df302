package main

import (
	"testing"

	"github.com/ipvsman/ipvsman/cluster/api"
)

func TestKernelTableColumn(t *testing.T) {
	same := &api.NodeStatus{Director: &api.Report{Version: 7, Fingerprint: "aa", TargetFingerprint: "aa", KernelIndex: 40}}
	if c := kernelTable(same); c != "aa@40 v7" {
		t.Errorf("column = %q", c)
	}
	differ := &api.NodeStatus{Director: &api.Report{Version: 7, Fingerprint: "aa", TargetFingerprint: "bb", KernelIndex: 40, Failed: 1}}
	if c := kernelTable(differ); c != "aa@40 (target bb) v7 (1 failed)" {
		t.Errorf("column = %q", c)
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
