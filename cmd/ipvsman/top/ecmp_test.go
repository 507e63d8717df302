package top

import (
	"testing"

	"github.com/ipvsman/ipvsman/cluster/api"
)

// The header's VIP owner leaves the ecmp VIPs, which every node holds, out
// of the split-brain count and says on how many nodes they are.
func TestVIPOwnerWithECMP(t *testing.T) {
	node := func(id string, held, ecmp []string) api.NodeView {
		return api.NodeView{ID: id, Status: &api.NodeStatus{VIPs: &api.VIPStats{Held: held, ECMP: ecmp}}}
	}
	e := []string{"10.0.0.50/32 on lo"}
	both := []string{"10.0.0.10/32 on eth0", "10.0.0.50/32 on lo"}
	for _, tc := range []struct {
		nodes []api.NodeView
		want  string
	}{
		{[]api.NodeView{node("d1", both, e), node("d2", e, e), node("d3", e, e)}, "d1, ecmp on 3"},
		{[]api.NodeView{node("d1", e, e), node("d2", e, e)}, "none, ecmp on 2"},
		{[]api.NodeView{node("d1", both, e), node("d2", both, e)}, "SPLIT d1+d2, ecmp on 2"},
		{[]api.NodeView{node("d1", both[:1], nil), node("d2", nil, nil)}, "d1"},
	} {
		m := &Model{haveSnap: true, snap: Snapshot{Cluster: &api.ClusterStatus{Nodes: tc.nodes}}}
		if got := m.vipOwner(); got != tc.want {
			t.Errorf("vipOwner = %q, want %q", got, tc.want)
		}
	}
}
