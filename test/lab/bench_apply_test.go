//go:build lab && labbench

package lab

// TestBenchApply is `make bench-apply`: how long the reconciler takes to
// program a large table into the kernel (1,000 TCP services × 10
// direct-routing real servers) through director.NewNetlink, compared with
// `ipvsadm -R` of the same rules, and how long one weight change takes
// against the table the last pass left. It runs in the VM's root network
// namespace. Timings are reported, never asserted: the test fails only when
// the kernel does not hold what was applied, or the change is not one op.

import (
	"bytes"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/director"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

const (
	benchIface    = "ipvsbench0" // dummy: gives 10.201.0.0/16 a unicast route
	benchServices = 1000         // tcp 10.200.x.y:80, wlc
	benchServers  = 10           // per service, direct routing
	benchPool     = 250          // distinct real servers, 10.201.0.2-251, shared
	benchRounds   = 5            // each figure is the median of this many runs, each shown
	benchChanged  = "tcp:10.200.1.1:80"
)

func benchServiceAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{10, 200, byte(i / 250), byte(i%250 + 1)})
}

// benchConfig: service i has the real servers (7i + 25j) mod 250, j < 10:
// ten distinct addresses each, every address shared by about 40 services.
func benchConfig() *fsm.Config {
	cfg := fsm.NewConfig()
	for i := range benchServices {
		key := fsm.ServiceKey{Protocol: fsm.TCP, Address: benchServiceAddr(i), Port: 80}
		svc := &fsm.Service{Key: key, Scheduler: "wlc", Servers: map[string]*fsm.RealServer{}}
		for j := range benchServers {
			n := (7*i + 25*j) % benchPool
			rs := &fsm.RealServer{Address: netip.AddrFrom4([4]byte{10, 201, 0, byte(n + 2)}), Port: 80,
				Forward: fsm.DirectRoute, Weight: 1 + (i+j)%5, State: fsm.Active}
			svc.Servers[rs.Key()] = rs
		}
		cfg.Services[key.String()] = svc
	}
	return cfg
}

func benchApplyCmd(t *testing.T, st *fsm.State, typ fsm.CommandType, payload any) {
	t.Helper()
	cmd, err := fsm.NewCommand(typ, time.Now().UnixNano(), "bench", payload)
	if err != nil {
		t.Fatal(err)
	}
	res, err := st.Apply(cmd)
	if err != nil || res.Err != "" || !res.Changed {
		t.Fatalf("apply %s: %v %q (changed %v)", typ, err, res.Err, res.Changed)
	}
}

func benchTarget(st *fsm.State) director.Target {
	return director.Target{Table: director.Desired(st), Version: st.Version}
}

func benchSave(t *testing.T, cfg *fsm.Config) string {
	t.Helper()
	var b bytes.Buffer
	if err := ipvsadm.FormatSave(&b, cfg, true, nil); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// benchCheck: the kernel's `ipvsadm -S -n` must equal the model's.
func benchCheck(t *testing.T, what string, cfg *fsm.Config) {
	t.Helper()
	got, want := nlCmd(t, "ipvsadm", "-S", "-n"), benchSave(t, cfg)
	if got == want {
		return
	}
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	i := 0
	for i < min(len(g), len(w))-1 && g[i] == w[i] {
		i++
	}
	t.Fatalf("%s: ipvsadm -S -n differs from the model (%d lines, want %d); first at line %d:\n got  %q\n want %q",
		what, len(g), len(w), i+1, g[i], w[i])
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

// selfCPU is this process's user and system CPU so far: the kernel's work
// for a netlink request is system time of the process that sent it.
func selfCPU(t *testing.T) (user, sys time.Duration) {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano()), time.Duration(ru.Stime.Nano())
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func TestBenchApply(t *testing.T) {
	requireKernelIPVS(t)
	exec.Command("ip", "link", "del", benchIface).Run() // a crashed run's leftover
	nlCmd(t, "ipvsadm", "-C")
	nlCmd(t, "ip", "link", "add", benchIface, "type", "dummy")
	t.Cleanup(func() {
		exec.Command("ipvsadm", "-C").Run()
		exec.Command("ip", "link", "del", benchIface).Run()
	})
	nlCmd(t, "ip", "addr", "add", "10.201.0.1/16", "dev", benchIface)
	nlCmd(t, "ip", "link", "set", benchIface, "up")

	kernel, err := director.NewNetlink()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kernel.Close)
	log := slog.New(slog.DiscardHandler)

	// Every round starts from this state (the weight change alters a copy).
	newState := func() *fsm.State {
		st := fsm.NewState()
		benchApplyCmd(t, st, fsm.CmdReplaceConfig, fsm.ReplaceConfigPayload{Config: benchConfig(), Reason: "bench"})
		return st
	}
	base := newState().Config
	save := benchSave(t, base)
	rules := filepath.Join(t.TempDir(), "rules")
	if err := os.WriteFile(rules, []byte(save), 0o644); err != nil {
		t.Fatal(err)
	}
	lines := strings.Count(save, "\n")

	var full, change, restore, raw, dump, finger, plan []time.Duration
	var fullUser, fullSys, restoreUser, restoreSys []time.Duration
	var fullOps int
	for round := range benchRounds {
		st := newState()
		// (c) ipvsadm -R of the same rules into an empty table.
		nlCmd(t, "ipvsadm", "-C")
		f, err := os.Open(rules)
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("ipvsadm", "-R")
		cmd.Stdin = f
		start := time.Now()
		out, err := cmd.CombinedOutput()
		restore = append(restore, time.Since(start))
		f.Close()
		if ps := cmd.ProcessState; ps != nil {
			restoreUser, restoreSys = append(restoreUser, ps.UserTime()), append(restoreSys, ps.SystemTime())
		}
		if err != nil {
			t.Fatalf("ipvsadm -R: %v\n%s", err, out)
		}
		benchCheck(t, "after ipvsadm -R", base)

		// (a) the full apply from an empty table: a new reconciler (no
		// trusted copy), StepFull = dump + plan + one netlink op each.
		nlCmd(t, "ipvsadm", "-C")
		target := benchTarget(st)
		rec := &director.Reconciler{Kernel: kernel, Log: log}
		u0, s0 := selfCPU(t)
		start = time.Now()
		rep := rec.StepFull(target)
		full = append(full, time.Since(start))
		u1, s1 := selfCPU(t)
		fullUser, fullSys = append(fullUser, u1-u0), append(fullSys, s1-s0)
		if rep.Failed != 0 {
			t.Fatalf("full apply: %d failed: %v", rep.Failed, rep.Errors)
		}
		fullOps = rep.Ops
		benchCheck(t, "after the full apply", st.Config)

		// For reference: the same ops through the kernel door alone (no
		// plan, no fingerprint), a resync pass's dump of the full table,
		// and the fingerprint every pass computes of its target.
		nlCmd(t, "ipvsadm", "-C")
		ops := director.Plan(target.Table, director.Table{}, nil, false)
		start = time.Now()
		for _, op := range ops {
			if err := kernel.Apply(op); err != nil {
				t.Fatal(err)
			}
		}
		raw = append(raw, time.Since(start))
		benchCheck(t, "after the ops through Netlink.Apply", st.Config)
		start = time.Now()
		if _, err := kernel.Read(); err != nil {
			t.Fatal(err)
		}
		dump = append(dump, time.Since(start))
		start = time.Now()
		_ = target.Table.Fingerprint()
		finger = append(finger, time.Since(start))

		// (b) one weight change in the state, planned against the table
		// the last pass left: one op, no dump.
		svc := st.Config.Services[benchChanged]
		rs := *svc.Servers[svc.SortedServerKeys()[0]]
		rs.Weight = 100 + round
		benchApplyCmd(t, st, fsm.CmdOps, fsm.OpsPayload{Ops: []fsm.Op{{Kind: fsm.OpEditServer, ServiceKey: svc.Key, Server: &rs}}})
		target2 := benchTarget(st)
		start = time.Now()
		_ = director.Plan(target2.Table, target.Table, nil, false) // the same keys: nothing to delete
		plan = append(plan, time.Since(start))
		start = time.Now()
		rep = rec.Step(target2)
		change = append(change, time.Since(start))
		if rep.Failed != 0 || rep.Ops != 1 {
			t.Fatalf("one weight change: %d ops, %d failed (%v), want exactly 1 op", rep.Ops, rep.Failed, rep.Errors)
		}
		now, err := kernel.Read()
		if err != nil {
			t.Fatal(err)
		}
		if d := now[benchChanged].Dests[rs.Key()]; d.Weight != rs.Weight {
			t.Fatalf("kernel holds %s of %s with weight %d, want %d", rs.Key(), benchChanged, d.Weight, rs.Weight)
		}
		benchCheck(t, "after the weight change", st.Config)
		t.Logf("round %d: restore %v, full apply %v (%d ops), change %v", round+1, restore[round], full[round], fullOps, change[round])
	}

	mf, mc := median(full), median(change)
	fmt.Printf("\nbench-apply: %d services x %d direct-routing real servers (%d ipvsadm -R lines, %d reconciler ops), median of %d, in the lab VM\n",
		benchServices, benchServers, lines, fullOps, benchRounds)
	fmt.Printf("%-48s %10s   runs\n", "measurement", "ms")
	for _, r := range []struct {
		name string
		d    []time.Duration
	}{
		{"(a) full apply: StepFull from empty (netlink)", full},
		{"(b) one weight change: Step (1 op)", change},
		{"(c) ipvsadm -R < rules, from empty", restore},
		{"    info: (a)'s user CPU (whole test process)", fullUser},
		{"    info: (a)'s system CPU (whole test process)", fullSys},
		{"    info: (c)'s user CPU", restoreUser},
		{"    info: (c)'s system CPU", restoreSys},
		{"    info: (a)'s ops one request each (Apply)", raw},
		{"    info: dump of the full table (Read)", dump},
		{"    info: Fingerprint of the target", finger},
		{"    info: Plan of the one change", plan},
	} {
		var runs []string
		for _, d := range r.d {
			runs = append(runs, fmt.Sprintf("%.1f", ms(d)))
		}
		fmt.Printf("%-48s %10.2f   %s\n", r.name, ms(median(r.d)), strings.Join(runs, " "))
	}
	// Each round's full apply against the ipvsadm -R of the same round: the
	// VM's speed drifts between rounds, a ratio within one does not.
	ratios := make([]float64, len(full))
	var shown []string
	for i := range full {
		ratios[i] = ms(full[i]) / ms(restore[i])
		shown = append(shown, fmt.Sprintf("%.2f", ratios[i]))
	}
	sorted := slices.Sorted(slices.Values(ratios))
	fmt.Printf("full_apply_vs_ipvsadm_restore per round: %s (min %.2f, median %.2f, max %.2f)\n", strings.Join(shown, " "), sorted[0], sorted[len(sorted)/2], sorted[len(sorted)-1])
	fmt.Printf("full_apply_vs_ipvsadm_restore: %.2f\n", sorted[len(sorted)/2])
	fmt.Printf("full_apply_vs_ipvsadm_restore_worst: %.2f\n", sorted[len(sorted)-1])
	fmt.Printf("batched_vs_one_request_each: %.2f\n", ms(mf)/ms(median(raw)))
	fmt.Printf("single_change_vs_full_apply: %.1f\n", ms(mf)/ms(mc))
}
