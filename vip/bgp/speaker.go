package bgp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v4/api"
	"github.com/osrg/gobgp/v4/pkg/apiutil"
	"github.com/osrg/gobgp/v4/pkg/packet/bgp"
	"github.com/osrg/gobgp/v4/pkg/server"
)

// ErrClosed is returned by every call after Close.
var ErrClosed = errors.New("bgp: speaker closed")

// ErrNotAnnounced is returned by Drain for a prefix the speaker does not
// announce: draining it would start announcing it.
var ErrNotAnnounced = errors.New("bgp: prefix not announced")

// Speaker announces VIP prefixes to the configured routers through GoBGP,
// embedded: the sessions live and die with this process, so a crashed
// daemon's routes go when the kernel closes its TCP connections.
//
// It is safe for concurrent use. Close stops the sessions (each router
// gets a Cease notification and withdraws at once) and every goroutine.
type Speaker struct {
	log   *slog.Logger
	cfg   Config
	srv   *server.BgpServer
	serve sync.WaitGroup // the server's loop
	stop  context.CancelFunc
	gate  *bfdGate // BFD on while established only (sessions.go)

	mu        sync.Mutex
	closed    bool
	announced map[netip.Prefix][]Community
	drained   map[netip.Prefix]bool
}

// PeerStatus is one neighbour as the speaker sees it now.
type PeerStatus struct {
	Address netip.Addr
	AS      uint32
	// State is the BGP session state: idle, connect, active, opensent,
	// openconfirm or established.
	State string
	// Since is when the session last came up (for established) or went
	// down; zero if it never did either.
	Since time.Time
	// BFD is the BFD session state (up, down, init, admindown), empty
	// without BFD.
	BFD string
	// Announced are the prefixes this node advertises to the neighbour now
	// (its Adj-RIB-Out), sorted; empty unless established.
	Announced []netip.Prefix
}

// New validates cfg, starts the speaker and configures its peers; sessions
// come up in the background (Peers tells their state). log receives one
// line per decision: session up or down, announce, withdraw, drain.
func New(cfg Config, log *slog.Logger) (*Speaker, error) {
	if log == nil {
		log = slog.Default()
	}
	cfg.Peers = slices.Clone(cfg.Peers) // validate fills in defaults
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	// GoBGP's own lines are for its failures only: the decisions are ours
	// to log, once each. It logs through the handler it is given, so the
	// level is the handler's to enforce.
	lvl := &slog.LevelVar{}
	lvl.Set(slog.LevelWarn)
	gobgpLog := slog.New(atLeast{log.Handler(), slog.LevelWarn}).With("component", "gobgp")
	srv := server.NewBgpServer(server.LoggerOption(gobgpLog, lvl))
	s := &Speaker{
		log:       log,
		cfg:       cfg,
		srv:       srv,
		announced: map[netip.Prefix][]Community{},
		drained:   map[netip.Prefix]bool{},
	}
	s.gate = newBFDGate(s)
	s.serve.Add(1)
	go func() { defer s.serve.Done(); srv.Serve() }()
	ctx, stop := context.WithCancel(context.Background())
	s.stop = stop
	s.gate.start(ctx)
	if err := s.start(ctx); err != nil {
		s.shutdown()
		return nil, err
	}
	log.Info("bgp speaker started", "local_as", cfg.LocalAS, "router_id", cfg.RouterID, "listen", listenString(cfg.Listen), "peers", len(cfg.Peers))
	return s, nil
}

func listenString(l netip.AddrPort) string {
	if !l.IsValid() {
		return "off"
	}
	return l.String()
}

func (s *Speaker) start(ctx context.Context) error {
	g := &api.Global{Asn: s.cfg.LocalAS, RouterId: s.cfg.RouterID.String(), ListenPort: -1}
	if s.cfg.Listen.IsValid() {
		g.ListenPort = int32(s.cfg.Listen.Port())
		g.ListenAddresses = []string{s.cfg.Listen.Addr().String()}
	}
	if err := s.srv.StartBgp(ctx, &api.StartBgpRequest{Global: g}); err != nil {
		return fmt.Errorf("bgp: start (AS %d, router ID %s, listen %s): %w", s.cfg.LocalAS, s.cfg.RouterID, listenString(s.cfg.Listen), err)
	}
	if err := s.srv.WatchEvent(ctx, server.WatchEventMessageCallbacks{OnPeerUpdate: s.peerEvent}, server.WatchPeer()); err != nil {
		return fmt.Errorf("bgp: watch the sessions: %w", err)
	}
	for _, p := range s.cfg.Peers {
		if err := s.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: apiPeer(p, false)}); err != nil {
			return fmt.Errorf("bgp: peer %s (AS %d): %w", p.Address, p.AS, err)
		}
	}
	return nil
}

// apiPeer is GoBGP's form of a neighbour: one address family, the one of
// the neighbour's address; BFD as configured if bfd, else off.
func apiPeer(p Peer, bfd bool) *api.Peer {
	fam := &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	if p.Address.Is6() {
		fam.Afi = api.Family_AFI_IP6
	}
	ap := &api.Peer{
		Conf: &api.PeerConf{NeighborAddress: p.Address.String(), PeerAsn: p.AS, AuthPassword: p.Password},
		Timers: &api.Timers{Config: &api.TimersConfig{
			HoldTime:          uint64(p.HoldTime / time.Second),
			KeepaliveInterval: uint64(max(p.HoldTime/3/time.Second, 1)),
			ConnectRetry:      uint64(p.ConnectRetry / time.Second),
		}},
		AfiSafis: []*api.AfiSafi{{Config: &api.AfiSafiConfig{Family: fam, Enabled: true}}},
	}
	if p.LocalAddress.IsValid() {
		ap.Transport = &api.Transport{LocalAddress: p.LocalAddress.String()}
	}
	if b := p.BFD; b != nil && bfd {
		ap.Bfd = &api.BfdPeerConfig{
			Enabled:                  true,
			DesiredMinimumTxInterval: uint32(b.MinTx / time.Microsecond),
			RequiredMinimumReceive:   uint32(b.MinRx / time.Microsecond),
			DetectionMultiplier:      uint32(b.Multiplier),
		}
	}
	return ap
}

// Announce advertises prefix to every peer of its family, with the given
// communities (replacing those of an earlier announcement, and ending a
// drain). Announcing what is already announced as asked changes nothing.
func (s *Speaker) Announce(prefix netip.Prefix, communities ...Community) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	comms := slices.Clone(communities)
	if old, ok := s.announced[prefix]; ok && !s.drained[prefix] && slices.Equal(old, comms) {
		return nil
	}
	if err := s.add(prefix, comms); err != nil {
		return err
	}
	s.announced[prefix] = comms
	delete(s.drained, prefix)
	s.log.Info("bgp announce", "prefix", prefix, "communities", communityList(comms))
	return nil
}

// Drain re-announces prefix with GRACEFUL_SHUTDOWN (65535:0) added to its
// communities: routers that honour it move traffic to the other nodes'
// paths while this one's still works. The caller withdraws later.
func (s *Speaker) Drain(prefix netip.Prefix) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	comms, ok := s.announced[prefix]
	if !ok {
		return fmt.Errorf("drain %s: %w", prefix, ErrNotAnnounced)
	}
	if s.drained[prefix] {
		return nil
	}
	with := comms
	if !slices.Contains(comms, GracefulShutdown) {
		with = append(slices.Clone(comms), GracefulShutdown)
	}
	if err := s.add(prefix, with); err != nil {
		return err
	}
	s.drained[prefix] = true
	s.log.Info("bgp drain", "prefix", prefix, "communities", communityList(with))
	return nil
}

// Withdraw stops advertising prefix; withdrawing what is not announced
// changes nothing.
func (s *Speaker) Withdraw(prefix netip.Prefix) error {
	if err := checkPrefix(prefix); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	if _, ok := s.announced[prefix]; !ok {
		return nil
	}
	p, err := path(prefix, nil)
	if err != nil {
		return err
	}
	if err := s.srv.DeletePath(apiutil.DeletePathRequest{Paths: []*apiutil.Path{p}}); err != nil {
		return fmt.Errorf("bgp: withdraw %s: %w", prefix, err)
	}
	delete(s.announced, prefix)
	delete(s.drained, prefix)
	s.log.Info("bgp withdraw", "prefix", prefix)
	return nil
}

// add gives GoBGP the path: a second add of the same prefix replaces the
// first (an implicit withdraw, as BGP does).
func (s *Speaker) add(prefix netip.Prefix, comms []Community) error {
	p, err := path(prefix, comms)
	if err != nil {
		return err
	}
	if _, err := s.srv.AddPath(apiutil.AddPathRequest{Paths: []*apiutil.Path{p}}); err != nil {
		return fmt.Errorf("bgp: announce %s: %w", prefix, err)
	}
	return nil
}

// path is prefix originated here (origin IGP) with an unspecified next
// hop, which GoBGP sets per session to the local address of the session.
func path(prefix netip.Prefix, comms []Community) (*apiutil.Path, error) {
	nlri, err := bgp.NewIPAddrPrefix(prefix)
	if err != nil {
		return nil, fmt.Errorf("bgp: prefix %s: %w", prefix, err)
	}
	attrs := []bgp.PathAttributeInterface{bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)}
	fam := bgp.RF_IPv4_UC
	if prefix.Addr().Is4() {
		nh, err := bgp.NewPathAttributeNextHop(netip.IPv4Unspecified())
		if err != nil {
			return nil, fmt.Errorf("bgp: prefix %s: next hop: %w", prefix, err)
		}
		attrs = append(attrs, nh)
	} else {
		fam = bgp.RF_IPv6_UC
		mp, err := bgp.NewPathAttributeMpReachNLRI(fam, []bgp.PathNLRI{{NLRI: nlri}}, netip.IPv6Unspecified())
		if err != nil {
			return nil, fmt.Errorf("bgp: prefix %s: next hop: %w", prefix, err)
		}
		attrs = append(attrs, mp)
	}
	if len(comms) > 0 {
		v := make([]uint32, len(comms))
		for i, c := range comms {
			v[i] = uint32(c)
		}
		attrs = append(attrs, bgp.NewPathAttributeCommunities(v))
	}
	return &apiutil.Path{Family: fam, Nlri: nlri, Attrs: attrs}, nil
}

// Announced lists the prefixes this speaker announces, each with
// its communities as announced (a drained one with 65535:0).
func (s *Speaker) Announced() map[netip.Prefix][]Community {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[netip.Prefix][]Community, len(s.announced))
	for p, c := range s.announced {
		if s.drained[p] && !slices.Contains(c, GracefulShutdown) {
			c = append(slices.Clone(c), GracefulShutdown)
		}
		out[p] = slices.Clone(c)
	}
	return out
}

// Peers reports every configured neighbour, in configuration order.
func (s *Speaker) Peers() ([]PeerStatus, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	byAddr := map[netip.Addr]*api.Peer{}
	err := s.srv.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) {
		if a, err := netip.ParseAddr(p.GetConf().GetNeighborAddress()); err == nil {
			byAddr[a] = p
		}
	})
	if err != nil {
		return nil, fmt.Errorf("bgp: list peers: %w", err)
	}
	out := make([]PeerStatus, 0, len(s.cfg.Peers))
	for _, cp := range s.cfg.Peers {
		st := PeerStatus{Address: cp.Address, AS: cp.AS, State: "idle"}
		if ap, ok := byAddr[cp.Address]; ok {
			st.State = apiStateName(ap.GetState().GetSessionState())
			ts := ap.GetTimers().GetState()
			if st.State == "established" && ts.GetUptime() != nil {
				st.Since = ts.GetUptime().AsTime()
			} else if ts.GetDowntime() != nil && ts.GetDowntime().GetSeconds() > 0 {
				st.Since = ts.GetDowntime().AsTime()
			}
			if cp.BFD != nil {
				st.BFD = bfdStateName(ap.GetState().GetBfdState().GetSessionState())
			}
		}
		if st.State == "established" {
			if st.Announced, err = s.adjOut(cp.Address); err != nil {
				return nil, err
			}
		}
		out = append(out, st)
	}
	return out, nil
}

// adjOut lists what the speaker advertises to one neighbour.
func (s *Speaker) adjOut(peer netip.Addr) ([]netip.Prefix, error) {
	fam := bgp.RF_IPv4_UC
	if peer.Is6() {
		fam = bgp.RF_IPv6_UC
	}
	var out []netip.Prefix
	err := s.srv.ListPath(apiutil.ListPathRequest{TableType: api.TableType_TABLE_TYPE_ADJ_OUT, Name: peer.String(), Family: fam},
		func(nlri bgp.NLRI, _ []*apiutil.Path) {
			if p, err := netip.ParsePrefix(nlri.String()); err == nil {
				out = append(out, p)
			}
		})
	if err != nil {
		return nil, fmt.Errorf("bgp: routes advertised to %s: %w", peer, err)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out, nil
}

// Close ends every session with a Cease notification (each router
// withdraws this node's routes at once), stops the speaker and waits for
// its goroutines. It is safe to call more than once.
func (s *Speaker) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	n := len(s.announced)
	s.mu.Unlock()
	s.shutdown()
	s.log.Info("bgp speaker stopped", "withdrawn", n)
	return nil
}

func (s *Speaker) shutdown() {
	if s.stop != nil {
		s.stop() // ends the session watcher and the BFD gate
	}
	s.gate.wait()
	// Stop sends the notifications, closes the listeners and the BFD
	// sockets, and returns once the server's loop has ended.
	s.srv.Stop()
	s.serve.Wait()
}

func apiStateName(st api.PeerState_SessionState) string {
	names := map[api.PeerState_SessionState]string{
		api.PeerState_SESSION_STATE_IDLE:        "idle",
		api.PeerState_SESSION_STATE_CONNECT:     "connect",
		api.PeerState_SESSION_STATE_ACTIVE:      "active",
		api.PeerState_SESSION_STATE_OPENSENT:    "opensent",
		api.PeerState_SESSION_STATE_OPENCONFIRM: "openconfirm",
		api.PeerState_SESSION_STATE_ESTABLISHED: "established",
	}
	if n, ok := names[st]; ok {
		return n
	}
	return "idle"
}

func bfdStateName(st api.BfdSessionState) string {
	switch st {
	case api.BfdSessionState_BFD_SESSION_STATE_UP:
		return "up"
	case api.BfdSessionState_BFD_SESSION_STATE_INIT:
		return "init"
	case api.BfdSessionState_BFD_SESSION_STATE_ADMIN_DOWN:
		return "admindown"
	}
	return "down"
}

func communityList(c []Community) []string {
	out := make([]string, len(c))
	for i, x := range c {
		out[i] = x.String()
	}
	return out
}

// atLeast passes on the records of level min and above.
type atLeast struct {
	slog.Handler
	min slog.Level
}

func (h atLeast) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h atLeast) WithAttrs(a []slog.Attr) slog.Handler { return atLeast{h.Handler.WithAttrs(a), h.min} }
func (h atLeast) WithGroup(g string) slog.Handler      { return atLeast{h.Handler.WithGroup(g), h.min} }
