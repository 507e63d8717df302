package benchwrites

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"
)

// RestoreInput is `ipvsadm -S -n` style text for `ipvsman -R`: services
// TCP services on port 80 (scheduler wlc), each with perService
// direct-routing real servers of weight 1. Every VIP and real server
// address is distinct.
func RestoreInput(services, perService int) string {
	var b strings.Builder
	b.Grow(services * (30 + perService*48))
	vip := netip.MustParseAddr("172.16.0.0")
	rip := netip.MustParseAddr("10.0.0.0")
	for range services {
		vip = vip.Next()
		fmt.Fprintf(&b, "-A -t %s:80 -s wlc\n", vip)
		for range perService {
			rip = rip.Next()
			fmt.Fprintf(&b, "-a -t %s:80 -r %s:80 -g -w 1\n", vip, rip)
		}
	}
	return b.String()
}

// Spread is the minimum, median and maximum of some rounds.
type Spread struct {
	Min, Median, Max time.Duration
	N                int
}

// SpreadOf summarises rounds; ok is false when there are none.
func SpreadOf(rounds []time.Duration) (s Spread, ok bool) {
	if len(rounds) == 0 {
		return Spread{}, false
	}
	r := slices.Clone(rounds)
	slices.Sort(r)
	n := len(r)
	med := r[n/2]
	if n%2 == 0 {
		med = (r[n/2-1] + r[n/2]) / 2
	}
	return Spread{Min: r[0], Median: med, Max: r[n-1], N: n}, true
}

func (s Spread) String() string {
	return fmt.Sprintf("min %.3f s, median %.3f s, max %.3f s (%d rounds)", s.Min.Seconds(), s.Median.Seconds(), s.Max.Seconds(), s.N)
}

// Figure formats a computed value with one decimal, or n/a when it could
// not be computed.
func Figure(v float64, ok bool) string {
	if !ok {
		return "n/a"
	}
	return fmt.Sprintf("%.1f", v)
}

// RouteLines counts the real servers in `ipvsman -L -n` output: the lines
// of direct-routing, NAT and tunnelled destinations.
func RouteLines(listing string) int {
	n := 0
	for _, line := range strings.Split(listing, "\n") {
		f := strings.Fields(line)
		if len(f) >= 3 && f[0] == "->" && (f[2] == "Route" || f[2] == "Masq" || f[2] == "Tunnel") {
			n++
		}
	}
	return n
}

// TermLeader is one leadership: a Raft term and the node leading it.
type TermLeader struct {
	Term   uint64
	Leader string
}

// Leadership counts the leaderships the nodes report over a run.
//
// A report without a leader (a node starting, or a candidate) is no
// leadership, so a restarted node that rejoins the same leader in the same
// term adds nothing; an election does, even one the old leader wins again,
// since the term changes. A leadership counts once two reports confirm it:
// two nodes, or one node in two polls in a row. A status reads the term and
// the leader one after the other, so a node changing term between the two
// can report a pair that never was; no second report repeats it.
type Leadership struct {
	mu      sync.Mutex
	last    map[string]TermLeader          // each node's previous report
	seenBy  map[TermLeader]map[string]bool // who reported each pair
	counted map[TermLeader]bool
	order   []string // the counted leaderships in the order confirmed, for the report
}

// Observe records that node reported term and leader at offset at since
// the start; it returns true when that confirms a leadership not counted
// before.
func (l *Leadership) Observe(node string, term uint64, leader string, at time.Duration) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.last == nil {
		l.last, l.seenBy, l.counted = map[string]TermLeader{}, map[TermLeader]map[string]bool{}, map[TermLeader]bool{}
	}
	k := TermLeader{term, leader}
	again := l.last[node] == k
	l.last[node] = k
	if leader == "" {
		return false
	}
	if l.seenBy[k] == nil {
		l.seenBy[k] = map[string]bool{}
	}
	l.seenBy[k][node] = true
	if l.counted[k] || !again && len(l.seenBy[k]) < 2 {
		return false
	}
	l.counted[k] = true
	l.order = append(l.order, fmt.Sprintf("+%.1fs term %d leader %s (confirmed by %s)", at.Seconds(), term, leader, node))
	return true
}

// Changes is the number of leaderships counted after the first; ok is
// false when none was.
func (l *Leadership) Changes() (n int, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.counted) == 0 {
		return 0, false
	}
	return len(l.counted) - 1, true
}

// Seen lists the counted leaderships in the order they were confirmed.
func (l *Leadership) Seen() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.order)
}
