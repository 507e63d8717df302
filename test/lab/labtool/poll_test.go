package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// runPoll runs `labtool poll` in-process until it returns and decodes every
// line, failing on anything that is not exactly one pollLine per line.
func runPoll(t *testing.T, ctx context.Context, args ...string) []pollLine {
	t.Helper()
	var out bytes.Buffer
	if err := run(ctx, append([]string{"poll"}, args...), &out, io.Discard); err != nil {
		t.Fatalf("labtool poll %s: %v", strings.Join(args, " "), err)
	}
	var lines []pollLine
	for _, raw := range strings.SplitAfter(out.String(), "\n") {
		if raw == "" {
			continue
		}
		if !strings.HasSuffix(raw, "\n") {
			t.Fatalf("unterminated last line %q", raw)
		}
		dec := json.NewDecoder(strings.NewReader(raw))
		dec.DisallowUnknownFields()
		var l pollLine
		if err := dec.Decode(&l); err != nil {
			t.Fatalf("line %q: %v", raw, err)
		}
		if l.StartNS <= 0 || l.EndNS < l.StartNS {
			t.Fatalf("line %q: times out of order", raw)
		}
		lines = append(lines, l)
	}
	return lines
}

func TestPollReportsEachAnswerWithItsServer(t *testing.T) {
	httpAddr, _, _ := startLoopback(t, "d2")
	before := time.Now()
	lines := runPoll(t, t.Context(), "--url", "http://"+httpAddr+"/", "--every", "5ms", "--duration", "50ms")
	after := time.Now()
	if len(lines) == 0 {
		t.Fatal("no lines")
	}
	for _, l := range lines {
		if !l.OK || l.Server != "d2" || l.Err != "" {
			t.Fatalf("got %+v, want ok from d2", l)
		}
		// Wall-clock nanoseconds, comparable with this process's clock.
		if l.StartNS < before.UnixNano() || l.EndNS > after.UnixNano() {
			t.Fatalf("line %+v outside the run [%d, %d]", l, before.UnixNano(), after.UnixNano())
		}
	}
}

// A request that hangs past --timeout is reported as a failure, and does
// not hold back the requests scheduled after it.
func TestPollHungRequestFailsAndDoesNotDelayTheNext(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	// Closing the server waits for its handlers: let them go first.
	defer srv.Close()
	defer close(release)

	const timeout = 200 * time.Millisecond
	lines := runPoll(t, t.Context(), "--url", srv.URL, "--every", "10ms", "--timeout", timeout.String(), "--duration", "100ms")
	if len(lines) < 2 {
		t.Fatalf("%d lines, want several requests started within --duration", len(lines))
	}
	var firstStart, firstEnd, secondStart int64
	for _, l := range lines {
		if l.OK || l.Server != "" || l.Err == "" {
			t.Fatalf("got %+v, want a failure with an error", l)
		}
		if d := time.Duration(l.EndNS - l.StartNS); d < timeout-5*time.Millisecond {
			t.Fatalf("request gave up after %s, before its %s deadline", d, timeout)
		}
		switch {
		case firstStart == 0 || l.StartNS < firstStart:
			secondStart = firstStart
			firstStart, firstEnd = l.StartNS, l.EndNS
		case secondStart == 0 || l.StartNS < secondStart:
			secondStart = l.StartNS
		}
	}
	if secondStart >= firstEnd {
		t.Fatalf("second request started at %d, after the first ended (%d): a hung request delayed the next", secondStart, firstEnd)
	}
}

// SIGTERM stops new requests but the one in flight still ends by its own
// deadline and is reported.
func TestPollReportsInFlightRequestsAfterSignal(t *testing.T) {
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-r.Context().Done()
	}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(t.Context())
	go func() {
		// Stand-in for the signal: arrives while the request hangs.
		select {
		case <-arrived:
		case <-time.After(10 * time.Second):
		}
		cancel()
	}()
	lines := runPoll(t, ctx, "--url", srv.URL, "--every", "1h", "--timeout", "100ms")
	if len(lines) != 1 || lines[0].OK || !strings.Contains(lines[0].Err, "deadline exceeded") {
		t.Fatalf("got %+v, want the one in-flight request, failed by its deadline", lines)
	}
}

func TestPollUsesAFreshConnectionPerRequest(t *testing.T) {
	var conns atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Real-Server", "hdr")
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()
	lines := runPoll(t, t.Context(), "--url", srv.URL, "--every", "2ms", "--duration", "40ms")
	for _, l := range lines {
		if !l.OK || l.Server != "hdr" {
			t.Fatalf("got %+v", l)
		}
	}
	if got := conns.Load(); got != int64(len(lines)) {
		t.Fatalf("%d requests used %d connections, want one each", len(lines), got)
	}
}

// Many requests ending at once, as when a VIP comes back, still give one
// whole JSON object per line (runPoll checks every line).
func TestPollLinesDoNotInterleave(t *testing.T) {
	release := make(chan struct{})
	var arrived atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if arrived.Add(1) == 20 {
			close(release)
		}
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.Write([]byte(strings.Repeat("x", 100) + "\n"))
	}))
	defer srv.Close()
	lines := runPoll(t, t.Context(), "--url", srv.URL, "--every", "1ms", "--timeout", "2s", "--duration", "40ms")
	if len(lines) < 2 {
		t.Fatalf("%d lines", len(lines))
	}
}

func TestPollUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"--url", "http://x/", "--every", "0"},
		{"--url", "http://x/", "--timeout", "0"},
		{"--url", "http://x/", "--duration", "-1s"},
		{"--url", "http://x/", "extra"},
		{"--url", "://bad"},
	} {
		err := run(t.Context(), append([]string{"poll"}, args...), io.Discard, io.Discard)
		if !errors.Is(err, errUsage) {
			t.Errorf("poll %q: err %v, want a usage error", args, err)
		}
	}
}
