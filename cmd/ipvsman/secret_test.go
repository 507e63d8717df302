package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The CLI holds its token file to the daemon's rule: a file group or
// others may read is refused, naming where it was given, its mode and the
// chmod that fixes it.
func TestCLITokenFileMustBePrivate(t *testing.T) {
	t.Setenv("IPVSMAN_TOKEN", "")
	t.Setenv("IPVSMAN_CA", "")
	tf := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tf, []byte("token-A-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if c, err := (&globals{tokenFile: tf}).client(); err != nil || c.Token != "token-A-0123456789" {
		t.Fatalf("a 0600 token file: %+v, %v", c, err)
	}
	if err := os.Chmod(tf, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := (&globals{tokenFile: tf}).client()
	if want := `--token-file "` + tf + `": mode 0644: group or others may read it`; err == nil || !strings.Contains(err.Error(), want) || !strings.HasSuffix(err.Error(), "chmod 600 "+tf) {
		t.Errorf("--token-file 0644: %v; want %q and the chmod", err, want)
	}
	t.Setenv("IPVSMAN_TOKEN_FILE", tf)
	_, err = (&globals{}).client()
	if want := `IPVSMAN_TOKEN_FILE "` + tf + `": mode 0644`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("IPVSMAN_TOKEN_FILE 0644: %v; want %q", err, want)
	}
}
