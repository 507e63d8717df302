package host

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/failover"
	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// The VIP tests run the lab's topology on the host (network namespaces, a
// bridge; no IPVS: --ipvs=off) under their own prefix, so that they can
// run beside the lab's own topology tests.
const vipPrefix = "vh-"

// vipLab is three directors, each serving HTTP on every address with its
// own name, and the VIPs of the model: the front VIP (IPv4 and IPv6) and
// the masquerading servers' gateway.
type vipLab struct {
	tp    *topo.Topology
	c     *harness.Cluster
	nodes []*harness.Node
	vips  []string // CIDRs
	tool  string   // labtool
}

func newVIPLab(t *testing.T, args ...string) *vipLab {
	lab := failover.NewLabWith(t, topo.BuildLabtool(t), topo.Options{Prefix: vipPrefix})
	tp := lab.Topo
	l := &vipLab{tp: tp, tool: lab.Labtool}
	l.c, l.nodes = harness.Directors(t, tp, "off", args...)
	l.vips = []string{topo.VIP + "/32", topo.Gateway + "/24"}
	if tp.IPv6() {
		l.vips = append(l.vips, topo.VIP6+"/128")
	}
	var lines []string
	for _, v := range l.vips {
		lines = append(lines, "vip "+v+" eth0")
	}
	file := filepath.Join(t.TempDir(), "vips.topo")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l.c.MustCLI(l.nodes[0], "", "apply", "-f", file)
	return l
}

// holds lists the VIPs node has on eth0.
func (l *vipLab) holds(t *testing.T, node string) []string {
	t.Helper()
	out := l.tp.MustExec(node, "ip", "-o", "addr", "show", "dev", "eth0")
	var got []string
	for _, v := range l.vips {
		if strings.Contains(out, " "+v+" ") {
			got = append(got, v)
		}
	}
	return got
}

// waitOwner waits until owner holds every VIP and no other running node
// holds any.
func (l *vipLab) waitOwner(t *testing.T, owner *harness.Node, others ...*harness.Node) {
	t.Helper()
	harness.Eventually(t, 20*time.Second, "VIPs on "+owner.ID+" only", func() (bool, string) {
		if h := l.holds(t, owner.ID); len(h) != len(l.vips) {
			return false, fmt.Sprintf("%s holds %v", owner.ID, h)
		}
		for _, o := range others {
			if h := l.holds(t, o.ID); len(h) > 0 {
				return false, fmt.Sprintf("%s holds %v too", o.ID, h)
			}
		}
		return true, ""
	})
}

func (l *vipLab) mac(t *testing.T, node string) string {
	return strings.TrimSpace(l.tp.MustExec(node, "cat", "/sys/class/net/eth0/address"))
}

// neighMAC is the client's neighbour-table entry for addr ("" if none).
func (l *vipLab) neighMAC(t *testing.T, addr string) string {
	out := l.tp.MustExec(topo.Client, "ip", "neigh", "show", addr, "dev", "eth0")
	f := strings.Fields(out)
	for i := range f {
		if f[i] == "lladdr" && i+1 < len(f) {
			return f[i+1]
		}
	}
	return ""
}

// answeredBy runs n requests from the client to url and returns who
// answered them (name -> count) and how many failed.
func (l *vipLab) answeredBy(t *testing.T, url string, n int) (map[string]int, int) {
	t.Helper()
	out := l.tp.MustExec(topo.Client, l.tool, "http", "--url", url, "--count", fmt.Sprint(n), "--timeout", "1s")
	var r struct {
		ByServer map[string]int `json:"by_server"`
		Failed   int            `json:"failed"`
	}
	if err := json.Unmarshal([]byte(out), &r); err != nil {
		t.Fatalf("labtool http: %q: %v", out, err)
	}
	return r.ByServer, r.Failed
}

// wantServed checks that the client reaches owner, and only owner, on
// every front VIP, and that its neighbour entries point at owner's MAC.
func (l *vipLab) wantServed(t *testing.T, owner *harness.Node) {
	t.Helper()
	urls := []string{"http://" + topo.VIP + "/"}
	if l.tp.IPv6() {
		urls = append(urls, "http://["+topo.VIP6+"]/")
	}
	for _, u := range urls {
		by, failed := l.answeredBy(t, u, 10)
		if failed != 0 || by[owner.ID] != 10 {
			t.Errorf("%s: answered by %v, %d failed; want all 10 by %s", u, by, failed, owner.ID)
		}
	}
	mac := l.mac(t, owner.ID)
	for _, a := range []string{topo.VIP, topo.VIP6} {
		if a == topo.VIP6 && !l.tp.IPv6() {
			continue
		}
		if got := l.neighMAC(t, a); got != mac {
			t.Errorf("client's neighbour entry for %s: %q, want %s's %s", a, got, owner.ID, mac)
		}
	}
	// The masquerading servers' default route: the gateway VIP answers.
	if _, err := l.tp.Exec(topo.NATServer(1), "ping", "-c", "1", "-W", "2", topo.Gateway); err != nil {
		t.Errorf("nat1 cannot reach its gateway %s on %s: %v", topo.Gateway, owner.ID, err)
	}
}

func others(all []*harness.Node, not ...*harness.Node) []*harness.Node {
	var out []*harness.Node
outer:
	for _, n := range all {
		for _, x := range not {
			if n == x {
				continue outer
			}
		}
		out = append(out, n)
	}
	return out
}

// TestVIPFollowsTheLeader: the leader holds and announces the VIPs; a
// crash (SIGKILL and the link cut) moves them to the new leader, and the
// client's neighbour table follows without any traffic of its own (so not
// by ARP expiry or probing: by the announcement); the crashed node removes
// the leftovers on start-up, before its link is back; a planned transfer
// and a SIGTERM move them too.
func TestVIPFollowsTheLeader(t *testing.T) {
	l := newVIPLab(t)
	c, nodes := l.c, l.nodes
	lead := c.Leader(t, nodes[0], nodes)
	l.waitOwner(t, lead, others(nodes, lead)...)
	l.wantServed(t, lead)

	// Crash: the dead process leaves the addresses in its namespace, as a
	// hung machine would; the cut link keeps them from answering.
	lead.Kill()
	l.tp.CutLink(lead.ID)
	rest := others(nodes, lead)
	next := c.Leader(t, rest[0], rest)
	l.waitOwner(t, next, others(rest, next)...)
	harness.Eventually(t, 10*time.Second, "client's neighbour entry moved to "+next.ID, func() (bool, string) {
		got, want := l.neighMAC(t, topo.VIP), l.mac(t, next.ID)
		return got == want, fmt.Sprintf("entry %q, want %s", got, want)
	})
	l.wantServed(t, next)

	if h := l.holds(t, lead.ID); len(h) != len(l.vips) {
		t.Fatalf("the killed leader's namespace holds %v: the crash did not leave the addresses behind", h)
	}
	lead.Start()
	harness.Eventually(t, 10*time.Second, "restarted "+lead.ID+" removes the leftovers while cut off", func() (bool, string) {
		h := l.holds(t, lead.ID)
		return len(h) == 0, fmt.Sprintf("holds %v", h)
	})
	l.tp.RestoreLink(lead.ID)
	harness.Eventually(t, 30*time.Second, "three members again", func() (bool, string) {
		r := c.CLI(next, "", "cluster", "status")
		return r.Err == nil && strings.Count(r.Stdout, "Follower") == 2, r.Stdout + r.Stderr
	})
	l.waitOwner(t, next, others(nodes, next)...)

	// Planned: hand leadership to the node that crashed.
	out := c.MustCLI(next, "", "cluster", "transfer", lead.ID)
	if !strings.Contains(out, lead.ID) {
		t.Errorf("transfer said %q", out)
	}
	l.waitOwner(t, lead, others(nodes, lead)...)
	l.wantServed(t, lead)

	// SIGTERM: the VIPs are gone when the process has exited.
	if err := lead.Stop(); err != nil {
		t.Fatalf("stop %s: %v", lead.ID, err)
	}
	if h := l.holds(t, lead.ID); len(h) != 0 {
		t.Errorf("%s exited on SIGTERM still holding %v", lead.ID, h)
	}
	rest = others(nodes, lead)
	next = c.Leader(t, rest[0], rest)
	l.waitOwner(t, next, others(rest, next)...)
	l.wantServed(t, next)
	if !strings.Contains(lead.Log(), `"msg":"vip removed"`) || !strings.Contains(lead.Log(), `"reason":"shutdown"`) {
		t.Errorf("no vip removal with reason shutdown in %s's log", lead.ID)
	}
	st := c.MustCLI(next, "", "cluster", "status")
	if !strings.Contains(st, "VIPS") || !strings.Contains(st, topo.VIP+"/32") {
		t.Errorf("cluster status does not show the VIPs:\n%s", st)
	}
}
