package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/cluster/pki"
)

func TestNothingListensUnauthenticatedOffLoopback(t *testing.T) {
	for _, tc := range []struct {
		raft, api, debug string
		tls              bool
		want             string // "" = allowed
	}{
		{"127.0.0.1:7000", "127.0.0.1:7080", "", false, ""},
		{"[::1]:7000", "localhost:7080", "127.0.0.1:6060", false, ""},
		{"10.0.0.1:7000", "127.0.0.1:7080", "", false, `--raft-addr "10.0.0.1:7000" is not a loopback address: give --tls-cert, --tls-key and --tls-ca`},
		{"127.0.0.1:7000", ":7080", "", false, `--api-addr ":7080" is not a loopback address`},
		{"127.0.0.1:7000", "0.0.0.0:7080", "", false, `--api-addr "0.0.0.0:7080" is not a loopback address`},
		{"127.0.0.1:7000", "director1:7080", "", false, `--api-addr "director1:7080" is not a loopback address`},
		{"10.0.0.1:7000", "10.0.0.1:7080", "", true, ""},
		{"10.0.0.1:7000", "10.0.0.1:7080", "10.0.0.1:6060", true, `--debug-addr "10.0.0.1:6060": the profiling server has no authentication`},
		{"127.0.0.1:7000", "127.0.0.1:7080", ":6060", false, `--debug-addr ":6060"`},
	} {
		err := checkListeners(tc.raft, tc.api, tc.debug, tc.tls)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%+v: refused: %v", tc, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%+v: got %v, want %q", tc, err, tc.want)
		}
	}
}

func TestTLSFlagsAllOrNone(t *testing.T) {
	if m, err := loadTLS("", "", "", "n1"); m != nil || err != nil {
		t.Errorf("none: %v %v", m, err)
	}
	_, err := loadTLS("n.pem", "", "ca.pem", "n1")
	if err == nil || !strings.Contains(err.Error(), "give all three or none") {
		t.Errorf("two of three: %v", err)
	}
	_, err = loadTLS("/nonexistent/n.pem", "/nonexistent/n-key.pem", "/nonexistent/ca.pem", "n1")
	if err == nil || !strings.Contains(err.Error(), `--tls-ca "/nonexistent/ca.pem"`) {
		t.Errorf("missing files: %v", err)
	}
}

// TestPlainNodeKeepsTheTokenOnLoopback: a node without TLS refuses a
// --join or an --api-advertise off loopback, which would carry the
// cluster token in clear; with TLS both are what a cluster off loopback
// uses.
func TestPlainNodeKeepsTheTokenOnLoopback(t *testing.T) {
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	writeFile(t, token, "token-A-0123456789\n")
	cert, key, caFile := tlsFiles(t, dir)
	withTLS := []string{"--node-id", "n1", "--tls-cert", cert, "--tls-key", key, "--tls-ca", caFile}
	for _, tc := range []struct {
		args []string
		want string // "" = allowed
	}{
		{[]string{"--join", "127.0.0.1:7080"}, ""},
		{[]string{"--join", "http://localhost:7080", "--api-advertise", "[::1]:7080"}, ""},
		{[]string{"--join", "10.0.0.11:7080"}, `--join "10.0.0.11:7080" is not a loopback address, and this node runs without TLS: the join would send the cluster token in clear; give --tls-cert, --tls-key and --tls-ca`},
		{[]string{"--join", "http://director1:7080"}, `--join "http://director1:7080" is not a loopback address`},
		{[]string{"--api-advertise", "10.0.0.11:7080"}, `--api-advertise "10.0.0.11:7080" is not a loopback address, and this node runs without TLS`},
		{append([]string{"--join", "10.0.0.11:7080", "--api-advertise", "10.0.0.12:7080"}, withTLS...), ""},
	} {
		err := loadSettingsOf(t, append([]string{"--token-file", token}, tc.args...)...)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: refused: %v", tc.args, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: got %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestTheCertificateNamesTheNodeID: a node starts only with the
// certificate of its own --node-id.
func TestTheCertificateNamesTheNodeID(t *testing.T) {
	ca, err := pki.NewCA("test", time.Now(), 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	p, err := ca.Node("d2", nil, time.Now(), 1)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(dir, "ca.pem")
	cert, key := pki.NodeFiles(dir, "d2")
	for f, b := range map[string][]byte{caFile: ca.PEM, cert: p.CertPEM, key: p.KeyPEM} {
		if err := os.WriteFile(f, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if m, err := loadTLS(cert, key, caFile, "d2"); err != nil || m.Node() != "d2" {
		t.Errorf("d2 with its own certificate: %v", err)
	}
	_, err = loadTLS(cert, key, caFile, "d3")
	if err == nil || !strings.Contains(err.Error(), `--tls-cert "`+cert+`" is node "d2"'s certificate, and --node-id is "d3"`) {
		t.Errorf("d3 with d2's certificate: %v", err)
	}
}
