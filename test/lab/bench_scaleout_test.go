//go:build lab && labbench

package lab

// TestBenchScaleout is `make bench-scaleout`: every director active behind
// an ECMP router, measured with real IPVS in the lab VM.
//
//   - Router: BIRD in the client's namespace takes the ecmp VIP
//     10.0.0.50/32 from the three directors over eBGP with BFD
//     (SCALEOUT_BFD_MS, 200, × 3 on both sides; SCALEOUT_BFD=off leaves it
//     out) and installs one multipath route; fib_multipath_hash_policy=1
//     spreads flows by their layer-4 tuple. BIRD and the directors run at
//     nice -20. The client sends from 16 more addresses, 10.0.0.101-116,
//     round robin (the echo connections from addresses of their own).
//     The directors answer no ARP for the VIP on the shared segment.
//   - Service: the VIP's HTTP (80) and echo (7) services, mh with mh-port
//     and mh-fallback, over the direct-routing real servers rs1-rs3 (the
//     VIP on lo); nat1 (and nat2 with SCALEOUT_ADD=2) is made a DR real
//     server too, for the mh test.
//   - scaleout_min_share_pct: SCALEOUT_CONNS new HTTP connections per round
//     from the 16 addresses and ephemeral ports; each director's share of
//     the service's Conns counter, read from its own kernel before and
//     after (deltas). A round during which a BGP session went down is
//     printed but left out of the headline.
//   - mh_moved_pct: 16 addresses × 32 fixed source ports (512 tuples), one
//     request each, before and after `ipvsman -a` adds nat1, with poll
//     traffic flowing; the real server answering names itself. The second
//     pass starts once no kernel holds an entry of its own for the tuples
//     (the client closes them with a reset), so that each SYN is scheduled
//     afresh.
//   - Failover (SCALEOUT_ROUNDS times): 50 echo connections (a line every
//     100 ms) spread over the directors and synced to all, new HTTP
//     connections every 20 ms (800 ms per try); the director with the most
//     echo connections (its kernel's LOCAL entries) is crashed: its link
//     cut (netlink, in-process) and its ipvsmand killed -9 at the same
//     instant (SCALEOUT_LINKCUT=off: the kill alone). scaleout_failover_ms
//     is from the crash to the start of the first answered request after
//     which none failed; the longest run of consecutive failures, and the
//     failures in the quiet 2 s before the crash (the lab's noise), are
//     printed beside it. scaleout_survived_pct: echo connections that
//     echoed every line to the end. The director is then restarted and its
//     path waited for.
//   - Drain (SCALEOUT_ROUNDS times): requests every 20 ms (2 s per try),
//     SIGTERM to a director (GRACEFUL_SHUTDOWN, then withdraw once the
//     traffic has left); scaleout_drain_failed_requests during and after,
//     and the drain's duration (SIGTERM to exit).
//
// Figures are printed, not asserted, except that the setup must work.
// SCALEOUT_OUT keeps the processes' logs.

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
	"github.com/vishvananda/netlink"
)

const (
	soSources  = 16
	soPorts    = 32
	soFromPort = 61000 // above the ephemeral range (32768-60999): no clash with the poll's ports
	soEchoes   = 50
	// Each failover round's echo connections come from addresses of their
	// own, 10.0.0.151 on, soEchoSources a round: a restarted director's
	// kernel still holds the entries of the connections it lost, and a new
	// connection reusing such a tuple would follow the old entry and hide
	// from the count.
	soEchoSources = 8
	soMaxRounds   = 12
)

// soLab is the running benchmark's lab.
type soLab struct {
	t       *testing.T
	tp      *topo.Topology
	c       *harness.Cluster
	nodes   []*harness.Node
	labtool string
	srcs    string // the client's source addresses, comma separated
	vip     netip.Prefix
	dirs    map[string]netip.Addr
	linkCut bool
	bird    *harness.Bird
	sync    bool     // connection sync on (SCALEOUT_SYNC=off: off)
	added   []string // the DR real servers mh_moved_pct adds: nat1, and nat2 with SCALEOUT_ADD=2
}

func TestBenchScaleout(t *testing.T) {
	requireKernelIPVS(t)
	harness.RequireBird(t)
	rounds := hbEnvInt(t, "SCALEOUT_ROUNDS", 3, 1, soMaxRounds)
	conns := hbEnvInt(t, "SCALEOUT_CONNS", 900, 30, 100_000)
	var bfd time.Duration
	if os.Getenv("SCALEOUT_BFD") != "off" {
		bfd = time.Duration(hbEnvInt(t, "SCALEOUT_BFD_MS", 200, 10, 10_000)) * time.Millisecond
	}
	out := os.Getenv("SCALEOUT_OUT")
	l := soSetup(t, out, bfd)
	l.linkCut = os.Getenv("SCALEOUT_LINKCUT") != "off"
	fmt.Printf("scaleout_setup: 3 directors, BFD %v x 3 (0: off), link cut %v, connection sync %v, %d client addresses, rounds %d\n", bfd, l.linkCut, l.sync, soSources, rounds)
	defer func() {
		// A live director's BFD session expiring (a packet late under
		// emulation) takes its path away: it moves flows and skews the
		// other figures.
		expired := 0
		for _, n := range l.nodes {
			for _, line := range strings.Split(n.Log(), "\n") {
				if strings.Contains(line, `"Topic":"bfd"`) && strings.Contains(line, `"msg":"Expired"`) {
					expired++
				}
			}
		}
		fmt.Printf("scaleout_bfd_flaps: %d (BFD sessions a director found expired: none is a crash's, each took a live path away; BGP sessions down seen by the directors in all: %d, drains included)\n", expired, l.sessionDowns())
		if out != "" {
			_ = os.WriteFile(filepath.Join(out, "bird.log"), []byte(l.bird.Output()), 0o644)
		}
	}()

	// A round during which a path flapped measures the flap, not the
	// spread: the headline is the worst of the valid rounds (all, if none
	// is), and says how many were left out.
	var mins, valid []float64
	for r := 1; r <= rounds; r++ {
		m, ok := l.share(r, conns)
		mins = append(mins, m)
		if ok {
			valid = append(valid, m)
		}
	}
	head := valid
	if len(head) == 0 {
		head = mins
	}
	fmt.Printf("scaleout_min_share_pct: %.1f (worst valid round; rounds %s; %d of %d rounds left out for a path flap; target >= 20)\n",
		slices.Min(head), soSpread(mins, "%.1f"), len(mins)-len(valid), len(mins))

	l.mhMoved()

	var fo, outages, surv []float64
	for r := 1; r <= rounds; r++ {
		f, o, s := l.failover(r)
		fo, outages, surv = append(fo, f), append(outages, o), append(surv, s)
	}
	fmt.Printf("scaleout_failover_ms: %.0f (median; rounds %s; crash to the first answer after which none failed; target <= 1000)\n", soMedian(fo), soSpread(fo, "%.0f"))
	fmt.Printf("scaleout_longest_outage_ms: %.0f (median; rounds %s; longest run of consecutive failed new connections)\n", soMedian(outages), soSpread(outages, "%.0f"))
	fmt.Printf("scaleout_survived_pct: %.1f (worst round; rounds %s; target >= 99)\n", slices.Min(surv), soSpread(surv, "%.1f"))

	var failed, took []float64
	for r := 1; r <= rounds; r++ {
		f, d := l.drain(r, r < rounds)
		failed, took = append(failed, f), append(took, d)
	}
	fmt.Printf("scaleout_drain_failed_requests: %.0f (sum over rounds; rounds %s; target 0)\n", sum(failed), soSpread(failed, "%.0f"))
	fmt.Printf("scaleout_drain_s: %.1f (median; rounds %s; SIGTERM to exit)\n", soMedian(took), soSpread(took, "%.1f"))
}

func sum(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s
}

// soSetup builds the topology, the router and the cluster, and waits
// until the router has a path through every director.
func soSetup(t *testing.T, out string, bfd time.Duration) *soLab {
	tp := topo.Build(t, topo.Options{Prefix: "so-", NoIPv6: true, LogDir: out})
	l := &soLab{t: t, tp: tp, sync: os.Getenv("SCALEOUT_SYNC") != "off", labtool: topo.BuildLabtool(t), vip: netip.MustParsePrefix(ecmpVIP + "/32"), dirs: map[string]netip.Addr{}}
	tp.StartRealServers(l.labtool)
	for i := 1; i <= topo.RealServers; i++ {
		tp.AddAddr(topo.RealServer(i), ecmpVIP+"/32", "lo")
	}
	// nat1 becomes a direct-routing real server on the front segment, for
	// mh_moved_pct: the ARP settings before the VIP, as on rs1-rs3. Its
	// labtool serve listens on every address. SCALEOUT_ADD=2 adds nat2
	// too: two servers at once move about 2/5 of the tuples, past the
	// bound for one, which shows the figure can fail.
	for i := 1; i <= hbEnvInt(t, "SCALEOUT_ADD", 1, 1, 2); i++ {
		nat, addr := topo.NATServer(i), fmt.Sprintf("10.0.0.%d", 23+i)
		for _, s := range []string{"all.arp_ignore=1", "eth0.arp_ignore=1", "all.arp_announce=2", "eth0.arp_announce=2"} {
			tp.MustExec(nat, "sysctl", "-qw", "net.ipv4.conf."+s)
		}
		tp.AddAddr(nat, addr+"/24", "eth0")
		tp.AddAddr(nat, ecmpVIP+"/32", "lo")
		l.added = append(l.added, addr)
	}

	l.srcs = soClient(t, tp)

	// The directors hold the VIP on lo; the router shares their segment,
	// so, as docs/ecmp.md advises, they answer no ARP for it there: a
	// router left without a path then fails its flows (visibly) instead of
	// sending them all to whichever director answered ARP.
	for i := 1; i <= topo.Directors; i++ {
		l.dirs[topo.Director(i)] = netip.MustParseAddr(topo.DirectorAddr(i))
		for _, s := range []string{"all.arp_ignore=1", "eth0.arp_ignore=1", "all.arp_announce=2", "eth0.arp_announce=2"} {
			tp.MustExec(topo.Director(i), "sysctl", "-qw", "net.ipv4.conf."+s)
		}
	}
	router := harness.ECMPRouter{Addr: netip.MustParseAddr(topo.ClientAddr), AS: 65000, Directors: l.dirs, DirectorAS: 65001}
	peer := topo.ClientAddr + ",as=65000"
	if bfd > 0 {
		router.BFD = bfd
		peer += fmt.Sprintf(",bfd,bfd-interval=%s,bfd-multiplier=3", bfd)
	}
	l.bird = harness.StartBird(t, tp.NS(topo.Client), router.Conf())
	// A router runs its routing daemon ahead of ordinary work, and the
	// directors run at nice -20 as the packaged unit does: under emulation
	// on a shared host, BFD at ordinary priority misses its deadlines.
	soRenice(t, l.bird.Pid(), -20)
	args := append([]string{"--nice=-20", "--resync", "2s", "--resync-cpu", "10", "--bgp-as", "65001", "--bgp-peer", peer, "--bgp-drain-timeout", "10s"}, labTiming...)
	l.c, l.nodes = harness.Directors(t, tp, "on", args...)
	if out != "" {
		t.Cleanup(func() {
			for _, n := range l.nodes {
				_ = os.WriteFile(filepath.Join(out, n.ID+".log"), []byte(n.Log()), 0o644)
			}
		})
	}
	l.applyServices()
	l.waitAllPaths()
	return l
}

// soClient makes the client the router (layer-4 multipath hashing) and
// gives it its source addresses; it returns the 16 for new connections.
func soClient(t *testing.T, tp *topo.Topology) string {
	t.Helper()
	// The client is the router: layer-4 hashing over the multipath route,
	// and its source addresses.
	tp.MustExec(topo.Client, "sysctl", "-qw", "net.ipv4.fib_multipath_hash_policy=1")
	// One ip -batch for all the addresses: a process start costs 0.1-0.3 s
	// under emulation.
	var srcs []string
	var batch strings.Builder
	for i := 1; i <= soSources; i++ {
		a := fmt.Sprintf("10.0.0.%d", 100+i)
		fmt.Fprintf(&batch, "addr add %s/24 dev eth0\n", a)
		srcs = append(srcs, a)
	}
	for i := 1; i <= soEchoSources*soMaxRounds; i++ {
		fmt.Fprintf(&batch, "addr add 10.0.0.%d/24 dev eth0\n", 150+i)
	}
	bf := filepath.Join(t.TempDir(), "client-addrs")
	if err := os.WriteFile(bf, []byte(batch.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	tp.MustExec(topo.Client, "ip", "-batch", bf)
	return strings.Join(srcs, ",")
}

// applyServices applies the ecmp VIP and its two mh services.
func (l *soLab) applyServices() {
	l.t.Helper()
	file := filepath.Join(l.t.TempDir(), "scaleout.yaml")
	var servers []string
	for i := 1; i <= topo.RealServers; i++ {
		servers = append(servers, fmt.Sprintf("{name: %s, address: %s}", topo.RealServer(i), topo.RealServerAddr(i)))
	}
	// SCALEOUT_SYNC=off: no connection sync, so that the crashed director's
	// connections go on (or not) through sloppy_tcp and mh alone.
	sync := ""
	if !l.sync {
		sync = "sync: {off: true}\n"
	}
	y := fmt.Sprintf(sync+`vips:
  - {address: %[1]s/32, mode: ecmp}
services:
  - {name: Web, protocol: tcp, address: %[1]s, port: %[2]d, scheduler: mh, flags: [mh-port, mh-fallback], servers: [%[4]s]}
  - {name: Echo, protocol: tcp, address: %[1]s, port: %[3]d, scheduler: mh, flags: [mh-port, mh-fallback], servers: [%[4]s]}
`, ecmpVIP, topo.HTTPPort, topo.EchoPort, strings.Join(servers, ", "))
	if err := os.WriteFile(file, []byte(y), 0o644); err != nil {
		l.t.Fatal(err)
	}
	l.c.MustCLI(l.nodes[0], "", "apply", "-f", file)
}

// share runs one round of new connections and returns the smallest
// director's share of them, in %, each counted by its own kernel.
func (l *soLab) share(round, n int) (minShare float64, valid bool) {
	l.t.Helper()
	read := func() map[string]uint64 {
		m := map[string]uint64{}
		for id := range l.dirs {
			v, err := ipvsServiceStat(l.tp, id, l.service(topo.HTTPPort), statConns)
			if err != nil {
				l.t.Fatal(err)
			}
			m[id] = v
		}
		return m
	}
	l.waitAllPaths()
	downs := l.sessionDowns()
	before := read()
	res := l.httpRun("--count", strconv.Itoa(n), "--timeout", "2s", "--src", l.srcs)
	hops, _ := harness.Nexthops(l.tp.NS(topo.Client), l.vip)
	flaps := l.sessionDowns() - downs
	valid = flaps == 0 && len(hops) == len(l.dirs)
	// The kernel sums its per-CPU counters into what ipvsadm reads every
	// 2 s (the estimator): wait until every answered request is counted,
	// or the counters held still over two of its periods (a connection
	// that met an old entry of its tuple is not scheduled, nor counted).
	var total, last uint64
	deltas := map[string]uint64{}
	ran, still := time.Now(), time.Now()
	harness.Eventually(l.t, 30*time.Second, "the kernels' Conns counters to include every answered request", func() (bool, string) {
		after := read()
		total = 0
		for id := range l.dirs {
			deltas[id] = after[id] - before[id]
			total += deltas[id]
		}
		if total != last {
			last, still = total, time.Now()
		}
		settled := time.Since(ran) > 5*time.Second && time.Since(still) > 5*time.Second
		return total >= uint64(res.OK) || settled, fmt.Sprintf("%d counted, %d answered", total, res.OK)
	})
	if total == 0 {
		l.t.Fatalf("share round %d: no director counted a connection: %+v", round, res)
	}
	var parts []string
	minPct := 100.0
	for _, id := range slices.Sorted(maps.Keys(l.dirs)) {
		pct := 100 * float64(deltas[id]) / float64(total)
		minPct = min(minPct, pct)
		parts = append(parts, fmt.Sprintf("%s=%.1f", id, pct))
	}
	fmt.Printf("scaleout_share_pct_round%d: %s (min %.1f; %d connections counted by the kernels, %d requests answered, %d failed; by real server %v; router next hops after %v, BGP sessions down meanwhile %d: round valid %v)\n",
		round, strings.Join(parts, " "), minPct, total, res.OK, res.Failed, res.ByServer, hops, flaps, valid)
	return minPct, valid
}

// mhMoved adds a real server under traffic and counts the source tuples
// whose new connection reaches another real server than before.
func (l *soLab) mhMoved() {
	t := l.t
	t.Helper()
	bg := l.tp.Start(topo.Client, l.labtool, "poll", "--url", "http://"+ecmpVIP+"/", "--every", "50ms", "--timeout", "2s")
	tuples := []string{"--count", strconv.Itoa(soSources * soPorts), "--timeout", "2s", "--src", l.srcs,
		"--src-ports", fmt.Sprintf("%d-%d", soFromPort, soFromPort+soPorts-1)}
	before := l.httpRun(tuples...)
	l.waitTuplesGone()
	for _, a := range l.added {
		l.c.MustCLI(l.nodes[0], "", "-a", "-t", l.service(topo.HTTPPort), "-r", a, "-g")
	}
	harness.Eventually(t, 60*time.Second, fmt.Sprintf("every kernel with %v in the web service", l.added), func() (bool, string) {
		for id := range l.dirs {
			out, _ := l.tp.Exec(id, "ipvsadm", "-L", "-n", "-t", l.service(topo.HTTPPort))
			for _, a := range l.added {
				if !strings.Contains(out, a+":80") {
					return false, id + ":\n" + out
				}
			}
		}
		return true, ""
	})
	after := l.httpRun(tuples...)
	bg.Stop()
	if err := bg.Wait(10 * time.Second); err != nil {
		t.Fatalf("poll: %v", err)
	}
	polled := parsePoll(bg.Output())
	bgFailed := 0
	for _, p := range polled {
		if !p.OK {
			bgFailed++
		}
	}
	var added []string
	for i := range l.added {
		added = append(added, topo.NATServer(i+1))
	}
	compared, moved, toAdded := soMoved(before.Tuples, after.Tuples, added...)
	if compared == 0 {
		t.Fatalf("no tuple answered both times: before %+v after %+v", before, after)
	}
	n := topo.RealServers + len(l.added)
	fmt.Printf("mh_moved_pct: %.1f (%d of %d source tuples moved, %d of them to the added server(s) %v; N=%d real servers after the add, bound 1/N+1%% = %.1f; before %v, after %v; background requests %d, failed %d)\n",
		100*float64(moved)/float64(compared), moved, compared, toAdded, added, n, 100.0/float64(n)+1, before.ByServer, after.ByServer, len(polled), bgFailed)
}

// startEchoes opens the failover round's echo connections and returns
// once each is ESTABLISHED in the kernel that scheduled it and known to
// every director, with the counts per director (echoCounts).
func (l *soLab) startEchoes(round int, echoFor time.Duration) (echo *topo.Proc, local, known map[string]int) {
	l.t.Helper()
	old := map[netip.AddrPort]bool{}
	for id := range l.dirs {
		conns, err := soConns(l.tp, id)
		if err != nil {
			l.t.Fatal(err)
		}
		for _, c := range conns {
			old[c.client] = true
		}
	}
	echo = l.tp.Start(topo.Client, l.labtool, "echo", "--addr", l.service(topo.EchoPort), "--conns", strconv.Itoa(soEchoes),
		"--duration", echoFor.String(), "--interval", "100ms", "--src", soEchoSrcs(round))
	harness.Eventually(l.t, 30*time.Second, "every echo connection ESTABLISHED in one kernel", func() (bool, string) {
		local, known = l.echoCounts(old)
		n := 0
		for _, v := range local {
			n += v
		}
		return n == soEchoes, fmt.Sprintf("local %v", local)
	})
	// Sync: a connection is sent at its third packet, and the master
	// flushes at least every 2 s. The crash comes once every director
	// knows every connection: an operator's "connections older than a few
	// seconds". Without sync there is nothing to wait for.
	if !l.sync {
		return echo, local, known
	}
	harness.Eventually(l.t, 30*time.Second, "every echo connection known to every director (sync)", func() (bool, string) {
		local, known = l.echoCounts(old)
		for id := range l.dirs {
			if known[id] != soEchoes {
				return false, fmt.Sprintf("known %v", known)
			}
		}
		return true, ""
	})
	return echo, local, known
}

// failover crashes the busiest director under traffic and returns the
// failover time and longest outage (ms) and the echo connections'
// survival (%).
func (l *soLab) failover(round int) (foMS, outageMS, survived float64) {
	t := l.t
	t.Helper()
	const echoFor = 45 * time.Second
	echo, local, known := l.startEchoes(round, echoFor)
	victim := ""
	for _, id := range slices.Sorted(maps.Keys(l.dirs)) {
		if victim == "" || local[id] > local[victim] {
			victim = id
		}
	}
	var node *harness.Node
	for _, n := range l.nodes {
		if n.ID == victim {
			node = n
		}
	}
	// 800 ms per try: short of the SYN's first retransmission (1 s), so a
	// SYN lost on the dead path fails the try, and long enough that the
	// emulated lab's own stalls rarely do (the failures in the quiet
	// window before the crash are printed: that is the noise).
	downs := l.sessionDowns()
	poll := l.tp.Start(topo.Client, l.labtool, "poll", "--url", "http://"+ecmpVIP+"/", "--every", "20ms", "--timeout", "800ms", "--src", l.srcs)
	time.Sleep(2 * time.Second)
	link, err := netlink.LinkByName(l.tp.Veth(victim))
	if err != nil {
		t.Fatal(err)
	}
	// The crash: the link cut (in-process, netlink: no process start
	// between it and the kill) and kill -9 of ipvsmand.
	at := time.Now()
	if l.linkCut {
		if err := netlink.LinkSetDown(link); err != nil {
			t.Fatalf("cut %s: %v", victim, err)
		}
	}
	node.Kill()
	killed := time.Since(at)
	// Measure until the router has dropped the path (BFD, the hold time,
	// or the session's close by the kernel when the link stays up) and a
	// further 5 s passed: later failures would still count.
	harness.WaitNexthops(t, l.tp.NS(topo.Client), l.vip, 60*time.Second, l.others(victim)...)
	time.Sleep(5 * time.Second)
	poll.Stop()
	if err := poll.Wait(10 * time.Second); err != nil {
		t.Fatalf("poll: %v", err)
	}
	polled := parsePoll(poll.Output())
	o := outage(polled, at, at)
	quiet := outage(polled, at, time.Time{})
	preFailed, preTotal := quiet.failed-o.failed, quiet.total-o.total
	if err := echo.Wait(echoFor + 30*time.Second); err != nil {
		t.Fatalf("echo: %v\n%s", err, echo.Output())
	}
	var er struct {
		Conns, Survived, Broken int
		MaxGapMS                int64          `json:"max_gap_ms"`
		ByServer                map[string]int `json:"by_server"`
		Errors                  []string
	}
	lines := strings.Split(strings.TrimSpace(echo.Output()), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &er); err != nil || er.Conns != soEchoes {
		t.Fatalf("echo: %v: %s", err, echo.Output())
	}
	survived = 100 * float64(er.Survived) / float64(er.Conns)
	fmt.Printf("scaleout_failover_round%d: crashed %s (kill -9 + link cut %v, both done in %s); %d of %d echo connections were its own (per director %v; known incl. synced %v, every director knowing all by sync before the crash: %v); failover %d ms, longest outage %d ms, %d of %d new connections failed after the crash (%d of %d in the 2 s before it); echo survived %d of %d (broken %d, largest gap %d ms, errors %v); BGP sessions down at live directors %d\n",
		round, victim, l.linkCut, killed.Round(time.Millisecond), local[victim], soEchoes, local, known, l.sync,
		o.recovered.Milliseconds(), o.longest.Milliseconds(), o.failed, o.total, preFailed, preTotal, er.Survived, er.Conns, er.Broken, er.MaxGapMS, er.Errors, l.sessionDowns()-downs)
	if l.linkCut {
		l.tp.RestoreLink(victim)
	}
	node.Start()
	l.waitAllPaths()
	return float64(o.recovered.Milliseconds()), float64(o.longest.Milliseconds()), survived
}

// drain stops a director with SIGTERM under steady requests and returns
// the failed requests from the SIGTERM on and the drain's duration (s).
// With restart, the director is started again and its path waited for.
func (l *soLab) drain(round int, restart bool) (failed, took float64) {
	t := l.t
	t.Helper()
	node := l.nodes[(round-1)%len(l.nodes)]
	downs := l.sessionDowns()
	poll := l.tp.Start(topo.Client, l.labtool, "poll", "--url", "http://"+ecmpVIP+"/", "--every", "20ms", "--timeout", "2s", "--src", l.srcs)
	time.Sleep(2 * time.Second)
	at := time.Now()
	if err := node.Stop(); err != nil {
		t.Fatalf("%s after SIGTERM: %v", node.ID, err)
	}
	took = time.Since(at).Seconds()
	exited := time.Now()
	harness.WaitNexthops(t, l.tp.NS(topo.Client), l.vip, 30*time.Second, l.others(node.ID)...)
	time.Sleep(5 * time.Second)
	poll.Stop()
	if err := poll.Wait(15 * time.Second); err != nil {
		t.Fatalf("poll: %v", err)
	}
	lines := parsePoll(poll.Output())
	var pre, during, after, total int
	for _, p := range lines {
		total++
		switch {
		case p.OK:
		case p.StartNS < at.UnixNano():
			pre++
		case p.StartNS < exited.UnixNano():
			during++
		default:
			after++
		}
	}
	drained := strings.Contains(node.Log(), "ecmp drain: graceful shutdown announced")
	fmt.Printf("scaleout_drain_round%d: SIGTERM to %s, exited after %.1f s (drain logged: %v); failed requests: %d during the drain, %d after, %d before it (of %d); BGP sessions down %d (its own close may count one)\n",
		round, node.ID, took, drained, during, after, pre, total, l.sessionDowns()-downs)
	if restart {
		node.Start()
		l.waitAllPaths()
	}
	return float64(during + after), took
}
