package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/cluster/pki"
)

func TestTLSInitMakesACAAndNodeCertificates(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tls")
	var out bytes.Buffer
	now := time.Now()
	if err := tlsInit(&out, dir, []string{"d1=10.0.0.11", "d2=10.0.0.12,fd00::12"}, 30, now); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"ca.pem (the CA", "d1.pem and", "--tls-cert " + filepath.Join(dir, "NAME.pem"), "ipvsman --ca " + filepath.Join(dir, "ca.pem")} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	for name, mode := range map[string]os.FileMode{"ca.pem": 0o644, "ca-key.pem": 0o600, "d1.pem": 0o644, "d1-key.pem": 0o600, "d2-key.pem": 0o600} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: %v, mode %v, want %v", name, err, fi.Mode().Perm(), mode)
		}
	}
	// Each node certificate loads as ipvsmand would load it.
	m, err := pki.LoadTLS(filepath.Join(dir, "d2.pem"), filepath.Join(dir, "d2-key.pem"), filepath.Join(dir, "ca.pem"), now)
	if err != nil {
		t.Fatal(err)
	}
	leaf := m.Leaf
	if err := leaf.VerifyHostname("10.0.0.12"); err != nil {
		t.Error(err)
	}
	for _, h := range []string{"fd00::12", "127.0.0.1", "::1", "localhost", "d2"} {
		if err := leaf.VerifyHostname(h); err != nil {
			t.Errorf("SAN %s: %v", h, err)
		}
	}
	if err := leaf.VerifyHostname("10.0.0.11"); err == nil {
		t.Error("d2's certificate is valid for d1's address")
	}
	if id, err := pki.NodeID(leaf); id != "d2" || err != nil || m.Node() != "d2" {
		t.Errorf("d2's certificate names node %q (%v), loaded as %q; want d2", id, err, m.Node())
	}
	if want := "node ID d2, as spiffe://ipvsman/node/d2"; !strings.Contains(out.String(), want) {
		t.Errorf("output lacks %q:\n%s", want, out.String())
	}
	if d := leaf.NotAfter.Sub(now); d < 29*24*time.Hour || d > 31*24*time.Hour {
		t.Errorf("validity %s, want 30 days", d)
	}
	caPEM, _ := os.ReadFile(filepath.Join(dir, "ca.pem"))
	blk, _ := pem.Decode(caPEM)
	ca, _ := x509.ParseCertificate(blk.Bytes)
	if !ca.IsCA || ca.NotAfter.Sub(now) < 9*365*24*time.Hour {
		t.Errorf("CA: IsCA %v, until %s", ca.IsCA, ca.NotAfter)
	}

	// A second run reuses the CA for a new node and refuses to overwrite.
	out.Reset()
	if err := tlsInit(&out, dir, []string{"d3=10.0.0.13"}, 30, now); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "using the CA in") {
		t.Errorf("second run: %s", out.String())
	}
	if _, err := pki.LoadTLS(filepath.Join(dir, "d3.pem"), filepath.Join(dir, "d3-key.pem"), filepath.Join(dir, "ca.pem"), now); err != nil {
		t.Errorf("d3 not signed by the first run's CA: %v", err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, "d1.pem"))
	err = tlsInit(&out, dir, []string{"d4=10.0.0.14", "d1=10.0.0.11"}, 30, now)
	if err == nil || !strings.Contains(err.Error(), "d1.pem already exists; not overwriting") {
		t.Errorf("overwrite d1: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "d1.pem")); !bytes.Equal(before, after) {
		t.Error("d1.pem changed")
	}
	if _, err := os.Stat(filepath.Join(dir, "d4.pem")); err == nil {
		t.Error("a refused run wrote d4.pem")
	}
}

func TestTLSInitRefusesBadArguments(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		dir   string
		nodes []string
		days  int
		want  string
	}{
		{"", []string{"a=10.0.0.1"}, 1, "--dir: missing"},
		{dir, nil, 1, "--node: give at least one"},
		{dir, []string{"a"}, 1, `--node "a": want NAME=IP`},
		{dir, []string{"a=10.0.0.300"}, 1, `"10.0.0.300" is not an IP address`},
		{dir, []string{"a=10.0.0.1", "a=10.0.0.2"}, 1, "node a given twice"},
		{dir, []string{"a=10.0.0.1"}, 0, "--days 0"},
	} {
		err := tlsInit(&bytes.Buffer{}, tc.dir, tc.nodes, tc.days, time.Now())
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want %q", tc, err, tc.want)
		}
	}
	os.WriteFile(filepath.Join(dir, "ca.pem"), []byte("x"), 0o600)
	if err := tlsInit(&bytes.Buffer{}, dir, []string{"a=10.0.0.1"}, 1, time.Now()); err == nil || !strings.Contains(err.Error(), "but not the other") {
		t.Errorf("half a CA: %v", err)
	}
}

func TestCAFlagMakesTheClientUseHTTPS(t *testing.T) {
	t.Setenv("IPVSMAN_CA", "")
	dir := t.TempDir()
	if err := tlsInit(&bytes.Buffer{}, dir, []string{"a=10.0.0.1"}, 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	ca := filepath.Join(dir, "ca.pem")
	for _, tc := range []struct {
		api, ca, wantURL, wantErr string
	}{
		{"10.0.0.1:7080", ca, "https://10.0.0.1:7080", ""},
		{"https://10.0.0.1:7080", ca, "https://10.0.0.1:7080", ""},
		{"https://10.0.0.1:7080", "", "https://10.0.0.1:7080", ""},
		{"10.0.0.1:7080", "", "http://10.0.0.1:7080", ""},
		{"http://10.0.0.1:7080", ca, "", "a CA is for https"},
		{"10.0.0.1:7080", filepath.Join(dir, "a-key.pem"), "", "no PEM certificate"},
		{"10.0.0.1:7080", filepath.Join(dir, "missing.pem"), "", `--ca "` + filepath.Join(dir, "missing.pem") + `"`},
	} {
		g := &globals{api: tc.api, token: "x", ca: tc.ca}
		c, err := g.client()
		switch {
		case tc.wantErr != "":
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%+v: %v", tc, err)
			}
		case err != nil:
			t.Errorf("%+v: %v", tc, err)
		case c.URL() != tc.wantURL:
			t.Errorf("%+v: URL %s", tc, c.URL())
		}
		// Another node's address, as -L --node and top reach it.
		if err == nil && tc.wantURL != "" {
			nc := *c
			nc.Base = "10.0.0.2:7080"
			if got := nc.URL(); !strings.HasPrefix(got, tc.wantURL[:strings.Index(tc.wantURL, ":")]+"://") {
				t.Errorf("%+v: another node at %s", tc, got)
			}
		}
	}
}
