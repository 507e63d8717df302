package faults

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

// Writer adds real servers to a service, each a new address, through
// every node in turn, from several goroutines, and remembers which writes
// the cluster acknowledged. A write that got no answer (a timeout, a node
// that died under it) may or may not have been applied: only acknowledged
// ones are promised.
type Writer struct {
	bases   []string // the nodes' API base URLs
	token   string
	http    *http.Client
	service string
	every   time.Duration
	loops

	mu      sync.Mutex
	acked   []string
	refused int
	unknown int
	lastErr string // of an unanswered write
	lastNo  string // of a refused one
}

// WriteStats counts the writes that were not acknowledged.
type WriteStats struct {
	Refused, Unknown int
	LastErr, LastNo  string // the latest unanswered write's error, and refusal's
}

// writers is how many goroutines write at once.
const writers = 3

// written numbers every write of the process: a scenario that runs again on
// the same cluster must not write a server an earlier run added (refused as
// "already exists", each run's writers spent longer before their first
// acknowledgement, until the tenth run of the flapping link got none).
var written atomic.Int64

// nextServer is the real server of the next write: 10.2.0.1 onwards, 250
// a /24, unique in the process.
func nextServer() string {
	n := written.Add(1)
	if n/250 > 255 {
		panic(fmt.Sprintf("faults writer: write %d is past the 64,000 addresses of 10.2.0.0/16", n))
	}
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 2, byte(n / 250), byte(n%250 + 1)}), 80).String()
}

// StartWriter starts writing to service ("10.0.0.10:80", which must
// exist) through the nodes at bases, with the admin token, over hc; each
// goroutine sends a write every so often (80 ms keeps the three below the
// API's default limit of 50 writes a second from one client address).
func StartWriter(bases []string, token string, hc *http.Client, service string, every time.Duration) *Writer {
	w := &Writer{bases: bases, token: token, http: hc, service: service, every: every, loops: newLoops()}
	for g := 0; g < writers; g++ {
		w.wg.Add(1)
		go w.loop(g)
	}
	return w
}

func (w *Writer) loop(g int) {
	defer w.wg.Done()
	tick := time.NewTicker(w.every)
	defer tick.Stop()
	for i := g; ; i++ {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		w.one(w.bases[i%len(w.bases)])
	}
}

// one sends one write to the node at base.
func (w *Writer) one(base string) {
	rs := nextServer()
	ops, err := ipvsadm.ParseRestore(strings.NewReader(fmt.Sprintf("-a -t %s -r %s -m -w 1\n", w.service, rs)))
	if err != nil {
		panic(err) // the line is ours: a bug in the test
	}
	// The node waits for a leader within this deadline (it is sent with
	// the write): a node cut off with the minority holds its writer no
	// longer than this, so the writes through the majority keep coming.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c := &api.Client{Base: base, Token: w.token, Actor: "faults", HTTP: w.http}
	_, err = c.Ops(ctx, ops)
	w.mu.Lock()
	defer w.mu.Unlock()
	var refusal *api.Error
	switch {
	case err == nil:
		w.acked = append(w.acked, rs)
	case errors.As(err, &refusal):
		w.refused++
		w.lastNo = err.Error()
	default:
		w.unknown++
		w.lastErr = err.Error()
	}
}

// loops are a writer's goroutines: Stop ends them and waits for the
// writes in flight.
type loops struct {
	stop chan struct{}
	wg   sync.WaitGroup
}

func newLoops() loops { return loops{stop: make(chan struct{})} }

// Stop ends the writes and waits for those in flight; it may be called
// more than once.
func (l *loops) Stop() {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
}

// Acked returns the acknowledged writes, sorted.
func (w *Writer) Acked() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := slices.Clone(w.acked)
	slices.Sort(out)
	return out
}

// Count is how many writes were acknowledged so far.
func (w *Writer) Count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

// Stats counts what was not acknowledged.
func (w *Writer) Stats() WriteStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return WriteStats{w.refused, w.unknown, w.lastErr, w.lastNo}
}

// Missing lists the items of want that are not in have (sorted).
func Missing(want, have []string) []string {
	var out []string
	for _, w := range want {
		if _, ok := slices.BinarySearch(have, w); !ok {
			out = append(out, w)
		}
	}
	return out
}
