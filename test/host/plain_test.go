package host

import (
	"bytes"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
)

// scratchAddr is the address off loopback the tests of this file listen
// on, in a namespace of their own (harness.ScratchNS).
const scratchAddr = "10.77.0.1"

// recorder is a plain HTTP server that keeps every byte its clients sent
// and the Authorization header of every request that reached it.
type recorder struct {
	mu   sync.Mutex
	raw  bytes.Buffer
	auth []string
}

func (r *recorder) serve(t *testing.T, ln net.Listener) {
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.auth = append(r.auth, req.Header.Get("Authorization"))
		r.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		switch req.URL.Path {
		case "/v1/config":
			_, _ = w.Write([]byte(`{"version":1,"config":{},"node":"recorder","applied_index":1}`))
		default:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":"recorder: ` + req.URL.Path + `","kind":"not-found"}`))
		}
	}), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(&tap{Listener: ln, r: r}) }()
	t.Cleanup(func() { _ = srv.Close() })
}

func (r *recorder) seen() (raw string, auth []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.raw.String(), append([]string(nil), r.auth...)
}

type tap struct {
	net.Listener
	r *recorder
}

func (l *tap) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tapConn{Conn: c, r: l.r}, nil
}

type tapConn struct {
	net.Conn
	r *recorder
}

func (c *tapConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.r.mu.Lock()
	c.r.raw.Write(p[:n])
	c.r.mu.Unlock()
	return n, err
}

// TestCLIKeepsTheTokenOffPlainHTTP: `ipvsman --api ADDR` without --ca,
// ADDR a plain HTTP listener off loopback (10.77.0.1 in a namespace of
// its own), sends it no request: -L, a write and a subcommand all stop
// with an error naming --ca and --insecure-http, and the bytes the
// listener received hold neither the token nor an Authorization header.
// With --insecure-http the same -L is sent, token and all, and answered.
func TestCLIKeepsTheTokenOffPlainHTTP(t *testing.T) {
	ns := harness.ScratchNS(t, "plain", scratchAddr+"/24")
	ln := harness.ListenIn(t, ns, scratchAddr+":0")
	rec := &recorder{}
	rec.serve(t, ln)
	c := harness.NewCluster(t)
	token := c.Token()
	api := ln.Addr().String()

	for _, args := range [][]string{
		{"-L", "-n"},
		{"-A", "-t", "10.0.0.1:80", "-s", "rr"},
		{"cluster", "status"},
	} {
		start := time.Now()
		r := cliIn(t, c, ns, append([]string{"--api", api, "--token-file", c.TokenFile}, args...)...)
		t.Logf("ipvsman %s (%s): %s", strings.Join(args, " "), time.Since(start).Round(time.Millisecond), strings.TrimSpace(r.Stderr))
		if r.Err == nil || !strings.Contains(r.Stderr, "not sending the token over plain HTTP") || !strings.Contains(r.Stderr, "--ca") || !strings.Contains(r.Stderr, "--insecure-http") {
			t.Errorf("ipvsman %s to plain http://%s: %v\nstdout: %s\nstderr: %s\nwant a refusal naming --ca and --insecure-http", strings.Join(args, " "), api, r.Err, r.Stdout, r.Stderr)
		}
	}
	raw, auth := rec.seen()
	t.Logf("the listener received %d bytes and %d requests", len(raw), len(auth))
	if strings.Contains(raw, token) || strings.Contains(raw, "Authorization") {
		t.Errorf("the token crossed the wire in clear:\n%q", raw)
	}
	if len(auth) != 0 {
		t.Errorf("requests reached the plain listener: %q", auth)
	}

	r := cliIn(t, c, ns, "--api", api, "--token-file", c.TokenFile, "--insecure-http", "-L", "-n")
	if r.Err != nil || !strings.Contains(r.Stdout, "IP Virtual Server") {
		t.Errorf("ipvsman --insecure-http -L -n: %v\nstdout: %s\nstderr: %s", r.Err, r.Stdout, r.Stderr)
	}
	if _, auth = rec.seen(); len(auth) != 1 || auth[0] != "Bearer "+token {
		t.Errorf("with --insecure-http the listener got Authorization %q; want the token, once", auth)
	}
}

// TestCLISaysTheServerSpeaksTLS: the CLI without --ca against a TLS
// ipvsmand says "the server at ADDR speaks TLS: give … --ca" instead of
// "400 Bad Request": off loopback (10.77.0.1, a node in a namespace) from
// a TLS handshake before any request, on loopback (a TLS node on
// 127.0.0.1) from the TLS server's answer to plain HTTP. With --ca both
// answer.
func TestCLISaysTheServerSpeaksTLS(t *testing.T) {
	ns := harness.ScratchNS(t, "tlsmm", scratchAddr+"/24")
	remote := harness.NewCluster(t)
	noRaces(t, remote)
	n := remote.AddAt("r1", scratchAddr+":7000", scratchAddr+":7080", ns, "--gossip-profile", "local")
	n.Start("--bootstrap")
	local := harness.NewCluster(t)
	noRaces(t, local)
	local.UseTLS()
	l := local.Add("l1", "--gossip-profile", "local")
	l.Start("--bootstrap")

	for _, tc := range []struct {
		c      *harness.Cluster
		node   *harness.Node
		ns     string
		reason string
	}{
		{remote, n, ns, "off loopback"},
		{local, l, "", "on loopback"},
	} {
		base := []string{"--api", tc.node.APIAddr, "--token-file", tc.c.TokenFile}
		r := cliIn(t, tc.c, tc.ns, append(base, "-L", "-n")...)
		want := "the server at " + tc.node.APIAddr + " speaks TLS: give the cluster CA with --ca"
		t.Logf("%s: %s", tc.reason, strings.TrimSpace(r.Stderr))
		if r.Err == nil || !strings.Contains(r.Stderr, want) {
			t.Errorf("%s, without --ca: %v\nstderr: %s\nwant %q", tc.reason, r.Err, r.Stderr, want)
		}
		harness.Eventually(t, 30*time.Second, tc.node.ID+" answers with --ca", func() (bool, string) {
			r := cliIn(t, tc.c, tc.ns, append(base, "--ca", tc.c.CAFile(), "-L", "-n")...)
			return r.Err == nil, r.Stderr
		})
	}
}
