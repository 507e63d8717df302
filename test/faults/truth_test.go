package faults

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
	"github.com/ipvsman/ipvsman/test/harness"
)

// truthSpan is how long the writers of one run write; the faults come in
// rounds (truthFaults) while the next round fits, about truthRound.
const (
	truthSpan  = 55 * time.Second
	truthRound = 20 * time.Second
)

// TestWriteTruth checks that writes tell the truth (invariant 8) while the
// cluster is hurt: three writers write through every node (adds, edits
// and deletes of real servers, and now and then one bulk write of 2,500
// real servers into a service of its own), both cores are kept busy, the
// leader is killed with SIGKILL, leadership is transferred, each follower
// is restarted, and the leader is killed again. Each write's reported
// outcome is then compared with the history (every version carries the
// request ID of the write that made it) and the model the nodes agree on.
func TestWriteTruth(t *testing.T) {
	began := time.Now()
	r := newRig(t, 3)
	t.Logf("rig ready in %s", time.Since(began).Round(time.Millisecond))
	for run := range runs() {
		r.truthRun(run)
	}
}

func (r *rig) truthRun(run int) {
	t := r.t
	r.start = time.Now()
	var bases, names []string
	for _, n := range r.nodes {
		bases, names = append(bases, r.c.BaseURL(n)), append(names, n.ID)
	}
	// Every version the writes may make is after the current one.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	cfg, err := (&api.Client{Base: r.c.BaseURL(r.leader()), Token: r.token, HTTP: r.http}).Config(ctx)
	cancel()
	if err != nil {
		t.Fatalf("write truth: read the model: %v", err)
	}
	hist := NewHistory(cfg.Version)
	stopPoll := r.pollHistory(hist, bases, names)
	stopBusy := busy(t, 2)
	w := StartTruthWriter(run, bases, names, r.token, r.http, service)
	t.Cleanup(w.Stop)
	began := time.Now()
	r.truthProgress(w, 15, "before the faults")
	// The faults come in rounds while a round still fits in the span.
	for round := 1; round == 1 || time.Since(began) < truthSpan-truthRound; round++ {
		t.Logf("+%s: round %d of faults", time.Since(r.start).Round(time.Millisecond), round)
		r.truthFaults(w)
	}
	t.Logf("faults done after %s; writing on until %s", time.Since(began).Round(time.Millisecond), truthSpan)
	if left := truthSpan - time.Since(began); left > 0 {
		hold(left)
	}
	w.Stop()
	stopBusy()
	r.finishTruth(w, hist, stopPoll, time.Now())
}

// truthFaults is one round of faults while w writes: the leader killed
// and restarted, leadership transferred, each follower restarted, the
// leader killed again.
func (r *rig) truthFaults(w *TruthWriter) {
	t := r.t
	// The leader is first killed, and leadership transferred, while a
	// bulk write is being committed: the longest commits, the likeliest
	// to be cut off half way.
	lead := r.leader()
	r.whileBulk(w)
	r.kill(lead, "the leader")
	r.truthProgress(w, 10, "with the leader "+lead.ID+" killed")
	lead.Start()
	r.truthProgress(w, 10, "after "+lead.ID+" restarted")
	hold(time.Second)

	from := r.leader()
	r.whileBulk(w)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	to, err := (&api.Client{Base: r.c.BaseURL(from), Token: r.token, HTTP: r.http}).Transfer(ctx, "")
	cancel()
	if err != nil {
		r.transferFailed(from, err)
	} else {
		t.Logf("+%s: leadership transferred from %s to %s", time.Since(r.start).Round(time.Millisecond), from.ID, to)
	}
	r.truthProgress(w, 10, "after the transfer")
	hold(time.Second)

	for i, f := range others(r.nodes, r.leader()) {
		if i == 0 {
			if err := f.Stop(); err != nil {
				t.Errorf("stop follower %s: %v", f.ID, err)
			}
			t.Logf("+%s: stopped follower %s (SIGTERM)", time.Since(r.start).Round(time.Millisecond), f.ID)
		} else {
			r.kill(f, "follower")
		}
		r.truthProgress(w, 10, "with follower "+f.ID+" down")
		f.Start()
		r.truthProgress(w, 5, "after "+f.ID+" restarted")
		hold(time.Second)
	}

	lead = r.leader()
	r.kill(lead, "the leader")
	r.truthProgress(w, 10, "with the leader "+lead.ID+" killed")
	lead.Start()
	r.truthProgress(w, 10, "after "+lead.ID+" restarted")
}

// transferFailed tells a transfer that failed from one reported failed
// although leadership moved: the latter is a finding (transfers are not
// among the writes judged; the run goes on either way).
func (r *rig) transferFailed(from *harness.Node, err error) {
	now := r.leader()
	if now == from {
		r.t.Logf("+%s: transfer of leadership from %s failed, %s still leads: %v", time.Since(r.start).Round(time.Millisecond), from.ID, from.ID, err)
		return
	}
	answer := err.Error()
	var e *api.Error
	if errors.As(err, &e) {
		answer = fmt.Sprintf("%d %s: %s", e.Status, e.Kind, e.Msg)
	}
	r.t.Logf("+%s: FINDING: transfer misreported: POST /v1/cluster/transfer to %s answered %s, but leadership moved to %s", time.Since(r.start).Round(time.Millisecond), from.ID, answer, now.ID)
	truthMu.Lock()
	truthTransfers++
	truthMu.Unlock()
	for _, line := range strings.Split(from.Log(), "\n") {
		if t, ok := logTime(line); ok && !t.Before(r.start) && (strings.Contains(line, "transfer") || strings.Contains(line, `"msg":"leadership`) || strings.Contains(line, "election")) {
			r.t.Logf("%s at %s: %s", from.ID, r.since(t), line)
		}
	}
}

// whileBulk waits, up to 20 s, until a bulk write is in flight.
func (r *rig) whileBulk(w *TruthWriter) {
	r.t.Helper()
	if w.InFlight(KindBulk) > 0 {
		return
	}
	select {
	case <-w.BulkSent(): // an old signal: the next one is wanted
	default:
	}
	select {
	case <-w.BulkSent():
	case <-time.After(20 * time.Second):
		r.t.Logf("no bulk write in flight within 20 s: the next fault comes without one")
	}
}

// kill sends SIGKILL to n, a crashed process (rig.crash).
func (r *rig) kill(n *harness.Node, what string) {
	r.t.Helper()
	r.crash(n)
	r.t.Logf("+%s: killed %s %s (SIGKILL)", time.Since(r.start).Round(time.Millisecond), what, n.ID)
}

// truthProgress waits until more writes were acknowledged.
func (r *rig) truthProgress(w *TruthWriter, more int, what string) {
	r.t.Helper()
	base, since := w.Committed(), time.Now()
	defer func() {
		r.t.Logf("%d more writes acknowledged %s in %s", more, what, time.Since(since).Round(time.Millisecond))
	}()
	harness.Eventually(r.t, 60*time.Second, fmt.Sprintf("%d more writes acknowledged %s", more, what), func() (bool, string) {
		n := w.Committed()
		return n >= base+more, fmt.Sprintf("%d acknowledged since; %s", n-base, w.Last())
	})
}

// finishTruth waits for the nodes to agree, reads the history and the
// model, judges the writes and records the figures.
func (r *rig) finishTruth(w *TruthWriter, hist *History, stopPoll func(), healed time.Time) {
	t := r.t
	took, _, cerr := r.converge(healed, nil, 60*time.Second)
	if cerr != nil {
		t.Errorf("write truth: %v", cerr)
	}
	if lead := r.leader(); r.obs.WaitFor(func(h []string) bool { return slices.Equal(h, []string{lead.ID}) }, 20*time.Second) != nil {
		t.Errorf("write truth: after healing the VIP is on %v, the leader is %s", r.obs.Current(), lead.ID)
	}
	overlap, res, oerr := r.overlap("write truth")
	if oerr != nil {
		// Recorded in the table, not a failure of this scenario: with
		// both cores saturated a starved leader can step down late, and
		// a starved observer samples coarsely (see docs/faults.md); the
		// VIP promise fails the other scenarios.
		t.Logf("FINDING: %v", oerr)
		r.logOverlaps()
	}
	t.Logf("+%s: converged", time.Since(r.start).Round(time.Millisecond))
	stopPoll()
	for _, n := range r.running() {
		r.mergeHistory(hist, n, true)
	}
	for _, p := range hist.Problems() {
		t.Errorf("write truth: the history read is incomplete, the figures cannot be trusted: %s", p)
	}
	lead := r.leader()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	cfg, err := (&api.Client{Base: r.c.BaseURL(lead), Token: r.token, HTTP: r.http}).Config(ctx)
	cancel()
	if err != nil {
		t.Fatalf("write truth: read the model from %s: %v", lead.ID, err)
	}
	final := ModelOf(cfg)
	t.Logf("+%s: read the history and the model", time.Since(r.start).Round(time.Millisecond))
	items := hist.Items()
	if len(items) == 0 {
		t.Fatalf("write truth: no version after %d read", hist.after)
	}
	fig := Judge(w.Records(), items, final)

	t.Logf("write truth: %d writes: %d committed (%d answered as duplicates), %d refused (%d rate limited), %d not committed, %d unknown; %d versions read (%d to %d); model version %d",
		fig.Writes, fig.Committed, fig.DuplicateAnswers, fig.Refused, fig.RateLimited, fig.NotCommitted, fig.Unknown, len(items), items[0].Version, items[len(items)-1].Version, cfg.Version)
	t.Logf("write truth: answered in %s", latencies(w.Records()))
	r.logSlow(w.Records(), 2*time.Second)
	if last := w.Last(); last != "" {
		t.Logf("write truth: %s", last)
	}
	t.Logf("write truth: %s", strings.Join(fig.Lines(), ", "))
	for i, f := range fig.Findings {
		if i == 40 {
			t.Logf("… and %d more findings", len(fig.Findings)-i)
			break
		}
		t.Log(f)
	}
	if fig.Bad() {
		t.Errorf("write truth: writes did not tell the truth: %s", strings.Join(fig.Lines(), ", "))
		r.logRequests(fig.Findings)
	}
	t.Logf("+%s: judged", time.Since(r.start).Round(time.Millisecond))
	record("write truth", fig.Committed, fig.Lost, overlap, res, took, cerr == nil)
	recordTruth(fig)
	r.dropBulk(lead, final)
}

// logOverlaps logs the stretches of this run in which two nodes held the
// VIP (a crashed node's included: the observer does not count those), and
// the nodes' VIP and leadership log lines of the run.
func (r *rig) logOverlaps() {
	for i, a := range r.nodes {
		for _, b := range r.nodes[i+1:] {
			for _, x := range r.obs.Intervals(a.ID) {
				for _, y := range r.obs.Intervals(b.ID) {
					from, to := later(x.From, y.From), earlier(x.To, y.To)
					if (to.IsZero() || from.Before(to)) && (to.IsZero() || to.After(r.start)) {
						r.t.Logf("VIP on %s during %s..%s and on %s during %s..%s", a.ID, r.since(x.From), r.since(x.To), b.ID, r.since(y.From), r.since(y.To))
					}
				}
			}
		}
	}
	r.t.Logf("the run started at %s (node logs are in wall-clock time)", r.start.UTC().Format(time.RFC3339Nano))
	for _, n := range r.nodes {
		for _, line := range strings.Split(n.Log(), "\n") {
			if t, ok := logTime(line); ok && !t.Before(r.start) && (strings.Contains(line, `"msg":"vip `) || strings.Contains(line, `"msg":"leadership`)) {
				r.t.Logf("%s at %s: %s", n.ID, r.since(t), line)
			}
		}
	}
}

// logTime is the time of a JSON log line.
func logTime(line string) (time.Time, bool) {
	var l struct {
		Time time.Time `json:"time"`
	}
	if json.Unmarshal([]byte(line), &l) != nil || l.Time.IsZero() {
		return time.Time{}, false
	}
	return l.Time, true
}

func (r *rig) since(at time.Time) string {
	if at.IsZero() {
		return "now"
	}
	return "+" + at.Sub(r.start).Round(time.Millisecond).String()
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// earlier is the earlier of two interval ends, a zero end being open.
func earlier(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero() || a.Before(b):
		return a
	}
	return b
}

// latencies sums how long the writes of each kind waited for their
// answer: median, 90th percentile and longest.
func latencies(writes []WriteRecord) string {
	by := map[WriteKind][]time.Duration{}
	for _, w := range writes {
		by[w.Kind] = append(by[w.Kind], w.Took)
	}
	var parts []string
	for _, k := range []WriteKind{KindAdd, KindEdit, KindDelete, KindBulk, KindDrop} {
		d := by[k]
		if len(d) == 0 {
			continue
		}
		slices.Sort(d)
		parts = append(parts, fmt.Sprintf("%s %d: %s/%s/%s", k, len(d), d[len(d)/2].Round(time.Millisecond), d[len(d)*9/10].Round(time.Millisecond), d[len(d)-1].Round(time.Millisecond)))
	}
	return strings.Join(parts, ", ") + " (median/p90/max)"
}

// logSlow logs the writes that waited longer than limit for an answer
// (the first 20), with when they were sent.
func (r *rig) logSlow(writes []WriteRecord, limit time.Duration) {
	n := 0
	for _, w := range writes {
		if w.Took <= limit {
			continue
		}
		if n++; n <= 20 {
			r.t.Logf("slow: sent at +%s, answered in %s: %s", w.Sent.Sub(r.start).Round(time.Millisecond), w.Took.Round(time.Millisecond), w)
		}
	}
	if n > 20 {
		r.t.Logf("slow: … and %d more", n-20)
	}
}

// logRequests shows the node log lines that name the request IDs of the
// first findings.
func (r *rig) logRequests(findings []string) {
	var ids []string
	for _, f := range findings {
		for _, word := range strings.Fields(f) {
			if strings.HasPrefix(word, "truth-r") && !slices.Contains(ids, word) && len(ids) < 5 {
				ids = append(ids, word)
			}
		}
	}
	for _, n := range r.nodes {
		log := n.Log()
		for _, id := range ids {
			for _, line := range strings.Split(log, "\n") {
				if strings.Contains(line, id+`"`) || strings.Contains(line, id+" ") {
					r.t.Logf("%s: %s", n.ID, line)
				}
			}
		}
	}
}

// dropBulk deletes the bulk writes' services still in the model, so that
// runs do not pile them up (its outcome is not judged).
func (r *rig) dropBulk(lead *harness.Node, final Model) {
	var lines []string
	for svc := range final {
		if addr, ok := strings.CutPrefix(svc, "tcp:192.168."); ok {
			lines = append(lines, "-D -t 192.168."+addr)
		}
	}
	if len(lines) == 0 {
		return
	}
	ops, err := ipvsadm.ParseRestore(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		r.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := (&api.Client{Base: r.c.BaseURL(lead), Token: r.token, Actor: "truth-cleanup", HTTP: r.http}).Ops(ctx, ops); err != nil {
		r.t.Errorf("write truth: delete the %d bulk services left: %v", len(lines), err)
	}
}

// mergeHistory reads node n's history into hist: a consistent read, or
// the node's own copy.
func (r *rig) mergeHistory(hist *History, n *harness.Node, consistent bool) {
	r.t.Helper()
	items, err := readHistory(r.http, r.c.BaseURL(n), r.token, !consistent)
	if err != nil {
		r.t.Errorf("write truth: read the history of %s: %v", n.ID, err)
		return
	}
	hist.Merge(n.ID, items)
}

// pollHistory reads a node's own copy of the history every second, each
// node in turn, into hist (history keeps the last 200 versions only),
// until the returned stop is called.
func (r *rig) pollHistory(hist *History, bases, names []string) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			// A node that is down or slow is skipped: the next one
			// is read a second later.
			if items, err := readHistory(r.http, bases[i%len(bases)], r.token, true); err == nil {
				hist.Merge(names[i%len(names)], items)
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { close(done); wg.Wait() }) }
	r.t.Cleanup(stop)
	return stop
}

// readHistory is GET /v1/history from the node at base; stale asks for
// the node's own copy.
func readHistory(hc *http.Client, base, token string, stale bool) ([]api.HistoryItem, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	url := base + "/v1/history"
	if stale {
		url += "?stale=1"
	}
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	var items []api.HistoryItem
	if err := json.NewDecoder(resp.Body).Decode(&items); err != nil {
		return nil, fmt.Errorf("GET %s: %w", url, err)
	}
	return items, nil
}

// busy starts n processes that spin at normal priority, one per core,
// and returns what stops them (also run at cleanup).
func busy(t *testing.T, n int) (stop func()) {
	t.Helper()
	var cmds []*exec.Cmd
	for range n {
		c := exec.Command("sh", "-c", "while :; do :; done")
		if err := c.Start(); err != nil {
			t.Fatalf("start a busy loop: %v", err)
		}
		cmds = append(cmds, c)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			for _, c := range cmds {
				_ = c.Process.Kill()
				_ = c.Wait()
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// The write-truth figures summed over runs, printed after the table.
var (
	truthMu        sync.Mutex
	truthRuns      int
	truthSum       Figures
	truthTransfers int // transfers answered with an error although leadership moved
)

func recordTruth(f Figures) {
	truthMu.Lock()
	defer truthMu.Unlock()
	truthRuns++
	truthSum.Misreported += f.Misreported
	truthSum.ValidRejected += f.ValidRejected
	truthSum.DuplicateApplies += f.DuplicateApplies
	truthSum.Unknown += f.Unknown
	truthSum.UnknownCommitted += f.UnknownCommitted
	truthSum.Lost += f.Lost
}

// truthTotals are the write-truth figures when the scenario ran; the
// table's writes_lost already counts its lost writes.
func truthTotals() []figure {
	truthMu.Lock()
	defer truthMu.Unlock()
	if truthRuns == 0 {
		return nil
	}
	f := truthSum
	return []figure{
		{name: "writes_misreported", value: f.Misreported},
		{name: "valid_writes_rejected", value: f.ValidRejected},
		{name: "duplicate_applies", value: f.DuplicateApplies},
		{name: "writes_unknown", value: f.Unknown},
		{name: "writes_unknown_committed", value: f.UnknownCommitted},
		{name: "transfers_misreported", value: truthTransfers},
	}
}
