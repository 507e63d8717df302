package faults

import (
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"text/tabwriter"
	"time"

	"github.com/ipvsman/ipvsman/test/failover"
)

// result sums one scenario's runs.
type result struct {
	runs, acked, lost int
	overlap, converge time.Duration // converge: the slowest run
	failed            int           // runs whose nodes never agreed
	res               failover.Resolution
}

var (
	mu      sync.Mutex
	order   []string
	results = map[string]*result{}
)

// record adds one run of scenario to the table.
func record(scenario string, acked, lost int, overlap time.Duration, res failover.Resolution, converge time.Duration, agreed bool) {
	mu.Lock()
	defer mu.Unlock()
	r, ok := results[scenario]
	if !ok {
		r = &result{}
		results[scenario] = r
		order = append(order, scenario)
	}
	r.runs++
	r.acked += acked
	r.lost += lost
	r.overlap += overlap
	r.res = r.res.Merge(res)
	r.converge = max(r.converge, converge)
	if !agreed {
		r.failed++
	}
}

// TestMain prints the table after every scenario ran, so that it ends the
// output (make faults): the figures acceptance asks for. A scenario that
// recorded other than RUNS runs fails the suite: its figures would sum a
// different number of trials than the table says was asked. Under make
// faults (FAULTS_RUNS set) a run in which no scenario ran fails.
func TestMain(m *testing.M) {
	code := m.Run()
	mu.Lock()
	problems := runProblems(order, results, runs())
	mu.Unlock()
	for _, p := range problems {
		fmt.Fprintln(os.Stdout, "FAIL:", p)
		code = 1
	}
	os.Exit(table(os.Stdout, code, os.Getenv("FAULTS_RUNS") != ""))
}

// runProblems names every scenario whose run count is not want.
func runProblems(order []string, results map[string]*result, want int) []string {
	var out []string
	for _, s := range order {
		if n := results[s].runs; n != want {
			out = append(out, fmt.Sprintf("scenario %q recorded %d runs, RUNS asked %d", s, n, want))
		}
	}
	return out
}

// figure is one closing figure: its name, what was counted, and what to
// print after it (the observer's resolution beside an overlap).
type figure struct {
	name  string
	value int
	note  string
}

// closing renders the closing figures and returns the exit code. A run
// that failed, or a suite run in which no scenario ran, has no result: it
// says so first, and each figure reads "n/a" beside what was counted, so
// that totals of a broken run never read as a clean result.
func closing(figs []figure, scenarios, code int, suite bool) ([]string, int) {
	var out []string
	if suite && scenarios == 0 {
		out = append(out, "faults: no scenario ran (a -test.run filter that matches none?): a failure")
		code = max(code, 1)
	}
	if code != 0 {
		out = append(out, fmt.Sprintf("faults: FAILED (exit %d): the figures below are what the failed run counted, not a result", code))
	}
	for _, f := range figs {
		note := ""
		if f.note != "" {
			note = " (" + f.note + ")"
		}
		if code != 0 {
			out = append(out, fmt.Sprintf("%s: n/a (run failed; %d counted)%s", f.name, f.value, note))
		} else {
			out = append(out, fmt.Sprintf("%s: %d%s", f.name, f.value, note))
		}
	}
	return out, code
}

func table(out io.Writer, code int, suite bool) int {
	mu.Lock()
	defer mu.Unlock()
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SCENARIO\tRUNS\tACKNOWLEDGED WRITES\tWRITES LOST\tVIP OVERLAP\tWORST SAMPLE GAP\tFAILED DUMPS\tTIME TO CONVERGE")
	var lost int
	var overlap time.Duration
	var res failover.Resolution
	for _, s := range order {
		r := results[s]
		conv := fmt.Sprintf("%.1f s", r.converge.Seconds())
		if r.failed > 0 {
			conv = fmt.Sprintf("never (%d of %d runs)", r.failed, r.runs)
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d ms\t%d ms\t%d\t%s\n", s, r.runs, r.acked, r.lost, r.overlap.Milliseconds(), failover.MS(r.res.WorstGap), r.res.FailedDumps, conv)
		lost += r.lost
		overlap += r.overlap
		res = res.Merge(r.res)
	}
	w.Flush()
	figs := []figure{{name: "writes_lost", value: lost}, {name: "vip_overlap_ms", value: int(overlap.Milliseconds()), note: res.String()}, {name: "scenarios", value: len(order)}}
	lines, code := closing(append(figs, truthTotals()...), len(order), code, suite)
	for _, l := range lines {
		fmt.Fprintln(out, l)
	}
	return code
}
