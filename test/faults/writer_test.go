package faults

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

// writer adds real servers to the service, each a new address, through
// every node in turn, from several goroutines, and remembers which writes
// the cluster acknowledged. A write that got no answer (a timeout, a node
// that died under it) may or may not have been applied: only acknowledged
// ones are promised.
type writer struct {
	r    *rig
	stop chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	next    int
	acked   []string
	refused int
	unknown int
	lastErr string // of an unanswered write
	lastNo  string // of a refused one
}

type writeStats struct {
	refused, unknown int
	lastErr, lastNo  string
}

// writeEvery paces each goroutine: three of them stay below the API's
// default limit of 50 writes per second from one client address.
const (
	writers    = 3
	writeEvery = 80 * time.Millisecond
)

func (r *rig) startWriter() *writer {
	w := &writer{r: r, stop: make(chan struct{})}
	for g := 0; g < writers; g++ {
		w.wg.Add(1)
		go w.loop(g)
	}
	return w
}

func (w *writer) loop(g int) {
	defer w.wg.Done()
	tick := time.NewTicker(writeEvery)
	defer tick.Stop()
	for i := g; ; i++ {
		select {
		case <-w.stop:
			return
		case <-tick.C:
		}
		nodes := w.r.nodes
		w.one(nodes[i%len(nodes)].APIAddr)
	}
}

// one sends one write to the node at addr.
func (w *writer) one(addr string) {
	w.mu.Lock()
	w.next++
	n := w.next
	w.mu.Unlock()
	rs := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 2, byte(n / 250), byte(n%250 + 1)}), 80).String()
	ops, err := ipvsadm.ParseRestore(strings.NewReader(fmt.Sprintf("-a -t %s -r %s -m -w 1\n", service, rs)))
	if err != nil {
		panic(err) // the line is ours: a bug in the test
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c := &api.Client{Base: addr, Token: w.r.token, Actor: "faults", HTTP: w.r.http}
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

// Stop ends the writes and waits for those in flight.
func (w *writer) Stop() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	w.wg.Wait()
}

// Acked returns the acknowledged writes, sorted.
func (w *writer) Acked() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := slices.Clone(w.acked)
	slices.Sort(out)
	return out
}

// Count is how many writes were acknowledged so far.
func (w *writer) Count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acked)
}

func (w *writer) Stats() writeStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return writeStats{w.refused, w.unknown, w.lastErr, w.lastNo}
}
