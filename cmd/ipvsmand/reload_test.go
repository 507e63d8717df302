package main

import (
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/cluster"
	"github.com/ipvsman/ipvsman/cluster/pki"
	"github.com/ipvsman/ipvsman/cmd/ipvsmand/internal/server"
)

func TestSettingChanges(t *testing.T) {
	old := map[string]string{"log-level": "info", "data-dir": "/a", "tls-cert": "c.pem", "raft-addr": "10.0.0.1:7000", "token-file": "t"}
	now := map[string]string{"log-level": "debug", "data-dir": "/b", "tls-cert": "c.pem", "raft-addr": "10.0.0.2:7000", "token-file": "t2"}
	apply, restart := settingChanges(old, now)
	if !slices.Equal(apply, []string{"log-level", "token-file"}) || !slices.Equal(restart, []string{"data-dir", "raft-addr"}) {
		t.Errorf("apply %v, restart %v", apply, restart)
	}
	if apply, restart := settingChanges(old, old); apply != nil || restart != nil {
		t.Errorf("no change: apply %v, restart %v", apply, restart)
	}
}

func TestCommandLineWinsOverTheConfigFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "ipvsmand.conf")
	writeFile(t, file, "log-level = debug\n--data-dir=/srv/ipvsman\nipvs-exclusive\nresync 5s\n")
	o, values, err := loadOptions(map[string][]string{"data-dir": {"/var/lib/x"}, "config": {file}}, file)
	if err != nil {
		t.Fatal(err)
	}
	if o.logLevel != "debug" || o.dataDir != "/var/lib/x" || !o.exclusive || o.resync != 5*time.Second || o.raftAddr != "127.0.0.1:7000" {
		t.Errorf("options %+v", o)
	}
	if values["data-dir"] != "/var/lib/x" || values["log-level"] != "debug" {
		t.Errorf("values %v", values)
	}
	writeFile(t, file, "no-such-flag = 1\n")
	if _, _, err := loadOptions(nil, file); err == nil || !strings.Contains(err.Error(), `--config "`+file+`"`) || !strings.Contains(err.Error(), "no-such-flag") {
		t.Errorf("unknown flag in the file: %v", err)
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReloadIsAllOrNothing: a reload applies a new log level, token and
// certificate together; bad material, any of it (a token or key file
// others may read included), changes none of them;
// a changed setting that needs a restart is reported and ignored.
func TestReloadIsAllOrNothing(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	ca, err := pki.NewCA("test", now, 1)
	if err != nil {
		t.Fatal(err)
	}
	caFile, cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "n.pem"), filepath.Join(dir, "n-key.pem")
	writeFile(t, caFile, string(ca.PEM))
	pair := func() *pki.Pair {
		p, err := ca.Node("n1", []net.IP{net.IPv4(127, 0, 0, 1)}, now, 1)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	first, second := pair(), pair()
	writeFile(t, cert, string(first.CertPEM))
	writeFile(t, key, string(first.KeyPEM))
	token, conf := filepath.Join(dir, "token"), filepath.Join(dir, "ipvsmand.conf")
	writeFile(t, token, "token-A-0123456789\n")
	writeFile(t, conf, "log-level = info\n")
	cmdline := map[string][]string{"config": {conf}, "token-file": {token}, "tls-cert": {cert}, "tls-key": {key}, "tls-ca": {caFile}}
	o, values, err := loadOptions(cmdline, conf)
	if err != nil {
		t.Fatal(err)
	}
	m, err := cluster.LoadTLS(cert, key, caFile, now)
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{o: o, log: slog.New(slog.DiscardHandler), tls: m}
	d.reload.tokens = server.NewTokens("token-A-0123456789", "")
	level := new(slog.LevelVar)
	d.reload.start(cmdline, values, level)

	changed, restart, err := d.reloadSettings(now)
	if err != nil || len(changed) != 0 || len(restart) != 0 {
		t.Fatalf("a reload of the same files: %v %v %v", changed, restart, err)
	}

	writeFile(t, conf, "log-level = debug\n")
	writeFile(t, token, "token-B-0123456789\n")
	writeFile(t, cert, string(second.CertPEM))
	writeFile(t, key, string(second.KeyPEM))
	changed, _, err = d.reloadSettings(now)
	if err != nil {
		t.Fatal(err)
	}
	got := strings.Join(changed, "; ")
	for _, want := range []string{"cluster token (new;", "tls certificate", "log level info→debug"} {
		if !strings.Contains(got, want) {
			t.Errorf("changed %q: no %q", got, want)
		}
	}
	if !d.reload.tokens.Admin().Accepts("token-A-0123456789") || d.reload.tokens.Send() != "token-A-0123456789" {
		t.Errorf("during the rotation: %+v", d.reload.tokens.Admin())
	}
	inUse := func() string { return string(m.Current().Certificate[0]) }
	if inUse() != string(second.Cert.Raw) || level.Level() != slog.LevelDebug {
		t.Fatal("the new certificate or level is not in use")
	}

	// Bad material, each alone with good changes beside it: nothing moves.
	third := pair()
	for _, bad := range []struct {
		name  string
		setup func()
		want  string
	}{
		{"key of another certificate", func() { writeFile(t, cert, string(second.CertPEM)) }, `--tls-key "` + key + `" does not go with --tls-cert "` + cert + `"`},
		{"short token", func() { writeFile(t, token, "short\n") }, `--token-file "` + token + `": token has 5 characters`},
		{"unreadable token", func() { os.Remove(token) }, `--token-file "` + token + `"`},
		{"bad level", func() { writeFile(t, conf, "log-level = loud\n") }, `--config "` + conf + `": --log-level "loud"`},
		{"missing config", func() { os.Remove(conf) }, `--config "` + conf + `"`},
		{"token others may read", func() { chmod(t, token, 0o644) }, `--token-file "` + token + `": mode 0644: group or others may read it, and it holds a secret: chmod 600 ` + token},
		{"key the group may read", func() { chmod(t, key, 0o640) }, `--tls-key "` + key + `": mode 0640: group or others may read it, and it holds a secret: chmod 600 ` + key},
	} {
		writeFile(t, conf, "log-level = warn\n")
		writeFile(t, token, "token-C-0123456789\n")
		writeFile(t, cert, string(third.CertPEM))
		writeFile(t, key, string(third.KeyPEM))
		// writeFile keeps the mode of a file that exists.
		chmod(t, token, 0o600)
		chmod(t, key, 0o600)
		bad.setup()
		changed, _, err := d.reloadSettings(now)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%s: changed %v, error %v; want one saying %q", bad.name, changed, err, bad.want)
		}
		if inUse() != string(second.Cert.Raw) || level.Level() != slog.LevelDebug || d.reload.tokens.Admin() != (server.Rotation{Current: "token-B-0123456789", Previous: "token-A-0123456789"}) {
			t.Errorf("%s: something changed: level %v, tokens %+v", bad.name, level.Level(), d.reload.tokens.Admin())
		}
	}

	// The token unchanged: the rotation ends. A setting that needs a
	// restart is reported, and again at the next reload.
	writeFile(t, conf, "log-level = debug\ndata-dir = /elsewhere\n")
	writeFile(t, token, "token-B-0123456789\n")
	writeFile(t, cert, string(second.CertPEM))
	writeFile(t, key, string(second.KeyPEM))
	chmod(t, key, 0o600)
	for i := range 2 {
		changed, restart, err = d.reloadSettings(now)
		if err != nil || !slices.Equal(restart, []string{"data-dir"}) {
			t.Fatalf("reload %d: %v %v %v", i, changed, restart, err)
		}
	}
	if d.reload.tokens.Admin() != (server.Rotation{Current: "token-B-0123456789"}) {
		t.Errorf("after a reload that found the token unchanged: %+v", d.reload.tokens.Admin())
	}
}
