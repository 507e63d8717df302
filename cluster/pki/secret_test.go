package pki

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAKeyOthersMayReadIsRefused: LoadTLS, at start and on every reload,
// refuses a --tls-key file that group or others may read or change,
// naming the flag, the file, its mode and the chmod that fixes it; a key
// its owner alone may read (0600, 0400) loads.
func TestAKeyOthersMayReadIsRefused(t *testing.T) {
	now := time.Now()
	ca, err := NewCA("test", now, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ca.Node("n1", []net.IP{net.IPv4(127, 0, 0, 1)}, now, 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cert, key, caFile := filepath.Join(dir, "n.pem"), filepath.Join(dir, "n-key.pem"), filepath.Join(dir, "ca.pem")
	writeFile(t, caFile, ca.PEM)
	writeFile(t, cert, p.CertPEM)
	writeFile(t, key, p.KeyPEM)
	m, err := LoadTLS(cert, key, caFile, now)
	if err != nil {
		t.Fatal(err)
	}
	for mode, want := range map[os.FileMode]string{
		0o644: "mode 0644: group or others may read it",
		0o640: "mode 0640: group or others may read it",
		0o604: "mode 0604: group or others may read it",
		0o620: "mode 0620: group or others may change it",
		0o666: "mode 0666: group or others may read and change it",
		0o610: "mode 0610: group or others have access to it",
	} {
		if err := os.Chmod(key, mode); err != nil {
			t.Fatal(err)
		}
		for what, err := range map[string]error{
			"start":  func() error { _, err := LoadTLS(cert, key, caFile, now); return err }(),
			"reload": func() error { _, err := m.Reload(cert, key, now); return err }(),
		} {
			if err == nil || !strings.Contains(err.Error(), `--tls-key "`+key+`": `+want) || !strings.HasSuffix(err.Error(), "chmod 600 "+key) {
				t.Errorf("%04o at %s: %v; want %q and the chmod", mode, what, err, want)
			}
		}
	}
	for _, mode := range []os.FileMode{0o600, 0o400} {
		if err := os.Chmod(key, mode); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadTLS(cert, key, caFile, now); err != nil {
			t.Errorf("%04o: %v", mode, err)
		}
	}
}

// TestReadSecretChecksTheFileItReads: the mode checked is the file's a
// symbolic link leads to, and a path that needs quoting is quoted in the
// fix.
func TestReadSecretChecksTheFileItReads(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "it's a token")
	if err := os.WriteFile(target, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(target, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	_, err := ReadSecret("--token-file", link)
	if err == nil || !strings.Contains(err.Error(), `--token-file "`+link+`": mode 0644`) || !strings.HasSuffix(err.Error(), "chmod 600 "+link) {
		t.Errorf("a link to a 0644 file: %v", err)
	}
	_, err = ReadSecret("--token-file", target)
	if err == nil || !strings.HasSuffix(err.Error(), `chmod 600 '`+dir+`/it'\''s a token'`) {
		t.Errorf("a path to quote: %v", err)
	}
	if err := os.Chmod(target, 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadSecret("--token-file", link); err != nil || string(b) != "x" {
		t.Errorf("0600 through a link: %q, %v", b, err)
	}
}
