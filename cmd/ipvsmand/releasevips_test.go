package main

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/vip"
)

// recordingAddrs records every deletion asked of it; fail makes the
// deletion of that prefix fail.
type recordingAddrs struct {
	dels []string
	fail string
}

func (r *recordingAddrs) Del(iface string, p netip.Prefix) error {
	r.dels = append(r.dels, p.String()+" on "+iface)
	if p.String() == r.fail {
		return errors.New("planted failure")
	}
	return nil
}

func writeVIPState(t *testing.T, dir string, content []byte) {
	t.Helper()
	if err := os.WriteFile(vipStateFile(dir), content, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestReleaseVIPsRemovesWhatIsRecorded: the addresses the VIP manager's
// own encoding recorded are removed, each once, and nothing else; a second
// run asks the same again and succeeds (the deleter treats a missing
// address as done).
func TestReleaseVIPsRemovesWhatIsRecorded(t *testing.T) {
	dir := t.TempDir()
	rec := []vip.Addr{
		{Prefix: netip.MustParsePrefix("192.0.2.10/32"), Interface: "eth0"},
		{Prefix: netip.MustParsePrefix("2001:db8::10/128"), Interface: "eth1"},
	}
	b, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	writeVIPState(t, dir, b)
	want := []string{"192.0.2.10/32 on eth0", "2001:db8::10/128 on eth1"}
	for run := 1; run <= 2; run++ {
		f := &recordingAddrs{}
		if err := releaseVIPs(dir, f, slog.New(slog.DiscardHandler)); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if !slices.Equal(f.dels, want) {
			t.Fatalf("run %d deleted %v, want %v", run, f.dels, want)
		}
	}
}

// TestReleaseVIPsWithoutRecord: no file (a node that never led, or one
// that ran with --vips=off) and an empty list remove nothing.
func TestReleaseVIPsWithoutRecord(t *testing.T) {
	dir := t.TempDir()
	f := &recordingAddrs{}
	if err := releaseVIPs(dir, f, slog.New(slog.DiscardHandler)); err != nil || len(f.dels) != 0 {
		t.Fatalf("missing file: err %v, deleted %v", err, f.dels)
	}
	writeVIPState(t, dir, []byte("[]"))
	if err := releaseVIPs(dir, f, slog.New(slog.DiscardHandler)); err != nil || len(f.dels) != 0 {
		t.Fatalf("empty list: err %v, deleted %v", err, f.dels)
	}
}

// TestReleaseVIPsRefusesABadRecord: a damaged file is refused whole,
// naming the entry, the field and the value, and nothing is removed, not
// even the good entries before the bad one.
func TestReleaseVIPsRefusesABadRecord(t *testing.T) {
	for _, c := range []struct{ content, want string }{
		{`{"prefix":"192.0.2.10/32"}`, "want a JSON list"},
		{`[{"prefix":"192.0.2.10/32","interface":"eth0"},{"prefix":"192.0.2.300/32","interface":"eth0"}]`, `entry 1: prefix "192.0.2.300/32"`},
		{`[{"prefix":"192.0.2.10/32","interface":"eth0"},{"prefix":"192.0.2.11","interface":"eth0"}]`, `entry 1: prefix "192.0.2.11"`},
		{`[{"prefix":"192.0.2.10/32","interface":"eth0"},{"interface":"eth0"}]`, "entry 1: prefix: missing"},
		{`[{"prefix":"192.0.2.10/32","interface":"eth0"},{"prefix":"192.0.2.11/32"}]`, "entry 1: interface: missing"},
		{`[{"prefix":"192.0.2.10/32","interface":"eth0"},{"prefix":"192.0.2.11/32","interface":"../eth0"}]`, `entry 1: interface "../eth0": not an interface name`},
		{`[{"prefix":"192.0.2.10/32","interface":"eth0"},{"prefix":"192.0.2.11/32","interface":"a-name-far-too-long"}]`, `entry 1: interface "a-name-far-too-long"`},
	} {
		dir := t.TempDir()
		writeVIPState(t, dir, []byte(c.content))
		f := &recordingAddrs{}
		err := releaseVIPs(dir, f, slog.New(slog.DiscardHandler))
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), vipStateFile(dir)) {
			t.Errorf("%s: err %v, want one naming the file and %q", c.content, err, c.want)
		}
		if len(f.dels) != 0 {
			t.Errorf("%s: deleted %v from a refused file", c.content, f.dels)
		}
	}
}

// TestReleaseVIPsGoesOnPastAFailure: one address that cannot be removed
// does not keep the others up, and the command fails naming the count.
func TestReleaseVIPsGoesOnPastAFailure(t *testing.T) {
	dir := t.TempDir()
	writeVIPState(t, dir, []byte(`[{"prefix":"192.0.2.10/32","interface":"eth0"},{"prefix":"192.0.2.11/32","interface":"eth0"}]`))
	f := &recordingAddrs{fail: "192.0.2.10/32"}
	err := releaseVIPs(dir, f, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "1 of 2 recorded address(es) not removed") || !strings.Contains(err.Error(), "planted failure") {
		t.Fatalf("err %v", err)
	}
	if len(f.dels) != 2 {
		t.Fatalf("deleted %v, want both tried", f.dels)
	}
}

// TestReleaseVIPsFlagReadsTheDaemonsOptions: --release-vips takes the
// daemon's flags and --config file for its data dir.
func TestReleaseVIPsFlagReadsTheDaemonsOptions(t *testing.T) {
	dir := t.TempDir()
	conf := dir + "/ipvsmand.conf"
	if err := os.WriteFile(conf, []byte("data-dir = "+dir+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	writeVIPState(t, dir, []byte(`[{"prefix":"192.0.2.10/32","interface":"eth0"},{"prefix":"192.0.2.11/32","interface":"eth0"}`))
	err := runReleaseVIPs(options{config: conf}, map[string][]string{"token-file": {"/nonexistent"}, "release-vips": {"true"}})
	if err == nil || !strings.Contains(err.Error(), vipStateFile(dir)) {
		t.Fatalf("--release-vips did not read %s from the --config file's data dir: %v", vipStateFile(dir), err)
	}
}
