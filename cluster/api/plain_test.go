package api

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

const secret = "the-cluster-token-0123456789"

// wire records every byte clients send to a server.
type wire struct {
	net.Listener
	mu  sync.Mutex
	got bytes.Buffer
}

func (w *wire) Accept() (net.Conn, error) {
	c, err := w.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &tappedConn{Conn: c, w: w}, nil
}

func (w *wire) bytes() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.got.String()
}

type tappedConn struct {
	net.Conn
	w *wire
}

func (c *tappedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.w.mu.Lock()
	c.w.got.Write(p[:n])
	c.w.mu.Unlock()
	return n, err
}

// server is a plain (or TLS) HTTP server on loopback that records the
// bytes it receives and the Authorization headers that reach it.
type server struct {
	wire *wire
	srv  *httptest.Server
	mu   sync.Mutex
	auth []string
}

func newServer(t *testing.T, useTLS bool) *server {
	t.Helper()
	s := &server{}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.auth = append(s.auth, r.Header.Get("Authorization"))
		s.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"id":"fake"}`))
	}))
	s.wire = &wire{Listener: s.srv.Listener}
	s.srv.Listener = s.wire
	if useTLS {
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	t.Cleanup(s.srv.Close)
	return s
}

func (s *server) seen() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auth...)
}

// remote is a client of base whose transport connects every address to
// the test server: base may name an address off loopback that this test
// cannot listen on.
func (s *server) remote(base string) *Client {
	to := s.srv.Listener.Addr().String()
	var d net.Dialer
	tr := &http.Transport{DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, to)
	}}
	return &Client{Base: base, Token: secret, HTTP: &http.Client{Transport: tr, Timeout: 10 * time.Second}}
}

// TestTheTokenNeverGoesInClearOffLoopback: a client refuses to send a
// request over plain HTTP to an address other than loopback, reads and
// writes alike, before a byte of it is on the wire; the error says to give
// --ca or --insecure-http. With InsecureHTTP it sends; to loopback it
// always did.
func TestTheTokenNeverGoesInClearOffLoopback(t *testing.T) {
	s := newServer(t, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, base := range []string{"192.0.2.2:7080", "http://192.0.2.2:7080", "http://[2001:db8::2]:7080", "http://director.example:7080", "10.0.0.11"} {
		c := s.remote(base)
		_, errRead := c.Status(ctx)
		_, errWrite := c.Ops(ctx, nil)
		for _, err := range []error{errRead, errWrite} {
			var plain *PlainHTTPError
			if !errors.As(err, &plain) || !strings.Contains(err.Error(), "--ca") || !strings.Contains(err.Error(), "--insecure-http") {
				t.Errorf("%s: %v; want a refusal naming --ca and --insecure-http", base, err)
			}
		}
	}
	if got := s.wire.bytes(); strings.Contains(got, secret) || strings.Contains(got, "Authorization") {
		t.Errorf("the token reached the wire:\n%q", got)
	}
	if got := s.seen(); len(got) != 0 {
		t.Errorf("requests reached the server: %q", got)
	}

	c := s.remote("192.0.2.2:7080")
	c.InsecureHTTP = true
	if _, err := c.Status(ctx); err != nil {
		t.Fatalf("with InsecureHTTP: %v", err)
	}
	for _, base := range []string{s.srv.URL, strings.TrimPrefix(s.srv.URL, "http://"), strings.Replace(s.srv.URL, "127.0.0.1", "localhost", 1)} {
		if _, err := (&Client{Base: base, Token: secret}).Status(ctx); err != nil {
			t.Errorf("loopback %s: %v", base, err)
		}
	}
	if got := s.seen(); len(got) != 4 || got[0] != "Bearer "+secret {
		t.Errorf("Authorization headers received: %q; want the token, 4 times", got)
	}
}

// TestPlainHTTPToATLSServer: a client without TLS that reaches a TLS
// server says so instead of "400 Bad Request": off loopback before
// anything is sent (a TLS handshake tells), on loopback from the answer
// of Go's server to a plain request.
func TestPlainHTTPToATLSServer(t *testing.T) {
	s := newServer(t, true)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := s.remote("192.0.2.2:7080").Status(ctx)
	var speaks *SpeaksTLSError
	if !errors.As(err, &speaks) || !strings.Contains(err.Error(), "the server at 192.0.2.2:7080 speaks TLS: give the cluster CA with --ca") {
		t.Errorf("off loopback: %v; want the server at 192.0.2.2:7080 speaks TLS: give … --ca", err)
	}
	if got := s.wire.bytes(); strings.Contains(got, secret) || strings.Contains(got, "Authorization") {
		t.Errorf("the token reached the wire:\n%q", got)
	}
	addr := strings.TrimPrefix(s.srv.URL, "https://")
	_, err = (&Client{Base: addr, Token: secret}).Ops(ctx, nil)
	if !errors.As(err, &speaks) || !strings.Contains(err.Error(), "the server at "+addr+" speaks TLS: give the cluster CA with --ca") {
		t.Errorf("on loopback: %v; want the server at %s speaks TLS: give … --ca", err, addr)
	}
	// A daemon's client gives its own advice.
	_, err = (&Client{Base: addr, Token: secret, PlainFix: "give --tls-cert"}).Status(ctx)
	if err == nil || !strings.HasSuffix(err.Error(), "speaks TLS: give --tls-cert") {
		t.Errorf("with PlainFix: %v", err)
	}
}

func TestInClear(t *testing.T) {
	for url, want := range map[string]bool{
		"http://10.0.0.1:7080":    true,
		"http://0.0.0.0:7080":     true,
		"http://[fd00::1]:7080":   true,
		"http://node1:7080":       true,
		"http://127.0.0.1:7080":   false,
		"http://127.3.0.1:7080":   false,
		"http://[::1]:7080":       false,
		"http://localhost:7080":   false,
		"https://10.0.0.1:7080":   false,
		"https://node1.example/x": false,
	} {
		if got := InClear(url); got != want {
			t.Errorf("InClear(%q) = %v, want %v", url, got, want)
		}
	}
}
