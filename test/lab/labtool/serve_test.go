package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"testing"
)

// startRange serves HTTP on 127.0.0.1 over n consecutive ports (a free
// run found by trying random bases) and on a kernel-picked port, with the
// counter on another; it returns the servers and the first range port.
func startRange(t *testing.T, n int) (*servers, int) {
	t.Helper()
	var last error
	for range 50 {
		base := 20000 + rand.IntN(40000)
		s, err := startServers(serveConfig{name: "rs7", httpAddr: "127.0.0.1:0",
			httpPorts: fmt.Sprintf("%d-%d", base, base+n-1), statsAddr: "127.0.0.1:0"})
		if err == nil {
			t.Cleanup(s.close)
			return s, base
		}
		last = err // a port of the run is taken: try another run
	}
	t.Fatalf("no free run of %d ports: %v", n, last)
	return nil, 0
}

func get(t *testing.T, url string) (int, string, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, resp.Header.Get("X-Real-Server"), string(b)
}

func requests(t *testing.T, s *servers) uint64 {
	t.Helper()
	code, _, body := get(t, "http://"+s.statsLn.Addr().String()+"/")
	var st struct {
		HTTPRequests *uint64 `json:"http_requests"`
	}
	if err := json.Unmarshal([]byte(body), &st); code != 200 || err != nil || st.HTTPRequests == nil {
		t.Fatalf("stats answered %d %q (%v)", code, body, err)
	}
	return *st.HTTPRequests
}

// Every port of --http-ports answers like --http does, and the counter
// counts the requests of both, not its own.
func TestServePortRangeAndCounter(t *testing.T) {
	const n = 4
	s, base := startRange(t, n)
	if got := requests(t, s); got != 0 {
		t.Fatalf("counter %d before any request", got)
	}
	for p := base; p < base+n; p++ {
		if code, name, _ := get(t, fmt.Sprintf("http://127.0.0.1:%d/x", p)); code != 200 || name != "rs7" {
			t.Fatalf("port %d: %d from %q", p, code, name)
		}
	}
	get(t, "http://"+s.httpLn.Addr().String()+"/")
	for range 2 { // reading it does not count
		if got := requests(t, s); got != n+1 {
			t.Fatalf("counter %d, want %d", got, n+1)
		}
	}
	want := fmt.Sprintf("http 127.0.0.1:%d-%d (%d ports)", base, base+n-1, n)
	if a := strings.Join(s.addrs(), "; "); !strings.Contains(a, want) || !strings.Contains(a, "stats 127.0.0.1:") {
		t.Fatalf("addrs %q: want %q and the stats address", a, want)
	}
	s.close()
	if _, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", base)); err == nil {
		t.Fatal("a range port still answers after close")
	}
}

func TestParsePortRange(t *testing.T) {
	for _, c := range []struct {
		in       string
		from, to uint16
	}{
		{"20000-24999", 20000, 24999},
		{"80", 80, 80},
		{"1-65535", 1, 65535},
		{"7-7", 7, 7},
	} {
		from, to, err := parsePortRange(c.in)
		if err != nil || from != c.from || to != c.to {
			t.Errorf("%q: %d-%d %v, want %d-%d", c.in, from, to, err, c.from, c.to)
		}
	}
	for _, bad := range []string{"", "0-5", "5-3", "1-65536", "a-b", "10-", "-10", "1-2-3", " 1-2"} {
		if _, _, err := parsePortRange(bad); err == nil {
			t.Errorf("%q: accepted", bad)
		}
	}
}

func TestServeBadPortRangeIsAUsageError(t *testing.T) {
	for _, r := range []string{"5-3", "0", "x"} {
		err := run(t.Context(), []string{"serve", "--name", "x", "--http", "", "--echo", "", "--dns", "", "--http-ports", r}, io.Discard, io.Discard)
		if !errors.Is(err, errUsage) {
			t.Errorf("--http-ports %q: got %v, want a usage error", r, err)
		}
	}
}

// A port of the range already taken fails the start (closing what was
// bound, without panicking), and the server holding it keeps serving.
func TestServePortRangeTakenFails(t *testing.T) {
	_, base := startRange(t, 2)
	_, err := startServers(serveConfig{name: "dup", httpPorts: fmt.Sprintf("%d-%d", base-1, base), httpAddr: ""})
	if err == nil || !strings.Contains(err.Error(), "--http-ports") {
		t.Fatalf("got %v, want a bind error naming --http-ports", err)
	}
	if code, name, _ := get(t, fmt.Sprintf("http://127.0.0.1:%d/", base)); code != 200 || name != "rs7" {
		t.Fatalf("the first server lost its port: %d %q", code, name)
	}
}
