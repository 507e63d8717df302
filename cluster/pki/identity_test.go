package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// ownPKI signs a node certificate as an operator's own PKI might: for
// server and client use, with the given URI SANs (none: a certificate
// made before node IDs were bound to certificates).
func ownPKI(t *testing.T, ca *CA, cn string, uris ...string) *Pair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	for _, s := range uris {
		u, err := url.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		tmpl.URIs = append(tmpl.URIs, u)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return &Pair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		Cert:    cert,
	}
}

// TestNodeCertificatesNameTheirNodeID: what Node signs names its node ID
// in a URI SAN, which NodeID reads back; a certificate without one, or
// with two different ones, names no node.
func TestNodeCertificatesNameTheirNodeID(t *testing.T) {
	ca, err := NewCA("test", time.Now(), 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ca.Node("d1", nil, time.Now(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Cert.URIs) != 1 || p.Cert.URIs[0].String() != "spiffe://ipvsman/node/d1" {
		t.Errorf("URI SANs %v, want [spiffe://ipvsman/node/d1]", p.Cert.URIs)
	}
	if id, err := NodeID(p.Cert); id != "d1" || err != nil {
		t.Errorf("NodeID: %q, %v; want d1", id, err)
	}
	for _, tc := range []struct {
		name string
		uris []string
		want string
	}{
		{"no URI", nil, "names no node ID"},
		{"another URI only", []string{"spiffe://example.org/web"}, "names no node ID"},
		{"two node IDs", []string{NodeURIPrefix + "d1", NodeURIPrefix + "d2"}, `names two node IDs, "d1" and "d2"`},
		{"a path below the ID", []string{NodeURIPrefix + "d1/x"}, "is not spiffe://ipvsman/node/NAME"},
	} {
		id, err := NodeID(ownPKI(t, ca, "d1", tc.uris...).Cert)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %q, %v; want an error saying %q", tc.name, id, err, tc.want)
		}
	}
	// The same ID twice is one node.
	if id, err := NodeID(ownPKI(t, ca, "x", NodeURIPrefix+"d1", NodeURIPrefix+"d1", "https://d1.example").Cert); id != "d1" || err != nil {
		t.Errorf("the same ID twice: %q, %v", id, err)
	}
}

// TestPeerNodeReadsOnlyAVerifiedChain: a peer's ID comes from the chain
// the handshake verified, not from what it presented.
func TestPeerNodeReadsOnlyAVerifiedChain(t *testing.T) {
	ca, err := NewCA("test", time.Now(), 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ca.Node("d2", nil, time.Now(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := PeerNode(&tls.ConnectionState{PeerCertificates: []*x509.Certificate{p.Cert}}); err == nil {
		t.Error("PeerNode took a presented certificate that no chain verified")
	}
	if _, err := PeerNode(nil); err == nil {
		t.Error("PeerNode of no TLS connection")
	}
	if id, err := PeerNode(&tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{p.Cert, ca.Cert}}}); id != "d2" || err != nil {
		t.Errorf("PeerNode: %q, %v; want d2", id, err)
	}
	old := ownPKI(t, ca, "d2")
	_, err = PeerNode(&tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{old.Cert, ca.Cert}}})
	if !errors.Is(err, ErrNoNodeID) || !strings.Contains(err.Error(), `certificate "d2" names no node ID`) || !strings.Contains(err.Error(), "ipvsman tls init") {
		t.Errorf("PeerNode of a certificate without an ID: %v", err)
	}
}

// TestLoadTLSWantsANodeIDAndKeepsIt: a certificate without a node ID is
// refused at start, naming the flag, the file and the way out; a reload
// may renew the certificate but not change the node it names.
func TestLoadTLSWantsANodeIDAndKeepsIt(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("test", now, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key, caFile := filepath.Join(dir, "n.pem"), filepath.Join(dir, "n-key.pem"), filepath.Join(dir, "ca.pem")
	writeFile(t, caFile, ca.PEM)
	old := ownPKI(t, ca, "d1")
	writeFile(t, cert, old.CertPEM)
	writeFile(t, key, old.KeyPEM)
	_, err = LoadTLS(cert, key, caFile, now)
	if err == nil || !strings.Contains(err.Error(), `--tls-cert "`+cert+`" names no node ID`) || !strings.Contains(err.Error(), "reissue it with `ipvsman tls init`") {
		t.Fatalf("a certificate without a node ID: %v", err)
	}

	own := ownPKI(t, ca, "director one", NodeURIPrefix+"d1")
	writeFile(t, cert, own.CertPEM)
	writeFile(t, key, own.KeyPEM)
	m, err := LoadTLS(cert, key, caFile, now)
	if err != nil {
		t.Fatalf("a certificate of one's own PKI with the node URI: %v", err)
	}
	if m.Node() != "d1" {
		t.Errorf("Node() %q, want d1 (the URI, not the common name)", m.Node())
	}

	d2, err := ca.Node("d2", nil, now, 1)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, cert, d2.CertPEM)
	writeFile(t, key, d2.KeyPEM)
	changed, err := m.Reload(cert, key, now)
	if err == nil || changed || !strings.Contains(err.Error(), `--tls-cert "`+cert+`" is node "d2"'s certificate, and this node is "d1"`) {
		t.Errorf("reload with another node's certificate: changed %v, %v", changed, err)
	}
	renewed, err := ca.Node("d1", nil, now, 1)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, cert, renewed.CertPEM)
	writeFile(t, key, renewed.KeyPEM)
	if changed, err := m.Reload(cert, key, now); !changed || err != nil {
		t.Errorf("reload with a renewed certificate of the same node: changed %v, %v", changed, err)
	}
}
