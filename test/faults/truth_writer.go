package faults

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

// The write-truth workload. Every write is valid when it is sent, given
// what the cluster acknowledged: each writer owns its addresses, adds
// only addresses it never used, and edits or deletes only real servers
// whose add it saw acknowledged and that it has not deleted. A write of
// unknown outcome retires what it touched: nothing is sent about it again.
const (
	truthWriters = 3
	// truthEvery is each writer's pace: three writers make about 12
	// writes a second, far below the API's 50 a second per client, and
	// about 12 versions a second, which the history reads (every second,
	// 200 versions deep) never fall behind.
	truthEvery = 250 * time.Millisecond
	// bulkServers is the size of a bulk write: one service and this many
	// real servers in one request, as `ipvsman -R` of a large table.
	bulkServers = 2500
	// bulkFirst and bulkEvery: writer g's first bulk write is its write
	// bulkFirst+10g, then one every bulkEvery writes (a bulk write every
	// few seconds in all); dropAfter writes later it deletes the service
	// again (every history version, and so every snapshot, holds the
	// whole configuration: the bulk services must not pile up).
	bulkFirst, bulkEvery, dropAfter = 15, 40, 4
	// writeWait and bulkWait are the writes' deadlines; one small write
	// in shortEvery has shortWait, shorter than an election, so that
	// some writes end while the cluster has no leader or has lost one
	// under them: the answers invariant 8 is about.
	writeWait  = 8 * time.Second
	bulkWait   = 30 * time.Second
	shortWait  = time.Second
	shortEvery = 4
)

// TruthWriter runs the workload through every node and records each
// write with the outcome the API reported.
type TruthWriter struct {
	run     int
	bases   []string // the nodes' API base URLs
	names   []string // and their IDs
	token   string
	http    *http.Client
	service string // the service the small writes go to, "10.0.0.10:80"
	loops
	// bulkSent has a value when a bulk write was sent, one kept at most.
	bulkSent chan struct{}

	mu        sync.Mutex
	turn      int                  // the writes sent so far, for the next node in turn
	downUntil map[string]time.Time // by host:port: a connection to it was refused
	records   [truthWriters][]WriteRecord
	committed int
	inFlight  map[WriteKind]int
	last      map[Outcome]string // the latest reason of each outcome
}

// StartTruthWriter starts the workload of run number run (it names the
// addresses and request IDs apart from other runs').
func StartTruthWriter(run int, bases, names []string, token string, hc *http.Client, service string) *TruthWriter {
	w := &TruthWriter{run: run, bases: bases, names: names, token: token, service: service, loops: newLoops(), last: map[Outcome]string{}, downUntil: map[string]time.Time{}, inFlight: map[WriteKind]int{}, bulkSent: make(chan struct{}, 1)}
	next := hc.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	w.http = &http.Client{Transport: dialWatch{next: next, down: w.markDown}}
	for g := range truthWriters {
		w.wg.Add(1)
		go w.loop(g)
	}
	return w
}

// writerState is what one writer knows; only its goroutine uses it.
type writerState struct {
	g        int
	rnd      *rand.Rand
	live     map[string]int // real servers acknowledged and not deleted → weight
	keys     []string       // live's keys, for random picks
	next     int            // the next address number
	seq      int            // the next request number
	bulk     string         // the acknowledged bulk service not dropped yet
	bulkAt   int            // the write number of its bulk write
	bulks    int            // bulk services made
	nextBulk int            // the write number of the next bulk write
}

func (w *TruthWriter) loop(g int) {
	defer w.wg.Done()
	s := &writerState{g: g, rnd: rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(g))), live: map[string]int{}, nextBulk: bulkFirst + 10*g}
	tick := time.NewTicker(truthEvery)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		w.step(s, i)
	}
}

// step sends writer s's i-th write.
func (w *TruthWriter) step(s *writerState, i int) {
	rec := WriteRecord{Writer: s.g, Service: "tcp:" + w.service}
	var lines []string
	wait := writeWait
	p := s.rnd.IntN(100)
	switch {
	case s.bulk != "" && i-s.bulkAt >= dropAfter:
		rec.Kind, rec.Service = KindDrop, "tcp:"+s.bulk
		lines = []string{"-D -t " + s.bulk}
		wait = bulkWait
	case s.bulk == "" && i >= s.nextBulk && s.bulks < 20:
		svc := netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 168, byte(w.run % 250), byte(s.g*20 + s.bulks + 1)}), 80).String()
		s.bulks++
		s.nextBulk = i + bulkEvery
		rec.Kind, rec.Service, rec.Servers = KindBulk, "tcp:"+svc, bulkServers
		lines = append(lines, "-A -t "+svc+" -s rr")
		for n := range bulkServers {
			rs := netip.AddrPortFrom(netip.AddrFrom4([4]byte{172, 16, byte(n / 250), byte(n%250 + 1)}), 80)
			lines = append(lines, fmt.Sprintf("-a -t %s -r %s -m -w 1", svc, rs))
		}
		wait = bulkWait
	case len(s.keys) < 4 || p < 50:
		if s.next >= 40*250 {
			return // this writer's addresses are used up
		}
		rs := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(10 + w.run%200), byte(s.g*40 + s.next/250), byte(s.next%250 + 1)}), 80).String()
		s.next++
		rec.Kind, rec.Server, rec.Weight = KindAdd, rs, 1+s.rnd.IntN(50)
		lines = []string{fmt.Sprintf("-a -t %s -r %s -m -w %d", w.service, rs, rec.Weight)}
	case p < 75:
		rs := s.keys[s.rnd.IntN(len(s.keys))]
		rec.Kind, rec.Server, rec.Weight = KindEdit, rs, s.live[rs]%50+1
		lines = []string{fmt.Sprintf("-e -t %s -r %s -m -w %d", w.service, rs, rec.Weight)}
	default:
		rs := s.keys[s.rnd.IntN(len(s.keys))]
		rec.Kind, rec.Server = KindDelete, rs
		lines = []string{fmt.Sprintf("-d -t %s -r %s", w.service, rs)}
	}
	if wait == writeWait && s.rnd.IntN(shortEvery) == 0 {
		wait = shortWait
	}
	rec.Deadline = wait
	ops, err := ipvsadm.ParseRestore(strings.NewReader(strings.Join(lines, "\n")))
	if err != nil {
		panic(err) // the lines are ours: a bug in the test
	}
	rec.ID = fmt.Sprintf("truth-r%d-w%d-%d", w.run, s.g, s.seq)
	s.seq++
	node := w.pick()
	rec.Node = w.names[node]
	w.mu.Lock()
	w.inFlight[rec.Kind]++
	w.mu.Unlock()
	if rec.Kind == KindBulk {
		select {
		case w.bulkSent <- struct{}{}:
		default:
		}
	}
	w.send(&rec, w.bases[node], ops, wait)

	switch o := rec.Outcome; rec.Kind {
	case KindAdd:
		if o == Committed {
			s.live[rec.Server] = rec.Weight
			s.keys = append(s.keys, rec.Server)
		}
	case KindEdit:
		if o == Committed {
			s.live[rec.Server] = rec.Weight
		} else if o == Unknown {
			s.forget(rec.Server)
		}
	case KindDelete:
		if o == Committed || o == Unknown {
			s.forget(rec.Server)
		}
	case KindBulk:
		if o == Committed {
			s.bulk, s.bulkAt = strings.TrimPrefix(rec.Service, "tcp:"), i
		}
	case KindDrop:
		if o == Committed || o == Unknown {
			s.bulk = ""
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.inFlight[rec.Kind]--
	w.records[s.g] = append(w.records[s.g], rec)
	if rec.Outcome == Committed {
		w.committed++
	} else {
		w.last[rec.Outcome] = rec.Reason
	}
}

// pick is the node the next write goes through: the next in turn, or
// the next after it that did not refuse a connection in the last
// seconds. A write already sent to a node keeps trying it until its
// deadline, as api.Client does; the writers' next writes go elsewhere
// meanwhile.
func (w *TruthWriter) pick() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := w.turn
	w.turn++
	for k := range w.bases {
		i := (n + k) % len(w.bases)
		if time.Now().After(w.downUntil[strings.TrimPrefix(strings.TrimPrefix(w.bases[i], "https://"), "http://")]) {
			return i
		}
	}
	return n % len(w.bases)
}

// markDown notes that host refused a connection.
func (w *TruthWriter) markDown(host string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.downUntil[host] = time.Now().Add(3 * time.Second)
}

// dialWatch tells down about each host a connection to which could not
// be made.
type dialWatch struct {
	next http.RoundTripper
	down func(host string)
}

func (d dialWatch) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := d.next.RoundTrip(req)
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		d.down(req.URL.Host)
	}
	return resp, err
}

// forget retires a real server: the writer sends nothing about it again.
func (s *writerState) forget(rs string) {
	delete(s.live, rs)
	s.keys = slices.DeleteFunc(s.keys, func(k string) bool { return k == rs })
}

// send commits ops with rec's request ID through the node at base and
// records the reported outcome in rec.
func (w *TruthWriter) send(rec *WriteRecord, base string, ops []fsm.Op, wait time.Duration) {
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	id := rec.ID
	c := &api.Client{Base: base, Token: w.token, Actor: "truth", HTTP: w.http, RequestID: func() string { return id }}
	rec.Sent = time.Now()
	res, err := c.OpsRequest(ctx, api.OpsRequest{Ops: ops})
	rec.Took = time.Since(rec.Sent)
	rec.Outcome, rec.RateLimited = classify(err)
	if err != nil {
		rec.Reason = err.Error()
		return
	}
	rec.Version, rec.Duplicate = res.Result.Version, res.Result.Duplicate
}

// classify reads the outcome of a write from the client's error, as the
// API documents it.
func classify(err error) (o Outcome, rateLimited bool) {
	if err == nil {
		return Committed, false
	}
	var unknown *api.OutcomeUnknownError
	var e *api.Error
	var op *net.OpError
	switch {
	case errors.As(err, &unknown):
		return Unknown, false
	case errors.As(err, &e):
		switch {
		case e.Status == http.StatusTooManyRequests:
			return Refused, true
		case (e.Status == http.StatusBadRequest || e.Status == http.StatusRequestEntityTooLarge) && e.Kind == "rejected":
			return Refused, false
		case e.Status == http.StatusServiceUnavailable && e.Kind == "no-leader":
			return NotCommitted, false
		}
		return Unknown, false
	case errors.As(err, &op) && op.Op == "dial":
		// api.Client retries a write until its deadline and returns a
		// plain error only when no attempt ever connected.
		return NotCommitted, false
	}
	return Unknown, false
}

// Records are the writes so far, writer by writer, each in the order sent.
func (w *TruthWriter) Records() []WriteRecord {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []WriteRecord
	for _, r := range w.records {
		out = append(out, r...)
	}
	return out
}

// InFlight is how many writes of kind wait for their answer.
func (w *TruthWriter) InFlight(kind WriteKind) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.inFlight[kind]
}

// BulkSent receives a value when a bulk write has been sent (one is kept
// until received).
func (w *TruthWriter) BulkSent() <-chan struct{} { return w.bulkSent }

// Committed is how many writes were acknowledged so far.
func (w *TruthWriter) Committed() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.committed
}

// Last is the latest reason of each outcome but Committed, for progress
// messages.
func (w *TruthWriter) Last() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var parts []string
	for _, o := range []Outcome{Refused, NotCommitted, Unknown} {
		if r, ok := w.last[o]; ok {
			parts = append(parts, fmt.Sprintf("last %s: %q", o, r))
		}
	}
	return strings.Join(parts, "; ")
}
