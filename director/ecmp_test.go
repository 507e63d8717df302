package director

import (
	"bytes"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/director/ipvsnl"
	"github.com/ipvsman/ipvsman/fsm"
)

func ecmpTarget(leader bool) SyncTarget {
	t := syncTarget(leader)
	t.ECMP = true
	return t
}

// ecmpSysctls is dir with sloppy_tcp and sloppy_sctp at 0, as a kernel
// starts.
func ecmpSysctls(t *testing.T) string {
	t.Helper()
	dir := kernelSysctls(t)
	for _, n := range []string{"sloppy_tcp", "sloppy_sctp"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func sloppy(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	for _, n := range []string{"sloppy_tcp", "sloppy_sctp"} {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n+"="+strings.TrimSpace(string(b)))
	}
	return strings.Join(out, " ")
}

func TestWantDaemonsECMP(t *testing.T) {
	for _, leader := range []bool{false, true} {
		got := WantDaemons(ecmpTarget(leader))
		if len(got) != 2 || got[0].State != ipvsnl.DaemonBackup || got[1].State != ipvsnl.DaemonMaster || got[0].SyncID != got[1].SyncID {
			t.Errorf("leader %v: %+v, want a backup and a master, one sync id", leader, got)
		}
	}
	off := ecmpTarget(false)
	off.Settings.Off = true
	if WantDaemons(off) != nil {
		t.Error("threads wanted with sync off")
	}
}

func TestSyncFollowerRunsBothThreadsWithECMP(t *testing.T) {
	k := &fakeSync{}
	s := &SyncDaemons{Kernel: k, Log: quiet}
	for _, st := range []struct {
		name  string
		t     SyncTarget
		calls string
	}{
		{"follower", syncTarget(false), "start backup"},
		{"an ecmp VIP appears", ecmpTarget(false), "start master"},
		{"gains the lead", ecmpTarget(true), ""},
		{"loses it: the master stays", ecmpTarget(false), ""},
		{"the last ecmp VIP goes", syncTarget(false), "stop master"},
	} {
		if err := s.Pass(st.t); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		if got := strings.Join(k.took(), ","); got != st.calls {
			t.Fatalf("%s: calls %q, want %q", st.name, got, st.calls)
		}
	}
}

func TestSyncTargetOfECMP(t *testing.T) {
	c := fsm.NewConfig()
	if SyncTargetOf(c, false, "eth0").ECMP {
		t.Error("ECMP without a VIP")
	}
	c.VIPs["10.0.0.50/32"] = fsm.VIP{Prefix: netip.MustParsePrefix("10.0.0.50/32"), Interface: "lo", Mode: fsm.VIPModeECMP}
	var g SyncTargets
	if !SyncTargetOf(c, false, "eth0").ECMP || !g.Target(c, false, "eth0").ECMP {
		t.Error("ECMP not seen")
	}
}

// While the model has an ecmp VIP a pass sets sloppy_tcp and sloppy_sctp,
// with sync off too, over the operator's value, logging each change; once
// it goes they are left as they are, as the sync sysctls are.
func TestSyncPassSetsSloppyWithECMP(t *testing.T) {
	dir := ecmpSysctls(t)
	var logs bytes.Buffer
	s := &SyncDaemons{Kernel: &fakeSync{}, SysctlDir: dir, Log: slog.New(slog.NewTextHandler(&logs, nil)),
		Sysctls: []Sysctl{{"sloppy_tcp", "0"}, {"conntrack", "1"}}}
	if err := s.Pass(syncTarget(false)); err != nil {
		t.Fatal(err)
	}
	if got := sloppy(t, dir); got != "sloppy_tcp=0 sloppy_sctp=0" {
		t.Fatalf("without ecmp: %s", got)
	}
	off := ecmpTarget(false)
	off.Settings.Off = true
	for range 2 {
		if err := s.Pass(off); err != nil {
			t.Fatal(err)
		}
	}
	if got := sloppy(t, dir); got != "sloppy_tcp=1 sloppy_sctp=1" {
		t.Fatalf("with ecmp, sync off: %s", got)
	}
	if !strings.Contains(readSysctls(t, dir), "conntrack=1") {
		t.Error("the operator's other sysctls not kept")
	}
	out := logs.String()
	for _, w := range []string{"change=\"sloppy_tcp 0 -> 1\"", "change=\"sloppy_sctp 0 -> 1\"", "overridden while the model has an ecmp VIP\" sysctl=sloppy_tcp asked=0 set=1"} {
		if strings.Count(out, w) != 1 {
			t.Errorf("log %q %d times, want once:\n%s", w, strings.Count(out, w), out)
		}
	}
	s.Sysctls = nil
	if err := s.Pass(syncTarget(true)); err != nil {
		t.Fatal(err)
	}
	if got := sloppy(t, dir); got != "sloppy_tcp=1 sloppy_sctp=1" {
		t.Fatalf("after the last ecmp VIP: %s, want them left", got)
	}
}
