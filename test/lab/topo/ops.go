package topo

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// linkWait bounds the wait for a link change to be visible on both ends.
const linkWait = 10 * time.Second

// CutLink takes the node's bridge port down, as a pulled cable would: eth0
// inside loses carrier (NO-CARRIER), which software watching the link can
// see. It returns once the node sees it.
func (tp *Topology) CutLink(node string) {
	tp.t.Helper()
	if out, err := exec.Command("ip", "link", "set", tp.Veth(node), "down").CombinedOutput(); err != nil {
		tp.t.Fatalf("topo: cut %s: %v: %s", node, err, out)
	}
	tp.waitEth0(node, "NO-CARRIER", true)
}

// RestoreLink undoes CutLink and returns once traffic can flow: the bridge
// port forwards and the node's eth0 is up again.
func (tp *Topology) RestoreLink(node string) {
	tp.t.Helper()
	if out, err := exec.Command("ip", "link", "set", tp.Veth(node), "up").CombinedOutput(); err != nil {
		tp.t.Fatalf("topo: restore %s: %v: %s", node, err, out)
	}
	if err := tp.waitPorts([]string{tp.Veth(node)}, linkWait); err != nil {
		tp.t.Fatalf("topo: restore %s: %v", node, err)
	}
	// Operstate UP implies carrier, and is set only once the kernel has
	// (re)activated eth0's transmit queue.
	tp.waitEth0(node, "state UP", true)
}

// SilentCut partitions the node without telling it: its bridge port is set
// to the disabled state (`bridge link set dev VETH state 0`), so the bridge
// drops every frame to and from it, while both veth ends stay up with
// carrier. The node sees a healthy link and silence. This is possible
// because STP is off, so nothing but SilentRestore (or a link flap) moves
// the port out of that state.
func (tp *Topology) SilentCut(node string) {
	tp.t.Helper()
	tp.portState(node, "0")
}

// SilentRestore puts the port back to forwarding.
func (tp *Topology) SilentRestore(node string) {
	tp.t.Helper()
	tp.portState(node, "3")
}

func (tp *Topology) portState(node, state string) {
	tp.t.Helper()
	dev := tp.Veth(node)
	if out, err := exec.Command("bridge", "link", "set", "dev", dev, "state", state).CombinedOutput(); err != nil {
		tp.t.Fatalf("topo: bridge port %s state %s: %v: %s", dev, state, err, out)
	}
	// The change is synchronous; reading it back guards against a port
	// that something else (a flap) moved.
	if got := readTrim("/sys/class/net/" + dev + "/brport/state"); got != state {
		tp.t.Fatalf("topo: bridge port %s: state %s, want %s", dev, got, state)
	}
}

// waitEth0 polls `ip -o link show dev eth0` in the node until the output
// contains (or, with want false, lacks) substr.
func (tp *Topology) waitEth0(node, substr string, want bool) {
	tp.t.Helper()
	err := poll(linkWait, func() error {
		out, err := exec.Command("ip", "-n", tp.NS(node), "-o", "link", "show", "dev", "eth0").CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		if strings.Contains(string(out), substr) != want {
			return fmt.Errorf("eth0 in %s: %s", node, strings.TrimSpace(string(out)))
		}
		return nil
	})
	if err != nil {
		tp.t.Fatalf("topo: waiting for %q (present=%v): %v", substr, want, err)
	}
}

// AddAddr adds an address (CIDR) to dev in the node, e.g. the VIP or the
// gateway on a director's eth0 while the cluster does not yet own them.
// IPv6 addresses skip duplicate address detection, so they work at once.
// A peer that has just failed to resolve the address may not probe again
// for a second or more: ArpFlush it.
func (tp *Topology) AddAddr(node, cidr, dev string) {
	tp.t.Helper()
	args := []string{"addr", "add", cidr, "dev", dev}
	if strings.Contains(cidr, ":") {
		args = append(args, "nodad")
	}
	tp.ip(node, args...)
}

// DelAddr removes an address that AddAddr (or Build) put there.
func (tp *Topology) DelAddr(node, cidr, dev string) {
	tp.t.Helper()
	tp.ip(node, "addr", "del", cidr, "dev", dev)
}

// ArpFlush empties the node's neighbour table (ARP and IPv6 ND), so that
// its next packet to each address resolves the MAC afresh: how a test shows
// a VIP has moved without waiting for the entry to expire.
func (tp *Topology) ArpFlush(node string) {
	tp.t.Helper()
	tp.ip(node, "neigh", "flush", "all")
}

// serverWait bounds the wait for one real server's "ready".
const serverWait = 30 * time.Second

// StartRealServers starts `labtool serve --name NODE` (HTTP :80, echo :7,
// DNS :53 on every address, the VIP on lo included) in each DR and NAT real
// server namespace, waits until each has printed "ready", and returns the
// processes by node name ("rs1" ... "nat3").
func (tp *Topology) StartRealServers(labtool string) map[string]*Proc {
	tp.t.Helper()
	procs := map[string]*Proc{}
	var nodes []string
	for i := 1; i <= 3; i++ {
		nodes = append(nodes, RealServer(i), NATServer(i))
	}
	// Start all, then wait for all: the starts overlap.
	for _, n := range nodes {
		procs[n] = tp.Start(n, labtool, "serve", "--name", n,
			"--http", ":"+strconv.Itoa(HTTPPort), "--echo", ":"+strconv.Itoa(EchoPort), "--dns", ":"+strconv.Itoa(DNSPort))
	}
	for _, n := range nodes {
		if err := procs[n].WaitLine("ready", serverWait); err != nil {
			tp.t.Fatalf("topo: real server %s: %v", n, err)
		}
	}
	return procs
}

// BuildLabtool returns the path of a static labtool binary: $LABTOOL if set
// (the lab VM has no Go toolchain to spare, so its runner builds it on the
// host), else a fresh `CGO_ENABLED=0 go build` into t.TempDir().
func BuildLabtool(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("LABTOOL"); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("topo: LABTOOL: %v", err)
		}
		return p
	}
	_, file, _, _ := runtime.Caller(0)
	src := filepath.Join(filepath.Dir(file), "..", "labtool")
	out := filepath.Join(t.TempDir(), "labtool")
	cmd := exec.Command("go", "build", "-o", out, ".")
	cmd.Dir = src
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("topo: building labtool: %v\n%s", err, b)
	}
	return out
}
