package bgp

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/ipvsman/ipvsman/test/harness"
)

// A router namespace running Debian's BIRD and speaker namespaces on one
// bridge, each speaker a process of its own (a re-run of this test binary):
// a process's sockets belong to the namespace of the thread that opens
// them, and GoBGP opens its sockets on threads of its choosing.

const (
	routerAS  = 65000
	speakerAS = 65001
	// The IPv4 session of speaker passwordSpeaker has a TCP MD5 password.
	passwordSpeaker = 3
	routerPassword  = "ipvsman-bgp-test"
)

var (
	routerAddr  = netip.MustParseAddr("10.98.0.254")
	routerAddr6 = netip.MustParseAddr("fd98::254")
)

func speakerAddr(i int) netip.Addr  { return netip.AddrFrom4([4]byte{10, 98, 0, byte(i)}) }
func speakerAddr6(i int) netip.Addr { return netip.MustParseAddr(fmt.Sprintf("fd98::%d", i)) }

// topology is the bridge, the router and n speaker namespaces.
type topology struct {
	t       *testing.T
	pid     int
	bridge  string
	router  string
	speaker []string // index i is speaker i+1
}

// requireRouter fails (in CI) or skips (elsewhere) without root or BIRD.
func requireRouter(t *testing.T) {
	t.Helper()
	harness.RequireBird(t)
}

func run(args ...string) error {
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// topologies counts the topologies this process made, for unique names.
var topologies int

// newTopology makes the namespaces and links; t.Cleanup removes them.
func newTopology(t *testing.T, speakers int) *topology {
	t.Helper()
	topologies++
	tp := &topology{t: t, pid: os.Getpid()}
	name := func(role string) string { return fmt.Sprintf("bgp%s-%d-%d", role, tp.pid, topologies) }
	tp.bridge, tp.router = name("br"), name("r")
	for i := 1; i <= speakers; i++ {
		tp.speaker = append(tp.speaker, name(fmt.Sprintf("s%d", i)))
	}
	all := append([]string{tp.bridge, tp.router}, tp.speaker...)
	for _, ns := range all {
		_ = run("ip", "netns", "del", ns) // left by a crashed run of this process ID
	}
	t.Cleanup(func() {
		for _, ns := range all {
			if err := run("ip", "netns", "del", ns); err != nil {
				t.Error(err)
			}
		}
	})
	for _, ns := range all {
		if err := run("ip", "netns", "add", ns); err != nil {
			t.Fatal(err)
		}
	}
	must := func(args ...string) {
		t.Helper()
		if err := run(args...); err != nil {
			t.Fatal(err)
		}
	}
	must("ip", "-n", tp.bridge, "link", "add", "br0", "type", "bridge", "stp_state", "0")
	must("ip", "-n", tp.bridge, "link", "set", "br0", "up")
	attach := func(ns, port string, v4, v6 netip.Addr) {
		must("ip", "-n", tp.bridge, "link", "add", port, "type", "veth", "peer", "name", "x"+port)
		must("ip", "-n", tp.bridge, "link", "set", "x"+port, "netns", ns)
		must("ip", "-n", tp.bridge, "link", "set", port, "master", "br0", "up")
		must("ip", "-n", ns, "link", "set", "x"+port, "name", "eth0")
		must("ip", "-n", ns, "addr", "add", v4.String()+"/24", "dev", "eth0")
		must("ip", "-n", ns, "addr", "add", v6.String()+"/64", "dev", "eth0", "nodad")
		must("ip", "-n", ns, "link", "set", "lo", "up")
		must("ip", "-n", ns, "link", "set", "eth0", "up")
	}
	attach(tp.router, "pr", routerAddr, routerAddr6)
	for i, ns := range tp.speaker {
		attach(ns, fmt.Sprintf("ps%d", i+1), speakerAddr(i+1), speakerAddr6(i+1))
	}
	return tp
}

// cut takes speaker i's link down (the bridge and the router see no
// change: only BFD or the hold timer can tell); restore brings it back.
func (tp *topology) cut(i int) error {
	return run("ip", "-n", tp.speaker[i-1], "link", "set", "eth0", "down")
}

func (tp *topology) restore(i int) error {
	return run("ip", "-n", tp.speaker[i-1], "link", "set", "eth0", "up")
}

// routerOptions shape the router's BIRD configuration.
type routerOptions struct {
	speakers int
	hold     int  // seconds
	bfd      bool // BFD on the sessions, 100 ms × 3
	ipv6     bool // IPv6 sessions beside the IPv4 ones
	password bool // speaker passwordSpeaker's IPv4 session with TCP MD5
}

// routerConf is the lab router: eBGP to each speaker, ECMP over equal
// paths into the kernel's table (merge paths), and RFC 8326's policy:
// a path with GRACEFUL_SHUTDOWN gets the lowest preference, so it leaves
// the ECMP set while the other speakers' paths remain.
func routerConf(o routerOptions) string {
	var b strings.Builder
	fmt.Fprintf(&b, `log stderr all;
router id %s;
protocol device { scan time 10; }
protocol kernel k4 { ipv4 { import none; export all; }; merge paths on; }
protocol kernel k6 { ipv6 { import none; export all; }; merge paths on; }
protocol bfd { interface "eth0" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }
filter gshut { if (65535, 0) ~ bgp_community then bgp_local_pref = 0; accept; }
`, routerAddr)
	bfd := "off"
	if o.bfd {
		bfd = "on"
	}
	for _, fam := range []string{"ipv4", "ipv6"} {
		if fam == "ipv6" && !o.ipv6 {
			continue
		}
		local := routerAddr
		if fam == "ipv6" {
			local = routerAddr6
		}
		fmt.Fprintf(&b, "template bgp d%s { local %s as %d; hold time %d; bfd %s; connect retry time 1; error wait time 1, 2; %s { import filter gshut; export none; }; }\n",
			fam, local, routerAS, o.hold, bfd, fam)
		for i := 1; i <= o.speakers; i++ {
			nb := speakerAddr(i)
			if fam == "ipv6" {
				nb = speakerAddr6(i)
			}
			password := ""
			if o.password && fam == "ipv4" && i == passwordSpeaker {
				password = fmt.Sprintf(" password %q;", routerPassword)
			}
			fmt.Fprintf(&b, "protocol bgp s%d%s from d%s { neighbor %s as %d;%s }\n", i, strings.TrimPrefix(fam, "ipv4"), fam, nb, speakerAS, password)
		}
	}
	return b.String()
}

// proc is a child process with its output kept; cleanup kills and awaits
// it.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  harness.LogBuffer
	done chan struct{}
}

func (p *proc) output() string { return p.out.String() }

func start(t *testing.T, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = &p.out
	}
	cmd.Stderr = &p.out
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	// A grandchild that outlives the process (an orphaned BIRD) would
	// hold the output pipe open and Wait with it.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("%s said:\n%s", name, p.output())
		}
	})
	return p
}

// kill sends SIGKILL and waits for the process to be gone.
func (p *proc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// speakerProc drives a Speaker in another process, in a namespace: one
// command a line on its standard input, one answer a line on its output.
type speakerProc struct {
	t     *testing.T
	p     *proc
	in    io.WriteCloser
	lines chan string
}

// helperEnv carries a helper process's orders from the test.
const helperEnv = "IPVSMAN_BGP_TEST_SPEAKER"

type helperOrders struct {
	Kind   string // "gobgp": this package; others are added by measure_test.go
	Config Config
	Dir    string
}

// helpers are the speakers a helper process can run, by kind.
var helpers = map[string]func(o helperOrders, log *slog.Logger) (helperSpeaker, error){
	"gobgp": func(o helperOrders, log *slog.Logger) (helperSpeaker, error) { return New(o.Config, log) },
}

type helperSpeaker interface {
	Announce(netip.Prefix, ...Community) error
	Withdraw(netip.Prefix) error
	Drain(netip.Prefix) error
	Peers() ([]PeerStatus, error)
	Close() error
}

func TestMain(m *testing.M) {
	if o := os.Getenv(helperEnv); o != "" {
		os.Exit(helperMain(o))
	}
	os.Exit(m.Run())
}

// helperMain runs one speaker until its input ends (then Close) or it is
// killed.
func helperMain(orders string) int {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var o helperOrders
	if err := json.Unmarshal([]byte(orders), &o); err != nil {
		log.Error("helper orders", "err", err)
		return 2
	}
	mk, ok := helpers[o.Kind]
	if !ok {
		log.Error("helper: no such speaker", "kind", o.Kind)
		return 2
	}
	sp, err := mk(o, log)
	if err != nil {
		fmt.Printf("err %v\n", err)
		return 1
	}
	fmt.Println("ok")
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		var err error
		var reply []byte
		switch f[0] {
		case "announce", "withdraw", "drain":
			var p netip.Prefix
			if p, err = netip.ParsePrefix(f[1]); err != nil {
				break
			}
			switch f[0] {
			case "announce":
				var comms []Community
				for _, s := range f[2:] {
					c, cerr := ParseCommunity(s)
					if cerr != nil {
						err = cerr
					}
					comms = append(comms, c)
				}
				if err == nil {
					err = sp.Announce(p, comms...)
				}
			case "withdraw":
				err = sp.Withdraw(p)
			case "drain":
				err = sp.Drain(p)
			}
		case "peers":
			var st []PeerStatus
			if st, err = sp.Peers(); err == nil {
				reply, err = json.Marshal(st)
			}
		default:
			err = fmt.Errorf("unknown command %q", f[0])
		}
		if err != nil {
			fmt.Printf("err %v\n", err)
			continue
		}
		fmt.Printf("ok %s\n", reply)
	}
	if err := sp.Close(); err != nil {
		log.Error("close", "err", err)
		return 1
	}
	return 0
}

// startSpeaker runs a speaker of kind in speaker i's namespace.
func (tp *topology) startSpeaker(i int, kind string, cfg Config) *speakerProc {
	tp.t.Helper()
	t := tp.t
	orders, err := json.Marshal(helperOrders{Kind: kind, Config: cfg, Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", tp.speaker[i-1], exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+string(orders))
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	sp := &speakerProc{t: t, in: in, lines: make(chan string, 16)}
	sp.p = start(t, fmt.Sprintf("speaker %d (%s)", i, kind), cmd)
	go func() {
		defer close(sp.lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			sp.lines <- sc.Text()
		}
	}()
	if r := sp.reply(); r != "ok" {
		t.Fatalf("speaker %d: %s\n%s", i, r, sp.p.output())
	}
	return sp
}

// reply waits for the helper's next answer.
func (sp *speakerProc) reply() string {
	select {
	case l, ok := <-sp.lines:
		if !ok {
			return "err helper exited"
		}
		return l
	case <-time.After(30 * time.Second):
		return "err no answer within 30s"
	}
}

// do sends one command and returns the answer after "ok", failing the test
// on an error.
func (sp *speakerProc) do(cmd string) string {
	sp.t.Helper()
	fmt.Fprintln(sp.in, cmd)
	r := sp.reply()
	rest, ok := strings.CutPrefix(r, "ok")
	if !ok {
		sp.t.Fatalf("%s: %s: %s\n%s", sp.p.name, cmd, r, sp.p.output())
	}
	return strings.TrimSpace(rest)
}

func (sp *speakerProc) peers() []PeerStatus {
	sp.t.Helper()
	var st []PeerStatus
	if err := json.Unmarshal([]byte(sp.do("peers")), &st); err != nil {
		sp.t.Fatal(err)
	}
	return st
}

// close ends the helper's input: it closes the speaker and exits.
func (sp *speakerProc) close() {
	sp.t.Helper()
	sp.in.Close()
	select {
	case <-sp.p.done:
	case <-time.After(30 * time.Second):
		sp.t.Fatalf("%s did not exit within 30s of its input closing", sp.p.name)
	}
	if st := sp.p.cmd.ProcessState; st == nil || !st.Success() {
		sp.t.Fatalf("%s: exit %v\n%s", sp.p.name, st, sp.p.output())
	}
}

// fib reads the router's kernel routes from a namespace.
type fib struct{ h *netlink.Handle }

func newFIB(t *testing.T, ns string) *fib {
	t.Helper()
	nh, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer nh.Close()
	h, err := netlink.NewHandleAt(nh)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return &fib{h: h}
}

// nexthops returns the gateways of the kernel's route to prefix in the main
// table, sorted; none if there is no route.
func (f *fib) nexthops(prefix netip.Prefix) ([]netip.Addr, error) {
	fam := netlink.FAMILY_V4
	if prefix.Addr().Is6() {
		fam = netlink.FAMILY_V6
	}
	routes, err := f.h.RouteListFiltered(fam, &netlink.Route{Table: syscall.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return nil, fmt.Errorf("routes: %w", err)
	}
	var out []netip.Addr
	for _, r := range routes {
		if r.Dst == nil || r.Dst.String() != prefix.String() {
			continue
		}
		if a, ok := netip.AddrFromSlice(r.Gw); ok {
			out = append(out, a.Unmap())
		}
		for _, m := range r.MultiPath {
			if a, ok := netip.AddrFromSlice(m.Gw); ok {
				out = append(out, a.Unmap())
			}
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return out, nil
}

// waitNexthops waits until the router's route to prefix goes through
// exactly want (none: no route).
func (f *fib) waitNexthops(t *testing.T, prefix netip.Prefix, timeout time.Duration, want ...netip.Addr) {
	t.Helper()
	slices.SortFunc(want, netip.Addr.Compare)
	harness.Eventually(t, timeout, fmt.Sprintf("the router's route to %s via %v", prefix, want), func() (bool, string) {
		got, err := f.nexthops(prefix)
		if err != nil {
			return false, err.Error()
		}
		return slices.Equal(got, want), fmt.Sprintf("via %v", got)
	})
}
