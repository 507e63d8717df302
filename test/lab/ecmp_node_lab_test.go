//go:build lab

package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// ecmpVIP is the lab's ecmp VIP: on the front segment, held by no real
// server (no traffic goes to it here: the router that spreads flows over
// the directors is another test's).
const ecmpVIP = "10.0.0.50"

// nodeStatus is node's own status (GET /v1/status), asked from the client.
func nodeStatus(t *testing.T, c *harness.Cluster, tp *topo.Topology, n *harness.Node) (api.NodeStatus, error) {
	t.Helper()
	args := c.Curl(n, "/v1/status", true, "-s", "--max-time", "20")
	out, err := tp.Exec(topo.Client, args[0], args[1:]...)
	var st api.NodeStatus
	if err != nil {
		return st, fmt.Errorf("%s: %w: %s", n.ID, err, out)
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return st, fmt.Errorf("%s: %w: %s", n.ID, err, out)
	}
	return st, nil
}

// ecmpLeader is the node `cluster status --json` reports leader. The text
// form exits non-zero while no node announces the ecmp VIP over BGP (this
// lab has no router), which leaderOf takes for a failure.
func ecmpLeader(t *testing.T, c *harness.Cluster, nodes []*harness.Node) *harness.Node {
	t.Helper()
	var found *harness.Node
	harness.Eventually(t, 60*time.Second, "a leader", func() (bool, string) {
		r := c.CLI(nodes[0], "", "cluster", "status", "--json")
		var st api.ClusterStatus
		if r.Err != nil || json.Unmarshal([]byte(r.Stdout), &st) != nil {
			return false, r.Stdout + r.Stderr
		}
		for _, v := range st.Nodes {
			if v.Status != nil && v.Status.State == "Leader" {
				for _, n := range nodes {
					if n.ID == v.ID {
						found = n
						return true, ""
					}
				}
			}
		}
		return false, r.Stdout
	})
	return found
}

// TestECMPNodeEveryDirectorServes: an ecmp VIP 10.0.0.50/32 (interface
// left out, so lo) with an mh service (mh-port, mh-fallback) and two
// direct-routing real servers. Every director holds the address on lo,
// none announces it (no ARP round counted, none failed), every kernel has
// the same service and destinations, every director runs both the master
// and the backup sync thread, and sloppy_tcp and sloppy_sctp are 1
// everywhere. A wlc service on the VIP is refused by the CLI, naming what
// to change. Switched back to the leader mode on eth0, the leader alone
// holds it and announces it, and the followers run the backup alone.
func TestECMPNodeEveryDirectorServes(t *testing.T) {
	requireKernelIPVS(t)
	tp := topo.Build(t, topo.Options{Prefix: "ecmp-"})
	c, nodes := labCluster(t, tp)
	file := filepath.Join(t.TempDir(), "ecmp.yaml")
	apply := func(vip string) {
		t.Helper()
		y := vip + fmt.Sprintf(`services:
  - {name: Web, protocol: tcp, address: %s, port: 80, scheduler: mh, flags: [mh-port, mh-fallback],
     servers: [{name: rs1, address: %s}, {name: rs2, address: %s}]}
`, ecmpVIP, topo.RealServerAddr(1), topo.RealServerAddr(2))
		if err := os.WriteFile(file, []byte(y), 0o644); err != nil {
			t.Fatal(err)
		}
		c.MustCLI(nodes[1], "", "apply", "-f", file)
	}
	apply("vips:\n  - {address: " + ecmpVIP + "/32, mode: ecmp}\n")
	lead := ecmpLeader(t, c, nodes)

	// Every director holds it on lo.
	for _, n := range nodes {
		harness.Eventually(t, 60*time.Second, n.ID+" holds "+ecmpVIP+"/32 on lo", func() (bool, string) {
			out, err := tp.Exec(n.ID, "ip", "-o", "addr", "show", "dev", "lo")
			return err == nil && strings.Contains(out, " "+ecmpVIP+"/32 "), out
		})
		t.Logf("%s (leader %v): %s", n.ID, n == lead, strings.TrimSpace(tp.MustExec(n.ID, "ip", "-o", "-4", "addr", "show", "dev", "lo")))
	}

	// The same table in every kernel: the mh service and both servers.
	var first string
	harness.Eventually(t, 60*time.Second, "the mh service with two servers in every kernel", func() (bool, string) {
		first = ""
		for _, n := range nodes {
			out, err := tp.Exec(n.ID, "ipvsadm", "-S", "-n")
			lines := strings.Split(strings.TrimSpace(out), "\n")
			slices.Sort(lines)
			got := strings.Join(lines, "\n")
			if err != nil || strings.Count(got, "-r ") != 2 || !strings.Contains(got, "-s mh -b mh-fallback,mh-port") {
				return false, n.ID + ":\n" + got
			}
			if first == "" {
				first = got
			} else if got != first {
				return false, fmt.Sprintf("%s differs:\n%s\nfrom\n%s", n.ID, got, first)
			}
		}
		return true, ""
	})
	t.Logf("every kernel (ipvsadm -S -n):\n%s", first)
	t.Logf("%s: ipvsadm -L -n:\n%s", lead.ID, tp.MustExec(lead.ID, "ipvsadm", "-L", "-n"))

	// Both sync threads and the sloppy sysctls on every node.
	for _, n := range nodes {
		harness.Eventually(t, 60*time.Second, n.ID+": master and backup sync threads, sloppy_tcp and sloppy_sctp 1", func() (bool, string) {
			d, err := tp.Exec(n.ID, "ipvsadm", "-L", "--daemon")
			s, serr := tp.Exec(n.ID, "sysctl", "-n", "net.ipv4.vs.sloppy_tcp", "net.ipv4.vs.sloppy_sctp")
			ok := err == nil && serr == nil && strings.Contains(d, "master sync daemon") && strings.Contains(d, "backup sync daemon") &&
				strings.Join(strings.Fields(s), " ") == "1 1"
			return ok, d + s
		})
		t.Logf("%s: ipvsadm -L --daemon:\n%ssloppy_tcp, sloppy_sctp: %s", n.ID, tp.MustExec(n.ID, "ipvsadm", "-L", "--daemon"),
			strings.Join(strings.Fields(tp.MustExec(n.ID, "sysctl", "-n", "net.ipv4.vs.sloppy_tcp", "net.ipv4.vs.sloppy_sctp")), " "))
	}

	// No announcement: the ARP/NA path was not taken for it on any node.
	for _, n := range nodes {
		st, err := nodeStatus(t, c, tp, n)
		if err != nil {
			t.Fatal(err)
		}
		v := st.VIPs
		if v == nil || !slices.Equal(v.Held, []string{ecmpVIP + "/32 on lo"}) || !slices.Equal(v.ECMP, v.Held) || v.Announcements != 0 || v.AnnounceErrors != 0 {
			t.Errorf("%s: vip status %+v, want %s/32 on lo held as ecmp, no announcement", n.ID, v, ecmpVIP)
		} else {
			t.Logf("%s: held %v (ecmp %v), announcements %d, announce errors %d", n.ID, v.Held, v.ECMP, v.Announcements, v.AnnounceErrors)
		}
	}
	// The VIP alarm comes before the BGP one (no router here): an error
	// naming BGP alone means three holders raised no VIP alarm.
	cs := c.CLI(nodes[0], "", "cluster", "status")
	if strings.Count(cs.Stdout, ecmpVIP+"/32 (ecmp)") != 3 || strings.Contains(cs.Stderr, "held by more than one node") {
		t.Errorf("cluster status: want the ecmp VIP on each of 3 nodes and no VIP alarm:\n%s%s", cs.Stdout, cs.Stderr)
	}
	t.Logf("cluster status (%v):\n%s%s", cs.Err, cs.Stdout, cs.Stderr)

	// A service of the VIP that is not mh is refused, naming the change.
	r := c.CLI(nodes[2], "", "-A", "-t", ecmpVIP+":8080", "-s", "wlc")
	want := "service tcp:" + ecmpVIP + ":8080: scheduler wlc: a service of ecmp VIP " + ecmpVIP + " must use mh with mh-port and mh-fallback"
	if r.Err == nil || !strings.Contains(r.Stderr, want) {
		t.Errorf("ipvsman -A -t %s:8080 -s wlc: err %v, stderr %q, want %q", ecmpVIP, r.Err, r.Stderr, want)
	}
	t.Logf("ipvsman -A -t %s:8080 -s wlc: %v: %s", ecmpVIP, r.Err, strings.TrimSpace(r.Stderr))
	if out := tp.MustExec(lead.ID, "ipvsadm", "-S", "-n"); strings.Contains(out, ":8080") {
		t.Errorf("the refused service reached the kernel:\n%s", out)
	}

	// Back to the leader mode, on eth0: the leader alone holds and
	// announces it; the followers drop it and keep the backup thread only.
	apply("vips:\n  - {address: " + ecmpVIP + "/32, interface: eth0}\n")
	lead = ecmpLeader(t, c, nodes)
	for _, n := range nodes {
		harness.Eventually(t, 60*time.Second, n.ID+": leader mode", func() (bool, string) {
			lo, _ := tp.Exec(n.ID, "ip", "-o", "addr", "show", "dev", "lo")
			eth, _ := tp.Exec(n.ID, "ip", "-o", "addr", "show", "dev", "eth0")
			d, _ := tp.Exec(n.ID, "ipvsadm", "-L", "--daemon")
			onEth := strings.Contains(eth, " "+ecmpVIP+"/32 ")
			master := strings.Contains(d, "master sync daemon")
			return !strings.Contains(lo, ecmpVIP) && onEth == (n == lead) && master == (n == lead), lo + eth + d
		})
	}
	harness.Eventually(t, 30*time.Second, lead.ID+" announces "+ecmpVIP, func() (bool, string) {
		st, err := nodeStatus(t, c, tp, lead)
		if err != nil {
			return false, err.Error()
		}
		return st.VIPs != nil && st.VIPs.Announcements > 0 && len(st.VIPs.ECMP) == 0, fmt.Sprintf("%+v", st.VIPs)
	})
	st, _ := nodeStatus(t, c, tp, lead)
	t.Logf("leader mode: %s holds %v, announcements %d", lead.ID, st.VIPs.Held, st.VIPs.Announcements)
}
