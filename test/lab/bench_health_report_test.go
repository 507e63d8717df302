//go:build lab && labbench

package lab

// What make bench-health prints: every round, the spread, and the key
// lines (NAME: VALUE) the acceptance reads.

import (
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/ipvsman/ipvsman/test/figures"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

type hbReport struct {
	checks      int // the overload's (and the storm's) servers
	ports       string
	window      time.Duration
	sweep       []hbRound // keepalived, up the ladder
	sustainable int
	forced      int          // BENCH_RATE: the rounds' rate, given, not swept
	rounds      [][2]hbRound // keepalived, ipvsman
	overload    [2]hbRound   // keepalived, ipvsman
	storm       hbStorm
}

// hbSpread is min, median and max over the rounds of f(keepalived's
// round, ipvsman's round).
func hbSpread(rounds [][2]hbRound, f func(ka, im hbRound) float64) (lo, med, hi float64) {
	xs := make([]float64, len(rounds))
	for i, r := range rounds {
		xs[i] = f(r[0], r[1])
	}
	lo, med, hi, _ = figures.Spread(xs)
	return lo, med, hi
}

func hbRatio(ka, im hbRound) float64 { return im.perK() / ka.perK() }

// vmPerK is the whole VM's CPU seconds (both vCPUs) per 1,000 answered
// checks: the checker, the responder and the kernel's work for both.
func (r hbRound) vmPerK() float64 {
	return float64(runtime.NumCPU()) * r.vmBusy * r.wall / (float64(r.checks) / 1000)
}

func (r hbRound) bystanderText() string {
	if r.bystander < 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f", r.bystander)
}

const hbRowHead = "%-7s %-10s %7s %11s %10s %6s %8s %10s %8s %6s %7s %9s\n"
const hbRow = "%-7s %-10s %7d %11.0f %10.2f %6d %8.2f %10.4f %8.4f %6.1f %6.0f%% %9s\n"

func (rep hbReport) rowHead() {
	fmt.Printf(hbRowHead, "round", "checker", "asked", "answered/s", "interval s", "downs", "CPU s", "CPU/1,000", "VM/1,000", "RSS", "VM busy", "ipvsmand idle CPU s")
}

func (rep hbReport) row(label string, r hbRound) {
	fmt.Printf(hbRow, label, r.tool, r.servers, r.rate(), r.interval().Seconds(), r.falseDowns, r.cpu, r.perK(), r.vmPerK(),
		r.rss, 100*r.vmBusy, r.bystanderText())
}

func (rep hbReport) printSweep() {
	fmt.Printf("\nsweep: keepalived alone, up the ladder; a rung holds with no false down and an effective interval within %.0f%% of %s\n",
		100*hbSlack, hbInterval)
	rep.rowHead()
	for _, r := range rep.sweep {
		held := "held"
		if !r.rung().Held(hbInterval, hbSlack) {
			held = "failed"
		}
		rep.row(held, r)
	}
}

func (rep hbReport) print() {
	fmt.Printf("\nbench-health: HTTP checks (GET /, 200, every %s, 500 ms timeout) against one responder (%s:%s in %s), "+
		"windows of %s, in the lab VM (TCG emulation, %d vCPUs)\n",
		hbInterval, topo.RealServerAddr(1), rep.ports, topo.RealServer(1), rep.window, runtime.NumCPU())
	fmt.Println("columns: checks asked per second (one per server); answered per second (the responder's count); effective interval " +
		"(window × servers / answered); false downs (from the checks' start to the window's end); the checker's CPU seconds in the window, " +
		"and per 1,000 answered checks; the whole VM's per 1,000; RSS MiB; the VM's busy share; ipvsmand's own CPU in keepalived's window, idle")
	if rep.forced > 0 {
		fmt.Printf("\nno sweep: the rounds' rate is BENCH_RATE=%d, given, not found to be sustainable\n", rep.forced)
	} else {
		rep.printSweep()
		fmt.Printf("sweep: the sustainable rate is %d checks every %s\n", rep.sustainable, hbInterval)
	}

	fmt.Printf("\nat the sustainable rate, %d checks every %s: %d rounds, interleaved\n", rep.sustainable, hbInterval, len(rep.rounds))
	rep.rowHead()
	var ratios []string
	for i, r := range rep.rounds {
		label := fmt.Sprintf("%d", i+1)
		rep.row(label, r[0])
		rep.row(label, r[1])
		ratios = append(ratios, fmt.Sprintf("%.2f", hbRatio(r[0], r[1])))
		fmt.Printf("        ipvsman / keepalived CPU per 1,000 checks: %s\n", ratios[len(ratios)-1])
	}
	fmt.Printf("%-44s %8s %8s %8s\n", "", "min", "median", "max")
	spread := func(name, format string, f func(ka, im hbRound) float64) (med float64) {
		lo, med, hi := hbSpread(rep.rounds, f)
		fmt.Printf("%-44s %8s %8s %8s\n", name, fmt.Sprintf(format, lo), fmt.Sprintf(format, med), fmt.Sprintf(format, hi))
		return med
	}
	kaK := spread("keepalived CPU s per 1,000 checks", "%.4f", func(ka, _ hbRound) float64 { return ka.perK() })
	imK := spread("ipvsman CPU s per 1,000 checks", "%.4f", func(_, im hbRound) float64 { return im.perK() })
	spread("keepalived effective interval s", "%.3f", func(ka, _ hbRound) float64 { return ka.interval().Seconds() })
	spread("ipvsman effective interval s", "%.3f", func(_, im hbRound) float64 { return im.interval().Seconds() })
	spread("keepalived false downs", "%.0f", func(ka, _ hbRound) float64 { return float64(ka.falseDowns) })
	spread("ipvsman false downs", "%.0f", func(_, im hbRound) float64 { return float64(im.falseDowns) })
	lo, ratio, hi := hbSpread(rep.rounds, hbRatio)
	fmt.Printf("%-44s %8.2f %8.2f %8.2f\n", "cpu_vs_keepalived (per round)", lo, ratio, hi)

	ka, im := rep.overload[0], rep.overload[1]
	fmt.Printf("\noverload: %d checks every %s asked of each\n", rep.checks, hbInterval)
	rep.rowHead()
	rep.row("over", ka)
	rep.row("over", im)

	if s := rep.storm; s.ran {
		rep.printStorm()
	}

	fmt.Println()
	if rep.forced > 0 {
		fmt.Printf("sustainable_checks: n/a (BENCH_RATE=%d, not swept)\n", rep.forced)
	} else {
		fmt.Printf("sustainable_checks: %d\n", rep.sustainable)
	}
	fmt.Printf("keepalived_cpu_s_per_1000_checks: %.4f\n", kaK)
	fmt.Printf("ipvsman_cpu_s_per_1000_checks: %.4f\n", imK)
	fmt.Printf("cpu_vs_keepalived_rounds: %s\n", strings.Join(ratios, " "))
	fmt.Printf("cpu_vs_keepalived_spread: min %.2f, median %.2f, max %.2f (%d rounds at %d checks/s)\n", lo, ratio, hi, len(rep.rounds), rep.sustainable)
	fmt.Printf("cpu_vs_keepalived: %.2f\n", ratio)
	fmt.Printf("overload_checks: %d\n", rep.checks)
	fmt.Printf("false_downs_ipvsman: %d\n", im.falseDowns)
	fmt.Printf("false_downs_keepalived: %d\n", ka.falseDowns)
	fmt.Printf("effective_interval_ipvsman_s: %.2f\n", im.interval().Seconds())
	fmt.Printf("effective_interval_keepalived_s: %.2f\n", ka.interval().Seconds())
	if s := rep.storm; s.ran {
		perTick, stamped := figures.MostPerTick(stamps(s.entries))
		all := 0
		for _, e := range s.entries {
			all += e.all
		}
		fmt.Printf("storm_transitions: %d\n", all)
		fmt.Printf("storm_entries: %d\n", len(s.entries))
		fmt.Printf("storm_entries_per_tick: %s\n", figures.Int(perTick, stamped))
	}
}

func (rep hbReport) printStorm() {
	s := rep.storm
	stormDown, stormAll := 0, 0
	var timeline []string
	for _, e := range s.entries {
		stormDown += e.down
		stormAll += e.all
		timeline = append(timeline, fmt.Sprintf("+%d ms: %d", e.at.Sub(s.at).Milliseconds(), e.all))
	}
	perTick, stamped := figures.MostPerTick(stamps(s.entries))
	span := s.entries[len(s.entries)-1].at.Sub(s.entries[0].at)
	fmt.Printf("\nstorm: %d servers up %.0f s after applying %s; then the responder was killed and %s applied\n",
		s.servers, s.slowUp.Seconds(), hbSlowCheck, hbCheck)
	fmt.Printf("storm: the runner logged %d transitions, %d committed\n", s.seen, s.committed)
	fmt.Printf("storm: Raft log: %d set-verdicts entries, %d transitions (%d to down), over %d ms\n",
		len(s.entries), stormAll, stormDown, span.Milliseconds())
	fmt.Printf("storm: entries (proposed after the kill: transitions): %s\n", strings.Join(timeline, ", "))
	fmt.Printf("storm: most entries stamped with one tick of the runner: %s; in any %s: %d\n",
		figures.Int(perTick, stamped), hbTick, mostInAnyTick(s.entries, hbTick))
}
