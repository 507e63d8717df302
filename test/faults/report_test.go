package faults

import (
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"text/tabwriter"
	"time"
)

// result sums one scenario's runs.
type result struct {
	runs, acked, lost int
	overlap, converge time.Duration // converge: the slowest run
	failed            int           // runs whose nodes never agreed
}

var (
	mu      sync.Mutex
	order   []string
	results = map[string]*result{}
)

// record adds one run of scenario to the table.
func record(scenario string, acked, lost int, overlap, converge time.Duration, agreed bool) {
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
	r.converge = max(r.converge, converge)
	if !agreed {
		r.failed++
	}
}

// TestMain prints the table after every scenario ran, so that it ends the
// output (make faults): the figures acceptance asks for. Under make faults
// (FAULTS_RUNS set) a run in which no scenario ran fails.
func TestMain(m *testing.M) {
	code := m.Run()
	os.Exit(table(os.Stdout, code, os.Getenv("FAULTS_RUNS") != ""))
}

// figure is one closing figure: its name and what was counted.
type figure struct {
	name  string
	value int
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
		if code != 0 {
			out = append(out, fmt.Sprintf("%s: n/a (run failed; %d counted)", f.name, f.value))
		} else {
			out = append(out, fmt.Sprintf("%s: %d", f.name, f.value))
		}
	}
	return out, code
}

func table(out io.Writer, code int, suite bool) int {
	mu.Lock()
	defer mu.Unlock()
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(w, "SCENARIO\tRUNS\tACKNOWLEDGED WRITES\tWRITES LOST\tVIP OVERLAP\tTIME TO CONVERGE")
	var lost int
	var overlap time.Duration
	for _, s := range order {
		r := results[s]
		conv := fmt.Sprintf("%.1f s", r.converge.Seconds())
		if r.failed > 0 {
			conv = fmt.Sprintf("never (%d of %d runs)", r.failed, r.runs)
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%d\t%d ms\t%s\n", s, r.runs, r.acked, r.lost, r.overlap.Milliseconds(), conv)
		lost += r.lost
		overlap += r.overlap
	}
	w.Flush()
	figs := []figure{{"writes_lost", lost}, {"vip_overlap_ms", int(overlap.Milliseconds())}, {"scenarios", len(order)}}
	lines, code := closing(append(figs, truthTotals()...), len(order), code, suite)
	for _, l := range lines {
		fmt.Fprintln(out, l)
	}
	return code
}
