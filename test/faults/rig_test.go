package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/test/failover"
	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// prefix keeps the suite's namespaces apart from the host tests' and the
// lab's, so they can run on one host at once.
const prefix = "flt-"

// service is the virtual service every write adds a real server to.
var service = topo.VIP + ":80"

// rig is one scenario's world: the lab topology on the host (no IPVS),
// an n-node cluster in the director namespaces holding the VIP, an
// observer sampling who holds it, and a client that talks to each node's
// API from the client namespace.
type rig struct {
	t     *testing.T
	tp    *topo.Topology
	c     *harness.Cluster
	nodes []*harness.Node
	obs   *failover.Observer
	http  *http.Client
	token string
	start time.Time
	// crashes are the spans from each SIGKILL to the end of the cleanup
	// systemd would run after it: the only overlap a run may have.
	crashes []failover.Interval
}

// maxCrashOverlap is the most two nodes may hold the VIP at once in the
// windows from a kill to its ExecStopPost cleanup, added up over a run.
const maxCrashOverlap = 100 * time.Millisecond

// newRig builds the topology and an n-node cluster, applies a topology
// with the VIP and one empty service, and waits until the leader alone
// holds the VIP.
func newRig(t *testing.T, n int, args ...string) *rig {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("the fault-injection suite needs root (network namespaces, mounts): run it as root (make faults)")
	}
	tp := topo.Build(t, topo.Options{Prefix: prefix, NoIPv6: true, Directors: n})
	c, nodes := harness.DirectorsN(t, tp, n, "off", args...)
	tok, err := os.ReadFile(c.TokenFile)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{t: t, tp: tp, c: c, nodes: nodes, token: strings.TrimSpace(string(tok)), start: time.Now()}
	r.http = ClientIn(t, tp.NS(topo.Client), c.ClientTLS())
	var ids []string
	for _, nd := range nodes {
		ids = append(ids, nd.ID)
	}
	file := filepath.Join(t.TempDir(), "vip.topo")
	if err := os.WriteFile(file, []byte("vip "+topo.VIP+"/32 eth0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.MustCLI(nodes[0], "", "apply", "-f", file)
	c.MustCLI(nodes[0], "", "-A", "-t", service, "-s", "rr")
	r.obs = failover.NewObserver(t, tp, topo.VIP+"/32", ids...)
	r.waitVIPOnLeader()
	return r
}

// begin starts a run of a scenario: the observer's window opens, the
// writers start, and the cluster acknowledges writes before the fault
// (what: "the cut", say).
func (r *rig) begin(what string) *Writer {
	r.t.Helper()
	r.start = time.Now()
	w := r.startWriter()
	r.progress(w, 10, "before "+what)
	return w
}

// startWriter writes through every node of the rig.
func (r *rig) startWriter() *Writer {
	var bases []string
	for _, n := range r.nodes {
		bases = append(bases, r.c.BaseURL(n))
	}
	return StartWriter(bases, r.token, r.http, service, 80*time.Millisecond)
}

// model reads node n's own copy of the state (a stale read: no leader is
// asked), as the real servers of the service, sorted, and the version.
func (r *rig) model(n *harness.Node) ([]string, uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", r.c.BaseURL(n)+"/v1/config?stale=1", nil)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+r.token)
	resp, err := r.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, 0, fmt.Errorf("%s: GET /v1/config: %s", n.ID, resp.Status)
	}
	var cfg api.ConfigResponse
	if err := json.NewDecoder(resp.Body).Decode(&cfg); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", n.ID, err)
	}
	var servers []string
	for _, s := range cfg.Config.Services {
		for _, rs := range s.Servers {
			servers = append(servers, rs.Key())
		}
	}
	slices.Sort(servers)
	return servers, cfg.Version, nil
}

// leader returns the node the running nodes agree leads.
func (r *rig) leader() *harness.Node {
	r.t.Helper()
	return r.c.Leader(r.t, r.running()[0], r.running())
}

func (r *rig) running() []*harness.Node {
	var out []*harness.Node
	for _, n := range r.nodes {
		if n.Running() {
			out = append(out, n)
		}
	}
	return out
}

func (r *rig) waitVIPOnLeader() {
	r.t.Helper()
	lead := r.leader()
	if err := r.obs.WaitFor(func(h []string) bool { return slices.Equal(h, []string{lead.ID}) }, 20*time.Second); err != nil {
		r.t.Fatalf("VIP not on the leader %s alone: %v", lead.ID, err)
	}
}

// converge waits until every running node's own copy of the model is
// the same version and holds every acknowledged write, and returns how
// long that took from since; lost lists the acknowledged writes missing
// from the leader's model when the nodes never agreed, or from the agreed
// model.
func (r *rig) converge(since time.Time, acked []string, within time.Duration) (took time.Duration, lost []string, err error) {
	deadline := time.Now().Add(within)
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var last string
	for ; ; <-tick.C {
		var first []string
		var version uint64
		agree := true
		for i, n := range r.running() {
			got, v, err := r.model(n)
			if err != nil {
				agree, last = false, err.Error()
				break
			}
			if i == 0 {
				first, version = got, v
			} else if v != version || !slices.Equal(got, first) {
				agree, last = false, fmt.Sprintf("%s has version %d with %d real servers, %s version %d with %d", n.ID, v, len(got), r.running()[0].ID, version, len(first))
			}
		}
		if agree {
			if lost = Missing(acked, first); len(lost) == 0 {
				if last != "" {
					r.t.Logf("before agreeing: %s", last)
				}
				return time.Since(since), nil, nil
			}
			last = fmt.Sprintf("all at version %d, %d acknowledged writes missing", version, len(lost))
		}
		if time.Now().After(deadline) {
			if !agree {
				lost = r.missingFromNewest(acked)
			}
			return time.Since(since), lost, fmt.Errorf("no agreement within %s: %s", within, last)
		}
	}
}

// missingFromNewest is missing against the highest version any running
// node answers with: what was lost if the nodes never agree.
func (r *rig) missingFromNewest(acked []string) []string {
	var best []string
	var top uint64
	for _, n := range r.running() {
		if got, v, err := r.model(n); err == nil && v >= top {
			best, top = got, v
		}
	}
	return Missing(acked, best)
}

// crash kills n with SIGKILL, as a crashed process dies (kill -9, a
// panic, the OOM killer) on a machine that lives on, and at once runs what
// the packaged unit's ExecStopPost then runs: ipvsmand --release-vips. The
// observer counts every VIP the dead process left up until that removes
// it, as a client on the segment would meet it.
func (r *rig) crash(n *harness.Node) {
	r.t.Helper()
	from := time.Now()
	n.Kill()
	out, err := n.ReleaseVIPs()
	r.crashes = append(r.crashes, failover.Interval{From: from, To: time.Now()})
	if err != nil {
		r.t.Errorf("ExecStopPost after killing %s: %v", n.ID, err)
	} else if strings.Contains(out, "address removed") {
		r.t.Logf("%s killed; ExecStopPost removed what it recorded %s later: %s", n.ID, time.Since(from).Round(time.Millisecond), lastLine(out, "address removed"))
	}
}

// overlap judges the VIP's single owner over the run: the overlap in its
// crash windows (kill to cleanup) and outside them, how finely the run was
// observed, and an error for what breaks the promise: any overlap outside
// a crash window, more than maxCrashOverlap inside, or a resolution too
// coarse for the figure to mean anything.
func (r *rig) overlap(scenario string) (total time.Duration, res failover.Resolution, err error) {
	end := time.Now()
	total, worst := r.obs.OverlapBetween(r.start, end)
	var inCrash time.Duration
	for _, c := range r.crashes {
		if c.To.After(r.start) {
			in, _ := r.obs.OverlapBetween(later(c.From, r.start), c.To)
			inCrash += in
		}
	}
	res = r.obs.Resolution(r.start, end)
	var errs []error
	if out := total - inCrash; out > 0 {
		errs = append(errs, fmt.Errorf("%s: two nodes held the VIP at once for %s outside any crash window (worst stretch %s; %s)", scenario, out, worst, res))
	}
	if inCrash > maxCrashOverlap {
		errs = append(errs, fmt.Errorf("%s: two nodes held the VIP at once for %s between kills and their cleanup, more than %s (%s)", scenario, inCrash, maxCrashOverlap, res))
	}
	if rerr := res.Err(); rerr != nil {
		errs = append(errs, fmt.Errorf("%s: %w", scenario, rerr))
	}
	r.crashes = nil
	return total, res, errors.Join(errs...)
}

// finish checks the scenario's three promises and records its figures:
// every acknowledged write is on every node, no two nodes held the VIP at
// once, and the nodes agree. since is when the fault was healed.
func (r *rig) finish(scenario string, w *Writer, since time.Time) {
	r.t.Helper()
	w.Stop()
	acked := w.Acked()
	took, lost, err := r.converge(since, acked, 60*time.Second)
	if err != nil {
		r.t.Errorf("%s: %v", scenario, err)
	}
	if len(lost) > 0 {
		r.t.Errorf("%s: %d acknowledged writes lost, e.g. %v", scenario, len(lost), lost[:min(len(lost), 5)])
	}
	if lead := r.leader(); r.obs.WaitFor(func(h []string) bool { return slices.Equal(h, []string{lead.ID}) }, 20*time.Second) != nil {
		r.t.Errorf("%s: after healing the VIP is on %v, the leader is %s", scenario, r.obs.Current(), lead.ID)
	}
	total, res, oerr := r.overlap(scenario)
	if oerr != nil {
		r.t.Error(oerr)
	}
	st := w.Stats()
	r.t.Logf("%s: %d writes acknowledged, %d refused (last: %s), %d unanswered (last: %s); lost %d; VIP overlap %s (%s); converged %s after the heal",
		scenario, len(acked), st.Refused, st.LastNo, st.Unknown, st.LastErr, len(lost), total, res, took.Round(time.Millisecond))
	record(scenario, len(acked), len(lost), total, res, took, err == nil)
}
