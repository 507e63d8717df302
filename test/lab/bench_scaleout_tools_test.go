//go:build lab && labbench

package lab

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// soConn is one entry of a director's IPVS connection table, read from
// /proc/net/ip_vs_conn_sync, which (unlike ipvsadm -Lnc) says whether the
// director scheduled the connection itself (Local) or learnt it from
// another's sync messages (the kernel prints LOCAL or SYNC).
type soConn struct {
	client netip.AddrPort
	vport  uint16
	state  string
	local  bool
}

// soConns reads node's connection table (IPv4 entries).
func soConns(tp *topo.Topology, node string) ([]soConn, error) {
	out, err := tp.Exec(node, "cat", "/proc/net/ip_vs_conn_sync")
	if err != nil {
		return nil, fmt.Errorf("%s: /proc/net/ip_vs_conn_sync: %w: %s", node, err, out)
	}
	return parseConnSync(out)
}

// parseConnSync parses the kernel's format: "Pro FromIP FPrt ToIP TPrt
// DestIP DPrt State Origin Expires", addresses and ports in hex (%08X of
// the host-order address, %04X of the port).
func parseConnSync(out string) ([]soConn, error) {
	var conns []soConn
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 9 || f[0] == "Pro" || len(f[1]) != 8 {
			continue
		}
		b, err := hex.DecodeString(f[1])
		if err != nil {
			return nil, fmt.Errorf("ip_vs_conn_sync: client address %q: %w", f[1], err)
		}
		cport, err1 := strconv.ParseUint(f[2], 16, 16)
		vport, err2 := strconv.ParseUint(f[4], 16, 16)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("ip_vs_conn_sync: ports in %q", line)
		}
		conns = append(conns, soConn{
			client: netip.AddrPortFrom(netip.AddrFrom4([4]byte(b)), uint16(cport)),
			vport:  uint16(vport), state: f[7], local: strings.EqualFold(f[8], "local"),
		})
	}
	return conns, nil
}

// soPollLine is one line of `labtool poll`.
type soPollLine struct {
	StartNS int64  `json:"start_ns"`
	EndNS   int64  `json:"end_ns"`
	OK      bool   `json:"ok"`
	Server  string `json:"server"`
	Err     string `json:"err"`
}

func parsePoll(out string) []soPollLine {
	var lines []soPollLine
	for _, l := range strings.Split(out, "\n") {
		var pl soPollLine
		if strings.HasPrefix(l, "{") && json.Unmarshal([]byte(l), &pl) == nil {
			lines = append(lines, pl)
		}
	}
	slices.SortFunc(lines, func(a, b soPollLine) int { return int(a.StartNS - b.StartNS) })
	return lines
}

// soOutage is what a crash at `at` did to new connections.
type soOutage struct {
	failed    int           // requests that failed, started from `from` on
	recovered time.Duration // from `at` to the start of the first request answered after the last failure; 0 if none failed
	longest   time.Duration // longest run of consecutive failures (first failure's start to the next answer's start)
	total     int           // requests started from `from` on
	last      time.Time     // start of the last failed request
}

// outage reads poll lines (sorted by start) from `from` on. A request that
// failed at the very end, with no answer after it, counts as unrecovered:
// recovered is then the whole span to the last line.
func outage(lines []soPollLine, at, from time.Time) soOutage {
	var o soOutage
	var runStart int64
	lastFail := int64(-1)
	for _, l := range lines {
		if l.StartNS < from.UnixNano() {
			continue
		}
		o.total++
		if !l.OK {
			o.failed++
			lastFail = l.StartNS
			if runStart == 0 {
				runStart = l.StartNS
			}
			continue
		}
		if runStart != 0 {
			o.longest = max(o.longest, time.Duration(l.StartNS-runStart))
			runStart = 0
		}
	}
	if lastFail < 0 {
		return o
	}
	o.last = time.Unix(0, lastFail)
	end := lines[len(lines)-1].StartNS
	for _, l := range lines {
		if l.StartNS > lastFail && l.OK {
			end = l.StartNS
			break
		}
	}
	if runStart != 0 {
		o.longest = max(o.longest, time.Duration(end-runStart))
	}
	o.recovered = max(0, time.Duration(end-at.UnixNano()))
	return o
}

// soSpread renders figures as "a b c (min-max)".
func soSpread(vals []float64, format string) string {
	var parts []string
	for _, v := range vals {
		parts = append(parts, fmt.Sprintf(format, v))
	}
	if len(vals) < 2 {
		return strings.Join(parts, " ")
	}
	return fmt.Sprintf("%s (spread "+format+"-"+format+")", strings.Join(parts, " "), slices.Min(vals), slices.Max(vals))
}

// soMedian is the median of vals (the lower middle for an even count).
func soMedian(vals []float64) float64 {
	s := slices.Clone(vals)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}

// soMoved compares two tuple -> server maps: the tuples answered both
// times, those whose server changed, and those among them that moved to
// an added server.
func soMoved(before, after map[string]string, added ...string) (compared, moved, toAdded int) {
	for tuple, b := range before {
		a, ok := after[tuple]
		if b == "" || !ok || a == "" {
			continue
		}
		compared++
		if a != b {
			moved++
			if slices.Contains(added, a) {
				toAdded++
			}
		}
	}
	return compared, moved, toAdded
}

// soRenice sets every thread of pid to nice.
func soRenice(t *testing.T, pid, nice int) {
	t.Helper()
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, task := range tasks {
		tid, err := strconv.Atoi(task.Name())
		if err != nil {
			continue
		}
		if err := syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice); err != nil {
			t.Fatalf("renice thread %d of %d: %v", tid, pid, err)
		}
	}
}

func (l *soLab) waitAllPaths() {
	l.t.Helper()
	harness.WaitNexthops(l.t, l.tp.NS(topo.Client), l.vip, 120*time.Second, l.dirs["d1"], l.dirs["d2"], l.dirs["d3"])
}

// soEchoSrcs is failover round r's echo source addresses.
func soEchoSrcs(r int) string {
	var a []string
	for i := 1; i <= soEchoSources; i++ {
		a = append(a, fmt.Sprintf("10.0.0.%d", 150+soEchoSources*(r-1)+i))
	}
	return strings.Join(a, ",")
}

// others is the addresses of the directors but id.
func (l *soLab) others(id string) []netip.Addr {
	var rest []netip.Addr
	for d, a := range l.dirs {
		if d != id {
			rest = append(rest, a)
		}
	}
	return rest
}

func (l *soLab) service(port int) string { return fmt.Sprintf("%s:%d", ecmpVIP, port) }

// httpRun runs `labtool http` in the client and decodes its line.
func (l *soLab) httpRun(args ...string) soHTTPResult {
	l.t.Helper()
	args = append([]string{"http", "--url", "http://" + ecmpVIP + "/"}, args...)
	out := l.tp.MustExec(topo.Client, l.labtool, args...)
	var res soHTTPResult
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		l.t.Fatalf("labtool http: %v: %s", err, out)
	}
	return res
}

type soHTTPResult struct {
	OK       int               `json:"ok"`
	Failed   int               `json:"failed"`
	ByServer map[string]int    `json:"by_server"`
	Errors   []string          `json:"errors"`
	Tuples   map[string]string `json:"tuples"`
}

// sessionDowns counts the BGP sessions the directors saw go down so far
// (a crashed director's last one is not logged). While every director
// lives, each is a flap: under emulation on a shared host a BFD packet
// can be later than the detection time, and the path goes; with no path
// at all the router falls back to its connected route and ARP, and one
// director takes every flow.
func (l *soLab) sessionDowns() int {
	n := 0
	for _, node := range l.nodes {
		n += strings.Count(node.Log(), `"msg":"bgp session down"`)
	}
	return n
}

// waitTuplesGone waits until no kernel holds an entry it scheduled itself
// for the fixed source tuples: their next SYN is then scheduled afresh.
func (l *soLab) waitTuplesGone() {
	l.t.Helper()
	harness.Eventually(l.t, 90*time.Second, "the fixed tuples' IPVS entries expired", func() (bool, string) {
		left := 0
		for id := range l.dirs {
			conns, err := soConns(l.tp, id)
			if err != nil {
				return false, err.Error()
			}
			for _, c := range conns {
				if c.local && c.client.Port() >= soFromPort && c.client.Port() < soFromPort+soPorts {
					left++
				}
			}
		}
		return left == 0, fmt.Sprintf("%d left", left)
	})
}

// echoCounts counts, per director, the echo connections it scheduled
// itself (Local entries, ESTABLISHED) and all it knows of (synced too),
// leaving out the client tuples in old: a crashed director's kernel keeps
// the entries of the connections it lost, ESTABLISHED, for 15 minutes.
func (l *soLab) echoCounts(old map[netip.AddrPort]bool) (local, known map[string]int) {
	local, known = map[string]int{}, map[string]int{}
	for id := range l.dirs {
		conns, err := soConns(l.tp, id)
		if err != nil {
			l.t.Fatal(err)
		}
		for _, c := range conns {
			if c.vport != topo.EchoPort || c.state != "ESTABLISHED" || old[c.client] {
				continue
			}
			known[id]++
			if c.local {
				local[id]++
			}
		}
	}
	return local, known
}

func TestScaleoutParsers(t *testing.T) {
	conns, err := parseConnSync(`Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       Origin Expires
TCP 0A000065 9C40 0A000032 0007 0A000015 0007 ESTABLISHED LOCAL      899
TCP 0A000066 EE48 0A000032 0050 0A000016 0050 CLOSE       SYNC        7
`)
	if err != nil || len(conns) != 2 {
		t.Fatalf("%v %v", conns, err)
	}
	if conns[0].client.String() != "10.0.0.101:40000" || conns[0].vport != 7 || !conns[0].local || conns[0].state != "ESTABLISHED" {
		t.Fatalf("%+v", conns[0])
	}
	if conns[1].client.String() != "10.0.0.102:61000" || conns[1].vport != 80 || conns[1].local {
		t.Fatalf("%+v", conns[1])
	}
	at := time.Unix(100, 0)
	ms := func(n int64) int64 { return at.UnixNano() + n*int64(time.Millisecond) }
	lines := []soPollLine{{StartNS: ms(-20), OK: true}, {StartNS: ms(0), OK: false}, {StartNS: ms(20), OK: true},
		{StartNS: ms(40), OK: false}, {StartNS: ms(60), OK: false}, {StartNS: ms(80), OK: true}, {StartNS: ms(100), OK: true}}
	o := outage(lines, at, at)
	if o.failed != 3 || o.total != 6 || o.recovered != 80*time.Millisecond || o.longest != 40*time.Millisecond {
		t.Fatalf("%+v", o)
	}
	if o := outage(lines[:1], at, at); o.failed != 0 || o.recovered != 0 {
		t.Fatalf("%+v", o)
	}
	c, m, a := soMoved(map[string]string{"x": "rs1", "y": "rs2", "z": "", "w": "rs1"}, map[string]string{"x": "rs1", "y": "nat1", "z": "rs1", "w": "rs2"}, "nat1")
	if c != 3 || m != 2 || a != 1 {
		t.Fatal(c, m, a)
	}
}
