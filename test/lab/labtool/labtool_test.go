package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
)

// startLoopback runs the serve code in-process on loopback ports the kernel
// picks, and returns the three addresses.
func startLoopback(t *testing.T, name string) (httpAddr, echoAddr, dnsAddr string) {
	t.Helper()
	s, err := startServers(serveConfig{name: name, httpAddr: "127.0.0.1:0", echoAddr: "127.0.0.1:0", dnsAddr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.close)
	return s.httpLn.Addr().String(), s.echoLn.Addr().String(), s.dnsPC.LocalAddr().String()
}

// runJSON runs a client subcommand in-process and decodes its single line.
func runJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	var out bytes.Buffer
	if err := run(t.Context(), args, &out, io.Discard); err != nil {
		t.Fatalf("labtool %s: %v", strings.Join(args, " "), err)
	}
	if n := strings.Count(out.String(), "\n"); n != 1 {
		t.Fatalf("want exactly one output line, got %d: %q", n, out.String())
	}
	dec := json.NewDecoder(&out)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding %q: %v", out.String(), err)
	}
}

// closedAddr returns a loopback address nothing listens on.
func closedAddr(t *testing.T, network string) string {
	t.Helper()
	if network == "udp" {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		return pc.LocalAddr().String()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestHTTPCountsAnswersByServer(t *testing.T) {
	httpAddr, _, _ := startLoopback(t, "rs1")
	var res result
	runJSON(t, &res, "http", "--url", "http://"+httpAddr+"/", "--count", "7")
	if res.OK != 7 || res.Failed != 0 || res.ByServer["rs1"] != 7 || len(res.ByServer) != 1 || len(res.Errors) != 0 {
		t.Fatalf("got %+v, want 7 answers from rs1", res)
	}
}

// IPVS schedules connections, not requests: the client must open a new one
// for every request or the test would measure nothing.
func TestHTTPUsesAFreshConnectionPerRequest(t *testing.T) {
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
	var res result
	runJSON(t, &res, "http", "--url", srv.URL, "--count", "5")
	// The body is empty, so the name comes from the header.
	if res.OK != 5 || res.ByServer["hdr"] != 5 {
		t.Fatalf("got %+v", res)
	}
	if got := conns.Load(); got != 5 {
		t.Fatalf("5 requests used %d connections, want 5", got)
	}
}

func TestHTTPFailuresAreCountedNotFatal(t *testing.T) {
	var res result
	runJSON(t, &res, "http", "--url", "http://"+closedAddr(t, "tcp")+"/", "--count", "3", "--timeout", "500ms")
	if res.OK != 0 || res.Failed != 3 || len(res.ByServer) != 0 {
		t.Fatalf("got %+v, want 3 failures", res)
	}
	// Three identical refusals are one distinct error.
	if len(res.Errors) != 1 || !strings.Contains(res.Errors[0], "refused") {
		t.Fatalf("errors %q, want one 'connection refused'", res.Errors)
	}
}

func TestHTTPNon200IsAFailure(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	var res result
	runJSON(t, &res, "http", "--url", srv.URL, "--count", "2")
	if res.Failed != 2 || len(res.Errors) != 1 || !strings.Contains(res.Errors[0], "404") {
		t.Fatalf("got %+v, want 2 failures with status 404", res)
	}
}

func TestErrorListIsDistinctAndBounded(t *testing.T) {
	var list []string
	for i := range 3 * maxErrors {
		list = addError(list, fmt.Errorf("error %d", i%(maxErrors+2)))
	}
	if len(list) != maxErrors {
		t.Fatalf("got %d errors, want %d: %q", len(list), maxErrors, list)
	}
	seen := map[string]bool{}
	for _, e := range list {
		if seen[e] {
			t.Fatalf("duplicate %q in %q", e, list)
		}
		seen[e] = true
	}
}

func TestDNSAnswersTXTWithName(t *testing.T) {
	_, _, dnsAddr := startLoopback(t, "rs2")
	var res result
	runJSON(t, &res, "dns", "--server", dnsAddr, "--count", "4")
	if res.OK != 4 || res.ByServer["rs2"] != 4 || res.Failed != 0 {
		t.Fatalf("got %+v, want 4 answers from rs2", res)
	}
}

func TestDNSTimeoutsAreCounted(t *testing.T) {
	// A bound socket that never answers: every query times out.
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	var res result
	runJSON(t, &res, "dns", "--server", pc.LocalAddr().String(), "--count", "2", "--timeout", "100ms")
	if res.OK != 0 || res.Failed != 2 || len(res.Errors) != 1 || !strings.Contains(res.Errors[0], "timeout") {
		t.Fatalf("got %+v, want 2 timeouts", res)
	}
}

func TestEchoConnectionsSurvive(t *testing.T) {
	_, echoAddr, _ := startLoopback(t, "rs3")
	var res echoResult
	runJSON(t, &res, "echo", "--addr", echoAddr, "--conns", "4", "--interval", "10ms", "--duration", "200ms")
	if res.Conns != 4 || res.Survived != 4 || res.Broken != 0 || res.ByServer["rs3"] != 4 {
		t.Fatalf("got %+v, want 4 surviving connections to rs3", res)
	}
	if res.MaxGapMS < 5 || res.MaxGapMS > 1000 {
		t.Fatalf("max gap %d ms, want about the 10 ms interval", res.MaxGapMS)
	}
}

// fakeEcho serves the echo protocol as "fake: LINE" and lets a test decide,
// per line, to stall or to reset the connection.
func fakeEcho(t *testing.T, onLine func(c *net.TCPConn, line string) (reset bool)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					if onLine(c.(*net.TCPConn), sc.Text()) {
						return
					}
					fmt.Fprintf(c, "fake: %s\n", sc.Text())
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// A stall that recovers on the same connection is a gap, not a break: this
// is what a failover with connection sync looks like from the client.
func TestEchoGapIsSurvivedAndMeasured(t *testing.T) {
	addr := fakeEcho(t, func(_ *net.TCPConn, line string) bool {
		if line == "3" {
			time.Sleep(300 * time.Millisecond) // the simulated outage itself
		}
		return false
	})
	var res echoResult
	runJSON(t, &res, "echo", "--addr", addr, "--conns", "2", "--interval", "20ms", "--duration", "600ms")
	if res.Survived != 2 || res.Broken != 0 {
		t.Fatalf("got %+v, want both connections to survive", res)
	}
	if res.MaxGapMS < 280 {
		t.Fatalf("max gap %d ms, want at least the 300 ms stall", res.MaxGapMS)
	}
}

// A reset (what a director without the connection sends) breaks the
// connection, and the reason is reported.
func TestEchoResetIsBroken(t *testing.T) {
	addr := fakeEcho(t, func(c *net.TCPConn, line string) bool {
		if line == "3" {
			_ = c.SetLinger(0) // close with RST
			return true
		}
		return false
	})
	var res echoResult
	runJSON(t, &res, "echo", "--addr", addr, "--conns", "3", "--interval", "10ms", "--duration", "300ms")
	if res.Survived != 0 || res.Broken != 3 || res.ByServer["fake"] != 3 {
		t.Fatalf("got %+v, want 3 broken connections", res)
	}
	if len(res.Errors) == 0 {
		t.Fatalf("no error reported for broken connections: %+v", res)
	}
}

func TestEchoDialFailureIsBroken(t *testing.T) {
	var res echoResult
	runJSON(t, &res, "echo", "--addr", closedAddr(t, "tcp"), "--conns", "2", "--duration", "100ms")
	if res.Conns != 2 || res.Broken != 2 || res.Survived != 0 || len(res.Errors) != 1 {
		t.Fatalf("got %+v, want 2 broken with one distinct error", res)
	}
}

func TestBadUsage(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"nope"},
		{"http", "--count", "3"},
		{"http", "--url", "http://x/", "--count", "0"},
		{"dns", "--server", "127.0.0.1", "--bogus"},
		{"echo", "--addr", "127.0.0.1:7", "--conns", "1"},
		{"serve"},
		{"serve", "--name", "x", "extra"},
	} {
		err := run(t.Context(), args, io.Discard, io.Discard)
		if !errors.Is(err, errUsage) {
			t.Errorf("labtool %q: got %v, want a usage error", args, err)
		}
	}
}

// The serve subcommand prints "ready" only once every listener is bound, and
// returns when its context ends (SIGTERM in the real binary).
func TestServePrintsReadyThenServes(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	outR, outW := io.Pipe()
	var stderr harness.LogBuffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"serve", "--name", "rs9", "--http", "127.0.0.1:0", "--echo", "", "--dns", ""}, outW, &stderr)
		outW.Close()
	}()
	line := make(chan string, 1)
	go func() {
		l, _ := bufio.NewReader(outR).ReadString('\n')
		line <- l
		_, _ = io.Copy(io.Discard, outR)
	}()
	select {
	case l := <-line:
		if l != "ready\n" {
			t.Fatalf("first stdout line %q, want ready", l)
		}
	case err := <-done:
		t.Fatalf("serve exited before ready: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("no ready line within 10s")
	}
	addr, ok := strings.CutPrefix(strings.TrimSpace(stderr.String()), "listening http ")
	if !ok {
		t.Fatalf("stderr %q: want one 'listening http ADDR' line", stderr.String())
	}
	var res result
	runJSON(t, &res, "http", "--url", "http://"+addr+"/", "--count", "1")
	if res.ByServer["rs9"] != 1 {
		t.Fatalf("got %+v", res)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("serve did not return within 10s of cancel")
	}
}
