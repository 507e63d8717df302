package main

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/spf13/pflag"

	"github.com/ipvsman/ipvsman/cluster/pki"
)

// loadSettingsOf checks the settings a command line gives, as ipvsmand
// does at start before it opens anything.
func loadSettingsOf(t *testing.T, args ...string) error {
	t.Helper()
	f := pflag.NewFlagSet("ipvsmand", pflag.ContinueOnError)
	var o options
	defineFlags(f, &o)
	if err := f.Parse(append([]string{"--metrics=off"}, args...)); err != nil {
		t.Fatal(err)
	}
	d := &daemon{o: o, log: slog.New(slog.DiscardHandler)}
	return d.loadSettings()
}

// tlsFiles writes a CA and a node certificate and key, all 0600.
func tlsFiles(t *testing.T, dir string) (cert, key, caFile string) {
	t.Helper()
	now := time.Now()
	ca, err := pki.NewCA("test", now, 1)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ca.Node("n1", []net.IP{net.IPv4(127, 0, 0, 1)}, now, 1)
	if err != nil {
		t.Fatal(err)
	}
	cert, key, caFile = filepath.Join(dir, "n.pem"), filepath.Join(dir, "n-key.pem"), filepath.Join(dir, "ca.pem")
	writeFile(t, caFile, string(ca.PEM))
	writeFile(t, cert, string(p.CertPEM))
	writeFile(t, key, string(p.KeyPEM))
	return cert, key, caFile
}

// TestSecretFilesMustBePrivate: ipvsmand refuses to start with a token
// file (--token-file, --read-token-file) or a TLS key (--tls-key) that
// group or others may read, naming the flag, the file, its mode and the
// chmod that fixes it.
func TestSecretFilesMustBePrivate(t *testing.T) {
	dir := t.TempDir()
	token, read := filepath.Join(dir, "token"), filepath.Join(dir, "read-token")
	writeFile(t, token, "token-A-0123456789\n")
	writeFile(t, read, "read-only-0123456789\n")
	cert, key, caFile := tlsFiles(t, dir)
	args := []string{"--node-id", "n1", "--token-file", token, "--read-token-file", read, "--tls-cert", cert, "--tls-key", key, "--tls-ca", caFile}
	if err := loadSettingsOf(t, args...); err != nil {
		t.Fatalf("every file 0600: %v", err)
	}
	for _, tc := range []struct {
		flag, file string
		mode       os.FileMode
	}{
		{"--token-file", token, 0o644},
		{"--token-file", token, 0o640},
		{"--read-token-file", read, 0o644},
		{"--tls-key", key, 0o644},
		{"--tls-key", key, 0o640},
	} {
		if err := os.Chmod(tc.file, tc.mode); err != nil {
			t.Fatal(err)
		}
		err := loadSettingsOf(t, args...)
		want := fmt.Sprintf("%s %q: mode %04o", tc.flag, tc.file, tc.mode)
		if err == nil || !strings.Contains(err.Error(), want) || !strings.HasSuffix(err.Error(), "chmod 600 "+tc.file) {
			t.Errorf("%s %04o: %v; want %q and the chmod", tc.flag, tc.mode, err, want)
		}
		if err := os.Chmod(tc.file, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
