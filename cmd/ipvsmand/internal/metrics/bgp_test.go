package metrics

import (
	"testing"

	"github.com/ipvsman/ipvsman/cluster/api"
)

func TestBGPSeries(t *testing.T) {
	src := fakeSources()
	b := &api.BGPStatus{On: true, VIPs: []string{"10.0.0.50/32", "10.0.0.51/32"}, Announced: []string{"10.0.0.50/32", "10.0.0.51/32"}, Announcements: 5, Withdrawals: 3,
		Peers: []api.BGPPeer{{Address: "192.0.2.1", AS: 65000, State: "established"}, {Address: "192.0.2.2", AS: 65000, State: "active"}}}
	src.BGP = func() *api.BGPStatus { return b }
	m := New(src)
	compare(t, m, `
# HELP ipvsman_bgp_announcements_total ecmp VIP prefixes this node announced over BGP (each announce of one prefix).
# TYPE ipvsman_bgp_announcements_total counter
ipvsman_bgp_announcements_total 5
# HELP ipvsman_bgp_withdrawals_total ecmp VIP prefixes this node withdrew (not ready, behind, kernel table failing, VIP gone, shutdown).
# TYPE ipvsman_bgp_withdrawals_total counter
ipvsman_bgp_withdrawals_total 3
# HELP ipvsman_bgp_announced_prefixes ecmp VIP prefixes this node announces now (draining ones included).
# TYPE ipvsman_bgp_announced_prefixes gauge
ipvsman_bgp_announced_prefixes 2
# HELP ipvsman_bgp_peer_up 1 while the BGP session with the router is established, else 0.
# TYPE ipvsman_bgp_peer_up gauge
ipvsman_bgp_peer_up{peer="192.0.2.1"} 1
ipvsman_bgp_peer_up{peer="192.0.2.2"} 0
`, "ipvsman_bgp_announcements_total", "ipvsman_bgp_withdrawals_total", "ipvsman_bgp_announced_prefixes", "ipvsman_bgp_peer_up")

	// BGP off: no series, whether the node reports nothing or "off".
	for _, off := range []*api.BGPStatus{nil, {On: false, VIPs: []string{"10.0.0.50/32"}}} {
		src.BGP = func() *api.BGPStatus { return off }
		if n := count(t, New(src), "ipvsman_bgp_announcements_total", "ipvsman_bgp_peer_up"); n != 0 {
			t.Errorf("BGP off (%+v): %d series", off, n)
		}
	}
}
