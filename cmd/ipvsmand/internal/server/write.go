package server

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ipvsman/ipvsman/cluster"
	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
)

// writeReq is a write as the leader's handler sees it.
type writeReq struct {
	body []byte
	who  fsm.Actor // the principal authenticated (here or by the node that forwarded it) and the client's claim
	// actor is who, as recorded (fsm.Actor.String).
	actor   string
	request string // the client's request ID
}

// actorOf is who a request comes from, to record or to pass on to another
// node: the principal auth established and the client's claim, which may
// be long enough to name someone, not to fill the history.
func actorOf(r *http.Request) (fsm.Actor, error) {
	claim := r.Header.Get(api.HeaderActor)
	if len(claim) > fsm.MaxClaim {
		return fsm.Actor{}, fmt.Errorf("header %s: %q: %d bytes, want at most %d", api.HeaderActor, claim[:64]+"…", len(claim), fsm.MaxClaim)
	}
	return fsm.Actor{Principal: callerOf(r).principal, Claim: claim}, nil
}

// leaderFunc runs a write on the leader and returns the response body.
type leaderFunc func(ctx context.Context, req writeReq) (any, error)

// writeWait is how long this request may wait: the client's deadline
// (api.HeaderTimeout, in milliseconds), capped by MaxWait; WaitLeader when it
// names none.
func (s *Server) writeWait(r *http.Request) (time.Duration, error) {
	h := r.Header.Get(api.HeaderTimeout)
	if h == "" {
		return s.WaitLeader, nil
	}
	ms, err := strconv.ParseInt(h, 10, 64)
	if err != nil || ms <= 0 {
		return 0, fmt.Errorf("header %s: %q: want a positive number of milliseconds", api.HeaderTimeout, h)
	}
	return min(time.Duration(ms)*time.Millisecond, s.MaxWait), nil
}

// write wraps a leader-only handler: it runs it here when this node leads,
// and otherwise forwards the request to the leader, until one answers for
// certain or the request's deadline passes.
//
// Every attempt carries the same request ID, so a retry after an attempt
// whose outcome is unknown (leadership lost after proposing, a forward cut
// off) is answered with the first outcome by a caught-up leader, or applied
// once. If the deadline passes with such an attempt unsettled, the answer
// says the outcome is unknown (503, kind outcome-unknown), never that the
// write failed.
func (s *Server) write(h leaderFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		body, err := readBody(r)
		if err != nil {
			writeError(w, http.StatusRequestEntityTooLarge, "rejected", fmt.Sprintf("request body: %v", err))
			return
		}
		who, err := actorOf(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, "rejected", err.Error())
			return
		}
		req := writeReq{body: body, who: who, actor: who.String(), request: r.Header.Get(api.HeaderRequest)}
		if req.request == "" {
			req.request = api.NewRequestID()
		} else if err := fsm.ValidateRequestID(req.request); err != nil {
			writeError(w, http.StatusBadRequest, "rejected", fmt.Sprintf("header %s: %v", api.HeaderRequest, err))
			return
		}
		wait, err := s.writeWait(r)
		if err != nil {
			writeError(w, http.StatusBadRequest, "rejected", err.Error())
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), wait)
		defer cancel()
		var unsettled error // an attempt whose outcome is not known yet
		backoff := 25 * time.Millisecond
		for {
			var resp any
			if s.Node.IsLeader() {
				resp, err = s.bulk(len(req.body), func() (any, error) { return h(ctx, req) })
				if err == nil {
					writeJSON(w, http.StatusOK, resp)
					return
				}
			} else if r.Header.Get(api.HeaderForwarded) != "" {
				// Never forward twice: the sender retries with the new leader.
				writeError(w, http.StatusServiceUnavailable, "no-leader", "not committed: this node is no longer the leader")
				return
			} else if err = s.forward(ctx, w, r, req); err == nil {
				return
			}
			var rej *cluster.RejectedError
			var unknown *cluster.OutcomeUnknownError
			switch {
			case errors.As(err, &rej):
				writeError(w, http.StatusBadRequest, "rejected", rej.Reason)
				return
			case errors.As(err, &unknown):
				unsettled = err
			case errors.Is(err, cluster.ErrNotLeader) || errors.Is(err, cluster.ErrNoLeader):
			case unsettled != nil:
				writeUnknown(w, req.request, fmt.Errorf("%w (then: %v)", unsettled, err))
				return
			default:
				writeError(w, http.StatusInternalServerError, "internal", err.Error())
				return
			}
			select {
			case <-ctx.Done():
				if unsettled != nil {
					writeUnknown(w, req.request, unsettled)
					return
				}
				writeError(w, http.StatusServiceUnavailable, "no-leader", fmt.Sprintf("not committed: no leader accepted the request within %s: %v", wait, err))
				return
			case <-time.After(backoff):
			}
			backoff = min(backoff*2, 500*time.Millisecond)
		}
	}
}

// readBody reads a request's body into one buffer of its announced size:
// a table of 100,000 real servers is 17 MB, which io.ReadAll would grow to
// by doubling and copying.
func readBody(r *http.Request) ([]byte, error) {
	if r.ContentLength <= 0 || r.ContentLength > MaxBody {
		return io.ReadAll(r.Body)
	}
	buf := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, buf); err != nil {
		return nil, err
	}
	return buf, nil
}

// briefResult keeps the first lines of a result's summary for the answer:
// the full diff of a large write (a line per real server) is the history's,
// not every answer's.
func briefResult(r fsm.Result) fsm.Result {
	const keep = 200
	lines := strings.SplitN(r.Summary, "\n", keep+1)
	if len(lines) > keep {
		rest := strings.Count(lines[keep], "\n") + 1
		r.Summary = strings.Join(lines[:keep], "\n") + fmt.Sprintf("\n… and %d more changes: ipvsman history %d", rest, r.Version)
	}
	return r
}

// writeUnknown answers a write whose outcome could not be settled in time.
func writeUnknown(w http.ResponseWriter, request string, cause error) {
	writeError(w, http.StatusServiceUnavailable, api.KindOutcomeUnknown, fmt.Sprintf("outcome unknown (request %s): see ipvsman history (%v)", request, cause))
}

// forward passes the request to the leader with the request's own ID and
// what is left of its deadline. A 503 from it becomes ErrNotLeader (it was
// not committed) or an unknown outcome, so that the caller retries; a
// connection that broke after the request may have been sent is an
// unknown outcome too.
func (s *Server) forward(ctx context.Context, w http.ResponseWriter, r *http.Request, req writeReq) error {
	_, leaderAPI, err := s.Node.LeaderAPI()
	if err != nil {
		return err
	}
	base := api.BaseURL(leaderAPI, s.TLS != nil)
	if api.InClear(base) {
		// Not sent: the token would cross the network in clear.
		return fmt.Errorf("forward to leader at %s: %w", leaderAPI, &api.PlainHTTPError{URL: base, Fix: PlainFix})
	}
	hr, err := http.NewRequestWithContext(ctx, r.Method, base+r.URL.RequestURI(), bytes.NewReader(req.body))
	if err != nil {
		return err
	}
	// The caller's role, with this node's own token for it: during a
	// rotation, the one a leader not yet reloaded still accepts.
	got, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	hr.Header.Set("Authorization", "Bearer "+s.Tokens.forwardAs(got))
	hr.Header.Set("Content-Type", "application/json")
	// The claim as the client sent it, and the principal it was
	// authenticated as here, which the leader takes from a node only.
	if req.who.Claim != "" {
		hr.Header.Set(api.HeaderActor, req.who.Claim)
	}
	hr.Header.Set(api.HeaderPrincipal, req.who.Principal)
	if s.TLS == nil {
		hr.Header.Set(api.HeaderNodeKey, s.Tokens.NodeKey())
	}
	hr.Header.Set(api.HeaderRequest, req.request)
	hr.Header.Set(api.HeaderForwarded, s.Node.ID())
	if dl, ok := ctx.Deadline(); ok {
		hr.Header.Set(api.HeaderTimeout, strconv.FormatInt(max(time.Until(dl).Milliseconds()-answerMargin.Milliseconds(), 1), 10))
	}
	resp, err := s.forwardHTTP.Do(hr)
	if err != nil {
		if api.NotSent(err) {
			return fmt.Errorf("%w: forward to leader at %s: %w", cluster.ErrNoLeader, leaderAPI, err)
		}
		return &cluster.OutcomeUnknownError{Request: req.request, Cause: fmt.Errorf("forward to leader at %s: %w", leaderAPI, err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return &cluster.OutcomeUnknownError{Request: req.request, Cause: fmt.Errorf("forward to leader at %s: read answer: %w", leaderAPI, err)}
	}
	if resp.StatusCode == http.StatusServiceUnavailable {
		var e api.ErrorResponse
		_ = json.Unmarshal(b, &e)
		if e.Kind == api.KindOutcomeUnknown {
			return &cluster.OutcomeUnknownError{Request: req.request, Cause: fmt.Errorf("leader at %s: %s", leaderAPI, e.Error)}
		}
		return fmt.Errorf("%w: leader at %s answered 503: %s", cluster.ErrNotLeader, leaderAPI, e.Error)
	}
	w.Header().Set("Content-Type", resp.Header.Get("Content-Type"))
	w.WriteHeader(resp.StatusCode)
	if _, err := w.Write(b); err != nil {
		s.Log.Warn("forward copy failed", "err", err)
	}
	return nil
}

// answerMargin is taken off a deadline passed on, so that the node that
// passes a request on has time to answer its own client.
const answerMargin = 250 * time.Millisecond

func (s *Server) commit(ctx context.Context, typ fsm.CommandType, payload any, req writeReq) (any, error) {
	res, err := s.Node.ProposeWrite(ctx, cluster.Write{Type: typ, Payload: payload, Actor: req.actor, Request: req.request})
	if err != nil {
		return nil, err
	}
	return api.WriteResponse{Result: briefResult(res), Leader: s.Node.ID()}, nil
}

func (s *Server) ops(ctx context.Context, req writeReq) (any, error) {
	body, err := decode[api.OpsRequest](req.body)
	if err != nil {
		return nil, err
	}
	var have int
	res, err := s.Node.ProposeWrite(ctx, cluster.Write{
		Type: fsm.CmdOps, Actor: req.actor, Request: req.request,
		Complete: func(c *fsm.Config) any {
			have = len(c.Services)
			return fsm.OpsPayload{Ops: fsm.KeepEditedStates(c, fsm.NameDeletedServers(c, body.Ops))}
		},
		Admit: func(next *fsm.Config) error {
			if err := s.Limits.checkSize(next); err != nil {
				return err
			}
			if !body.AllowEmpty {
				return checkEmpty(have, next)
			}
			return nil
		},
	})
	if err != nil {
		return nil, err
	}
	return api.WriteResponse{Result: briefResult(res), Leader: s.Node.ID()}, nil
}

// checkEmpty refuses a write that would leave no service where there are
// some, unless the client said so (--allow-empty): an empty file or an
// import that converted nothing must not wipe the table.
func checkEmpty(have int, next *fsm.Config) error {
	if next != nil && len(next.Services) == 0 && have > 0 {
		return fmt.Errorf("the result has no services: this write would remove all %d services; give --allow-empty if that is what you want", have)
	}
	return nil
}

func (s *Server) apply(ctx context.Context, req writeReq) (any, error) {
	body, err := decode[api.ApplyRequest](req.body)
	if err != nil {
		return nil, err
	}
	if err := s.Limits.checkSize(body.Config); err != nil {
		return nil, &cluster.RejectedError{Reason: err.Error()}
	}
	var admit func(cur, next *fsm.Config) error
	if !body.AllowEmpty {
		admit = func(cur, next *fsm.Config) error { return checkEmpty(len(cur.Services), next) }
	}
	return s.previewAndCommit(ctx, fsm.CmdReplaceConfig, fsm.ReplaceConfigPayload{Config: body.Config, Reason: body.Reason}, body.DryRun, admit, req)
}

func (s *Server) rollback(ctx context.Context, req writeReq) (any, error) {
	body, err := decode[api.RollbackRequest](req.body)
	if err != nil {
		return nil, err
	}
	return s.previewAndCommit(ctx, fsm.CmdRollback, fsm.RollbackPayload{Version: body.Version}, body.DryRun, nil, req)
}

// previewAndCommit answers with the diff a whole-topology command makes,
// and the counts of what it adds and removes, computed against the state
// it commits onto, and commits it unless this is a dry run.
func (s *Server) previewAndCommit(ctx context.Context, typ fsm.CommandType, payload any, dryRun bool, admit func(cur, next *fsm.Config) error, req writeReq) (any, error) {
	var out api.ApplyResponse
	var cur *fsm.Config
	w := cluster.Write{
		Type: typ, Payload: payload, Actor: req.actor, Request: req.request, DryRun: dryRun,
		Complete: func(c *fsm.Config) any { cur = c; return payload },
		Inspect: func(cur, next *fsm.Config) {
			out.Diff = []string{}
			if next != nil {
				out.Diff = fsm.DiffConfig(cur, next)
				t := fsm.Count(cur, next)
				out.Counts = &t
			}
		},
	}
	if admit != nil {
		w.Admit = func(next *fsm.Config) error { return admit(cur, next) }
	}
	res, err := s.Node.ProposeWrite(ctx, w)
	if err != nil {
		return nil, err
	}
	out.Result, out.DryRun = briefResult(res), dryRun
	return out, nil
}

func (s *Server) zero(ctx context.Context, req writeReq) (any, error) {
	body, err := decode[api.ZeroRequest](req.body)
	if err != nil {
		return nil, err
	}
	return s.commit(ctx, fsm.CmdZeroCounters, fsm.ZeroCountersPayload{Service: body.Service}, req)
}

// bulkBody is the request size from which handling it is bulk work.
const bulkBody = 32 << 10

// bulk runs f through Bulk when the body is large.
func (s *Server) bulk(size int, f func() (any, error)) (resp any, err error) {
	if s.Bulk == nil || size < bulkBody {
		return f()
	}
	s.Bulk(func() { resp, err = f() })
	return resp, err
}
