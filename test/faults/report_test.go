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
// output (make faults): the figures acceptance asks for.
func TestMain(m *testing.M) {
	code := m.Run()
	table(os.Stdout)
	os.Exit(code)
}

func table(out io.Writer) {
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
	fmt.Fprintf(out, "writes_lost: %d\nvip_overlap_ms: %d\nscenarios: %d\n", lost, overlap.Milliseconds(), len(order))
	truthTotals(out)
}
