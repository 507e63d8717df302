// Package topo builds the IPVS lab's network out of network namespaces, for
// tests that run as root: inside the lab VM (which has IPVS) and on any
// Linux host with namespaces, veth and bridges (enough to test the topology
// itself and the real servers).
//
// The layout is fixed (README.md has more); every namespace and link name
// carries Options.Prefix, "lab-" by default. Options.Directors adds d4 and
// d5 (10.0.0.14-15, 10.1.0.14-15, fd00::14-15, set up as d1-d3 are):
//
//	=============== bridge lab0 (root namespace; STP off; no address) ===============
//	   |                 |                      |                       |
//	 client           d1 d2 d3              rs1 rs2 rs3           nat1 nat2 nat3
//	 10.0.0.100       10.0.0.11-13          10.0.0.21-23          10.1.0.21-23
//	 fd00::100        10.1.0.11-13          fd00::21-23           default via
//	                  fd00::11-13           lo: 10.0.0.10/32      10.1.0.1
//	                  ip_forward=1          lo: fd00::10/128
//	                  send_redirects=0      arp_ignore=1, arp_announce=2
//
// The front segment 10.0.0.0/24 (and fd00::/64) holds the client, the
// directors and the direct-routing real servers. The internal segment
// 10.1.0.0/24, on the same bridge, holds the directors' second address and
// the masquerading real servers, whose default route is the gateway
// 10.1.0.1 that the active director holds (by hand with AddAddr until the
// cluster owns it). It is a separate subnet because a client on-link with
// the NAT servers would get their replies directly, not through the
// director. All prefixes are /24 and /64, VIPs /32 and /128.
//
// Every namespace has one veth: the end inside is eth0, the end in the root
// namespace (Topology.Veth, named like the namespace) is a bridge port.
// Waits are deadlines, and Build registers a t.Cleanup that removes
// everything, also after a partial failure.
package topo

import (
	"context"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/skip"
)

// Options tune Build. The zero value is the standard lab.
type Options struct {
	// Prefix of every namespace and link name: 1 to 8 lowercase letters or
	// digits, starting with a letter, then "-" (default "lab-"). The bridge is
	// the prefix without its dash plus "0" ("lab0"). Use a different prefix
	// to run two topologies at once; builds with the same prefix, even from
	// different processes, take turns (see Build).
	Prefix string
	// LogDir receives the output of every Start'ed process (default: a
	// t.TempDir, removed after the test).
	LogDir string
	// NoIPv6 leaves out the fd00::/64 addresses. They are also left out when
	// the kernel has no IPv6.
	NoIPv6 bool
	// ExecTimeout bounds each Exec (default 2 minutes): a hung command fails
	// the test instead of stalling it until go test's own timeout.
	ExecTimeout time.Duration
	// Directors is how many director namespaces to build, 3 to
	// MaxDirectors (0 means 3, the standard lab). d4 and d5 come after
	// the standard lab's namespaces and are configured as d1-d3 are.
	Directors int
}

// Topology is a built lab. Its methods may be called from the test
// goroutine; those that fail the test (everything but Exec) call t.Fatal.
type Topology struct {
	t         testing.TB
	prefix    string
	bridge    string
	directors int
	ipv6      bool
	logDir    string
	execTO    time.Duration

	mu    sync.Mutex
	procs []*Proc
}

var prefixRE = regexp.MustCompile(`^[a-z][a-z0-9]{0,7}-$`)

// lockWait bounds how long Build waits for another build with the same
// prefix (another test package, usually) to finish with the names.
const lockWait = 10 * time.Minute

// Build creates the lab and registers its teardown with t.Cleanup. It first
// removes whatever a crashed earlier run with the same prefix left behind.
// Builds with the same prefix are serialised with a lock file, so that
// `go test ./...` running several packages at once cannot tear down another
// package's lab in the middle of its test.
func Build(t testing.TB, opts Options) *Topology {
	t.Helper()
	if os.Geteuid() != 0 {
		skip.Now(t, "topo: needs root (network namespaces, veth, bridge)")
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if !prefixRE.MatchString(opts.Prefix) {
		t.Fatalf("topo: prefix %q: want 1-8 of [a-z0-9] starting with a letter, then '-'", opts.Prefix)
	}
	if opts.ExecTimeout <= 0 {
		opts.ExecTimeout = 2 * time.Minute
	}
	directors, err := directorCount(opts.Directors)
	if err != nil {
		t.Fatalf("topo: %v", err)
	}
	tp := &Topology{
		t:         t,
		prefix:    opts.Prefix,
		bridge:    strings.TrimSuffix(opts.Prefix, "-") + "0",
		directors: directors,
		ipv6:      !opts.NoIPv6 && exists("/proc/sys/net/ipv6"),
		logDir:    opts.LogDir,
		execTO:    opts.ExecTimeout,
	}
	if tp.logDir == "" {
		tp.logDir = t.TempDir()
	} else if err := os.MkdirAll(tp.logDir, 0o755); err != nil {
		t.Fatalf("topo: %v", err)
	}
	unlock, err := lock(tp.bridge, lockWait)
	if err != nil {
		t.Fatalf("topo: %v", err)
	}
	// Cleanups run last-in first-out: the teardown registered below runs
	// before the lock is released.
	t.Cleanup(unlock)
	if err := tp.teardown(); err != nil {
		t.Fatalf("topo: removing leftovers of an earlier run: %v", err)
	}
	t.Cleanup(func() {
		tp.stopProcs()
		if err := tp.teardown(); err != nil {
			t.Errorf("topo: teardown: %v", err)
		}
	})
	if err := tp.create(); err != nil {
		t.Fatalf("topo: %v", err)
	}
	return tp
}

// directorCount resolves Options.Directors: 0 is the standard lab's 3.
func directorCount(n int) (int, error) {
	if n == 0 {
		return Directors, nil
	}
	if n < Directors || n > MaxDirectors {
		return 0, fmt.Errorf("%d directors: want %d to %d (0 for %d)", n, Directors, MaxDirectors, Directors)
	}
	return n, nil
}

// DirectorNames returns the directors' node names, "d1" to "dN".
func (tp *Topology) DirectorNames() []string {
	var out []string
	for i := 1; i <= tp.directors; i++ {
		out = append(out, Director(i))
	}
	return out
}

// NS returns the full namespace name of a node ("d1" -> "lab-d1"), for
// tools that take one, e.g. `ip -n` or a netns path /run/netns/NAME.
func (tp *Topology) NS(node string) string { return tp.prefix + node }

// Veth returns the name of the node's veth end on the bridge, in the root
// namespace.
func (tp *Topology) Veth(node string) string { return tp.prefix + node }

// Bridge returns the bridge's name ("lab0").
func (tp *Topology) Bridge() string { return tp.bridge }

// IPv6 reports whether the fd00::/64 addresses were configured.
func (tp *Topology) IPv6() bool { return tp.ipv6 }

// create builds everything; teardown copes with any partial result.
func (tp *Topology) create() error {
	nodes := layout(tp.ipv6, tp.directors)
	// Links are created down, so that the root namespace's IPv6 can be
	// switched off on them before it autoconfigures anything.
	var b strings.Builder
	// mcast_snooping 0: every multicast frame (IPVS connection sync on
	// 224.0.0.81, IPv6 neighbour discovery) is flooded, whatever
	// IGMP/MLD reports the bridge has or has not seen.
	fmt.Fprintf(&b, "link add %s type bridge stp_state 0 mcast_snooping 0\n", tp.bridge)
	for _, n := range nodes {
		fmt.Fprintf(&b, "netns add %s\n", tp.NS(n.name))
		fmt.Fprintf(&b, "link add %s type veth peer name eth0 netns %s\n", tp.Veth(n.name), tp.NS(n.name))
		fmt.Fprintf(&b, "link set %s master %s\n", tp.Veth(n.name), tp.bridge)
	}
	if err := ipBatch("", b.String(), false); err != nil {
		return err
	}
	// The root namespace takes no part in the lab: no IPv6 link-local
	// address, router solicitations or MLD reports from it. Best effort: no
	// file means no IPv6 at all.
	for _, dev := range append([]string{tp.bridge}, tp.veths()...) {
		_ = os.WriteFile("/proc/sys/net/ipv6/conf/"+dev+"/disable_ipv6", []byte("1"), 0)
	}
	b.Reset()
	fmt.Fprintf(&b, "link set %s up\n", tp.bridge)
	for _, dev := range tp.veths() {
		fmt.Fprintf(&b, "link set %s up\n", dev)
	}
	if err := ipBatch("", b.String(), false); err != nil {
		return err
	}
	for _, n := range nodes {
		if err := tp.configure(n); err != nil {
			return fmt.Errorf("%s: %w", n.name, err)
		}
	}
	return tp.waitPorts(tp.veths(), 10*time.Second)
}

// configure sets one namespace up: sysctls first (the real servers' ARP
// settings must precede the VIP), then addresses, links and the route.
func (tp *Topology) configure(n node) error {
	if len(n.sysctls) > 0 {
		if out, err := tp.Exec(n.name, "sysctl", append([]string{"-q", "-w"}, n.sysctls...)...); err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
	}
	var b strings.Builder
	b.WriteString("link set lo up\n")
	for _, a := range n.eth0 {
		fmt.Fprintf(&b, "addr add %s dev eth0%s\n", a, nodad(a))
	}
	for _, a := range n.lo {
		fmt.Fprintf(&b, "addr add %s dev lo%s\n", a, nodad(a))
	}
	// eth0 comes up after its peer on the bridge: it then has carrier at
	// once, and the connected route the gateway needs exists.
	b.WriteString("link set eth0 up\n")
	if n.gateway != "" {
		fmt.Fprintf(&b, "route add default via %s dev eth0\n", n.gateway)
	}
	return ipBatch(tp.NS(n.name), b.String(), false)
}

func (tp *Topology) veths() []string {
	var out []string
	for _, n := range namespaces(tp.directors) {
		out = append(out, tp.Veth(n))
	}
	return out
}

// waitPorts waits until every given bridge port is up and forwarding. These
// are root-namespace sysfs reads: no process per poll.
func (tp *Topology) waitPorts(devs []string, timeout time.Duration) error {
	return poll(timeout, func() error {
		for _, dev := range devs {
			op := readTrim("/sys/class/net/" + dev + "/operstate")
			st := readTrim("/sys/class/net/" + dev + "/brport/state")
			if op != "up" || st != "3" {
				return fmt.Errorf("port %s: operstate %q, bridge state %q (want up, 3=forwarding)", dev, op, st)
			}
		}
		return nil
	})
}

// poll calls check until it returns nil or timeout passes, and then
// returns check's last error.
func poll(timeout time.Duration, check func() error) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := check()
		if err == nil {
			return nil
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("after %s: %w", timeout, err)
		}
	}
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return !errors.Is(err, os.ErrNotExist)
}

func readTrim(path string) string {
	b, _ := os.ReadFile(path)
	return strings.TrimSpace(string(b))
}
