//go:build benchwrites

package benchwrites

// TestBenchWrites is `make bench-writes` (doc.go says what it measures).
// Every figure it prints is computed from what it measured; a step that
// fails makes its figure n/a and the test fail.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/cluster"
	"github.com/ipvsman/ipvsman/test/harness"
)

const (
	cliTimeout     = "300s"            // the CLI's --timeout for every write and listing
	processTimeout = 330 * time.Second // kills a CLI that outlives its own --timeout
	pollEvery      = 150 * time.Millisecond
	restartRounds  = 3
	// printLeaderships bounds the leaderships printed: a cluster in an
	// election storm changes leader every second.
	printLeaderships = 10
)

// shape is one kind of -R: services × perService real servers.
type shape struct {
	services, perService, rounds int
}

func (s shape) String() string { return fmt.Sprintf("%d x %d", s.services, s.perService) }

// outcome is the rounds of one measurement; failed holds why it is n/a.
type outcome struct {
	rounds []time.Duration
	failed error
}

func (o outcome) spread() (Spread, bool) {
	if o.failed != nil {
		return Spread{}, false
	}
	return SpreadOf(o.rounds)
}

type bench struct {
	t       *testing.T
	c       *harness.Cluster
	nodes   []*harness.Node
	via     *harness.Node // the node every write goes through
	dir     string
	start   time.Time
	http    *http.Client
	leaders Leadership
	restore map[shape]*outcome
	order   []shape
	// small and large are the shapes write_scaling_100x compares.
	small, large shape
	restart      outcome
	polled       bool // the leadership poller ran
}

func TestBenchWrites(t *testing.T) {
	b := &bench{t: t, dir: t.TempDir(), start: time.Now(), restore: map[shape]*outcome{}}
	b.small, b.large = shape{1, 1000, 3}, shape{1, 100000, 3}
	b.order = []shape{b.small, {1, 10000, 3}, b.large, {10000, 10, 3}}
	for _, s := range b.order {
		b.restore[s] = &outcome{failed: errors.New("not run")}
	}
	b.restart.failed = errors.New("not run")
	defer b.summary()

	b.startCluster()
	ctx, stop := context.WithCancel(context.Background())
	polling := b.pollLeadership(ctx)
	defer func() { stop(); polling.Wait() }()

	for _, s := range b.order {
		b.restore[s] = b.restoreRounds(s)
	}
	b.restart = b.restarts()
	stop()
	polling.Wait()
}

// packaged is what the packaged unit passes besides the token: the
// figures are the packaged daemon's.
var packaged = []string{"--nice=-20"}

// startCluster runs n1 (bootstrap), n2 and n3 (joining through n1) and
// waits for three voters.
func (b *bench) startCluster() {
	t := b.t
	b.c = harness.NewCluster(t)
	b.http = &http.Client{Transport: &http.Transport{TLSClientConfig: b.c.ClientTLS()}}
	n1, n2, n3 := b.c.Add("n1"), b.c.Add("n2"), b.c.Add("n3")
	b.nodes = []*harness.Node{n1, n2, n3}
	if os.Getenv("BENCH_DEBUG") != "" {
		for i, n := range b.nodes {
			n.Args = append(n.Args, "--debug-addr", fmt.Sprintf("127.0.0.1:%d", 6061+i))
		}
	}
	n1.Start(append([]string{"--bootstrap"}, packaged...)...)
	n2.Start(append([]string{"--join", n1.APIAddr}, packaged...)...)
	n3.Start(append([]string{"--join", n1.APIAddr}, packaged...)...)
	b.c.WaitRoles(t, n1, 3)
	b.c.Voters(t, n1, b.nodes...)
	b.via = b.c.Leader(t, n1, b.nodes)
	daemon := b.c.Daemon
	if out, err := exec.Command(daemon, "--version").CombinedOutput(); err == nil {
		daemon += " (" + strings.TrimSpace(string(out)) + ")"
	}
	fmt.Printf("bench-writes: 3 x ipvsmand --ipvs=off --vips=off on loopback, %d CPUs; %s\n", runtime.NumCPU(), daemon)
	fmt.Printf("writes through %s (the leader at the start) with ipvsman --timeout %s -R\n", b.via.ID, cliTimeout)
	fmt.Printf("host load average at the start: %s\n", loadAverage())
}

// loadAverage is the host's 1, 5 and 15 minute load average: the daemons
// share the CPUs with whatever else runs, which the figures do not show.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if f := strings.Fields(string(b)); err == nil && len(f) >= 3 {
		return strings.Join(f[:3], " ")
	}
	return "unknown"
}

// status is GET /v1/status of n.
func (b *bench) status(ctx context.Context, n *harness.Node, timeout time.Duration) (cluster.Status, error) {
	var st cluster.Status
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", b.c.BaseURL(n)+"/v1/status", nil)
	if err != nil {
		return st, err
	}
	req.Header.Set("Authorization", "Bearer "+b.c.Token())
	resp, err := b.http.Do(req)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("%s /v1/status: %s", n.ID, resp.Status)
	}
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// cli runs the real ipvsman against n with --timeout, stdin from the file
// stdin ("" = none), and returns its wall time.
func (b *bench) cli(ctx context.Context, n *harness.Node, stdin string, args ...string) (stdout, stderr string, took time.Duration, err error) {
	ctx, cancel := context.WithTimeout(ctx, processTimeout)
	defer cancel()
	full := append(append(b.c.CLIFlags(n), "--timeout", cliTimeout), args...)
	cmd := exec.CommandContext(ctx, b.c.CLIBin, full...)
	if stdin != "" {
		f, err := os.Open(stdin)
		if err != nil {
			return "", "", 0, err
		}
		defer f.Close()
		cmd.Stdin = f
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	began := time.Now()
	err = cmd.Run()
	took = time.Since(began)
	if err != nil {
		err = fmt.Errorf("ipvsman %s (via %s): %w: %s", strings.Join(args, " "), n.ID, err, strings.TrimSpace(errb.String()))
	}
	return out.String(), errb.String(), took, err
}

// holds waits (untimed, up to a minute) until n's status shows services
// and servers.
func (b *bench) holds(n *harness.Node, services, servers int) error {
	deadline := time.Now().Add(time.Minute)
	for {
		st, err := b.status(context.Background(), n, 5*time.Second)
		if err == nil && st.Services == services && st.RealServers == servers {
			return nil
		}
		if time.Now().After(deadline) {
			if err != nil {
				return err
			}
			return fmt.Errorf("%s holds %d services and %d real servers, want %d and %d", n.ID, st.Services, st.RealServers, services, servers)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// restoreRounds times -R of s, clearing the table (untimed) before each
// round; it stops at the first failed round.
func (b *bench) restoreRounds(s shape) *outcome {
	o := &outcome{}
	input := filepath.Join(b.dir, fmt.Sprintf("restore-%dx%d", s.services, s.perService))
	if err := os.WriteFile(input, []byte(RestoreInput(s.services, s.perService)), 0o600); err != nil {
		o.failed = err
		b.t.Error(err)
		return o
	}
	servers := s.services * s.perService
	for i := 1; i <= s.rounds; i++ {
		if _, _, _, err := b.cli(context.Background(), b.via, "", "-C"); err != nil {
			o.failed = fmt.Errorf("clear before round %d: %w", i, err)
		} else if err := b.holds(b.via, 0, 0); err != nil {
			o.failed = fmt.Errorf("clear before round %d: %w", i, err)
		} else if _, _, took, err := b.cli(context.Background(), b.via, input, "-R"); err != nil {
			fmt.Printf("restore %s: round %d of %d: n/a after %.3f s\n", s, i, s.rounds, took.Seconds())
			o.failed = fmt.Errorf("round %d: %w", i, err)
		} else if err := b.holds(b.via, s.services, servers); err != nil {
			o.failed = fmt.Errorf("round %d: %w", i, err)
		} else {
			o.rounds = append(o.rounds, took)
			fmt.Printf("restore %s: round %d of %d: %.3f s\n", s, i, s.rounds, took.Seconds())
			continue
		}
		b.t.Errorf("restore %s: %v", s, o.failed)
		return o
	}
	sp, _ := SpreadOf(o.rounds)
	fmt.Printf("restore %s: %s\n", s, sp)
	return o
}

// pollLeadership polls every node's status until ctx ends, recording the
// (term, leader) pairs reported; a node that is down is skipped.
func (b *bench) pollLeadership(ctx context.Context) *sync.WaitGroup {
	b.polled = true
	var wg sync.WaitGroup
	for _, n := range b.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tick := time.NewTicker(pollEvery)
			defer tick.Stop()
			for {
				if st, err := b.status(ctx, n, time.Second); err == nil {
					if b.leaders.Observe(n.ID, st.Term, st.LeaderID, time.Since(b.start)) {
						switch c, _ := b.leaders.Changes(); {
						case c > 0 && c <= printLeaderships:
							fmt.Printf("leadership: term %d, leader %s (confirmed by %s) at +%.1f s\n", st.Term, st.LeaderID, n.ID, time.Since(b.start).Seconds())
						case c == printLeaderships+1:
							fmt.Printf("leadership: more changes, not printed (leader_changes counts them)\n")
						}
					}
				}
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
			}
		}()
	}
	return &wg
}

// running waits (up to 30 s: an election may be under way) for a leader
// among the nodes that answer, and returns it and the others that answer.
func (b *bench) running() (leader *harness.Node, leaderStatus cluster.Status, followers []*harness.Node, err error) {
	deadline := time.Now().Add(30 * time.Second)
	for {
		leader, followers = nil, nil
		var states []string
		for _, n := range b.nodes {
			st, err := b.status(context.Background(), n, 5*time.Second)
			switch {
			case err != nil:
				states = append(states, err.Error())
				continue
			case st.State == "Leader":
				leader, leaderStatus = n, st
			default:
				followers = append(followers, n)
			}
			states = append(states, n.ID+" "+st.State)
		}
		if leader != nil {
			return leader, leaderStatus, followers, nil
		}
		if time.Now().After(deadline) {
			return nil, leaderStatus, nil, fmt.Errorf("no leader within 30 s: %s", strings.Join(states, "; "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// restarts stops a follower with SIGTERM and starts it again on its data
// dir, restartRounds times, alternating between the followers.
func (b *bench) restarts() outcome {
	var o outcome
	for i := 1; i <= restartRounds; i++ {
		took, err := b.restartOnce(i)
		if err != nil {
			o.failed = fmt.Errorf("round %d: %w", i, err)
			b.t.Errorf("restart to serving: %v", o.failed)
			return o
		}
		o.rounds = append(o.rounds, took)
	}
	sp, _ := SpreadOf(o.rounds)
	fmt.Printf("restart to serving: %s\n", sp)
	return o
}

func (b *bench) restartOnce(round int) (time.Duration, error) {
	_, _, followers, err := b.running()
	if err != nil {
		return 0, err
	}
	if len(followers) == 0 {
		return 0, errors.New("no follower")
	}
	f := followers[round%len(followers)]
	if err := f.Stop(); err != nil {
		return 0, fmt.Errorf("SIGTERM %s: %w", f.ID, err)
	}
	leader, lst, _, err := b.running()
	if err != nil {
		return 0, err
	}
	commit, servers := lst.CommitIndex, lst.RealServers
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	type result struct {
		took time.Duration
		err  error
	}
	done := make(chan result, 1)
	began := time.Now()
	go func() {
		took, err := b.untilServing(ctx, f, began, commit, servers)
		done <- result{took, err}
	}()
	f.Start(packaged...)
	r := <-done
	if r.err != nil {
		return 0, fmt.Errorf("%s: %w", f.ID, r.err)
	}
	fmt.Printf("restart to serving: round %d of %d: %s (SIGTERM, same data dir; leader %s at commit index %d, %d real servers): %.3f s\n",
		round, restartRounds, f.ID, leader.ID, commit, servers, r.took.Seconds())
	return r.took, nil
}

// untilServing polls n from began until its status shows commit applied
// and `ipvsman -L -n` through it lists servers real servers without a
// staleness warning, and returns the time that took.
func (b *bench) untilServing(ctx context.Context, n *harness.Node, began time.Time, commit uint64, servers int) (time.Duration, error) {
	why := "not polled yet"
	for {
		st, err := b.status(ctx, n, time.Second)
		switch {
		case err != nil:
			why = err.Error()
		case st.AppliedIndex < commit:
			why = fmt.Sprintf("applied index %d < %d", st.AppliedIndex, commit)
		default:
			out, stderr, _, err := b.cli(ctx, n, "", "-L", "-n")
			switch got := RouteLines(out); {
			case err != nil:
				why = err.Error()
			case strings.TrimSpace(stderr) != "":
				why = "ipvsman -L -n: " + strings.TrimSpace(stderr)
			case got != servers:
				why = fmt.Sprintf("ipvsman -L -n lists %d real servers, want %d", got, servers)
			default:
				return time.Since(began), nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, fmt.Errorf("not serving after %.0f s: %s", time.Since(began).Seconds(), why)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// summary prints every figure, n/a for those not measured; it runs even
// when the test stops early.
func (b *bench) summary() {
	fmt.Printf("== summary (host load average at the end: %s)\n", loadAverage())
	for _, s := range b.order {
		o := b.restore[s]
		if sp, ok := o.spread(); ok {
			fmt.Printf("restore %s: %s\n", s, sp)
		} else {
			fmt.Printf("restore %s: n/a (%v)\n", s, o.failed)
		}
	}
	if sp, ok := b.restart.spread(); ok {
		fmt.Printf("restart to serving: %s\n", sp)
	} else {
		fmt.Printf("restart to serving: n/a (%v)\n", b.restart.failed)
	}
	// The daemons' logs go with the temporary directory: BENCH_LOGS keeps
	// them, so that a leader change can be traced to what the nodes did.
	if dir := os.Getenv("BENCH_LOGS"); dir != "" {
		for _, n := range b.nodes {
			err := os.MkdirAll(dir, 0o755)
			if err == nil {
				err = os.WriteFile(filepath.Join(dir, n.ID+".log"), []byte(n.Log()), 0o644)
			}
			if err != nil {
				fmt.Printf("BENCH_LOGS: %v\n", err)
			}
		}
	}
	seen := b.leaders.Seen()
	for i, l := range seen {
		if i == printLeaderships {
			fmt.Printf("leaderships: %d more not listed\n", len(seen)-i)
			break
		}
		fmt.Printf("leadership: %s\n", l)
	}

	small, okSmall := b.restore[b.small].spread()
	large, okLarge := b.restore[b.large].spread()
	scaling, okScaling := 0.0, okSmall && okLarge && small.Median > 0
	if okScaling {
		scaling = large.Median.Seconds() / small.Median.Seconds()
		fmt.Printf("medians for write_scaling_100x: %s %.3f s / %s %.3f s (linear: 100, target: <= 150)\n", b.large, large.Median.Seconds(), b.small, small.Median.Seconds())
	}
	restart, okRestart := b.restart.spread()
	changes, okChanges := 0, false
	if b.polled {
		changes, okChanges = b.leaders.Changes()
	}
	fmt.Printf("write_scaling_100x: %s\n", Figure(scaling, okScaling))
	fmt.Printf("restart_to_serving_s: %s\n", Figure(restart.Median.Seconds(), okRestart))
	if okChanges {
		fmt.Printf("leader_changes: %d\n", changes)
	} else {
		fmt.Println("leader_changes: n/a")
	}
	if !okScaling || !okRestart || !okChanges {
		b.t.Fail()
	}
}
