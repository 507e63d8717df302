// Package server serves one node's API, whose wire types and client are
// cluster/api's: the routes, the tokens and their roles, the node
// certificates joins and forwarded writes need, the limits, and writes run
// on the leader or forwarded to it with their request ID. It sits with the
// daemon's wiring: with cmd/ipvsmand and its metrics, the only place that
// knows the cluster, the director and the VIPs together, so that the API's
// callers link none of them.
//
// It never changes anything itself: every change is a call on cluster.Node
// (whose write path validates against the caught-up state before the log),
// and the kernel table, the sync threads, the checks and the VIPs it only
// reads, through functions the daemon injects.
package server

import (
	"bytes"
	"context"
	"crypto/subtle"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ipvsman/ipvsman/cluster"
	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/cluster/pki"
	"github.com/ipvsman/ipvsman/director"
	"github.com/ipvsman/ipvsman/director/health"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
	"github.com/ipvsman/ipvsman/vip"
)

// MaxBody bounds every request body.
const MaxBody = 64 << 20

// Server serves the API of one node.
type Server struct {
	Node  *cluster.Node
	Token string
	// ReadToken, when set, is a second token that may only read: every
	// POST is refused to it (403, kind forbidden). Like Token it must be
	// the same on every node: a follower forwards a request with its own
	// token of the caller's role.
	ReadToken  string
	Self       fsm.Member // this node's addresses, for joins
	Replace    bool       // joins ask to take over a dead member's ID (ipvsmand --replace)
	IPVS       string     // the daemon's --ipvs mode, reported in status
	Log        *slog.Logger
	WaitLeader time.Duration                              // how long a write that names no deadline waits (api.DefaultWriteWait)
	MaxWait    time.Duration                              // the longest deadline a client may ask for (api.DefaultMaxWriteWait)
	Director   func() *director.Report                    // the last reconcile; nil with --ipvs=off
	Sync       func() *director.SyncReport                // the sync threads; nil with --ipvs=off
	Kernel     func() (*fsm.Config, ipvsadm.Stats, error) // this node's kernel table; nil with --ipvs=off
	Conns      func() ([]director.Conn, error)            // this node's connection table; nil with --ipvs=off
	VIPs       func() vip.Stats                           // nil with --vips=off
	Forwarding func() []api.ForwardingOff                 // forwarding switches masquerading needs that are off; nil with --ipvs=off
	BGP        func() *api.BGPStatus                      // the ecmp announcements and BGP sessions; nil: none to report
	Health     func() []health.Status                     // the leader's checks; nil: none run here
	Throttle   func() (limit, ceiling int)                // the leader's bound on checks in flight; nil: none
	// Bulk runs the leader's side of a large write (decoding, planning),
	// at ordinary priority when the daemon runs real-time (cluster.Config.Bulk).
	Bulk    func(func())
	Limits  Limits       // per-client write rate, table size; zero: none
	Metrics http.Handler // GET /metrics, with either token like any read (docs/metrics.md); nil: --metrics=off
	// TLS is this node's certificate and the cluster CA; nil: plain HTTP
	// (loopback only). With it, calls to other nodes are https with this
	// node's certificate, and joins and forwarded writes must come with a
	// verified node certificate as well as the token.
	TLS *cluster.TLS
	// Tokens, when set, holds the tokens instead of Token and ReadToken,
	// so that a reload can rotate them (tokens.go).
	Tokens      *Tokens
	forwardHTTP *http.Client
	peerHTTP    *http.Client
	writes      *writeLimiter
	once        sync.Once
}

// Handler returns the routed, authenticated handler.
func (s *Server) Handler() http.Handler {
	s.once.Do(func() {
		var tr http.RoundTripper = http.DefaultTransport
		if s.TLS != nil {
			t := http.DefaultTransport.(*http.Transport).Clone()
			t.TLSClientConfig = s.TLS.PeerClient()
			tr = t
		}
		// A forwarded write is bounded by its request's deadline.
		s.forwardHTTP = &http.Client{Transport: tr}
		s.peerHTTP = &http.Client{Timeout: 60 * time.Second, Transport: tr}
		s.writes = newWriteLimiter(s.Limits, time.Now)
		if s.WaitLeader == 0 {
			s.WaitLeader = api.DefaultWriteWait
		}
		if s.MaxWait == 0 {
			s.MaxWait = api.DefaultMaxWriteWait
		}
		if s.Tokens == nil {
			s.Tokens = NewTokens(s.Token, s.ReadToken)
		}
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", s.status)
	mux.HandleFunc("GET /v1/cluster/status", s.clusterStatus)
	mux.HandleFunc("GET /v1/config", s.config)
	mux.HandleFunc("GET /v1/history", s.history)
	mux.HandleFunc("GET /v1/kernel", s.kernel)
	mux.HandleFunc("GET /v1/kernel/connections", s.connections)
	mux.HandleFunc("GET /v1/health", s.write(s.health))
	mux.HandleFunc("GET /v1/history/{version}", s.historyEntry)
	mux.HandleFunc("POST /v1/ops", s.write(s.ops))
	mux.HandleFunc("POST /v1/config", s.write(s.apply))
	mux.HandleFunc("POST /v1/rollback", s.write(s.rollback))
	mux.HandleFunc("POST /v1/zero", s.write(s.zero))
	mux.HandleFunc("POST /v1/cluster/join", s.write(s.join))
	mux.HandleFunc("POST /v1/cluster/leave", s.write(s.leave))
	mux.HandleFunc("POST /v1/cluster/transfer", s.write(s.transfer))
	mux.HandleFunc("POST /v1/cluster/join-via", s.joinVia)
	mux.HandleFunc("POST /v1/node/drain", s.drain)
	mux.HandleFunc("POST /v1/commands/{name}", s.command)
	if s.Metrics != nil {
		// Behind the token like every read: the metrics name services,
		// addresses and members (docs/metrics.md for the scrape config).
		mux.Handle("GET /metrics", s.Metrics)
	}
	return s.auth(mux)
}

// PlainFix is the advice of a node running without TLS whose call to
// another node's API would carry the token in clear off loopback (see
// api.Client.PlainFix).
const PlainFix = "this node runs without TLS: a node that talks to others off loopback needs --tls-cert, --tls-key and --tls-ca, as they do"

// peer is a client for another node's API, with this node's token and
// its proof of being a node: in a TLS cluster its certificate, in a plain
// one the node key. For a request it passes on for a client, who names
// the principal this node authenticated and the client's claim; the zero
// who is this node asking for itself.
func (s *Server) peer(base string, who fsm.Actor) *api.Client {
	c := &api.Client{Base: base, Token: s.Tokens.Send(), Actor: who.Claim, Principal: who.Principal, HTTP: s.peerHTTP, PlainFix: PlainFix}
	if s.TLS != nil {
		c.TLS, c.CA = s.TLS.PeerClient(), "the cluster CA (--tls-ca)"
	} else {
		c.NodeKey = s.Tokens.NodeKey()
	}
	return c
}

// needsNodeCert tells the requests only a node makes: a join (a new
// member's Raft address goes into the configuration) and a write another
// node forwarded (it carries the principal the forwarder authenticated,
// which the leader records as given). join-via is not one: the operator
// asks the joining node itself, which then joins with its own certificate.
func needsNodeCert(r *http.Request) bool {
	return r.URL.Path == "/v1/cluster/join" || r.Header.Get(api.HeaderForwarded) != ""
}

// verifiedNode reports whether the client presented a certificate that
// chains to the cluster CA (checked by the TLS handshake).
func verifiedNode(cs *tls.ConnectionState) bool {
	return cs != nil && len(cs.VerifiedChains) > 0
}

// caller is who a request comes from, as auth established it.
type caller struct {
	// principal is the credential that authenticated the request
	// (fsm.Principal*), or the one the node that passed it on
	// authenticated.
	principal string
	// node: the request is authenticated as a node's, so the headers only
	// a node may send (forwarded, principal) count.
	node bool
}

type callerKey struct{}

// callerOf is the caller auth established for r.
func callerOf(r *http.Request) caller {
	c, _ := r.Context().Value(callerKey{}).(caller)
	return c
}

// forbiddenError is a caller identify refuses outright (403): a node
// certificate bound to no node ID.
type forbiddenError struct{ error }

// identify tells who r comes from. A node is a client with a verified
// certificate of the cluster CA in a TLS cluster, and one that sent the
// node key in a plain one; its own principal is its certificate's node ID or
// the node key, or the principal it passes on. Anyone else is the token
// they authenticated with. The error is a node's principal that is not
// one (400).
func (s *Server) identify(r *http.Request, admin bool) (caller, error) {
	var c caller
	switch {
	case s.TLS != nil && verifiedNode(r.TLS):
		// The node ID the certificate is bound to; its common name is
		// for people and binds nothing.
		id, err := pki.PeerNode(r.TLS)
		if err != nil {
			return caller{}, forbiddenError{err}
		}
		c = caller{principal: fsm.NodeCertPrincipal(id), node: true}
	case s.TLS == nil && s.Tokens.acceptsNodeKey(r.Header.Get(api.HeaderNodeKey)):
		c = caller{principal: fsm.PrincipalNodeKey, node: true}
	case admin:
		return caller{principal: fsm.PrincipalAdminToken}, nil
	default:
		return caller{principal: fsm.PrincipalReadToken}, nil
	}
	if p := r.Header.Get(api.HeaderPrincipal); p != "" {
		if err := fsm.ValidatePrincipal(p); err != nil {
			return c, fmt.Errorf("header %s: %w", api.HeaderPrincipal, err)
		}
		c.principal = p
	}
	return c, nil
}

func (s *Server) auth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		admin, read := s.Tokens.role(got)
		switch {
		case ok && admin:
		case ok && read:
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				writeError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("%s %s: the read-only token may not change anything; use the cluster (admin) token", r.Method, r.URL.Path))
				return
			}
		default:
			writeError(w, http.StatusUnauthorized, "unauthorized", "missing or wrong cluster token (--token / IPVSMAN_TOKEN)")
			return
		}
		who, err := s.identify(r, admin)
		var forbidden forbiddenError
		switch {
		case errors.As(err, &forbidden):
			writeError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("%s %s: %v", r.Method, r.URL.Path, err))
			return
		case err != nil:
			writeError(w, http.StatusBadRequest, "rejected", err.Error())
			return
		}
		if s.TLS != nil && who.node && needsNodeCert(r) {
			if msg := s.checkNodeClaim(w, r); msg != "" {
				s.Log.Warn("refused a request claiming another node", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "reason", msg)
				writeError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("%s %s: %s", r.Method, r.URL.Path, msg))
				return
			}
		}
		if !who.node {
			if s.TLS != nil && needsNodeCert(r) {
				writeError(w, http.StatusForbidden, "forbidden", fmt.Sprintf("%s %s: joins and forwarded writes must come from a node: present a certificate signed by the cluster CA (--tls-cert); the token alone is not enough", r.Method, r.URL.Path))
				return
			}
			// Only a node forwards and passes principals on: from anyone
			// else these headers count for nothing (on a plain cluster,
			// where a node of an older build sends no node key, such a
			// request is served as any client's rather than refused).
			r.Header.Del(api.HeaderForwarded)
			r.Header.Del(api.HeaderPrincipal)
		}
		r = r.WithContext(context.WithValue(r.Context(), callerKey{}, who))
		if !s.limitWrites(w, r) {
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		next.ServeHTTP(w, r)
	})
}

// checkNodeClaim binds a node's requests to its certificate: a node acts
// only as the node ID its verified certificate names. It returns why the
// request is refused, or "". A forwarded request claims its sender in
// api.HeaderForwarded, which must be that ID and a member of the Raft
// configuration (only a member forwards; the leader records the actor a
// member passes on as given). A join the joining node sends itself claims
// the ID in its body; a join a member forwards was checked by that member,
// which saw the joining node's certificate.
func (s *Server) checkNodeClaim(w http.ResponseWriter, r *http.Request) string {
	cert, err := pki.PeerNode(r.TLS)
	if err != nil {
		return fmt.Sprintf("the client's %v", err)
	}
	if by := r.Header.Get(api.HeaderForwarded); by != "" {
		switch {
		case by != cert:
			return fmt.Sprintf("forwarded as node %q, but the client's certificate is node %q's: a node acts only as the node ID its certificate names", by, cert)
		case !s.Node.InConfiguration(by):
			return fmt.Sprintf("forwarded by node %q, which is not a member of the Raft configuration", by)
		}
		return ""
	}
	if r.URL.Path != "/v1/cluster/join" {
		return ""
	}
	// Read the small body here and hand it on: the handler decodes it
	// strictly; the ID is the one both decodings see.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxJoinBody))
	if err != nil {
		return fmt.Sprintf("request body: %v", err)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	var claim struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &claim); err != nil {
		return fmt.Sprintf("request body: %v", err)
	}
	if claim.ID != cert {
		return fmt.Sprintf("the join is for node %q, but the client's certificate is node %q's: a node joins only as the node ID its certificate names", claim.ID, cert)
	}
	return ""
}

// maxJoinBody bounds a join's body, read before the handler: a member's
// addresses.
const maxJoinBody = 64 << 10

// equalToken compares in constant time; an empty want matches nothing.
func equalToken(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, code int, kind, msg string) {
	writeJSON(w, code, api.ErrorResponse{Error: msg, Kind: kind})
}

func (s *Server) nodeStatus() api.NodeStatus {
	st := api.NodeStatus{Status: wireStatus(s.Node.Status())}
	st.IPVS = s.IPVS
	if s.Director != nil {
		st.Director = wireReport(s.Director())
	}
	if s.Sync != nil {
		st.Sync = wireSync(s.Sync())
	}
	if s.VIPs != nil {
		st.VIPs = wireVIPs(s.VIPs())
	}
	if s.Forwarding != nil {
		st.ForwardingOff = s.Forwarding()
	}
	if s.BGP != nil {
		st.BGP = s.BGP()
	}
	return st
}

func (s *Server) status(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.nodeStatus())
}

// clusterStatus asks every member for its own status, so that an operator
// sees each node's applied index, not just this node's opinion of it.
func (s *Server) clusterStatus(w http.ResponseWriter, r *http.Request) {
	s.consistent(r) // so the member list includes every recorded API address
	st := s.nodeStatus()
	out := api.ClusterStatus{Via: st.ID, Nodes: make([]api.NodeView, len(st.Servers))}
	var wg sync.WaitGroup
	for i, srv := range st.Servers {
		out.Nodes[i] = api.NodeView{ID: srv.ID, APIAddr: srv.APIAddr}
		if srv.ID == st.ID {
			me := st
			out.Nodes[i].Reachable, out.Nodes[i].Status = true, &me
			continue
		}
		if srv.APIAddr == "" {
			out.Nodes[i].Error = "API address not recorded"
			continue
		}
		wg.Add(1)
		go func(v *api.NodeView) {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			ns, err := s.peer(v.APIAddr, fsm.Actor{}).Status(ctx)
			if err != nil {
				v.Error = err.Error()
				return
			}
			v.Reachable, v.Status = true, &ns
		}(&out.Nodes[i])
	}
	wg.Wait()
	out.Members, out.MinProtocol, out.Note = members(st, out.Nodes), st.MinProtocol, st.Note
	writeJSON(w, http.StatusOK, out)
}

// consistent makes a read show every write acknowledged before it (see
// cluster.Node.ConsistentRead). Without a reachable leader the read is served
// from this node's state and marked stale rather than refused: an operator
// in the middle of a failover still wants to see the table.
func (s *Server) consistent(r *http.Request) (stale string) {
	if r.URL.Query().Get("stale") != "" {
		return "stale read requested"
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	err := s.Node.ConsistentRead(ctx, func(ctx context.Context) (uint64, error) {
		_, leaderAPI, err := s.Node.LeaderAPI()
		if err != nil {
			return 0, err
		}
		st, err := s.peer(leaderAPI, fsm.Actor{}).Status(ctx)
		return st.CommitIndex, err
	})
	if err != nil {
		return err.Error()
	}
	return ""
}

func (s *Server) config(w http.ResponseWriter, r *http.Request) {
	var resp api.ConfigResponse
	resp.Stale = s.consistent(r)
	stale := resp.Stale
	s.Node.View(func(st *fsm.State, applied uint64) {
		resp = api.ConfigResponse{Version: st.Version, Config: st.Config, Verdicts: make(map[string]fsm.Verdict, len(st.Verdicts)), QuorumUp: st.QuorumStates(), Node: s.Node.ID(), Applied: applied, Stale: stale}
		for k, v := range st.Verdicts {
			resp.Verdicts[k] = v
		}
	})
	writeJSON(w, http.StatusOK, resp)
}

func (s *Server) kernel(w http.ResponseWriter, _ *http.Request) {
	if s.Kernel == nil {
		writeError(w, http.StatusNotFound, "rejected", fmt.Sprintf("node %s runs with --ipvs=%s: it has no kernel table", s.Node.ID(), s.IPVS))
		return
	}
	cfg, st, err := s.Kernel()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", fmt.Sprintf("node %s: read the kernel table: %v", s.Node.ID(), err))
		return
	}
	writeJSON(w, http.StatusOK, api.KernelResponse{Node: s.Node.ID(), Config: cfg, Stats: st})
}

func (s *Server) connections(w http.ResponseWriter, _ *http.Request) {
	if s.Conns == nil {
		writeError(w, http.StatusNotFound, "rejected", fmt.Sprintf("node %s runs with --ipvs=%s: it has no kernel table", s.Node.ID(), s.IPVS))
		return
	}
	conns, err := s.Conns()
	if err != nil {
		writeError(w, http.StatusInternalServerError, "internal", fmt.Sprintf("node %s: read the connection table: %v", s.Node.ID(), err))
		return
	}
	writeJSON(w, http.StatusOK, api.ConnsResponse{Node: s.Node.ID(), Conns: wireConns(conns)})
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	s.consistent(r)
	var items []api.HistoryItem
	s.Node.View(func(st *fsm.State, _ uint64) {
		for _, h := range st.History {
			item := api.HistoryItem{Version: h.Version, Time: h.Time, Actor: h.Actor, Request: h.Request, Summary: h.Summary}
			if a, ok := fsm.ParseActor(h.Actor); ok {
				item.Principal, item.Claimed = a.Principal, a.Claim
			}
			items = append(items, item)
		}
	})
	if items == nil {
		items = []api.HistoryItem{}
	}
	writeJSON(w, http.StatusOK, items)
}

func (s *Server) historyEntry(w http.ResponseWriter, r *http.Request) {
	v, err := strconv.ParseUint(r.PathValue("version"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "rejected", fmt.Sprintf("version %q: want a number", r.PathValue("version")))
		return
	}
	s.consistent(r)
	var entry *fsm.HistoryEntry
	s.Node.View(func(st *fsm.State, _ uint64) {
		if i := slices.IndexFunc(st.History, func(h fsm.HistoryEntry) bool { return h.Version == v }); i >= 0 {
			e := st.History[i]
			entry = &e
		}
	})
	if entry == nil {
		writeError(w, http.StatusNotFound, "rejected", fmt.Sprintf("version %d: not in history", v))
		return
	}
	writeJSON(w, http.StatusOK, entry)
}

func decode[T any](body []byte) (T, error) {
	var v T
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&v); err != nil {
		return v, &cluster.RejectedError{Reason: fmt.Sprintf("request body: %v", err)}
	}
	return v, nil
}

// health is the leader's view of every check (followers forward): the
// last result and latency live only where the checks run.
func (s *Server) health(context.Context, writeReq) (any, error) {
	out := api.HealthResponse{Checks: []api.CheckStatus{}}
	if s.Health != nil {
		out.Checks = wireChecks(s.Health())
	}
	if s.Throttle != nil {
		out.InFlightLimit, out.InFlightMax = s.Throttle()
	}
	return out, nil
}

func (s *Server) transfer(_ context.Context, w writeReq) (any, error) {
	req, err := decode[api.NodeRequest](w.body)
	if err != nil {
		return nil, err
	}
	to, err := s.Node.Transfer(req.ID)
	if err != nil {
		return nil, err
	}
	return api.WriteResponse{Leader: to}, nil
}
