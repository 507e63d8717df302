package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

// Client talks to one node's API. Writes sent to a follower are forwarded
// to the leader by that follower.
type Client struct {
	Base  string // "127.0.0.1:8000" or "http://127.0.0.1:8000"
	Token string
	Actor string // who is asking, recorded in the history
	HTTP  *http.Client
}

// Error is a non-2xx answer from a node.
type Error struct {
	Status int
	Kind   string
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

func baseURL(addr string) string {
	if strings.HasPrefix(addr, "http://") || strings.HasPrefix(addr, "https://") {
		return strings.TrimRight(addr, "/")
	}
	return "http://" + strings.TrimRight(addr, "/")
}

func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, baseURL(c.Base)+path, body)
	if err != nil {
		return fmt.Errorf("api %q: %w", c.Base, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	req.Header.Set("Content-Type", "application/json")
	if c.Actor != "" {
		req.Header.Set(HeaderActor, c.Actor)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("api %s: %w", baseURL(c.Base), err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("api %s: read answer: %w", baseURL(c.Base), err)
	}
	if resp.StatusCode/100 != 2 {
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
		return fmt.Errorf("api %s: decode answer: %w", baseURL(c.Base), err)
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

// Ops commits ipvsadm commands atomically.
func (c *Client) Ops(ctx context.Context, ops []fsm.Op) (WriteResponse, error) {
	var r WriteResponse
	return r, c.do(ctx, "POST", "/v1/ops", OpsRequest{Ops: ops}, &r)
}

// Apply replaces the topology (or only shows the diff when dryRun).
func (c *Client) Apply(ctx context.Context, cfg *fsm.Config, reason string, dryRun bool) (ApplyResponse, error) {
	var r ApplyResponse
	return r, c.do(ctx, "POST", "/v1/config", ApplyRequest{Config: cfg, Reason: reason, DryRun: dryRun}, &r)
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

// Join asks the cluster (through this node) to add m.
func (c *Client) Join(ctx context.Context, m fsm.Member) error {
	return c.do(ctx, "POST", "/v1/cluster/join", m, nil)
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
