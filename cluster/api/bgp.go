package api

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// BGPStatus is a node's part in the ecmp VIP mode: its BGP sessions and
// what it announces over them (vip/ecmp, vip/bgp). Nil on a node with BGP
// off whose model has no ecmp VIP.
type BGPStatus struct {
	// On is false on a node with BGP off (no --bgp-peer): it never
	// announces the ecmp VIPs its model has.
	On bool `json:"on"`
	// VIPs are the model's ecmp VIPs as this node sees them.
	VIPs []string `json:"vips,omitempty"`
	// Announced are the prefixes this node announces now (draining ones
	// included), sorted.
	Announced []string `json:"announced,omitempty"`
	// Draining is true during a planned drain (shutdown): Announced carry
	// GRACEFUL_SHUTDOWN (65535:0) and are withdrawn next.
	Draining bool `json:"draining,omitempty"`
	// Why is why nothing is announced although the model has ecmp VIPs
	// ("not ready: ...", "not caught up: ...", "kernel table: ...").
	Why string `json:"why,omitempty"`
	// Announcements and Withdrawals count prefixes announced and withdrawn
	// since the daemon started.
	Announcements uint64    `json:"announcements"`
	Withdrawals   uint64    `json:"withdrawals"`
	Peers         []BGPPeer `json:"peers,omitempty"`
	// PeersErr is why the sessions could not be read ("" when they were).
	PeersErr string `json:"peers_error,omitempty"`
}

// BGPPeer is one BGP session as the node's speaker sees it (bgp.PeerStatus).
type BGPPeer struct {
	Address string `json:"address"`
	AS      uint32 `json:"as"`
	// State is the BGP session state: idle, connect, active, opensent,
	// openconfirm or established.
	State string `json:"state"`
	// BFD is the BFD session's state (up, down, init, admindown); empty
	// without BFD.
	BFD string `json:"bfd,omitempty"`
	// Since is when the session last came up or went down.
	Since time.Time `json:"since,omitzero"`
	// Advertised are the prefixes the router was sent (Adj-RIB-Out).
	Advertised []string `json:"advertised,omitempty"`
}

// BGPColumn is the node's BGP cell of `ipvsman cluster status`: "2
// announced", "draining", "off", "not ready: ...", "-" when there is
// nothing to announce.
func BGPColumn(b *BGPStatus) string {
	switch {
	case b == nil:
		return "-"
	case !b.On && len(b.VIPs) > 0:
		return fmt.Sprintf("off (%d ecmp VIPs)", len(b.VIPs))
	case !b.On:
		return "off"
	case b.Draining:
		return fmt.Sprintf("draining %d", len(b.Announced))
	case len(b.Announced) > 0:
		return fmt.Sprintf("%d announced", len(b.Announced))
	case b.Why != "":
		return b.Why
	default:
		return "-"
	}
}

// BGPAlarm names the ecmp VIPs that no reachable node announces: the
// routers have no route to them. "" when every one is announced (or there
// is none). A draining node's announcements count: its path still carries
// traffic until the others take it.
func BGPAlarm(st ClusterStatus) string {
	vips, announced := map[string]bool{}, map[string]bool{}
	for _, n := range st.Nodes {
		if n.Status == nil || n.Status.BGP == nil {
			continue
		}
		for _, v := range n.Status.BGP.VIPs {
			vips[v] = true
		}
		for _, a := range n.Status.BGP.Announced {
			announced[a] = true
		}
	}
	var missing []string
	for _, v := range slices.Sorted(maps.Keys(vips)) {
		if !announced[v] {
			missing = append(missing, v)
		}
	}
	if len(missing) == 0 {
		return ""
	}
	return "ALARM: ecmp VIP announced by no node: " + strings.Join(missing, ", ")
}
