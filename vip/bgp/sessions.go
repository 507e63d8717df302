package bgp

import (
	"context"
	"net/netip"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
)

// bfdGate runs a peer's BFD session only while its BGP session is
// established.
//
// GoBGP (v4.8.0) answers a BFD session going down by queueing a Cease for
// the BGP session; a session that is not established does not send it, and
// the next one sends it the moment it is established. When the router
// resets a session (BIRD's `restart`, a reconfiguration, a reboot), its
// BFD session goes away with it, the director's BFD times out while BGP is
// down, and every later session was torn down as it came up: seen here to
// last past a minute, with GoBGP's backoff growing. With BFD off whenever
// BGP is not established, no such Cease can wait for the next session.
type bfdGate struct {
	s    *Speaker
	kick chan struct{} // one pending look at want
	done sync.WaitGroup

	mu    sync.Mutex
	state map[netip.Addr]bgp.FSMState // last state seen, per peer
	want  map[netip.Addr]bool         // BFD wanted (established), per peer with BFD
	on    map[netip.Addr]bool         // BFD as last given to GoBGP (the loop's alone)
}

func newBFDGate(s *Speaker) *bfdGate {
	return &bfdGate{s: s, kick: make(chan struct{}, 1), state: map[netip.Addr]bgp.FSMState{},
		want: map[netip.Addr]bool{}, on: map[netip.Addr]bool{}}
}

// start runs the loop that changes GoBGP's peers until ctx ends. The
// change cannot be made from the event callback: it waits for GoBGP's main
// loop, which may itself be waiting to deliver the next event.
func (g *bfdGate) start(ctx context.Context) {
	g.done.Add(1)
	go func() {
		defer g.done.Done()
		for {
			select {
			case <-ctx.Done():
				return
			case <-g.kick:
				g.apply(ctx)
			}
		}
	}()
}

func (g *bfdGate) wait() { g.done.Wait() }

// apply gives GoBGP each BFD peer's wanted state where it differs.
func (g *bfdGate) apply(ctx context.Context) {
	for _, p := range g.s.cfg.Peers {
		if p.BFD == nil {
			continue
		}
		g.mu.Lock()
		want := g.want[p.Address]
		g.mu.Unlock()
		if g.on[p.Address] == want {
			continue
		}
		if _, err := g.s.srv.UpdatePeer(ctx, &api.UpdatePeerRequest{Peer: apiPeer(p, want)}); err != nil {
			g.s.log.Warn("bgp bfd not changed", "peer", p.Address, "bfd", want, "err", err)
			continue
		}
		g.on[p.Address] = want
		g.s.log.Debug("bgp bfd", "peer", p.Address, "on", want)
	}
}

// peerEvent logs a session's state changes, up and down once each (the
// steps between are debug), and opens or closes the BFD gate.
func (s *Speaker) peerEvent(ev *apiutil.WatchEventMessage_PeerEvent, _ time.Time) {
	if ev.Type != apiutil.PEER_EVENT_STATE {
		return
	}
	st := ev.Peer.State
	addr := st.NeighborAddress.Unmap()
	g := s.gate
	g.mu.Lock()
	prev := g.state[addr]
	g.state[addr] = st.SessionState
	up := st.SessionState == bgp.BGP_FSM_ESTABLISHED
	changed := up != (prev == bgp.BGP_FSM_ESTABLISHED)
	if changed && s.hasBFD(addr) {
		g.want[addr] = up
		select {
		case g.kick <- struct{}{}:
		default: // a look at want is already pending
		}
	}
	g.mu.Unlock()
	switch {
	case up && changed:
		s.log.Info("bgp session up", "peer", addr, "peer_as", st.PeerASN, "router_id", st.RouterID)
	case changed:
		s.log.Warn("bgp session down", "peer", addr, "peer_as", st.PeerASN, "state", stateName(st.SessionState), "reason", st.DisconnectMessage)
	default:
		s.log.Debug("bgp session state", "peer", addr, "state", stateName(st.SessionState))
	}
}

func (s *Speaker) hasBFD(addr netip.Addr) bool {
	for _, p := range s.cfg.Peers {
		if p.Address == addr {
			return p.BFD != nil
		}
	}
	return false
}

func stateName(st bgp.FSMState) string {
	switch st {
	case bgp.BGP_FSM_IDLE:
		return "idle"
	case bgp.BGP_FSM_CONNECT:
		return "connect"
	case bgp.BGP_FSM_ACTIVE:
		return "active"
	case bgp.BGP_FSM_OPENSENT:
		return "opensent"
	case bgp.BGP_FSM_OPENCONFIRM:
		return "openconfirm"
	case bgp.BGP_FSM_ESTABLISHED:
		return "established"
	}
	return st.String()
}
