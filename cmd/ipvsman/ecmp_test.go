package main

import (
	"testing"

	"github.com/ipvsman/ipvsman/cluster/api"
)

// An ecmp VIP shows as such in the VIPS column and, held by every node by
// design, raises no split-brain alarm; a leader-mode VIP still does.
func TestVIPColumnAndAlarmWithECMP(t *testing.T) {
	ecmp := func(id string, held ...string) api.NodeView {
		v := holding(id, held...)
		v.Status.VIPs.ECMP = []string{"10.0.0.50/32 on lo"}
		return v
	}
	st := api.ClusterStatus{Nodes: []api.NodeView{
		ecmp("d1", "10.0.0.10/32 on eth0", "10.0.0.50/32 on lo"), ecmp("d2", "10.0.0.50/32 on lo"), ecmp("d3", "10.0.0.50/32 on lo"),
	}}
	if a := vipAlarm(st); a != "" {
		t.Errorf("ecmp VIP on three nodes raised %q", a)
	}
	if c := vipColumn(st.Nodes[0].Status); c != "10.0.0.10/32,10.0.0.50/32 (ecmp)" {
		t.Errorf("column = %q", c)
	}
	st.Nodes[1] = ecmp("d2", "10.0.0.10/32 on eth0", "10.0.0.50/32 on lo")
	if a := vipAlarm(st); a != "ALARM: VIP held by more than one node: 10.0.0.10/32 held by d1 and d2" {
		t.Errorf("leader-mode VIP on two nodes: %q", a)
	}
}
