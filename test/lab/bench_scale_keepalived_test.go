//go:build lab && labbench

package lab

// bench-scale's keepalived side: its checker with the same configuration
// in one director's namespace, and one weight change as keepalived makes
// it, by a reload of the whole configuration (SIGHUP).

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/director"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

type scKaResult struct {
	start   time.Duration   // start to the whole table in the kernel
	reloads []time.Duration // SIGHUP to the new weight in the kernel, each round
	rss     float64         // the checker child's VmRSS at the end, MiB
}

// scKeepalived runs keepalived's checker in node's namespace (whose kernel
// is k, empty) with st's configuration, then rounds reloads, each changing
// server of svc to another weight, which st records.
func scKeepalived(t *testing.T, tp *topo.Topology, node string, k *scKernel, shape scShape, st *fsm.State,
	svc fsm.ServiceKey, server string, rounds int, alive func() error) scKaResult {
	t.Helper()
	dir := t.TempDir()
	conf := filepath.Join(dir, "keepalived.conf")
	write := func() {
		// A new file renamed over the old: keepalived never reads half of one.
		tmp := conf + ".new"
		if err := os.WriteFile(tmp, []byte(shape.keepalived(st.Config)), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, conf); err != nil {
			t.Fatal(err)
		}
	}
	write()
	tp.MustExec(node, "keepalived", "--config-test", "-f", conf)
	checkerPidFile := filepath.Join(dir, "checkers.pid")
	start := time.Now()
	kad := tp.Start(node, "keepalived", "--check", "--dont-fork", "--dont-respawn", "--log-console", "--no-syslog",
		"-f", conf, "-p", filepath.Join(dir, "keepalived.pid"), "-c", checkerPidFile)
	t.Cleanup(func() { _ = kad.Kill() })
	kaAlive := func() error {
		select {
		case <-kad.Done():
			return fmt.Errorf("keepalived exited; output:\n%s", kad.Output())
		default:
		}
		return alive()
	}
	var res scKaResult
	held, _ := scWaitAll(t, []*scKernel{k}, director.Desired(st), false, start, 15*time.Minute, kaAlive)
	res.start = held[0]
	var checker int
	harness.Eventually(t, time.Minute, "keepalived's checker pid file", func() (bool, string) {
		b, _ := os.ReadFile(checkerPidFile)
		checker, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return checker > 0, string(b)
	})

	svcConf := st.Config.Services[svc.String()]
	for r := range rounds {
		// Each round starts once the last one's work is over: the checker
		// busy with its checks only.
		scQuiet(t, checker, kaAlive)
		rs := *svcConf.Servers[server]
		rs.Weight = 200 + r
		benchApplyCmd(t, st, fsm.CmdOps, fsm.OpsPayload{Ops: []fsm.Op{{Kind: fsm.OpEditServer, ServiceKey: svc, Server: &rs}}})
		svcConf = st.Config.Services[svc.String()]
		write()
		sent := time.Now()
		if err := syscall.Kill(kad.Pid(), syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		d, err := scWaitWeight([]*scKernel{k}, svc, server, rs.Weight, sent, 2*time.Millisecond, 5*time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if err := kaAlive(); err != nil {
			t.Fatal(err)
		}
		res.reloads = append(res.reloads, d[0])
		t.Logf("keepalived reload %d: %s of %s weight %d in the kernel after %.2f s", r+1, server, svc, rs.Weight, d[0].Seconds())
	}
	scQuiet(t, checker, kaAlive)
	if diff, err := k.holds(director.Desired(st), false); err != nil || diff != "" {
		t.Fatalf("keepalived's table after the reloads: %v %s", err, diff)
	}
	res.rss, _ = procMem(t, checker)
	return res
}

// scQuiet waits until pid used less than half a core over a second (its
// checks alone, nothing left of a start or reload); if it never does
// within three minutes the round goes ahead, logged.
func scQuiet(t *testing.T, pid int, alive func() error) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for time.Now().Before(deadline) {
		if err := alive(); err != nil {
			t.Fatal(err)
		}
		c0, w0 := procCPU(t, pid), time.Now()
		time.Sleep(time.Second)
		if (procCPU(t, pid)-c0)/time.Since(w0).Seconds() < 0.5 {
			return
		}
	}
	t.Logf("keepalived's checker (pid %d) still busy after 3 minutes; going on", pid)
}
