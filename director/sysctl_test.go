package director

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

func TestApplySysctls(t *testing.T) {
	dir := t.TempDir()
	// As the kernel prints them: a vector with a tab, the defaults.
	for name, v := range map[string]string{"sync_version": "1\n", "sync_threshold": "3\t50\n", "sync_refresh_period": "0\n",
		"sync_retries": "0\n", "backup_only": "0\n", "expire_nodest_conn": "0\n", "expire_quiescent_template": "0\n", "conntrack": "0\n"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	changed, err := ApplySysctls(dir, SyncSysctls(false))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(changed, "; "); got != "expire_nodest_conn 0 -> 1; expire_quiescent_template 0 -> 1" {
		t.Fatalf("changed %q", got)
	}
	if changed, err := ApplySysctls(dir, SyncSysctls(false)); err != nil || len(changed) != 0 {
		t.Fatalf("second apply: changed %q, err %v; want nothing", changed, err)
	}
	changed, _ = ApplySysctls(dir, SyncSysctls(true))
	if b, _ := os.ReadFile(filepath.Join(dir, "conntrack")); len(changed) != 1 || string(b) != "1\n" {
		t.Fatalf("with masquerading: changed %q, conntrack %q", changed, b)
	}
	os.Remove(filepath.Join(dir, "sync_retries"))
	_, err = ApplySysctls(dir, SyncSysctls(true))
	if err == nil || !strings.Contains(err.Error(), "sysctl sync_retries") {
		t.Fatalf("a missing setting: err %v, want it named", err)
	}
}

func TestMasquerading(t *testing.T) {
	c := fsm.NewConfig()
	svc := &fsm.Service{Servers: map[string]*fsm.RealServer{"a": {Forward: fsm.DirectRoute}}}
	c.Services["s"] = svc
	if Masquerading(c) {
		t.Fatal("direct routing taken for masquerading")
	}
	svc.Sorry = &fsm.RealServer{Forward: fsm.Masquerade}
	if !Masquerading(c) {
		t.Fatal("a masqueraded sorry server not seen")
	}
}

// Each sync pass sets the sysctls, conntrack with masquerading.
func TestSyncPassSetsSysctls(t *testing.T) {
	dir := t.TempDir()
	for _, s := range SyncSysctls(true) {
		if err := os.WriteFile(filepath.Join(dir, s.Name), []byte("0\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s := &SyncDaemons{Kernel: &fakeSync{}, SysctlDir: dir, Log: quiet}
	st := syncTarget(false)
	st.Masquerading = true
	if err := s.Pass(st); err != nil {
		t.Fatal(err)
	}
	for _, want := range SyncSysctls(true) {
		b, _ := os.ReadFile(filepath.Join(dir, want.Name))
		if got := strings.TrimSpace(string(b)); got != want.Value {
			t.Errorf("%s = %q, want %q", want.Name, got, want.Value)
		}
	}
}
