package pki

import (
	"crypto/sha256"
	"crypto/tls"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReloadSwapsOnlyGoodMaterial: Reload takes a new certificate of the
// CA held, and the configs present it to new handshakes; bad material (a
// key of another certificate, a certificate of another CA, an expired
// one, a missing file) changes nothing and names the flag and the file.
func TestReloadSwapsOnlyGoodMaterial(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("test", now, 1)
	if err != nil {
		t.Fatal(err)
	}
	other, err := NewCA("other", now, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key, caFile := filepath.Join(dir, "n.pem"), filepath.Join(dir, "n-key.pem"), filepath.Join(dir, "ca.pem")
	writeFile(t, caFile, ca.PEM)
	node := func(c *CA, at time.Time, days int) *Pair {
		p, err := c.Node("n1", []net.IP{net.IPv4(127, 0, 0, 1)}, at, days)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	first := node(ca, now, 1)
	writeFile(t, cert, first.CertPEM)
	writeFile(t, key, first.KeyPEM)
	m, err := LoadTLS(cert, key, caFile, now)
	if err != nil {
		t.Fatal(err)
	}
	fp := func() [32]byte { return sha256.Sum256(m.Current().Certificate[0]) }
	presented := func() [32]byte {
		c, err := m.APIServer().GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return sha256.Sum256(c.Certificate[0])
	}
	want := sha256.Sum256(first.Cert.Raw)
	if fp() != want || presented() != want {
		t.Fatal("the loaded certificate is not the one presented")
	}
	if changed, err := m.Reload(cert, key, now); changed || err != nil {
		t.Fatalf("reload of the same files: changed %v, %v", changed, err)
	}

	second := node(ca, now, 1)
	third := node(ca, now, 1)
	foreign := node(other, now, 1)
	expired := node(ca, now.AddDate(0, 0, -3), 1)
	for _, bad := range []struct {
		name      string
		cert, key []byte // nil key: no key file
		want      string
	}{
		{"key of another certificate", second.CertPEM, third.KeyPEM, `--tls-key "` + key + `" does not go with --tls-cert "` + cert + `"`},
		{"another CA", foreign.CertPEM, foreign.KeyPEM, `--tls-cert "` + cert + `" is not a node certificate of --tls-ca "` + caFile + `"`},
		{"expired", expired.CertPEM, expired.KeyPEM, `--tls-cert "` + cert + `": expired`},
		{"no certificate", []byte("junk"), second.KeyPEM, `--tls-cert "` + cert + `": no PEM CERTIFICATE block`},
		{"missing key", second.CertPEM, nil, `--tls-key "` + key + `"`},
	} {
		writeFile(t, cert, bad.cert)
		if bad.key == nil {
			os.Remove(key)
		} else {
			writeFile(t, key, bad.key)
		}
		changed, err := m.Reload(cert, key, now)
		if err == nil || changed || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: changed %v, error %v; want none and one saying %q", bad.name, changed, err, bad.want)
		}
		if fp() != want || presented() != want {
			t.Errorf("%s: the certificate in use changed", bad.name)
		}
	}

	writeFile(t, cert, second.CertPEM)
	writeFile(t, key, second.KeyPEM)
	if changed, err := m.Reload(cert, key, now); !changed || err != nil {
		t.Fatalf("reload of a new certificate: changed %v, %v", changed, err)
	}
	want = sha256.Sum256(second.Cert.Raw)
	if fp() != want || presented() != want {
		t.Error("the new certificate is not the one presented after the reload")
	}
	req := &tls.CertificateRequestInfo{Version: tls.VersionTLS13, SignatureSchemes: []tls.SignatureScheme{tls.ECDSAWithP256AndSHA256}}
	c, err := m.PeerClient().GetClientCertificate(req)
	if err != nil || len(c.Certificate) == 0 || sha256.Sum256(c.Certificate[0]) != want {
		t.Errorf("the peer client does not present the new certificate: %v", err)
	}
}
