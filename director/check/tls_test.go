package check

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

// testCA is a CA made in the test, and what it signs.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageCertSign, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour * 3650)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
}

// leaf signs a server certificate for 127.0.0.1 and health.example.com,
// valid until notAfter.
func (ca *testCA) leaf(t *testing.T, notBefore, notAfter time.Time) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "health.example.com"},
		DNSNames: []string{"health.example.com"}, IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
		NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func (ca *testCA) file(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, ca.pem, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// tlsServer accepts TLS with cert and, after the handshake, writes
// greeting (if any) and waits for the client to go.
func tlsServer(t *testing.T, cert tls.Certificate, greeting string) netip.AddrPort {
	t.Helper()
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if err := c.(*tls.Conn).Handshake(); err != nil {
					return
				}
				if greeting != "" {
					io.WriteString(c, greeting)
				}
				bufio.NewReader(c).ReadString('\n')
			}()
		}
	}()
	return addrPort(t, l.Addr())
}

func TestTLS(t *testing.T) {
	ca := newTestCA(t, "checks CA")
	caFile := ca.file(t)
	now := time.Now()
	good := tlsServer(t, ca.leaf(t, now.Add(-time.Hour), now.Add(90*24*time.Hour)), "")
	t.Run("verified against the CA file", func(t *testing.T) {
		r := check(t, build(t, fsm.HealthCheck{Type: "tls", SNI: "health.example.com", CAFile: caFile}), good, 5*time.Second)
		wantOK(t, r)
		if !strings.HasPrefix(r.Detail, "TLS 1.3, certificate valid 8") {
			t.Errorf("detail %q, want the version and the days left", r.Detail)
		}
	})
	t.Run("the address as the name", func(t *testing.T) {
		wantOK(t, check(t, build(t, fsm.HealthCheck{Type: "tls", CAFile: caFile}), good, 5*time.Second))
	})
	t.Run("unknown CA", func(t *testing.T) {
		wantFail(t, check(t, build(t, fsm.HealthCheck{Type: "tls", SNI: "health.example.com"}), good, 5*time.Second), "certificate error: x509: certificate signed by unknown authority")
	})
	t.Run("wrong name", func(t *testing.T) {
		wantFail(t, check(t, build(t, fsm.HealthCheck{Type: "tls", SNI: "www.example.org", CAFile: caFile}), good, 5*time.Second), "certificate error: x509: certificate is valid for health.example.com, not www.example.org")
	})
	t.Run("within the expiry margin", func(t *testing.T) {
		ch := build(t, fsm.HealthCheck{Type: "tls", CAFile: caFile, ExpiryMarginS: 100 * 86400})
		wantFail(t, check(t, ch, good, 5*time.Second), "certificate expires in 89d (margin 100d)")
		wantOK(t, check(t, build(t, fsm.HealthCheck{Type: "tls", CAFile: caFile, ExpiryMarginS: 30 * 86400}), good, 5*time.Second))
	})
	t.Run("expired, even unverified", func(t *testing.T) {
		old := tlsServer(t, ca.leaf(t, now.Add(-48*time.Hour), now.Add(-time.Hour)), "")
		wantFail(t, check(t, build(t, fsm.HealthCheck{Type: "tls", Insecure: true}), old, 5*time.Second), "certificate expired 1h0m")
		wantFail(t, check(t, build(t, fsm.HealthCheck{Type: "tls", CAFile: caFile}), old, 5*time.Second), "certificate error: x509: certificate has expired")
	})
	t.Run("the CA file read again when it changes", func(t *testing.T) {
		p := ca.file(t)
		ch := build(t, fsm.HealthCheck{Type: "tls", CAFile: p})
		wantOK(t, check(t, ch, good, 5*time.Second))
		if err := os.WriteFile(p, newTestCA(t, "another CA").pem, 0o644); err != nil {
			t.Fatal(err)
		}
		os.Chtimes(p, time.Now().Add(time.Minute), time.Now().Add(time.Minute))
		wantFail(t, check(t, ch, good, 5*time.Second), "unknown authority")
		os.WriteFile(p, []byte("not PEM"), 0o644)
		wantFail(t, check(t, ch, good, 5*time.Second), "ca_file: "+p+": no PEM certificate in it")
		os.Remove(p)
		wantFail(t, check(t, ch, good, 5*time.Second), "ca_file: stat "+p+": no such file")
	})
	t.Run("closed port", func(t *testing.T) {
		wantFail(t, check(t, build(t, fsm.HealthCheck{Type: "tls", Insecure: true}), closedTCPPort(t), 5*time.Second), "connection refused")
	})
	t.Run("not a TLS server", func(t *testing.T) {
		smtp := lineServer(t, banner("220 mx.example.com ESMTP\r\n"))
		wantFail(t, check(t, build(t, fsm.HealthCheck{Type: "tls", Insecure: true}), smtp, 5*time.Second), "TLS handshake: not a TLS server")
	})
	t.Run("banner over TLS", func(t *testing.T) {
		pops := tlsServer(t, ca.leaf(t, now.Add(-time.Hour), now.Add(90*24*time.Hour)), "+OK Dovecot ready.\r\n")
		wantResult(t, check(t, build(t, fsm.HealthCheck{Type: "tls", CAFile: caFile, Expect: `^\+OK`}), pops, 5*time.Second), true, `answer "+OK Dovecot ready."`)
		imaps := build(t, fsm.HealthCheck{Type: "tls", CAFile: caFile, Expect: `^\* OK`})
		wantFail(t, check(t, imaps, pops, time.Second), `answer does not match: "+OK Dovecot ready."`)
	})
}

// https with a CA file, an expiry margin and keepalived's digest.
func TestHTTPSCAFileAndDigest(t *testing.T) {
	ca := newTestCA(t, "web CA")
	now := time.Now()
	body := "<html>healthy</html>\n"
	sum := md5.Sum([]byte(body))
	digest := hex.EncodeToString(sum[:])
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, body) }))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{ca.leaf(t, now.Add(-time.Hour), now.Add(10*24*time.Hour))}}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	target := addrPort(t, srv.Listener.Addr())
	wantResult(t, check(t, build(t, fsm.HealthCheck{Type: "https", CAFile: ca.file(t), Digest: strings.ToUpper(digest)}), target, 5*time.Second), true, "HTTP 200, digest matches")
	wantFail(t, check(t, build(t, fsm.HealthCheck{Type: "https", SNI: "health.example.com", Digest: digest}), target, 5*time.Second), "certificate")
	wantFail(t, check(t, build(t, fsm.HealthCheck{Type: "https", Insecure: true, ExpiryMarginS: 30 * 86400}), target, 5*time.Second), "certificate expires in 9d (margin 30d)")
	wrong := fmt.Sprintf("%032x", 1)
	wantFail(t, check(t, build(t, fsm.HealthCheck{Type: "https", CAFile: ca.file(t), Digest: wrong}), target, 5*time.Second), "HTTP 200, body digest "+digest+" does not match")
}

// pemPair writes a certificate and its key as PEM.
func pemPair(t *testing.T, c tls.Certificate) (cert, key []byte) {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(c.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Certificate[0]}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}
