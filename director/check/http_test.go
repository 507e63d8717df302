package check

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

// seen records what a test server saw.
type seen struct {
	mu      sync.Mutex
	method  string
	host    string
	sni     string
	targets int // requests to /target (a redirect's destination)
	conns   int // connections accepted
}

func (s *seen) get() seen {
	s.mu.Lock()
	defer s.mu.Unlock()
	return seen{method: s.method, host: s.host, sni: s.sni, targets: s.targets, conns: s.conns}
}

func (s *seen) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.method, s.host = r.Method, r.Host
		s.mu.Unlock()
		io.WriteString(w, "status: healthy\n")
	})
	mux.HandleFunc("/fail", func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	})
	mux.HandleFunc("/redirect", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/target", http.StatusFound)
	})
	mux.HandleFunc("/target", func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.targets++
		s.mu.Unlock()
	})
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done(): // the checker gave up
		case <-time.After(time.Minute): // bounds the handler if it did not
		}
	})
	return mux
}

func (s *seen) connState(_ net.Conn, st http.ConnState) {
	if st == http.StateNew {
		s.mu.Lock()
		s.conns++
		s.mu.Unlock()
	}
}

func newHTTPServer(t *testing.T, tlsOn bool) (*seen, netip.AddrPort) {
	t.Helper()
	s := &seen{}
	srv := httptest.NewUnstartedServer(s.handler())
	srv.Config.ConnState = s.connState
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshakes are the point
	if tlsOn {
		srv.TLS = &tls.Config{GetConfigForClient: func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
			s.mu.Lock()
			s.sni = hello.ServerName
			s.mu.Unlock()
			return nil, nil
		}}
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	u, err := url.Parse(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	return s, netip.MustParseAddrPort(u.Host)
}

func TestHTTP(t *testing.T) {
	s, target := newHTTPServer(t, false)
	for _, tc := range []struct {
		name   string
		c      fsm.HealthCheck
		ok     bool
		detail string
	}{
		{"default", fsm.HealthCheck{}, true, "HTTP 200"},
		{"status rejected", fsm.HealthCheck{Path: "/fail"}, false, "HTTP 503"},
		{"status listed", fsm.HealthCheck{Path: "/fail", Status: []int{503}}, true, "HTTP 503"},
		{"status not listed", fsm.HealthCheck{Status: []int{204}}, false, "HTTP 200"},
		{"body matches", fsm.HealthCheck{Body: `status: (healthy|degraded)`}, true, "HTTP 200"},
		{"body does not match", fsm.HealthCheck{Body: `^sick`}, false, "body does not match"},
		{"redirect judged by status", fsm.HealthCheck{Path: "/redirect"}, true, "HTTP 302"},
		{"redirect not accepted", fsm.HealthCheck{Path: "/redirect", Status: []int{200}}, false, "HTTP 302"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.c.Type = "http"
			r := check(t, build(t, tc.c), target, 5*time.Second)
			wantResult(t, r, tc.ok, tc.detail)
		})
	}
	if n := s.get().targets; n != 0 {
		t.Errorf("the redirect was followed %d times", n)
	}
}

func TestHTTPRequest(t *testing.T) {
	s, target := newHTTPServer(t, false)
	t.Run("default method and host", func(t *testing.T) {
		wantOK(t, check(t, build(t, fsm.HealthCheck{Type: "http"}), target, 5*time.Second))
		if got := s.get(); got.method != "GET" || got.host != target.String() {
			t.Fatalf("server saw %s with Host %q, want GET with Host %q", got.method, got.host, target)
		}
	})
	for _, m := range []string{"HEAD", "POST", "OPTIONS"} {
		t.Run(m, func(t *testing.T) {
			wantOK(t, check(t, build(t, fsm.HealthCheck{Type: "http", Method: m}), target, 5*time.Second))
			if got := s.get().method; got != m {
				t.Fatalf("server saw method %s, want %s", got, m)
			}
		})
	}
	t.Run("host header", func(t *testing.T) {
		wantOK(t, check(t, build(t, fsm.HealthCheck{Type: "http", Host: "www.example.com"}), target, 5*time.Second))
		if got := s.get().host; got != "www.example.com" {
			t.Fatalf("server saw Host %q, want www.example.com", got)
		}
	})
}

func TestHTTPTimeout(t *testing.T) {
	_, target := newHTTPServer(t, false)
	ch := build(t, fsm.HealthCheck{Type: "http", Path: "/slow"})
	start := time.Now()
	r := check(t, ch, target, 100*time.Millisecond)
	wantFail(t, r, "timeout")
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("check took %v with a 100ms timeout", el)
	}
}

func TestHTTPClosedPort(t *testing.T) {
	wantFail(t, check(t, build(t, fsm.HealthCheck{Type: "http"}), closedTCPPort(t), 5*time.Second), "refused")
}

// TestHTTPNewConnectionEachCheck: every check is a new client, also when
// the status is rejected, so a server that stopped accepting is seen.
func TestHTTPNewConnectionEachCheck(t *testing.T) {
	s, target := newHTTPServer(t, false)
	ok := build(t, fsm.HealthCheck{Type: "http"})
	bad := build(t, fsm.HealthCheck{Type: "http", Path: "/fail"})
	for range 10 {
		wantOK(t, check(t, ok, target, 5*time.Second))
		wantFail(t, check(t, bad, target, 5*time.Second), "HTTP 503")
	}
	if n := s.get().conns; n != 20 {
		t.Fatalf("20 checks opened %d connections, want 20", n)
	}
}

func TestHTTPConcurrent(t *testing.T) {
	_, target := newHTTPServer(t, false)
	ch := build(t, fsm.HealthCheck{Type: "http", Body: "healthy"})
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 10 {
				ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
				if r := ch.Check(ctx, target); !r.OK {
					t.Errorf("check failed: %+v", r)
				}
				cancel()
			}
		})
	}
	wg.Wait()
}

func TestHTTPS(t *testing.T) {
	s, target := newHTTPServer(t, true)
	t.Run("insecure", func(t *testing.T) {
		r := check(t, build(t, fsm.HealthCheck{Type: "https", Insecure: true}), target, 5*time.Second)
		wantOK(t, r)
		if got := s.get().sni; got != "" {
			t.Errorf("SNI %q sent for an IP target without SNI or Host", got)
		}
	})
	t.Run("verified", func(t *testing.T) {
		r := check(t, build(t, fsm.HealthCheck{Type: "https"}), target, 5*time.Second)
		wantFail(t, r, "certificate")
		t.Log(r.Detail)
	})
	t.Run("sni", func(t *testing.T) {
		wantOK(t, check(t, build(t, fsm.HealthCheck{Type: "https", SNI: "health.example.com", Insecure: true}), target, 5*time.Second))
		if got := s.get().sni; got != "health.example.com" {
			t.Fatalf("server saw SNI %q, want health.example.com", got)
		}
	})
	t.Run("sni from host", func(t *testing.T) {
		wantOK(t, check(t, build(t, fsm.HealthCheck{Type: "https", Host: "www.example.com:8443", Insecure: true}), target, 5*time.Second))
		if got := s.get(); got.sni != "www.example.com" || got.host != "www.example.com:8443" {
			t.Fatalf("server saw SNI %q, Host %q; want www.example.com, www.example.com:8443", got.sni, got.host)
		}
	})
	t.Run("plain http server", func(t *testing.T) {
		_, plain := newHTTPServer(t, false)
		wantFail(t, check(t, build(t, fsm.HealthCheck{Type: "https", Insecure: true}), plain, 5*time.Second), "TLS")
	})
}

// BenchmarkHTTP measures one check (a new connection each), the test
// server's side included.
func BenchmarkHTTP(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "ok\n")
	}))
	defer srv.Close()
	u, _ := url.Parse(srv.URL)
	target := netip.MustParseAddrPort(u.Host)
	for _, body := range []string{"", "ok"} {
		b.Run(fmt.Sprintf("body=%q", body), func(b *testing.B) {
			ch, err := New(fsm.HealthCheck{Type: "http", Body: body}, Options{})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if r := ch.Check(ctx, target); !r.OK {
						b.Fatalf("check failed: %+v", r)
					}
				}
			})
		})
	}
}
