//go:build bgpmeasure

package bgp

// The measurements that chose the speaker (docs/bgp.md): GoBGP embedded
// (this package) against BIRD as a child process, each against the BIRD
// router of router_test.go. Root, BIRD, about three minutes:
//
//	go test -tags bgpmeasure -run TestMeasureSpeakers -v ./vip/bgp/

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
)

func init() {
	helpers["bird"] = func(o helperOrders, log *slog.Logger) (helperSpeaker, error) { return newBirdSpeaker(o, true) }
	helpers["bird-nodeathsig"] = func(o helperOrders, log *slog.Logger) (helperSpeaker, error) { return newBirdSpeaker(o, false) }
}

// birdSpeaker is the alternative: BIRD as this process's child, its routes
// in a static protocol whose file is rewritten and reloaded (birdc
// configure) on each change.
type birdSpeaker struct {
	cfg  Config
	dir  string
	sock string
	cmd  *exec.Cmd
	vips map[netip.Prefix][]Community
}

func newBirdSpeaker(o helperOrders, deathsig bool) (*birdSpeaker, error) {
	// Pdeathsig fires when the thread that started the child ends: this
	// goroutine (the helper's main) keeps its thread to the end.
	runtime.LockOSThread()
	b := &birdSpeaker{cfg: o.Config, dir: o.Dir, sock: filepath.Join(o.Dir, "bird.ctl"), vips: map[netip.Prefix][]Community{}}
	p := o.Config.Peers[0]
	bfd := "off"
	if p.BFD != nil {
		bfd = "on"
	}
	hold := p.HoldTime / time.Second
	if hold == 0 {
		hold = DefaultHoldTime / time.Second
	}
	conf := fmt.Sprintf(`log stderr all;
router id %s;
protocol device { scan time 10; }
protocol bfd { interface "eth0" { min rx interval 100 ms; min tx interval 100 ms; multiplier 3; }; }
protocol static vips { ipv4;
include "%s";
}
protocol bgp r { local %s as %d; neighbor %s as %d; hold time %d; bfd %s; connect retry time 1; error wait time 1, 2;
  ipv4 { import none; export where proto = "vips"; next hop self; }; }
`, o.Config.RouterID, filepath.Join(o.Dir, "vips.conf"), o.Config.RouterID, o.Config.LocalAS, p.Address, p.AS, hold, bfd)
	if err := b.writeVIPs(); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(o.Dir, "bird.conf"), []byte(conf), 0o600); err != nil {
		return nil, err
	}
	b.cmd = exec.Command("bird", "-f", "-c", filepath.Join(o.Dir, "bird.conf"), "-s", b.sock, "-P", filepath.Join(o.Dir, "bird.pid"))
	b.cmd.Stdout, b.cmd.Stderr = os.Stderr, os.Stderr
	if deathsig {
		b.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	}
	if err := b.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start bird: %w", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := b.birdc("show", "status"); err == nil {
			return b, nil
		}
		if time.Now().After(deadline) {
			b.cmd.Process.Kill()
			return nil, errors.New("bird: no control socket within 10s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *birdSpeaker) birdc(args ...string) (string, error) {
	out, err := exec.Command("birdc", append([]string{"-s", b.sock}, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("birdc %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func (b *birdSpeaker) writeVIPs() error {
	var s strings.Builder
	for p, comms := range b.vips {
		fmt.Fprintf(&s, "route %s blackhole", p)
		if len(comms) > 0 {
			s.WriteString(" {")
			for _, c := range comms {
				fmt.Fprintf(&s, " bgp_community.add((%d, %d));", uint32(c)>>16, uint32(c)&0xFFFF)
			}
			s.WriteString(" }")
		}
		s.WriteString(";\n")
	}
	return os.WriteFile(filepath.Join(b.dir, "vips.conf"), []byte(s.String()), 0o600)
}

func (b *birdSpeaker) reload() error {
	if err := b.writeVIPs(); err != nil {
		return err
	}
	out, err := b.birdc("configure")
	if err != nil {
		return err
	}
	if !strings.Contains(out, "Reconfigured") && !strings.Contains(out, "Reconfiguration in progress") {
		return fmt.Errorf("birdc configure: %s", out)
	}
	return nil
}

func (b *birdSpeaker) Announce(p netip.Prefix, comms ...Community) error {
	b.vips[p] = comms
	return b.reload()
}

func (b *birdSpeaker) Withdraw(p netip.Prefix) error {
	delete(b.vips, p)
	return b.reload()
}

func (b *birdSpeaker) Drain(p netip.Prefix) error {
	b.vips[p] = append(b.vips[p], GracefulShutdown)
	return b.reload()
}

func (b *birdSpeaker) Peers() ([]PeerStatus, error) {
	out, err := b.birdc("show", "protocols", "r")
	if err != nil {
		return nil, err
	}
	st := PeerStatus{Address: b.cfg.Peers[0].Address, AS: b.cfg.Peers[0].AS, State: "idle"}
	if strings.Contains(out, "Established") {
		st.State = "established"
	}
	return []PeerStatus{st}, nil
}

func (b *birdSpeaker) Close() error {
	b.cmd.Process.Signal(syscall.SIGTERM)
	return b.cmd.Wait()
}

// poll returns how long after t0 cond first held, checking every 2 ms.
func poll(t *testing.T, t0 time.Time, timeout time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	for !cond() {
		if time.Since(t0) > timeout {
			t.Fatalf("%s: not within %s", what, timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
	return time.Since(t0)
}

type rounds struct {
	name string
	d    []time.Duration
}

func (r rounds) String() string {
	if len(r.d) == 0 {
		return r.name + ": n/a"
	}
	s := slices.Clone(r.d)
	slices.Sort(s)
	var each []string
	for _, d := range r.d {
		each = append(each, strconv.FormatInt(d.Milliseconds(), 10))
	}
	return fmt.Sprintf("%-34s min %5d  median %5d  max %5d ms   rounds: %s", r.name,
		s[0].Milliseconds(), s[len(s)/2].Milliseconds(), s[len(s)-1].Milliseconds(), strings.Join(each, " "))
}

func measureConfig(hold time.Duration, bfd bool) Config {
	c := Config{LocalAS: speakerAS, RouterID: speakerAddr(1),
		Peers: []Peer{{Address: routerAddr, AS: routerAS, HoldTime: hold, ConnectRetry: time.Second}}}
	if bfd {
		c.Peers[0].BFD = &BFD{MinTx: 100 * time.Millisecond, MinRx: 100 * time.Millisecond, Multiplier: 3}
	}
	return c
}

func TestMeasureSpeakers(t *testing.T) {
	requireRouter(t)
	var results []rounds
	for _, kind := range []string{"gobgp", "bird"} {
		results = append(results, measureAnnounce(t, kind, 10)...)
		results = append(results, measureKill(t, kind, 5))
		results = append(results, measureCut(t, kind, true, 5))
		results = append(results, measureCut(t, kind, false, 5))
		results = append(results, measureRouterReset(t, kind, 3))
	}
	var b strings.Builder
	for _, r := range results {
		b.WriteString(r.String() + "\n")
	}
	t.Logf("milliseconds, router kernel FIB seen from the test every 2 ms:\n%s", b.String())
	measureNoDeathsig(t)
}

func settle(t *testing.T, sp *speakerProc) {
	t.Helper()
	harness.Eventually(t, 30*time.Second, "session established", func() (bool, string) {
		st := sp.peers()
		return st[0].State == "established", st[0].State
	})
}

func measureAnnounce(t *testing.T, kind string, n int) []rounds {
	tp := newTopology(t, 1)
	harness.StartBird(t, tp.router, routerConf(routerOptions{speakers: 1, hold: 9}))
	f := newFIB(t, tp.router)
	sp := tp.startSpeaker(1, kind, measureConfig(9*time.Second, false))
	settle(t, sp)
	ann, wd := rounds{name: kind + " announce → FIB"}, rounds{name: kind + " withdraw → FIB"}
	present := func() bool { h, _ := f.nexthops(vip4); return len(h) == 1 }
	for range n {
		t0 := time.Now()
		sp.do("announce " + vip4.String())
		ann.d = append(ann.d, poll(t, t0, 10*time.Second, "announced", present))
		t0 = time.Now()
		sp.do("withdraw " + vip4.String())
		wd.d = append(wd.d, poll(t, t0, 10*time.Second, "withdrawn", func() bool { return !present() }))
	}
	sp.close()
	return []rounds{ann, wd}
}

func measureKill(t *testing.T, kind string, n int) rounds {
	tp := newTopology(t, 1)
	harness.StartBird(t, tp.router, routerConf(routerOptions{speakers: 1, hold: 9}))
	f := newFIB(t, tp.router)
	r := rounds{name: kind + " SIGKILL → FIB"}
	for range n {
		sp := tp.startSpeaker(1, kind, measureConfig(9*time.Second, false))
		settle(t, sp)
		sp.do("announce " + vip4.String())
		f.waitNexthops(t, vip4, 10*time.Second, speakerAddr(1))
		t0 := time.Now()
		sp.p.kill()
		r.d = append(r.d, poll(t, t0, 20*time.Second, "withdrawn after a crash", func() bool { h, _ := f.nexthops(vip4); return len(h) == 0 }))
	}
	return r
}

func measureCut(t *testing.T, kind string, bfd bool, n int) rounds {
	hold := 3
	name := kind + " link cut, hold 3 s → FIB"
	if bfd {
		hold = 9
		name = kind + " link cut, BFD 100ms×3 → FIB"
	}
	tp := newTopology(t, 1)
	router := harness.StartBird(t, tp.router, routerConf(routerOptions{speakers: 1, hold: hold, bfd: bfd}))
	f := newFIB(t, tp.router)
	r := rounds{name: name}
	for range n {
		sp := tp.startSpeaker(1, kind, measureConfig(time.Duration(hold)*time.Second, bfd))
		settle(t, sp)
		if bfd {
			harness.Eventually(t, 10*time.Second, "BFD up at the router", func() (bool, string) {
				out, err := router.Cmd("show", "bfd", "sessions")
				return err == nil && strings.Contains(out, " Up "), out
			})
		}
		sp.do("announce " + vip4.String())
		f.waitNexthops(t, vip4, 10*time.Second, speakerAddr(1))
		t0 := time.Now()
		if err := tp.cut(1); err != nil {
			t.Fatal(err)
		}
		r.d = append(r.d, poll(t, t0, 20*time.Second, "withdrawn after a cut", func() bool { h, _ := f.nexthops(vip4); return len(h) == 0 }))
		sp.p.kill()
		if err := tp.restore(1); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

// measureRouterReset: the router resets the session (`birdc restart`, as a
// reconfiguration or maintenance would), with BFD on; how long until the
// route is back in its FIB.
func measureRouterReset(t *testing.T, kind string, n int) rounds {
	tp := newTopology(t, 1)
	router := harness.StartBird(t, tp.router, routerConf(routerOptions{speakers: 1, hold: 9, bfd: true}))
	f := newFIB(t, tp.router)
	sp := tp.startSpeaker(1, kind, measureConfig(9*time.Second, true))
	settle(t, sp)
	sp.do("announce " + vip4.String())
	r := rounds{name: kind + " router reset, BFD → back in FIB"}
	for range n {
		f.waitNexthops(t, vip4, 10*time.Second, speakerAddr(1))
		harness.Eventually(t, 10*time.Second, "BFD up at the router", func() (bool, string) {
			out, err := router.Cmd("show", "bfd", "sessions")
			return err == nil && strings.Contains(out, " Up "), out
		})
		t0 := time.Now()
		if _, err := router.Cmd("restart", "s1"); err != nil {
			t.Fatal(err)
		}
		poll(t, t0, 10*time.Second, "gone after the reset", func() bool { h, _ := f.nexthops(vip4); return len(h) == 0 })
		r.d = append(r.d, poll(t, t0, 60*time.Second, "back after the reset", func() bool { h, _ := f.nexthops(vip4); return len(h) == 1 }))
	}
	sp.close()
	return r
}

// measureNoDeathsig shows why a child BIRD needs Pdeathsig: without it the
// daemon's crash leaves BIRD running and the route in place.
func measureNoDeathsig(t *testing.T) {
	tp := newTopology(t, 1)
	harness.StartBird(t, tp.router, routerConf(routerOptions{speakers: 1, hold: 9}))
	f := newFIB(t, tp.router)
	sp := tp.startSpeaker(1, "bird-nodeathsig", measureConfig(9*time.Second, false))
	settle(t, sp)
	sp.do("announce " + vip4.String())
	f.waitNexthops(t, vip4, 10*time.Second, speakerAddr(1))
	sp.p.cmd.Process.Kill()
	t0 := time.Now()
	// The orphan keeps the session: the route must still be there.
	deadline := t0.Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if h, _ := f.nexthops(vip4); len(h) == 0 {
			t.Logf("bird without Pdeathsig: route gone %s after the daemon's SIGKILL", time.Since(t0))
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if h, _ := f.nexthops(vip4); len(h) == 1 {
		t.Logf("bird without Pdeathsig: route still in the router's FIB %s after the daemon's SIGKILL (orphaned bird holds the session)", time.Since(t0).Round(time.Second))
	}
	// The orphan is ours to end: it is the bird whose control socket sits
	// in the helper's directory, found by its pid file.
	matches, _ := filepath.Glob(filepath.Join(os.TempDir(), "TestMeasureSpeakers*", "*", "bird.pid"))
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			continue
		}
		if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
			if exec.Command("ip", "netns", "identify", strconv.Itoa(pid)).Run() == nil {
				out, _ := exec.Command("ip", "netns", "identify", strconv.Itoa(pid)).Output()
				if strings.TrimSpace(string(out)) == tp.speaker[0] {
					syscall.Kill(pid, syscall.SIGKILL)
				}
			}
		}
	}
}
