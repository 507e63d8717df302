package harness

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/skip"
)

// RequireBird fails (where skips are forbidden, as in CI) or skips without
// root or Debian's bird2.
func RequireBird(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		skip.Now(t, "bird: network namespaces need root")
	}
	for _, p := range []string{"bird", "birdc", "ip"} {
		if _, err := exec.LookPath(p); err != nil {
			skip.Nowf(t, "bird: no %s: install Debian's bird2 (.ci/run does)", p)
		}
	}
}

// ECMPRouter is a BIRD configuration for a router that takes the directors'
// VIP routes over eBGP and spreads flows over them: equal paths merged into
// one multipath kernel route, and RFC 8326's receiving side of a drain (a
// path with GRACEFUL_SHUTDOWN, 65535:0, gets local preference 0 and leaves
// the ECMP set while other paths remain). One protocol per director, named
// by its ID, so that `birdc show route all` names each path's director.
type ECMPRouter struct {
	Addr       netip.Addr            // the router's address on the directors' subnet
	AS         uint32                // the router's AS
	Directors  map[string]netip.Addr // director ID -> address
	DirectorAS uint32
	Hold       int // seconds; 0: 9
	// BFD, when set, runs a BFD session beside each BGP one at this
	// interval (tx and rx), so that a dead director's path goes after
	// BFDMultiplier missed packets rather than the hold time. The
	// directors need --bgp-peer ...,bfd with the same timers.
	BFD           time.Duration
	BFDMultiplier int // 0: 3
}

// Conf renders the configuration.
func (r ECMPRouter) Conf() string {
	hold := r.Hold
	if hold == 0 {
		hold = 9
	}
	var b strings.Builder
	bfd := ""
	if r.BFD > 0 {
		bfd = " bfd on;"
	}
	fmt.Fprintf(&b, `log stderr all;
router id %s;
protocol device { scan time 10; }
protocol kernel k4 { ipv4 { import none; export all; }; merge paths on; }
filter gshut { if (65535, 0) ~ bgp_community then bgp_local_pref = 0; accept; }
template bgp directors { local %s as %d; hold time %d; connect retry time 1; error wait time 1, 2;%s ipv4 { import filter gshut; export none; }; }
`, r.Addr, r.Addr, r.AS, hold, bfd)
	if r.BFD > 0 {
		mult := r.BFDMultiplier
		if mult == 0 {
			mult = 3
		}
		fmt.Fprintf(&b, "protocol bfd { interface \"*\" { min rx interval %d ms; min tx interval %d ms; multiplier %d; }; }\n",
			r.BFD.Milliseconds(), r.BFD.Milliseconds(), mult)
	}
	for _, id := range slices.Sorted(maps.Keys(r.Directors)) {
		fmt.Fprintf(&b, "protocol bgp %s from directors { neighbor %s as %d; }\n", id, r.Directors[id], r.DirectorAS)
	}
	return b.String()
}

// Bird is a BIRD process in a network namespace, with its control socket.
type Bird struct {
	NS   string
	sock string
	cmd  *exec.Cmd
	done chan struct{}
	out  LogBuffer
}

// Output is what BIRD logged so far.
func (b *Bird) Output() string {
	return b.out.String()
}

// StartBird runs BIRD in the foreground in ns with conf and waits until
// it answers on its control socket. Cleanup kills and awaits it (and so
// does the test process's death: Pdeathsig); a failed test gets its log.
func StartBird(t testing.TB, ns, conf string) *Bird {
	t.Helper()
	dir := t.TempDir()
	cf := filepath.Join(dir, "bird.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	b := &Bird{NS: ns, sock: filepath.Join(dir, "bird.ctl"), done: make(chan struct{})}
	b.cmd = exec.Command("ip", "netns", "exec", ns, "bird", "-f", "-c", cf, "-s", b.sock, "-P", filepath.Join(dir, "bird.pid"))
	b.cmd.Stdout, b.cmd.Stderr = &b.out, &b.out
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	b.cmd.WaitDelay = 5 * time.Second
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start bird in %s: %v", ns, err)
	}
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	t.Cleanup(func() {
		_ = b.cmd.Process.Signal(syscall.SIGKILL)
		<-b.done
		if t.Failed() {
			t.Logf("bird in %s said:\n%s", ns, b.Output())
		}
	})
	Eventually(t, 10*time.Second, "BIRD answering on "+b.sock, func() (bool, string) {
		out, err := b.Cmd("show", "status")
		return err == nil && strings.Contains(out, "Daemon is up and running"), out + b.Output()
	})
	return b
}

// Pid is BIRD's process ID (ip netns exec execs it, so it is BIRD's own).
func (b *Bird) Pid() int { return b.cmd.Process.Pid }

// Cmd runs birdc against this BIRD.
func (b *Bird) Cmd(args ...string) (string, error) {
	out, err := exec.Command("birdc", append([]string{"-s", b.sock}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Communities reads `show route all for prefix` and returns, for each BGP
// protocol with a path to it, the communities on that path ("" for
// none), and BIRD's output.
func (b *Bird) Communities(prefix netip.Prefix) (map[string]string, string, error) {
	out, err := b.Cmd("show", "route", "all", "for", prefix.String())
	if err != nil {
		return nil, out, err
	}
	got := map[string]string{}
	proto := ""
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, "unicast ["); i >= 0 {
			if f := strings.Fields(line[i+len("unicast ["):]); len(f) > 0 {
				proto = f[0]
				got[proto] = ""
			}
		}
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "BGP.community:"); ok && proto != "" {
			got[proto] = strings.TrimSpace(v)
		}
	}
	return got, out, nil
}

// Nexthops is the gateways of the kernel's route to prefix in namespace
// ns (main table), sorted; none when there is no route.
func Nexthops(ns string, prefix netip.Prefix) ([]netip.Addr, error) {
	out, err := exec.Command("ip", "-n", ns, "-j", "route", "show", "exact", prefix.String()).Output()
	if err != nil {
		return nil, fmt.Errorf("ip -n %s route show exact %s: %w", ns, prefix, err)
	}
	var routes []struct {
		Gateway  string `json:"gateway"`
		Nexthops []struct {
			Gateway string `json:"gateway"`
		} `json:"nexthops"`
	}
	if err := json.Unmarshal(bytes.TrimSpace(out), &routes); err != nil && len(bytes.TrimSpace(out)) > 0 {
		return nil, fmt.Errorf("ip route: %w: %s", err, out)
	}
	var hops []netip.Addr
	add := func(s string) {
		if a, err := netip.ParseAddr(s); err == nil {
			hops = append(hops, a)
		}
	}
	for _, r := range routes {
		add(r.Gateway)
		for _, n := range r.Nexthops {
			add(n.Gateway)
		}
	}
	slices.SortFunc(hops, netip.Addr.Compare)
	return hops, nil
}

// WaitNexthops waits until the route to prefix in ns has exactly want as
// its next hops (none: no route).
func WaitNexthops(t testing.TB, ns string, prefix netip.Prefix, timeout time.Duration, want ...netip.Addr) {
	t.Helper()
	want = slices.Clone(want)
	slices.SortFunc(want, netip.Addr.Compare)
	Eventually(t, timeout, fmt.Sprintf("route to %s in %s via %v", prefix, ns, want), func() (bool, string) {
		got, err := Nexthops(ns, prefix)
		if err != nil {
			return false, err.Error()
		}
		return slices.Equal(got, want), fmt.Sprintf("next hops %v", got)
	})
}
