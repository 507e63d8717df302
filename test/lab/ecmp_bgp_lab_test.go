//go:build lab

package lab

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
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
// ESTABLISHED in one director's kernel, the one the router's hash picked
// (the connection sync copies it into the others, which see none of its
// packets). SIGTERM to a director the flow does not pass through: its
// path gets 65535:0, it finds no active connection in the kernel, or only
// the copy, and exits long before the drain timeout. SIGTERM to the director with it: the router moves the
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
	// The director carrying the flow is the one whose kernel counts its
	// packets: the router's hash picks it, and the connection sync puts a
	// copy, ESTABLISHED too, in the other kernels, which count no packet.
	service := fmt.Sprintf("%s:%d", ecmpVIP, topo.EchoPort)
	var loaded *harness.Node
	counted := map[string]uint64{}
	harness.Eventually(t, 60*time.Second, "the echo flow's packets counted by one director's kernel", func() (bool, string) {
		var grew []*harness.Node
		var seen []string
		for _, n := range nodes {
			pkts, err := ipvsServiceStat(tp, n.ID, service, statInPkts)
			if err != nil {
				return false, err.Error()
			}
			if prev, ok := counted[n.ID]; ok && pkts > prev {
				grew = append(grew, n)
			}
			counted[n.ID] = pkts
			seen = append(seen, fmt.Sprintf("%s: %d packets", n.ID, pkts))
		}
		if len(grew) == 1 {
			loaded = grew[0]
			return true, ""
		}
		return false, strings.Join(seen, ", ") + "\n" + echo.Output()
	})
	for _, n := range nodes {
		t.Logf("%s's connections (carrying the flow: %v):\n%s", n.ID, n == loaded, tp.MustExec(n.ID, "ipvsadm", "-L", "-n", "-c"))
	}
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

	// A director the flow does not pass through counts no active
	// connection, or only the sync's copy of it, whose packets never come:
	// either way its drain ends long before the timeout.
	idleTook := stopWatched(idle)
	t.Logf("%s (not carrying the flow) stopped in %s:\n%s", idle.ID, idleTook.Round(time.Millisecond), tail(idle.Log(), "ecmp drain"))
	if !strings.Contains(idle.Log(), "no active connection left") && !strings.Contains(idle.Log(), "no packet for "+ecmp.DefaultDrainQuiet.String()) || idleTook >= drain {
		t.Fatalf("%s, not carrying the flow, waited %s (drain timeout %s):\n%s", idle.ID, idleTook, drain, tail(idle.Log(), "ecmp"))
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

// IPVS service counters, the columns of ipvsadm -L -n --stats.
const (
	statConns  = 2
	statInPkts = 3
)

// ipvsServiceStat is a counter of the service VIP:port (TCP) in node's
// kernel.
func ipvsServiceStat(tp *topo.Topology, node, service string, col int) (uint64, error) {
	out, err := tp.Exec(node, "ipvsadm", "-L", "-n", "--stats", "--exact", "-t", service)
	if err != nil {
		return 0, fmt.Errorf("%s: ipvsadm --stats -t %s: %w: %s", node, service, err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > col && f[0] == "TCP" && f[1] == service {
			return strconv.ParseUint(f[col], 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no TCP %s in ipvsadm --stats:\n%s", node, service, out)
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
