package director

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// kernelSysctls writes the IPVS sysctls as the kernel prints them (a vector
// with a tab) with its defaults into a directory of their own.
func kernelSysctls(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, v := range map[string]string{"sync_version": "1\n", "sync_threshold": "3\t50\n", "sync_refresh_period": "0\n",
		"sync_retries": "0\n", "backup_only": "0\n", "expire_nodest_conn": "0\n", "expire_quiescent_template": "0\n", "conntrack": "0\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func readSysctls(t *testing.T, dir string) string {
	t.Helper()
	var out []string
	for _, name := range []string{"backup_only", "conntrack", "expire_nodest_conn", "expire_quiescent_template", "sync_refresh_period", "sync_retries", "sync_threshold", "sync_version"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, name+"="+strings.Join(strings.Fields(string(b)), " "))
	}
	return strings.Join(out, " ")
}

func TestApplySysctls(t *testing.T) {
	dir := kernelSysctls(t)
	want := []Sysctl{{"sync_threshold", "3 50"}, {"backup_only", "1"}, {"expire_nodest_conn", "1"}}
	changed, err := ApplySysctls(dir, want)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(changed, "; "); got != "backup_only 0 -> 1; expire_nodest_conn 0 -> 1" {
		t.Fatalf("changed %q", got)
	}
	if changed, err := ApplySysctls(dir, want); err != nil || len(changed) != 0 {
		t.Fatalf("second apply: changed %q, err %v; want nothing", changed, err)
	}
	os.Remove(filepath.Join(dir, "sync_retries"))
	_, err = ApplySysctls(dir, SyncSysctls())
	if err == nil || !strings.Contains(err.Error(), "sysctl sync_retries") {
		t.Fatalf("a missing setting: err %v, want it named", err)
	}
}

func TestParseSysctls(t *testing.T) {
	dir := kernelSysctls(t)
	got, err := ParseSysctls(" expire_nodest_conn=1, conntrack = 1 ,", dir)
	if err != nil || len(got) != 2 || got[0] != (Sysctl{"expire_nodest_conn", "1"}) || got[1] != (Sysctl{"conntrack", "1"}) {
		t.Fatalf("got %+v, %v", got, err)
	}
	if got, err := ParseSysctls("", dir); err != nil || got != nil {
		t.Fatalf("empty: %+v, %v; want none", got, err)
	}
	for list, want := range map[string]string{
		"expire_nodest_conn":              `"expire_nodest_conn": want name=value`,
		"sync_threshold=3 50":             `"sync_threshold=3 50": sync_threshold is set by connection sync`,
		"backup_only=1":                   `"backup_only=1": backup_only is set by connection sync`,
		"../ipv4/ip_forward=1":            `"../ipv4/ip_forward=1": "../ipv4/ip_forward" is not a sysctl name`,
		"no_such=1":                       `"no_such=1": stat`,
		"conntrack=1,conntrack=0":         `"conntrack=0": conntrack given twice`,
		"expire_nodest_conn=1,=1":         `"=1": want name=value`,
		"expire_quiescent_template=1,x=,": `"x=": want name=value`,
	} {
		if _, err := ParseSysctls(list, dir); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: err %v, want %q", list, err, want)
		}
	}
}

// With sync on a pass sets the sync sysctls and the operator's; with sync
// off only the operator's; and with none asked for, nothing but the sync
// ones, ever: the others are global to the namespace.
func TestSyncPassSetsOnlyItsSysctls(t *testing.T) {
	dir := kernelSysctls(t)
	before := readSysctls(t, dir)
	off := syncTarget(true)
	off.Settings.Off = true
	s := &SyncDaemons{Kernel: &fakeSync{}, SysctlDir: dir, Log: quiet}
	if err := s.Pass(off); err != nil {
		t.Fatal(err)
	}
	if got := readSysctls(t, dir); got != before {
		t.Fatalf("sync off, nothing asked: sysctls\n%s\nwant them untouched\n%s", got, before)
	}
	if err := os.WriteFile(filepath.Join(dir, "sync_retries"), []byte("2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Sysctls = []Sysctl{{"expire_quiescent_template", "1"}}
	if err := s.Pass(off); err != nil {
		t.Fatal(err)
	}
	want := "backup_only=0 conntrack=0 expire_nodest_conn=0 expire_quiescent_template=1 sync_refresh_period=0 sync_retries=2 sync_threshold=3 50 sync_version=1"
	if got := readSysctls(t, dir); got != want {
		t.Fatalf("sync off, one asked for:\n%s\nwant\n%s", got, want)
	}
	if err := s.Pass(syncTarget(false)); err != nil {
		t.Fatal(err)
	}
	want = strings.Replace(want, "sync_retries=2", "sync_retries=0", 1)
	if got := readSysctls(t, dir); got != want {
		t.Fatalf("sync on:\n%s\nwant\n%s", got, want)
	}
}
