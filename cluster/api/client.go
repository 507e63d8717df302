package api

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

// Client talks to one node's API. Writes sent to a follower are forwarded
// to the leader by that follower.
type Client struct {
	Base  string // "127.0.0.1:8000", "http://127.0.0.1:8000" or "https://…"
	Token string
	Actor string // who is asking, recorded in the history as claimed
	// Principal and NodeKey are a node's, never the CLI's: the principal
	// it authenticated, on a request it passes on for a client
	// (HeaderPrincipal), and in a plain cluster the proof that it is a
	// node (HeaderNodeKey).
	Principal string
	NodeKey   string
	// TLS, when set, makes a Base without a scheme https and verifies the
	// server with it (a TLS cluster is all-TLS). It is used when HTTP is
	// nil; a given HTTP client brings its own transport.
	TLS  *tls.Config
	HTTP *http.Client
	// CA names the CA the caller verifies with, for error messages:
	// `--ca "ca.pem"`, `--tls-ca "ca.pem"`.
	CA string
	// RequestID, when set, names each write (tests and scripts that match
	// writes with the history); nil makes a random ID per write.
	RequestID func() string
	// InsecureHTTP lets the token go over plain HTTP to an address other
	// than loopback, in clear: without it such a request is refused before
	// anything is sent (plain.go).
	InsecureHTTP bool
	// PlainFix is the advice in the errors of plain HTTP (a request
	// refused, or a TLS server reached): "" gives the CLI's, --ca or
	// --insecure-http.
	PlainFix string
}

// OutcomeUnknownError is a write whose outcome the client could not learn
// before its deadline: it may have been committed. `ipvsman history`
// shows the request ID of every committed write.
type OutcomeUnknownError struct {
	Request string
	Msg     string
}

func (e *OutcomeUnknownError) Error() string { return e.Msg }

// Error is a non-2xx answer from a node.
type Error struct {
	Status int
	Kind   string
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// BaseURL is addr with its scheme: as given, or https when the caller
// runs TLS and http otherwise.
func BaseURL(addr string, secure bool) string {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return strings.TrimRight(addr, "/")
	}
	if secure {
		return "https://" + strings.TrimRight(addr, "/")
	}
	return "http://" + strings.TrimRight(addr, "/")
}

// URL is the client's base URL with its scheme.
func (c *Client) URL() string { return BaseURL(c.Base, c.TLS != nil) }

// refusedHandshake reports a TLS handshake that failed on a certificate:
// the request was never sent, and a retry would fail the same way.
func refusedHandshake(err error) bool {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	var verify *tls.CertificateVerificationError
	var alert tls.AlertError
	// A server's alert ("remote error: tls: certificate required") has no
	// exported type outside QUIC.
	return errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &host) || errors.As(err, &verify) || errors.As(err, &alert) ||
		strings.Contains(err.Error(), "remote error: tls:")
}

// explain adds what to do to a certificate that did not verify.
func (c *Client) explain(err error) error {
	var unknown x509.UnknownAuthorityError
	var invalid x509.CertificateInvalidError
	var host x509.HostnameError
	var verify *tls.CertificateVerificationError
	switch {
	case errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &host) || errors.As(err, &verify):
	default:
		return err
	}
	switch {
	case c.CA != "":
		return fmt.Errorf("%w (the server's certificate does not verify against %s)", err, c.CA)
	case c.TLS == nil && c.HTTP == nil:
		return fmt.Errorf("%w (the server's certificate does not verify against the system's roots: give the cluster CA with --ca or IPVSMAN_CA)", err)
	}
	return err
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	if err := c.checkPlain(ctx); err != nil {
		return err
	}
	var body []byte
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = b
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{}
		if _, ok := ctx.Deadline(); !ok {
			hc.Timeout = 60 * time.Second
		}
		if c.TLS != nil {
			t := http.DefaultTransport.(*http.Transport).Clone()
			t.TLSClientConfig = c.TLS
			hc.Transport = t
			defer t.CloseIdleConnections()
		}
	}
	if method != http.MethodPost {
		resp, err := c.send(ctx, hc, method, path, body, "")
		if err != nil {
			return err
		}
		return c.answer(resp, method, path, out)
	}
	return c.write(ctx, hc, path, body, out)
}

// write sends a write with one request ID, again after a broken
// connection, until it has an answer or ctx ends. A write that may have
// reached a node and got no answer is reported as *OutcomeUnknownError,
// never as a failure.
func (c *Client) write(ctx context.Context, hc *http.Client, path string, body []byte, out any) error {
	id := NewRequestID()
	if c.RequestID != nil {
		id = c.RequestID()
	}
	var maybeSent error
	backoff := 50 * time.Millisecond
	for {
		resp, err := c.send(ctx, hc, http.MethodPost, path, body, id)
		if err == nil {
			err = c.answer(resp, http.MethodPost, path, out)
			var e *Error
			if errors.As(err, &e) && e.Kind == KindOutcomeUnknown {
				return &OutcomeUnknownError{Request: id, Msg: e.Msg}
			}
			return err
		}
		if !NotSent(err) && !refusedHandshake(err) {
			maybeSent = err
		}
		unsettled := func() error {
			if maybeSent != nil {
				return &OutcomeUnknownError{Request: id, Msg: fmt.Sprintf("outcome unknown (request %s): see ipvsman history (%v)", id, maybeSent)}
			}
			return err
		}
		// A certificate that does not verify will not verify on a retry; a
		// caller with no deadline retries itself (JoinLoop); and a request
		// that never left needs no settling: the caller hears at once
		// that the node is not there.
		if _, ok := ctx.Deadline(); !ok || refusedHandshake(err) || maybeSent == nil {
			return unsettled()
		}
		select {
		case <-ctx.Done():
			return unsettled()
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// clientMargin is what a client keeps of its deadline to read the answer:
// the node is asked to answer this much before the client gives up.
func clientMargin(left time.Duration) time.Duration {
	return min(left/10, time.Second)
}

func (c *Client) send(ctx context.Context, hc *http.Client, method, path string, body []byte, request string) (*http.Response, error) {
	url := c.URL()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url+path, rd)
	if err != nil {
		return nil, fmt.Errorf("api %q: %w", c.Base, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Content-Type", "application/json")
	if c.Actor != "" {
		req.Header.Set(HeaderActor, c.Actor)
	}
	if c.Principal != "" {
		req.Header.Set(HeaderPrincipal, c.Principal)
	}
	if c.NodeKey != "" {
		req.Header.Set(HeaderNodeKey, c.NodeKey)
	}
	if request != "" {
		req.Header.Set(HeaderRequest, request)
		if dl, ok := ctx.Deadline(); ok {
			left := time.Until(dl)
			req.Header.Set(HeaderTimeout, strconv.FormatInt(max((left-clientMargin(left)).Milliseconds(), 1), 10))
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("api %s: %w", url, c.explain(err))
	}
	return resp, nil
}

func (c *Client) answer(resp *http.Response, method, path string, out any) error {
	defer resp.Body.Close()
	url := c.URL()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("api %s: read answer: %w", url, err)
	}
	if resp.StatusCode/100 != 2 {
		if err := c.tlsAnswer(resp.StatusCode, b); err != nil {
			return err
		}
		var e ErrorResponse
		if json.Unmarshal(b, &e) != nil || e.Error == "" {
			e.Error = fmt.Sprintf("%s %s: %s", method, path, resp.Status)
		}
		return &Error{Status: resp.StatusCode, Kind: e.Kind, Msg: e.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("api %s: decode answer: %w", url, err)
	}
	return nil
}

// Status is this node's own status.
func (c *Client) Status(ctx context.Context) (NodeStatus, error) {
	var s NodeStatus
	return s, c.do(ctx, "GET", "/v1/status", nil, &s)
}

// ClusterStatus is every member's status, gathered by this node.
func (c *Client) ClusterStatus(ctx context.Context) (ClusterStatus, error) {
	var s ClusterStatus
	return s, c.do(ctx, "GET", "/v1/cluster/status", nil, &s)
}

// Config is the replicated topology as this node has applied it.
func (c *Client) Config(ctx context.Context) (ConfigResponse, error) {
	var r ConfigResponse
	return r, c.do(ctx, "GET", "/v1/config", nil, &r)
}

// Ops commits ipvsadm commands atomically. They are the operator's
// explicit commands, so they may leave no service (ipvsadm -C).
func (c *Client) Ops(ctx context.Context, ops []fsm.Op) (WriteResponse, error) {
	return c.OpsRequest(ctx, OpsRequest{Ops: ops, AllowEmpty: true})
}

// OpsRequest commits req's ops atomically; without req.AllowEmpty a result
// with no services (where there were some) is refused.
func (c *Client) OpsRequest(ctx context.Context, req OpsRequest) (WriteResponse, error) {
	var r WriteResponse
	return r, c.do(ctx, "POST", "/v1/ops", req, &r)
}

// Apply replaces the topology (or only shows the diff when dryRun). A
// topology with no services is refused where there are some.
func (c *Client) Apply(ctx context.Context, cfg *fsm.Config, reason string, dryRun bool) (ApplyResponse, error) {
	return c.ApplyRequest(ctx, ApplyRequest{Config: cfg, Reason: reason, DryRun: dryRun})
}

// ApplyRequest replaces the topology as req says.
func (c *Client) ApplyRequest(ctx context.Context, req ApplyRequest) (ApplyResponse, error) {
	var r ApplyResponse
	return r, c.do(ctx, "POST", "/v1/config", req, &r)
}

// Rollback makes a new version equal to an old one.
func (c *Client) Rollback(ctx context.Context, version uint64, dryRun bool) (ApplyResponse, error) {
	var r ApplyResponse
	return r, c.do(ctx, "POST", "/v1/rollback", RollbackRequest{Version: version, DryRun: dryRun}, &r)
}

// History lists the configuration versions.
func (c *Client) History(ctx context.Context) ([]HistoryItem, error) {
	var r []HistoryItem
	return r, c.do(ctx, "GET", "/v1/history", nil, &r)
}

// HistoryEntry is one version with its full config.
func (c *Client) HistoryEntry(ctx context.Context, version uint64) (fsm.HistoryEntry, error) {
	var r fsm.HistoryEntry
	return r, c.do(ctx, "GET", fmt.Sprintf("/v1/history/%d", version), nil, &r)
}

// Zero resets counters cluster-wide (service "" = all).
func (c *Client) Zero(ctx context.Context, service string) error {
	return c.do(ctx, "POST", "/v1/zero", ZeroRequest{Service: service}, nil)
}

// Join asks the cluster (through this node) to add a node.
func (c *Client) Join(ctx context.Context, req JoinRequest) error {
	return c.do(ctx, "POST", "/v1/cluster/join", req, nil)
}

// JoinVia asks this node to join the cluster through member's API.
func (c *Client) JoinVia(ctx context.Context, member string) error {
	return c.do(ctx, "POST", "/v1/cluster/join-via", JoinViaRequest{Member: member}, nil)
}

// Leave removes node id from the cluster.
func (c *Client) Leave(ctx context.Context, id string) error {
	return c.do(ctx, "POST", "/v1/cluster/leave", NodeRequest{ID: id}, nil)
}

// Transfer moves leadership to id ("" = the most up-to-date follower) and
// returns the new leader's ID.
func (c *Client) Transfer(ctx context.Context, id string) (string, error) {
	var r WriteResponse
	err := c.do(ctx, "POST", "/v1/cluster/transfer", NodeRequest{ID: id}, &r)
	return r.Leader, err
}

// Kernel is this node's own kernel IPVS table with its counters.
// Health is the leader's view of every health check.
func (c *Client) Health(ctx context.Context) (HealthResponse, error) {
	var out HealthResponse
	return out, c.do(ctx, http.MethodGet, "/v1/health", nil, &out)
}

// Connections is the connection table of the node at Base.
func (c *Client) Connections(ctx context.Context) (ConnsResponse, error) {
	var r ConnsResponse
	return r, c.do(ctx, "GET", "/v1/kernel/connections", nil, &r)
}

func (c *Client) Kernel(ctx context.Context) (KernelResponse, error) {
	var r KernelResponse
	return r, c.do(ctx, "GET", "/v1/kernel", nil, &r)
}

// Drain takes the node at c.Base out of the cluster (see POST /v1/node/drain).
func (c *Client) Drain(ctx context.Context) (DrainResponse, error) {
	var r DrainResponse
	err := c.do(ctx, "POST", "/v1/node/drain", struct{}{}, &r)
	return r, err
}

// Command proposes a command type of a newer protocol by name.
func (c *Client) Command(ctx context.Context, name string, payload any) (WriteResponse, error) {
	var r WriteResponse
	err := c.do(ctx, "POST", "/v1/commands/"+name, payload, &r)
	return r, err
}

// NewRequestID makes a request ID for a write whose client gave none.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// NotSent reports whether a request failed before any of it could reach the
// server: the connection was never made.
func NotSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}
