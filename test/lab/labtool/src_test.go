package main

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"testing"
)

// remoteServer answers with the request's source ADDR:PORT, as the server
// sees it: what the client's --src and --src-ports must produce.
func remoteServer(t *testing.T) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintln(w, r.RemoteAddr)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func freePorts(t *testing.T) (from int) {
	t.Helper()
	// Two adjacent ports free on 127.0.0.2 and 127.0.0.3: take the kernel's
	// pick and check its neighbour, a few times.
	for range 20 {
		l, err := net.Listen("tcp", "127.0.0.2:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l.Close()
		ok := true
		for _, a := range []string{"127.0.0.2", "127.0.0.3"} {
			for _, q := range []int{p, p + 1} {
				l, err := net.Listen("tcp", fmt.Sprintf("%s:%d", a, q))
				if err != nil {
					ok = false
					continue
				}
				l.Close()
			}
		}
		if ok {
			return p
		}
	}
	t.Fatal("no two adjacent free ports")
	return 0
}

func TestHTTPSourceTuplesRoundRobin(t *testing.T) {
	url := remoteServer(t)
	p := freePorts(t)
	var res result
	// Each tuple once: on loopback the server's own socket of a tuple may
	// sit in TIME_WAIT in this namespace and refuse it for a while (the lab
	// replays tuples across namespaces, where that cannot happen).
	runJSON(t, &res, "http", "--url", url, "--count", "4", "--src", "127.0.0.2,127.0.0.3", "--src-ports", fmt.Sprintf("%d-%d", p, p+1))
	if res.OK != 4 || res.Failed != 0 {
		t.Fatalf("ok %d failed %d: %v", res.OK, res.Failed, res.Errors)
	}
	var keys []string
	for k, v := range res.Tuples {
		if k != v {
			t.Errorf("tuple %s: the server saw %s", k, v)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	want := []string{fmt.Sprintf("127.0.0.2:%d", p), fmt.Sprintf("127.0.0.2:%d", p+1), fmt.Sprintf("127.0.0.3:%d", p), fmt.Sprintf("127.0.0.3:%d", p+1)}
	if fmt.Sprint(keys) != fmt.Sprint(want) {
		t.Fatalf("tuples %v, want %v", keys, want)
	}
}

func TestHTTPSourceAddressesWithoutPorts(t *testing.T) {
	url := remoteServer(t)
	var res result
	runJSON(t, &res, "http", "--url", url, "--count", "4", "--src", "127.0.0.2,127.0.0.3")
	if res.OK != 4 || res.Tuples != nil {
		t.Fatalf("%+v", res)
	}
	seen := map[string]int{}
	for name, n := range res.ByServer {
		h, _, _ := net.SplitHostPort(name)
		seen[h] += n
	}
	if seen["127.0.0.2"] != 2 || seen["127.0.0.3"] != 2 {
		t.Fatalf("sources seen %v, want 2 each of 127.0.0.2 and 127.0.0.3", seen)
	}
}

func TestSourceFlagsBadUsage(t *testing.T) {
	for _, args := range [][]string{
		{"http", "--url", "http://127.0.0.1/", "--src", "nope"},
		{"http", "--url", "http://127.0.0.1/", "--src-ports", "1000-1001"},
		{"http", "--url", "http://127.0.0.1/", "--src", "127.0.0.2", "--src-ports", "9-1"},
		{"echo", "--addr", "127.0.0.1:7", "--duration", "1s", "--src", "127.0.0.2", "--src-ports", "1000-1001"},
	} {
		err := run(t.Context(), args, io.Discard, io.Discard)
		if err == nil || !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}
