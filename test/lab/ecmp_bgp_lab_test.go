//go:build lab

package lab

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
	"github.com/ipvsman/ipvsman/vip/ecmp"
)

// TestECMPBGPDrainWaitsForTheTrafficToLeave: three directors with real
// IPVS announce the ecmp VIP 10.0.0.50/32 to a BIRD router in the client's
// namespace, which spreads flows over them; DR real servers rs1 and rs2
// hold the VIP on lo and serve echo on port 7. A long-lived echo
// connection from the router's namespace (a line every 200 ms) is
// ESTABLISHED in one director's kernel. SIGTERM to a director without it:
// its path gets 65535:0, it finds no active connection in the kernel and
// exits at once. SIGTERM to the director with it: the router moves the
// flow to the last director at once; the draining kernel still counts the
// connection active, but no packet of it arrives, so the drain ends after
// the quiet window, not at --bgp-drain-timeout, and the echo goes on
// through the last director. SIGTERM to that last director: it is the
// router's only path, the packets keep coming, and it waits out the
// timeout.
func TestECMPBGPDrainWaitsForTheTrafficToLeave(t *testing.T) {
	requireKernelIPVS(t)
	harness.RequireBird(t)
	tp := topo.Build(t, topo.Options{Prefix: "ecbgp-", NoIPv6: true})
	labtool := topo.BuildLabtool(t)
	tp.StartRealServers(labtool)
	for i := 1; i <= 2; i++ {
		tp.AddAddr(topo.RealServer(i), ecmpVIP+"/32", "lo")
	}
	dirs := map[string]netip.Addr{}
	for i := 1; i <= topo.Directors; i++ {
		dirs[topo.Director(i)] = netip.MustParseAddr(topo.DirectorAddr(i))
	}
	routerNS := tp.NS(topo.Client)
	bird := harness.StartBird(t, routerNS, harness.ECMPRouter{Addr: netip.MustParseAddr(topo.ClientAddr), AS: 65000, Directors: dirs, DirectorAS: 65001}.Conf())
	const drain = 15 * time.Second
	args := append([]string{"--resync", "2s", "--resync-cpu", "10", "--bgp-as", "65001", "--bgp-peer", topo.ClientAddr + ",as=65000",
		"--bgp-drain-timeout", drain.String()}, labTiming...)
	c, nodes := harness.Directors(t, tp, "on", args...)
	file := filepath.Join(t.TempDir(), "ecmp.yaml")
	y := fmt.Sprintf(`vips:
  - {address: %s/32, mode: ecmp}
services:
  - {name: Echo, protocol: tcp, address: %s, port: %d, scheduler: mh, flags: [mh-port, mh-fallback],
     servers: [{name: rs1, address: %s}, {name: rs2, address: %s}]}
`, ecmpVIP, ecmpVIP, topo.EchoPort, topo.RealServerAddr(1), topo.RealServerAddr(2))
	if err := os.WriteFile(file, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
	c.MustCLI(nodes[0], "", "apply", "-f", file)
	vip := netip.MustParsePrefix(ecmpVIP + "/32")
	harness.WaitNexthops(t, routerNS, vip, 120*time.Second, dirs["d1"], dirs["d2"], dirs["d3"])

	echo := tp.Start(topo.Client, labtool, "echo", "--addr", fmt.Sprintf("%s:%d", ecmpVIP, topo.EchoPort), "--conns", "1", "--duration", "120s", "--interval", "200ms")
	var loaded *harness.Node
	harness.Eventually(t, 60*time.Second, "the echo connection ESTABLISHED in one director's kernel", func() (bool, string) {
		var seen []string
		for _, n := range nodes {
			out, _ := tp.Exec(n.ID, "ipvsadm", "-L", "-n", "-c")
			if strings.Contains(out, "ESTABLISHED") && strings.Contains(out, fmt.Sprintf("%s:%d", ecmpVIP, topo.EchoPort)) {
				loaded = n
				return true, ""
			}
			seen = append(seen, n.ID+": "+out)
		}
		return false, strings.Join(seen, "\n") + echo.Output()
	})
	t.Logf("the connection is %s's:\n%s", loaded.ID, tp.MustExec(loaded.ID, "ipvsadm", "-L", "-n"))
	var idle *harness.Node
	for _, n := range nodes {
		if n != loaded {
			idle = n
			break
		}
	}

	stopWatched := func(n *harness.Node) time.Duration {
		t.Helper()
		start := time.Now()
		stopped := make(chan error, 1)
		go func() { stopped <- n.Stop() }()
		harness.Eventually(t, 20*time.Second, n.ID+"'s path with 65535:0 at the router", func() (bool, string) {
			comm, out, err := bird.Communities(vip)
			if err == nil && strings.Contains(comm[n.ID], "(65535,0)") {
				return true, ""
			}
			select {
			case err := <-stopped:
				stopped <- err
				return true, "" // gone before the poll saw the drain: checked below from its log
			default:
			}
			return false, out
		})
		select {
		case err := <-stopped:
			if err != nil {
				t.Fatalf("%s after SIGTERM: %v", n.ID, err)
			}
		case <-time.After(drain + 60*time.Second):
			t.Fatalf("%s still running %s after SIGTERM", n.ID, drain+60*time.Second)
		}
		took := time.Since(start)
		if !strings.Contains(n.Log(), "ecmp drain: graceful shutdown announced") {
			t.Fatalf("%s's log has no drain", n.ID)
		}
		return took
	}

	idleTook := stopWatched(idle)
	t.Logf("%s (no connection) stopped in %s", idle.ID, idleTook.Round(time.Millisecond))
	if !strings.Contains(idle.Log(), "no active connection left") || idleTook >= drain {
		t.Fatalf("%s without connections waited %s (drain timeout %s):\n%s", idle.ID, idleTook, drain, tail(idle.Log(), "ecmp"))
	}
	loadedTook := stopWatched(loaded)
	t.Logf("%s (one connection) stopped in %s", loaded.ID, loadedTook.Round(time.Millisecond))
	if !strings.Contains(loaded.Log(), "no packet for "+ecmp.DefaultDrainQuiet.String()) || !strings.Contains(loaded.Log(), `"active_connections":1`) || loadedTook >= drain {
		t.Fatalf("%s with a connection whose flow the router moved stopped after %s (drain timeout %s), want the quiet window:\n%s", loaded.ID, loadedTook, drain, tail(loaded.Log(), "ecmp"))
	}
	last := nodes[3-idxOf(nodes, idle)-idxOf(nodes, loaded)]
	harness.WaitNexthops(t, routerNS, vip, 30*time.Second, dirs[last.ID])
	// The echo flow now reaches the last director: its kernel has the
	// connection (from the sync, or created by the first packet there,
	// sloppy_tcp). That the flow goes on is shown below: the last
	// director's drain waits because its packets keep coming; a broken
	// connection sends none.
	harness.Eventually(t, 30*time.Second, "the echo connection in "+last.ID+"'s kernel", func() (bool, string) {
		out, _ := tp.Exec(last.ID, "ipvsadm", "-L", "-n", "-c")
		return strings.Contains(out, "ESTABLISHED") && strings.Contains(out, fmt.Sprintf("%s:%d", ecmpVIP, topo.EchoPort)), out
	})
	lastTook := stopWatched(last)
	t.Logf("%s (the last path, the echo flow's packets arriving) stopped in %s", last.ID, lastTook.Round(time.Millisecond))
	if !strings.Contains(last.Log(), "drain timeout "+drain.String()+" passed") || lastTook < drain {
		t.Fatalf("%s, the router's last path, stopped after %s (drain timeout %s), want the timeout:\n%s", last.ID, lastTook, drain, tail(last.Log(), "ecmp"))
	}
	t.Logf("echo:\n%s", echo.Output())
}

func idxOf(nodes []*harness.Node, n *harness.Node) int {
	for i, x := range nodes {
		if x == n {
			return i
		}
	}
	return -1
}

// tail is the lines of log containing what.
func tail(log, what string) string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, what) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
