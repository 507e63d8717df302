package topo

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/skip"
)

// These tests build real namespaces, so they need root; CI runs as root and
// must not skip them.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		skip.Now(t, "needs root to create network namespaces, veths and a bridge (CI runs as root)")
	}
}

// counts mirrors labtool's JSON lines (http, dns and echo share the fields
// used here).
type counts struct {
	OK       int            `json:"ok"`
	Failed   int            `json:"failed"`
	Conns    int            `json:"conns"`
	Survived int            `json:"survived"`
	ByServer map[string]int `json:"by_server"`
	Errors   []string       `json:"errors"`
}

func labtool(t *testing.T, tp *Topology, bin, node string, args ...string) counts {
	t.Helper()
	out := tp.MustExec(node, bin, args...)
	var c counts
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatalf("labtool %s: %v: %q", strings.Join(args, " "), err, out)
	}
	return c
}

func pingOK(t *testing.T, tp *Topology, from, addr string) {
	t.Helper()
	if out, err := tp.Exec(from, "ping", "-c1", "-W1", addr); err != nil {
		t.Fatalf("ping %s from %s: %v\n%s", addr, from, err, out)
	}
}

func pingFails(t *testing.T, tp *Topology, from, addr string) {
	t.Helper()
	if out, err := tp.Exec(from, "ping", "-c1", "-W1", addr); err == nil {
		t.Fatalf("ping %s from %s succeeded, want no answer\n%s", addr, from, out)
	}
}

func wantServer(t *testing.T, c counts, name string, n int) {
	t.Helper()
	if c.ByServer[name] != n || len(c.ByServer) != 1 {
		t.Fatalf("got %+v, want %d answers, all from %s", c, n, name)
	}
}

// TestLab builds one topology and checks, in order, what later lab tests
// rely on. Subtests share it and run sequentially.
func TestLab(t *testing.T) {
	requireRoot(t)
	bin := BuildLabtool(t)
	tp := Build(t, Options{Prefix: "tlab-"})

	t.Run("sysctls", func(t *testing.T) {
		for _, c := range []struct{ node, key, want string }{
			{RealServer(1), "net.ipv4.conf.all.arp_ignore", "1"},
			{RealServer(1), "net.ipv4.conf.eth0.arp_ignore", "1"},
			{RealServer(1), "net.ipv4.conf.all.arp_announce", "2"},
			{RealServer(1), "net.ipv4.conf.eth0.arp_announce", "2"},
			{Director(1), "net.ipv4.ip_forward", "1"},
			{Director(1), "net.ipv4.conf.all.send_redirects", "0"},
			{Director(1), "net.ipv4.conf.eth0.send_redirects", "0"},
		} {
			if got := strings.TrimSpace(tp.MustExec(c.node, "sysctl", "-n", c.key)); got != c.want {
				t.Errorf("%s: %s = %s, want %s", c.node, c.key, got, c.want)
			}
		}
	})

	t.Run("three directors by default", func(t *testing.T) {
		if got := tp.DirectorNames(); !slices.Equal(got, []string{"d1", "d2", "d3"}) {
			t.Errorf("DirectorNames = %v, want d1-d3", got)
		}
		for _, n := range []string{"d4", "d5"} {
			if exists("/run/netns/"+tp.NS(n)) || exists("/sys/class/net/"+tp.Veth(n)) {
				t.Errorf("the standard lab has %s", n)
			}
		}
	})

	t.Run("addresses", func(t *testing.T) {
		for i := 1; i <= 3; i++ {
			pingOK(t, tp, Client, DirectorAddr(i))
			pingOK(t, tp, Client, RealServerAddr(i))
			// The NAT segment is on-link for the directors only.
			pingOK(t, tp, Director(1), NATServerAddr(i))
			pingOK(t, tp, NATServer(i), DirectorNATAddr(i))
			if tp.IPv6() {
				pingOK(t, tp, Client, DirectorAddr6(i))
				pingOK(t, tp, Client, RealServerAddr6(i))
			}
		}
	})

	t.Run("nobody answers ARP for the VIP", func(t *testing.T) {
		// The real servers hold it on lo with arp_ignore=1, no director
		// holds it yet.
		pingFails(t, tp, Client, VIP)
	})

	servers := tp.StartRealServers(bin)

	t.Run("real servers answer on their own addresses", func(t *testing.T) {
		wantServer(t, labtool(t, tp, bin, Client, "http", "--url", "http://"+RealServerAddr(1)+"/", "--count", "3"), "rs1", 3)
		wantServer(t, labtool(t, tp, bin, Director(1), "http", "--url", "http://"+NATServerAddr(1)+"/", "--count", "2"), "nat1", 2)
		wantServer(t, labtool(t, tp, bin, Client, "dns", "--server", RealServerAddr(2), "--count", "3"), "rs2", 3)
		c := labtool(t, tp, bin, Client, "echo", "--addr", RealServerAddr(2)+":7", "--conns", "3", "--duration", "500ms")
		if c.Conns != 3 || c.Survived != 3 {
			t.Fatalf("echo: got %+v, want 3 surviving connections", c)
		}
		wantServer(t, c, "rs2", 3)
	})

	t.Run("DR real server answers on the VIP", func(t *testing.T) {
		// What IPVS direct routing does, by hand: the client sends to the
		// VIP, but to rs2's MAC. rs2 must accept it on the VIP it holds on
		// lo and answer from the VIP (for DNS over UDP that is IP_PKTINFO).
		tp.MustExec(Client, "ip", "route", "add", VIP+"/32", "via", RealServerAddr(2))
		defer tp.MustExec(Client, "ip", "route", "del", VIP+"/32")
		wantServer(t, labtool(t, tp, bin, Client, "http", "--url", "http://"+VIP+"/", "--count", "2"), "rs2", 2)
		wantServer(t, labtool(t, tp, bin, Client, "dns", "--server", VIP, "--count", "2"), "rs2", 2)
		c := labtool(t, tp, bin, Client, "echo", "--addr", VIP+":7", "--conns", "2", "--duration", "300ms")
		if c.Survived != 2 {
			t.Fatalf("echo via VIP: %+v", c)
		}
		if tp.IPv6() {
			tp.MustExec(Client, "ip", "-6", "route", "add", VIP6+"/128", "via", RealServerAddr6(3))
			defer tp.MustExec(Client, "ip", "-6", "route", "del", VIP6+"/128")
			wantServer(t, labtool(t, tp, bin, Client, "http", "--url", "http://["+VIP6+"]/", "--count", "2"), "rs3", 2)
			wantServer(t, labtool(t, tp, bin, Client, "dns", "--server", "["+VIP6+"]:53", "--count", "2"), "rs3", 2)
		}
	})

	t.Run("gateway by hand", func(t *testing.T) {
		pingFails(t, tp, NATServer(1), Gateway)
		tp.AddAddr(Director(1), Gateway+"/24", "eth0")
		// The failed ping left an ARP resolution for the gateway in
		// progress, whose next probe may come after ping's 1 s deadline.
		tp.ArpFlush(NATServer(1))
		pingOK(t, tp, NATServer(1), Gateway)
		tp.DelAddr(Director(1), Gateway+"/24", "eth0")
		tp.ArpFlush(NATServer(1))
		pingFails(t, tp, NATServer(1), Gateway)
	})

	t.Run("CutLink drops carrier, RestoreLink brings it back", func(t *testing.T) {
		pingOK(t, tp, Client, DirectorAddr(2))
		tp.CutLink(Director(2))
		pingFails(t, tp, Client, DirectorAddr(2))
		tp.RestoreLink(Director(2))
		pingOK(t, tp, Client, DirectorAddr(2))
	})

	t.Run("SilentCut keeps carrier", func(t *testing.T) {
		pingOK(t, tp, Client, DirectorAddr(3))
		tp.SilentCut(Director(3))
		pingFails(t, tp, Client, DirectorAddr(3))
		if out := tp.MustExec(Director(3), "ip", "-o", "link", "show", "dev", "eth0"); !strings.Contains(out, "state UP") || strings.Contains(out, "NO-CARRIER") {
			t.Fatalf("silently cut eth0 should look healthy: %s", out)
		}
		tp.SilentRestore(Director(3))
		pingOK(t, tp, Client, DirectorAddr(3))
	})

	t.Run("processes", func(t *testing.T) {
		p := tp.Start(Client, "sh", "-c", "echo already; echo hello; exec sleep 60")
		if err := p.WaitLine("ready", 200*time.Millisecond); err == nil {
			t.Fatal("WaitLine matched part of a line")
		}
		if err := p.WaitLine("hello", 10*time.Second); err != nil {
			t.Fatal(err)
		}
		if err := p.Kill(); err != nil {
			t.Fatalf("Kill: %v", err)
		}
		if b, err := os.ReadFile(p.LogPath); err != nil || string(b) != "already\nhello\n" {
			t.Fatalf("log file: %q, %v", b, err)
		}

		q := tp.Start(Client, "sleep", "60")
		q.Stop()
		if err := q.Wait(10 * time.Second); err == nil || !strings.Contains(err.Error(), "terminated") {
			t.Fatalf("after Stop, Wait = %v, want killed by SIGTERM", err)
		}

		// A crashed real server refuses connections.
		if err := servers["rs3"].Kill(); err != nil {
			t.Fatal(err)
		}
		c := labtool(t, tp, bin, Client, "http", "--url", "http://"+RealServerAddr(3)+"/", "--count", "1")
		if c.OK != 0 || c.Failed != 1 {
			t.Fatalf("killed rs3 still answers: %+v", c)
		}
	})
}

// A crash leaves namespaces, links and processes behind; the next Build with
// the same prefix must clear them, and its own teardown must leave nothing.
func TestRebuildAfterCrashAndTeardown(t *testing.T) {
	requireRoot(t)
	// Leftovers are made before Build takes its lock: a prefix of this
	// process's own keeps a concurrent run of this test out of the way.
	prefix := fmt.Sprintf("c%d-", os.Getpid()%10_000_000)
	bridge := strings.TrimSuffix(prefix, "-") + "0"
	// Registered first, so it runs after Build's cleanups: no other process
	// uses this prefix's lock file.
	t.Cleanup(func() { _ = os.Remove(lockPath(bridge)) })
	for _, args := range [][]string{
		{"netns", "add", prefix + "d1"},
		// Left by a five-director build: a standard one removes it too.
		{"netns", "add", prefix + "d5"},
		{"link", "add", prefix + "client", "type", "veth", "peer", "name", prefix + "stray"},
		{"link", "add", bridge, "type", "bridge"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("making leftovers: ip %v: %v: %s", args, err, out)
		}
	}
	// A process left running in a leftover namespace.
	stray := exec.Command("ip", "netns", "exec", prefix+"d1", "sleep", "60")
	if err := stray.Start(); err != nil {
		t.Fatal(err)
	}
	strayDone := make(chan error, 1)
	go func() { strayDone <- stray.Wait() }()
	t.Cleanup(func() { _ = stray.Process.Kill() })
	// Build must find it inside the namespace, as after a real crash, not
	// still on its way in.
	err := poll(10*time.Second, func() error {
		out, err := exec.Command("ip", "netns", "pids", prefix+"d1").Output()
		if err != nil || len(strings.TrimSpace(string(out))) == 0 {
			return fmt.Errorf("no process in %sd1 yet (%v)", prefix, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("build", func(t *testing.T) {
		tp := Build(t, Options{Prefix: prefix, NoIPv6: true})
		pingOK(t, tp, Client, DirectorAddr(1))
	})

	select {
	case <-strayDone:
	case <-time.After(10 * time.Second):
		t.Error("the process in the leftover namespace was not killed")
	}
	out, err := exec.Command("ip", "netns", "list").CombinedOutput()
	if err != nil {
		t.Fatalf("ip netns list: %v: %s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, prefix) {
			t.Errorf("namespace left after teardown: %s", l)
		}
	}
	out, err = exec.Command("ip", "-o", "link", "show").CombinedOutput()
	if err != nil {
		t.Fatalf("ip link show: %v: %s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if f := strings.Fields(l); len(f) > 1 && (strings.HasPrefix(f[1], prefix) || strings.HasPrefix(f[1], bridge)) {
			t.Errorf("link left after teardown: %s", l)
		}
	}
}

func TestPrefixRule(t *testing.T) {
	for p, ok := range map[string]bool{
		"lab-": true, "t2-": true, "abcdefgh-": true,
		"lab": false, "abcdefghi-": false, "2x-": false, "La-": false, "a_b-": false, "-": false,
	} {
		if prefixRE.MatchString(p) != ok {
			t.Errorf("prefix %q: valid=%v, want %v", p, !ok, ok)
		}
	}
}

// TestFiveDirectors builds the lab with d4 and d5 and checks they are set
// up as d1-d3 are, on both segments, and that teardown removes them.
func TestFiveDirectors(t *testing.T) {
	requireRoot(t)
	prefix := "tfive-"
	t.Run("build", func(t *testing.T) {
		tp := Build(t, Options{Prefix: prefix, Directors: MaxDirectors})
		if got, want := tp.DirectorNames(), []string{"d1", "d2", "d3", "d4", "d5"}; !slices.Equal(got, want) {
			t.Fatalf("DirectorNames = %v, want %v", got, want)
		}
		for _, i := range []int{4, 5} {
			d := Director(i)
			for key, want := range map[string]string{
				"net.ipv4.ip_forward":               "1",
				"net.ipv4.conf.all.send_redirects":  "0",
				"net.ipv4.conf.eth0.send_redirects": "0",
				"net.ipv4.conf.eth0.rp_filter":      "0",
			} {
				if got := strings.TrimSpace(tp.MustExec(d, "sysctl", "-n", key)); got != want {
					t.Errorf("%s: %s = %s, want %s", d, key, got, want)
				}
			}
			pingOK(t, tp, Client, DirectorAddr(i))
			pingOK(t, tp, d, DirectorAddr(1))
			pingOK(t, tp, d, NATServerAddr(1))
			pingOK(t, tp, NATServer(2), DirectorNATAddr(i))
			if tp.IPv6() {
				pingOK(t, tp, Client, DirectorAddr6(i))
			}
		}
	})
	for _, n := range []string{"d4", "d5"} {
		if exists("/run/netns/"+prefix+n) || exists("/sys/class/net/"+prefix+n) {
			t.Errorf("%s left after teardown", prefix+n)
		}
	}
}

// The standard lab's names and addresses are what they always were; d4
// and d5 exist only for directors.
func TestDirectorRange(t *testing.T) {
	want := []string{"client", "d1", "rs1", "nat1", "d2", "rs2", "nat2", "d3", "rs3", "nat3"}
	if got := Namespaces(); !slices.Equal(got, want) {
		t.Errorf("Namespaces = %v, want %v", got, want)
	}
	if got := namespaces(5); !slices.Equal(got, append(want, "d4", "d5")) {
		t.Errorf("namespaces(5) = %v", got)
	}
	for _, n := range []int{3, 4, 5} {
		var names []string
		for _, nd := range layout(true, n) {
			names = append(names, nd.name)
		}
		if !slices.Equal(names, namespaces(n)) {
			t.Errorf("layout with %d directors builds %v, namespaces(%d) = %v", n, names, n, namespaces(n))
		}
	}
	for got, want := range map[string]string{
		Director(5): "d5", DirectorAddr(4): "10.0.0.14", DirectorAddr(5): "10.0.0.15",
		DirectorNATAddr(5): "10.1.0.15", DirectorAddr6(4): "fd00::14", RealServerAddr(3): "10.0.0.23",
	} {
		if got != want {
			t.Errorf("got %s, want %s", got, want)
		}
	}
	for name, f := range map[string]func(){
		"Director(6)": func() { Director(6) }, "Director(0)": func() { Director(0) },
		"RealServer(4)": func() { RealServer(4) }, "NATServerAddr(4)": func() { NATServerAddr(4) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			f()
		}()
	}
	for n, want := range map[int]int{0: 3, 3: 3, 4: 4, 5: 5, 1: -1, 2: -1, 6: -1, -1: -1} {
		got, err := directorCount(n)
		if want < 0 && err == nil || want >= 0 && (err != nil || got != want) {
			t.Errorf("directorCount(%d) = %d, %v; want %d (-1: an error)", n, got, err, want)
		}
	}
}
