package server

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/cluster"
	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/cluster/pki"
	"github.com/ipvsman/ipvsman/test/harness"
)

// nodeTLS makes a CA in a directory and loads node certificates of it.
type nodeTLS struct {
	t   *testing.T
	dir string
	ca  *pki.CA
}

func newNodeTLS(t *testing.T, name string) *nodeTLS {
	t.Helper()
	ca, err := pki.NewCA(name, time.Now(), 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/ca.pem", ca.PEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return &nodeTLS{t: t, dir: dir, ca: ca}
}

func (c *nodeTLS) load(node string) *cluster.TLS {
	c.t.Helper()
	p, err := c.ca.Node(node, nil, time.Now(), 1)
	if err != nil {
		c.t.Fatal(err)
	}
	cert, key := pki.NodeFiles(c.dir, node)
	for f, b := range map[string][]byte{cert: p.CertPEM, key: p.KeyPEM} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			c.t.Fatal(err)
		}
	}
	m, err := cluster.LoadTLS(cert, key, c.dir+"/ca.pem", time.Now())
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

// tlsLeaderAPI is a single bootstrapped node serving its API over TLS,
// metrics on.
func tlsLeaderAPI(t *testing.T, m *cluster.TLS) *httptest.Server {
	t.Helper()
	n, err := cluster.Open(cluster.Config{
		NodeID: "a1", DataDir: t.TempDir(), RaftAddr: harness.FreeAddr(t), APIAddr: "127.0.0.1:1", Bootstrap: true, TLS: m,
		Logger: slog.New(slog.DiscardHandler), Fatal: func(err error) { t.Errorf("fatal: %v", err) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	harness.Eventually(t, 10*time.Second, "the single node leads", func() (bool, string) { return n.IsLeader(), "not leader" })
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("ipvsman_up 1\n")) })
	s := &Server{Node: n, Token: adminToken, ReadToken: readToken, IPVS: "off", Log: slog.New(slog.DiscardHandler), TLS: m, Metrics: metrics}
	srv := httptest.NewUnstartedServer(s.Handler())
	// As the daemon serves it: httptest's StartTLS would put its own
	// certificate in Certificates, which wins over GetCertificate.
	srv.Listener = tls.NewListener(srv.Listener, m.APIServer())
	srv.Start()
	srv.URL = "https://" + srv.Listener.Addr().String()
	t.Cleanup(srv.Close)
	return srv
}

// callTLS sends one request with client TLS config cfg; code 0 means the
// request failed (err says why).
func callTLS(t *testing.T, srv *httptest.Server, cfg *tls.Config, method, path, token, body string, hdr ...string) (int, string, error) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.String(), nil
}

// With TLS on, the token alone does not make a node: a join or a forwarded
// write needs a certificate the cluster CA signed; one from another CA
// does not get past the handshake.
func TestJoinsAndForwardedWritesNeedANodeCertificate(t *testing.T) {
	ca, other := newNodeTLS(t, "cluster"), newNodeTLS(t, "other")
	a1 := ca.load("a1")
	srv := tlsLeaderAPI(t, a1)
	// A member's certificate (the leader's own: the only member), for the
	// requests that must get past authorization.
	node := a1.PeerClient()
	operator := &tls.Config{RootCAs: ca.load("a3").CA, MinVersion: tls.VersionTLS13}
	// A client with a certificate of another CA: Go's client sends none
	// when the server's list of acceptable CAs does not name its issuer
	// (then the 403 below); a client that insists is refused in the
	// handshake.
	x := other.load("x")
	foreign := x.PeerClient()
	foreign.VerifyConnection = nil // trust anything: the server must still refuse it
	insisting := foreign.Clone()
	insisting.Certificates = nil
	insisting.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &x.Cert, nil }
	ops := `{"ops":[{"kind":"add-service","service":{"key":{"protocol":"tcp","address":"10.0.0.1","port":80},"scheduler":"rr"}}]}`

	for _, tc := range []struct {
		name, path, body string
		hdr              []string
	}{
		{"join", "/v1/cluster/join", `{"id":"a1"}`, nil},
		{"forwarded write", "/v1/ops", ops, []string{api.HeaderForwarded, "a1"}},
	} {
		for who, cfg := range map[string]*tls.Config{"no client certificate": operator, "certificate of another CA": foreign} {
			code, body, err := callTLS(t, srv, cfg, "POST", tc.path, adminToken, tc.body, tc.hdr...)
			if err != nil || code != http.StatusForbidden || !strings.Contains(body, `"kind":"forbidden"`) || !strings.Contains(body, "certificate signed by the cluster CA") {
				t.Errorf("%s, admin token, %s: %d %s %v; want 403 forbidden", tc.name, who, code, body, err)
			}
		}
		code, body, err := callTLS(t, srv, insisting, "POST", tc.path, adminToken, tc.body, tc.hdr...)
		if err == nil {
			t.Errorf("%s, admin token, certificate of another CA: %d %s; want the handshake refused", tc.name, code, body)
		}
		code, body, err = callTLS(t, srv, node, "POST", tc.path, adminToken, tc.body, tc.hdr...)
		if err != nil || code == http.StatusForbidden || code == http.StatusUnauthorized {
			t.Errorf("%s, admin token, node certificate: %d %s %v; want it past authorization", tc.name, code, body, err)
		}
		code, _, err = callTLS(t, srv, node, "POST", tc.path, "", tc.body, tc.hdr...)
		if err != nil || code != http.StatusUnauthorized {
			t.Errorf("%s, node certificate, no token: %d %v; want 401", tc.name, code, err)
		}
	}
	// An operator's write (no forwarded header) needs only the token.
	if code, body, err := callTLS(t, srv, operator, "POST", "/v1/ops", adminToken, strings.Replace(ops, "80", "81", 1)); err != nil || code != http.StatusOK {
		t.Errorf("operator write with the admin token: %d %s %v", code, body, err)
	}
}

// /metrics asks for a token like every read.
func TestMetricsNeedAToken(t *testing.T) {
	ca := newNodeTLS(t, "cluster")
	srv := tlsLeaderAPI(t, ca.load("a1"))
	op := &tls.Config{RootCAs: ca.load("a3").CA, MinVersion: tls.VersionTLS13}
	for tok, want := range map[string]int{"": 401, "wrong-token-0123456789": 401, readToken: 200, adminToken: 200} {
		code, body, err := callTLS(t, srv, op, "GET", "/metrics", tok, "")
		if err != nil || code != want {
			t.Errorf("GET /metrics with token %q: %d %s %v, want %d", tok, code, body, err, want)
		}
	}
}

// The client picks https from its TLS config and says which CA failed.
func TestClientOverTLS(t *testing.T) {
	ca, other := newNodeTLS(t, "cluster"), newNodeTLS(t, "other")
	srv := tlsLeaderAPI(t, ca.load("a1"))
	addr := srv.Listener.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	good := &api.Client{Base: addr, Token: readToken, TLS: &tls.Config{RootCAs: ca.load("a3").CA}}
	if good.URL() != "https://"+addr {
		t.Errorf("URL with TLS: %s", good.URL())
	}
	if _, err := good.Status(ctx); err != nil {
		t.Fatalf("status over TLS, verified by the cluster CA: %v", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(other.ca.Cert)
	bad := &api.Client{Base: addr, Token: readToken, TLS: &tls.Config{RootCAs: pool}, CA: `--ca "/etc/other-ca.pem"`}
	_, err := bad.Status(ctx)
	if err == nil || !strings.Contains(err.Error(), `does not verify against --ca "/etc/other-ca.pem"`) {
		t.Errorf("status verified by another CA: %v", err)
	}
	plain := &api.Client{Base: addr, Token: readToken}
	var apiErr *api.Error
	if _, err := plain.Status(ctx); err == nil || errors.As(err, &apiErr) && apiErr.Status == 200 {
		t.Errorf("plain http to a TLS API: %v", err)
	}
	// A node's peer client reaches another node by IP, verified by chain.
	host, port, _ := net.SplitHostPort(addr)
	peer := &api.Client{Base: net.JoinHostPort(host, port), Token: readToken, TLS: ca.load("a2").PeerClient()}
	if _, err := peer.Status(ctx); err != nil {
		t.Errorf("peer client: %v", err)
	}
}

// ownPKICert is a certificate of the cluster CA as an operator's own PKI
// might sign it, or one made before node IDs were bound to certificates:
// for server and client use, without the node ID URI.
func (c *nodeTLS) ownPKICert(cn string) tls.Certificate {
	c.t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		c.t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.ca.Cert, &key.PublicKey, c.ca.Key)
	if err != nil {
		c.t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// TestNodesActOnlyAsTheirCertificatesNodeID: a node certificate admits
// its holder as the node ID it names, and as no other: a join for another
// ID, a write forwarded as another node or by a node outside the Raft
// configuration, and any of them with a certificate that names no node ID
// are refused with 403, naming both IDs or the way out.
func TestNodesActOnlyAsTheirCertificatesNodeID(t *testing.T) {
	ca := newNodeTLS(t, "cluster")
	a1 := ca.load("a1")
	srv := tlsLeaderAPI(t, a1)
	a2 := ca.load("a2").PeerClient()
	old := a1.PeerClient()
	cert := ca.ownPKICert("a1")
	old.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &cert, nil }
	ops := `{"ops":[{"kind":"add-service","service":{"key":{"protocol":"tcp","address":"10.0.0.1","port":80},"scheduler":"rr"}}]}`
	join := func(id string) string {
		return fmt.Sprintf(`{"id":%q,"raft_addr":"127.0.0.1:1","api_addr":"127.0.0.1:2"}`, id)
	}
	for _, tc := range []struct {
		name, path, body string
		cfg              *tls.Config
		hdr              []string
		want             string
	}{
		{"a2's certificate joining as a3", "/v1/cluster/join", join("a3"), a2, nil,
			`the join is for node \"a3\", but the client's certificate is node \"a2\"'s`},
		{"a2's certificate forwarding as a1", "/v1/ops", ops, a2, []string{api.HeaderForwarded, "a1"},
			`forwarded as node \"a1\", but the client's certificate is node \"a2\"'s`},
		{"a2's certificate forwarding a join as a1", "/v1/cluster/join", join("a3"), a2, []string{api.HeaderForwarded, "a1"},
			`forwarded as node \"a1\", but the client's certificate is node \"a2\"'s`},
		{"a2 forwarding, not a member", "/v1/ops", ops, a2, []string{api.HeaderForwarded, "a2"},
			`forwarded by node \"a2\", which is not a member of the Raft configuration`},
		{"a certificate without a node ID joining", "/v1/cluster/join", join("a1"), old, nil,
			`certificate \"a1\" names no node ID (no URI SAN spiffe://ipvsman/node/NAME): reissue it with `},
		{"a certificate without a node ID forwarding", "/v1/ops", ops, old, []string{api.HeaderForwarded, "a1"}, "names no node ID"},
	} {
		code, body, err := callTLS(t, srv, tc.cfg, "POST", tc.path, adminToken, tc.body, tc.hdr...)
		if err != nil || code != http.StatusForbidden || !strings.Contains(body, `"kind":"forbidden"`) || !strings.Contains(body, tc.want) {
			t.Errorf("%s: %d %s %v; want 403 forbidden saying %s", tc.name, code, body, err, tc.want)
		}
	}
	// As itself, a node gets past authorization: a2 joining as a2 is
	// judged by the leader (here refused for its malformed address).
	code, body, err := callTLS(t, srv, a2, "POST", "/v1/cluster/join", adminToken, `{"id":"a2","raft_addr":"not an address","api_addr":"127.0.0.1:2"}`)
	if err != nil || code != http.StatusBadRequest || !strings.Contains(body, `raft_addr \"not an address\"`) {
		t.Errorf("a2 joining as a2: %d %s %v; want it past authorization, refused by the leader for its address", code, body, err)
	}
	if code, body, err := callTLS(t, srv, a1.PeerClient(), "POST", "/v1/ops", adminToken, ops, api.HeaderForwarded, "a1"); err != nil || code != http.StatusOK {
		t.Errorf("a write forwarded by the member a1 with its certificate: %d %s %v", code, body, err)
	}
}
