package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

var (
	descBGPAnnouncements = prometheus.NewDesc("ipvsman_bgp_announcements_total", "ecmp VIP prefixes this node announced over BGP (each announce of one prefix).", nil, nil)
	descBGPWithdrawals   = prometheus.NewDesc("ipvsman_bgp_withdrawals_total", "ecmp VIP prefixes this node withdrew (not ready, behind, kernel table failing, VIP gone, shutdown).", nil, nil)
	descBGPAnnounced     = prometheus.NewDesc("ipvsman_bgp_announced_prefixes", "ecmp VIP prefixes this node announces now (draining ones included).", nil, nil)
	descBGPPeerUp        = prometheus.NewDesc("ipvsman_bgp_peer_up", "1 while the BGP session with the router is established, else 0.", []string{"peer"}, nil)
)

var bgpDescs = []*prometheus.Desc{descBGPAnnouncements, descBGPWithdrawals, descBGPAnnounced, descBGPPeerUp}

// collectBGP reports the ecmp announcer and the BGP sessions; nothing with
// BGP off.
func (m *Metrics) collectBGP(ch chan<- prometheus.Metric) {
	if m.src.BGP == nil {
		return
	}
	b := m.src.BGP()
	if b == nil || !b.On {
		return
	}
	counter(ch, descBGPAnnouncements, b.Announcements)
	counter(ch, descBGPWithdrawals, b.Withdrawals)
	gauge(ch, descBGPAnnounced, float64(len(b.Announced)))
	for _, p := range b.Peers {
		gauge(ch, descBGPPeerUp, b2f(p.State == "established"), p.Address)
	}
}
