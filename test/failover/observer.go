package failover

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// SampleEvery is the Observer's sampling period: fine enough for a
// failover measured in hundreds of milliseconds, cheap enough (one address
// dump per node) to run for an hour.
const SampleEvery = 2 * time.Millisecond

// Observer records, for each of a set of namespaces, when a given address
// was configured on eth0. It samples over netlink sockets opened once in
// each namespace, so a sample costs no process and no namespace switch.
//
// A presence interval runs from the first sample that saw the address to
// the first that did not, so both ends lag by up to SampleEvery and lengths
// are unbiased. SampleEvery is what it asks for, not what it gets: the
// ticker drops ticks under load and each sample is one dump per node in
// turn, so it records when each complete sample (every dump answered) was
// taken and when each dump failed, and Resolution reports the gaps.
type Observer struct {
	addr  *net.IPNet
	nodes []string
	stop  chan struct{}
	done  chan struct{}

	mu        sync.Mutex
	held      map[string][]Interval // the last one has a zero To while held
	uncounted map[string][]Interval // likewise while crashed
	current   []string              // holders in the latest sample
	first     time.Time             // first sample
	last      time.Time             // latest sample
	changed   chan struct{}         // closed and replaced after every sample
	samples   int
	errs      int
	lastErr   error
	origin    time.Time       // the offsets below count from here
	complete  []time.Duration // when each complete sample was taken
	mixed     []bool          // whether the gap each complete sample ends saw the address both added and deleted
	pending   moves           // drained since the last complete sample
	drained   moves           // drained in all
	took      []time.Duration // how long each complete sample's dumps took
	failed    []time.Duration // when each failed dump's sample was taken
	stopped   time.Time       // when sampling ended; zero while it runs
}

// sampler takes one sample: whether each node whose dump answered holds
// the address, how many dumps failed and the last failure.
// It also reports the adds and deletes of the address it drained from the
// address events (see addrEvents).
type sampler func() (seen map[string]bool, failed int, moved moves, err error)

type nsHandle struct {
	node string
	h    *netlink.Handle
	link netlink.Link
	ev   *addrEvents
}

// NewObserver starts sampling whether cidr (e.g. "10.0.0.10/32") is on eth0
// in each node's namespace. It stops on Stop or at the end of the test.
func NewObserver(t testing.TB, tp *topo.Topology, cidr string, nodes ...string) *Observer {
	t.Helper()
	ip, ipnet, err := net.ParseCIDR(cidr)
	if err != nil {
		t.Fatalf("observer: %v", err)
	}
	ipnet.IP = ip
	var handles []nsHandle
	closeAll := func() {
		for _, h := range handles {
			h.h.Close()
			h.ev.Close()
		}
	}
	for _, node := range nodes {
		ns, err := netns.GetFromName(tp.NS(node))
		if err != nil {
			closeAll()
			t.Fatalf("observer: namespace of %s: %v", node, err)
		}
		// The socket lives in the namespace it was opened in; the
		// namespace handle is not needed after that.
		ev, err := subscribeAddrs(ns, ip)
		if err != nil {
			ns.Close()
			closeAll()
			t.Fatalf("observer: %s: %v", node, err)
		}
		h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
		ns.Close()
		if err != nil {
			ev.Close()
			closeAll()
			t.Fatalf("observer: netlink in %s: %v", node, err)
		}
		link, err := h.LinkByName("eth0")
		if err != nil {
			h.Close()
			ev.Close()
			closeAll()
			t.Fatalf("observer: eth0 in %s: %v", node, err)
		}
		handles = append(handles, nsHandle{node, h, link, ev})
	}
	o := newObserver(ipnet, nodes)
	sample := func() (map[string]bool, int, moves, error) {
		seen := map[string]bool{}
		failed := 0
		var moved moves
		var sampleErr error
		// Events first: a change made after its drain and before the
		// dumps counts in the next gap too, which is the safe side.
		for _, h := range handles {
			n, err := h.ev.drain()
			moved = moved.plus(n)
			if err != nil {
				moved = moved.plus(unknownMove)
				sampleErr = fmt.Errorf("%s: %w", h.node, err)
			}
		}
		for _, h := range handles {
			has, err := o.has(h)
			if err != nil {
				failed++
				sampleErr = fmt.Errorf("%s: %w", h.node, err)
				continue
			}
			seen[h.node] = has
		}
		return seen, failed, moved, sampleErr
	}
	o.start(sample, closeAll)
	t.Cleanup(o.Stop)
	// The first sample defines the starting state: wait for it so that
	// Holders is meaningful as soon as we return.
	if err := o.WaitFor(func([]string) bool { return true }, 5*time.Second); err != nil {
		t.Fatalf("observer: %v", err)
	}
	return o
}

func newObserver(addr *net.IPNet, nodes []string) *Observer {
	return &Observer{
		addr: addr, nodes: slices.Clone(nodes),
		stop: make(chan struct{}), done: make(chan struct{}),
		held: map[string][]Interval{}, uncounted: map[string][]Interval{},
		changed: make(chan struct{}), origin: time.Now(),
	}
}

// start runs the sampling goroutine, which Stop ends and awaits; cleanup
// runs when it has ended.
func (o *Observer) start(sample sampler, cleanup func()) {
	go func() {
		defer close(o.done)
		defer cleanup()
		o.run(sample)
	}()
}

// samplerPriority is the SCHED_RR priority of the sampling thread: above
// the daemons' (the packaged unit's 10), so that neither they nor the
// rest of a loaded host blind the instrument that judges them.
const samplerPriority = 20

// run samples until Stop. It keeps its own OS thread, at real-time
// priority where the process may (root), and paces itself by sleeping in
// the kernel on that thread: a Go timer would need another, ordinarily
// scheduled thread of the runtime to wake it, and under load that wake-up
// is what comes late. The thread is never unlocked, so its policy ends
// with it. A sample that comes late is taken at once and the pace
// restarts from it, with no burst to catch up; Resolution reports what
// was achieved either way.
func (o *Observer) run(sample sampler) {
	runtime.LockOSThread()
	_ = unix.SchedSetAttr(0, &unix.SchedAttr{Size: unix.SizeofSchedAttr, Policy: unix.SCHED_RR, Priority: samplerPriority}, 0)
	defer func() {
		o.mu.Lock()
		o.stopped = time.Now()
		o.mu.Unlock()
	}()
	next := time.Now()
	for {
		now := time.Now()
		seen, failed, moved, err := sample()
		o.record(now, time.Since(now), seen, failed, moved, err)
		next = next.Add(SampleEvery)
		if d := time.Until(next); d > 0 {
			ts := unix.NsecToTimespec(d.Nanoseconds())
			_ = unix.Nanosleep(&ts, nil) // EINTR: the next sample comes early
		} else {
			next = time.Now()
		}
		select {
		case <-o.stop:
			return
		default:
		}
	}
}

// has dumps eth0's IPv4 addresses. An interrupted dump (the table changed
// under it, as it does during a failover) is retried rather than trusted.
func (o *Observer) has(h nsHandle) (bool, error) {
	var addrs []netlink.Addr
	var err error
	for range 3 {
		addrs, err = h.h.AddrList(h.link, netlink.FAMILY_V4)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return false, err
	}
	for _, a := range addrs {
		if a.IP.Equal(o.addr.IP) {
			return true, nil
		}
	}
	return false, nil
}

// record folds one sample in: seen has an entry for each node whose dump
// succeeded. A node whose dump failed keeps its previous state rather than
// being marked absent, and the sample is not complete: the gap to the
// next complete one shows how long the state was carried over.
func (o *Observer) record(now time.Time, took time.Duration, seen map[string]bool, failed int, moved moves, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.first.IsZero() {
		o.first = now
	}
	o.last = now
	o.samples++
	if err != nil {
		o.errs++
		o.lastErr = err
	}
	at := now.Sub(o.origin)
	o.pending = o.pending.plus(moved)
	o.drained = o.drained.plus(moved)
	if failed == 0 {
		o.complete = append(o.complete, at)
		o.took = append(o.took, took)
		o.mixed = append(o.mixed, o.pending.adds > 0 && o.pending.dels > 0)
		o.pending = moves{}
	}
	for range failed {
		o.failed = append(o.failed, at)
	}
	var holders []string
	for _, node := range o.nodes {
		ivs := o.held[node]
		open := len(ivs) > 0 && ivs[len(ivs)-1].To.IsZero()
		has, ok := seen[node]
		if !ok {
			has = open
		}
		switch {
		case has && !open:
			o.held[node] = append(ivs, Interval{From: now})
		case !has && open:
			ivs[len(ivs)-1].To = now
		}
		if has {
			holders = append(holders, node)
		}
	}
	slices.Sort(holders)
	o.current = holders
	close(o.changed)
	o.changed = make(chan struct{})
}

// Stop ends sampling; the recorded intervals stay readable. Safe to call
// more than once.
func (o *Observer) Stop() {
	select {
	case <-o.stop:
	default:
		close(o.stop)
	}
	<-o.done
}

// Crashed marks node as not counted for Overlap from now on: its address is
// still configured but it cannot answer (daemon killed, link down).
func (o *Observer) Crashed(node string) { o.CrashedAt(node, time.Now()) }

// CrashedAt is Crashed at a given instant, e.g. the one a driver recorded.
func (o *Observer) CrashedAt(node string, at time.Time) {
	o.mu.Lock()
	defer o.mu.Unlock()
	ivs := o.uncounted[node]
	if len(ivs) > 0 && ivs[len(ivs)-1].To.IsZero() {
		return // already crashed
	}
	o.uncounted[node] = append(ivs, Interval{From: at})
}

// Revived counts node again. Call it just before its link comes back: from
// then on, an address it still holds is a real conflict. It returns once a
// sample taken after the call is in, and counts the node from that sample:
// an address removed just before the call must not count for the time
// between the call and the sample that saw it gone.
func (o *Observer) Revived(node string) {
	call := time.Now()
	_ = o.waitSample(call, time.Second)
	o.mu.Lock()
	defer o.mu.Unlock()
	from := call
	if o.last.After(call) {
		from = o.last
	}
	ivs := o.uncounted[node]
	if len(ivs) > 0 && ivs[len(ivs)-1].To.IsZero() {
		ivs[len(ivs)-1].To = from
	}
}

// waitSample waits until a sample that started after t is recorded.
func (o *Observer) waitSample(t time.Time, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		done, changed := o.last.After(t), o.changed
		o.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-changed:
		case <-o.done:
			return errors.New("observer stopped")
		case <-deadline.C:
			return fmt.Errorf("no sample within %s", timeout)
		}
	}
}

// Holders returns the nodes that had the address at the given time,
// crashed or not, sorted. Times after the latest sample get its state.
func (o *Observer) Holders(at time.Time) []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return holdersAt(o.held, at)
}

// Current returns the holders in the latest sample, sorted.
func (o *Observer) Current() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.current)
}

// FirstHeld returns when node first held the address at or after the
// given time (that time itself if it held it then), as far as sampled.
func (o *Observer) FirstHeld(node string, after time.Time) (time.Time, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return firstHeld(o.held[node], after)
}

// Overlap returns how long, over everything sampled so far, two or more
// counted nodes held the address at once: the total, and the longest
// single stretch.
func (o *Observer) Overlap() (total, worst time.Duration) {
	o.mu.Lock()
	from, to := o.first, o.last
	o.mu.Unlock()
	return o.OverlapBetween(from, to)
}

// OverlapBetween is Overlap limited to [from, to).
func (o *Observer) OverlapBetween(from, to time.Time) (total, worst time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if to.After(o.last) {
		to = o.last
	}
	return overlap(o.held, o.uncounted, from, to)
}

// Resolution reports how finely [from, to) was sampled. The window is
// limited to the time the Observer sampled, the end to now while it runs:
// a sampler stalled at the time of the call shows as a long last gap.
func (o *Observer) Resolution(from, to time.Time) Resolution {
	o.mu.Lock()
	defer o.mu.Unlock()
	if from.Before(o.first) {
		from = o.first
	}
	if end := o.stopped; !end.IsZero() && to.After(end) {
		to = end
	}
	if now := time.Now(); to.After(now) {
		to = now
	}
	if to.Before(from) {
		to = from
	}
	r, worstEnd := resolution(o.complete, o.mixed, o.failed, from.Sub(o.origin), to.Sub(o.origin))
	r.WorstEnd = o.origin.Add(worstEnd)
	// The sample that opened the worst gap: its own dumps' time tells a
	// slow kernel (a dump waiting on a lock) from a thread not run.
	if i := sort.Search(len(o.complete), func(i int) bool { return o.complete[i] >= worstEnd-r.WorstGap }); i < len(o.complete) && o.complete[i] == worstEnd-r.WorstGap {
		r.GapOpenerTook = o.took[i]
	}
	return r
}

// Intervals returns a copy of node's presence intervals; the last one has
// a zero To if the node holds the address in the latest sample.
func (o *Observer) Intervals(node string) []Interval {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.held[node])
}

// Moves returns how many adds and deletes of the address the sampler has
// drained from all namespaces' address events so far.
func (o *Observer) Moves() (adds, dels int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.drained.adds, o.drained.dels
}

// Stats returns the number of samples taken, of those that failed, and the
// latest failure.
func (o *Observer) Stats() (samples, failed int, lastErr error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.samples, o.errs, o.lastErr
}

// WaitFor waits until a sample's holders satisfy cond, or timeout.
func (o *Observer) WaitFor(cond func(holders []string) bool, timeout time.Duration) error {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		o.mu.Lock()
		sampled := !o.last.IsZero()
		cur := slices.Clone(o.current)
		changed := o.changed
		lastErr := o.lastErr
		o.mu.Unlock()
		if sampled && cond(cur) {
			return nil
		}
		select {
		case <-changed:
		case <-o.done:
			return fmt.Errorf("observer stopped; holders %v", cur)
		case <-deadline.C:
			return fmt.Errorf("after %s: holders of %s are %v (last sampling error: %v)", timeout, o.addr.IP, cur, lastErr)
		}
	}
}
