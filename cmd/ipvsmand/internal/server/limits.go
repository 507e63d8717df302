package server

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
)

// Limits bound what one client can ask of a node, so that no client can
// exhaust it. A zero field is no limit.
type Limits struct {
	// WritesPerSecond and WriteBurst: a token bucket per client address
	// for every write (POST) this node receives from a client.
	WritesPerSecond float64
	WriteBurst      int
	// MaxServices and MaxRealServers bound the configuration a write may
	// leave; the leader checks before anything enters the log.
	MaxServices    int
	MaxRealServers int
}

// checkSize refuses a configuration over the size limits, naming the count
// and the flag.
func (l Limits) checkSize(c *fsm.Config) error {
	if c == nil {
		return nil
	}
	servers := 0
	for _, s := range c.Services {
		servers += len(s.Servers) + len(s.Pool) // a pool server costs what an assigned one does
	}
	switch {
	case l.MaxServices > 0 && len(c.Services) > l.MaxServices:
		return fmt.Errorf("services: %d would exceed the limit of %d (--max-services)", len(c.Services), l.MaxServices)
	case l.MaxRealServers > 0 && servers > l.MaxRealServers:
		return fmt.Errorf("real servers: %d would exceed the limit of %d (--max-real-servers)", servers, l.MaxRealServers)
	}
	return nil
}

// writeLimiter is one token bucket per client address.
type writeLimiter struct {
	mu      sync.Mutex
	rate    float64
	burst   float64
	now     func() time.Time
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newWriteLimiter(l Limits, now func() time.Time) *writeLimiter {
	if l.WritesPerSecond <= 0 {
		return nil
	}
	burst := float64(l.WriteBurst)
	if burst < 1 {
		burst = math.Max(1, l.WritesPerSecond)
	}
	return &writeLimiter{rate: l.WritesPerSecond, burst: burst, now: now, buckets: map[string]*bucket{}}
}

// allow takes a token from client's bucket, or says how long until one is
// there.
func (w *writeLimiter) allow(client string) (bool, time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	b, ok := w.buckets[client]
	if !ok {
		if len(w.buckets) > 10000 {
			w.forgetFull(now)
		}
		b = &bucket{tokens: w.burst, at: now}
		w.buckets[client] = b
	}
	b.tokens = math.Min(w.burst, b.tokens+now.Sub(b.at).Seconds()*w.rate)
	b.at = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / w.rate * float64(time.Second))
}

// forgetFull drops the buckets that have refilled: they hold no state a
// new bucket would not.
func (w *writeLimiter) forgetFull(now time.Time) {
	for k, b := range w.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*w.rate >= w.burst {
			delete(w.buckets, k)
		}
	}
}

// limitWrites refuses a client's writes over its rate (429). A request a
// node forwarded was counted on that node; the forwarded header counts
// only from a node (auth removes it from anyone else's request), so a
// client cannot name itself a forwarder to skip its limit.
func (s *Server) limitWrites(w http.ResponseWriter, r *http.Request) bool {
	if s.writes == nil || r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	if callerOf(r).node && r.Header.Get(api.HeaderForwarded) != "" {
		return true
	}
	client, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		client = r.RemoteAddr
	}
	ok, wait := s.writes.allow(client)
	if !ok {
		w.Header().Set("Retry-After", fmt.Sprint(int(math.Ceil(wait.Seconds()))))
		writeError(w, http.StatusTooManyRequests, "rate-limited", fmt.Sprintf("client %s: more than %g writes/s (burst %g): retry in %s (--max-writes-per-second)", client, s.writes.rate, s.writes.burst, wait.Round(time.Millisecond)))
	}
	return ok
}
