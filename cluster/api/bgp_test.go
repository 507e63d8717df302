package api

import "testing"

func bgpNode(id string, b *BGPStatus) NodeView {
	return NodeView{ID: id, Status: &NodeStatus{BGP: b}}
}

func TestBGPColumn(t *testing.T) {
	for _, c := range []struct {
		b    *BGPStatus
		want string
	}{
		{nil, "-"},
		{&BGPStatus{On: false, VIPs: []string{"10.0.0.50/32"}}, "off (1 ecmp VIPs)"},
		{&BGPStatus{On: true}, "-"},
		{&BGPStatus{On: true, VIPs: []string{"10.0.0.50/32", "10.0.0.51/32"}, Announced: []string{"10.0.0.50/32", "10.0.0.51/32"}}, "2 announced"},
		{&BGPStatus{On: true, VIPs: []string{"10.0.0.50/32"}, Announced: []string{"10.0.0.50/32"}, Draining: true}, "draining 1"},
		{&BGPStatus{On: true, VIPs: []string{"10.0.0.50/32"}, Why: "not ready: track script failing"}, "not ready: track script failing"},
	} {
		if got := BGPColumn(c.b); got != c.want {
			t.Errorf("BGPColumn(%+v) = %q, want %q", c.b, got, c.want)
		}
	}
}

func TestBGPAlarmNamesVIPsNobodyAnnounces(t *testing.T) {
	vips := []string{"10.0.0.50/32", "10.0.0.51/32"}
	st := ClusterStatus{Nodes: []NodeView{
		bgpNode("d1", &BGPStatus{On: true, VIPs: vips, Announced: []string{"10.0.0.50/32"}}),
		bgpNode("d2", &BGPStatus{On: true, VIPs: vips, Why: "not ready: link down"}),
		{ID: "d3"}, // unreachable
	}}
	if got, want := BGPAlarm(st), "ALARM: ecmp VIP announced by no node: 10.0.0.51/32"; got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	st.Nodes[1].Status.BGP.Announced = []string{"10.0.0.51/32"}
	if got := BGPAlarm(st); got != "" {
		t.Fatalf("every VIP announced, alarm %q", got)
	}
	if got := BGPAlarm(ClusterStatus{Nodes: []NodeView{bgpNode("d1", nil)}}); got != "" {
		t.Fatalf("no ecmp VIP, alarm %q", got)
	}
}
