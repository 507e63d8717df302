package director

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Sysctl is one IPVS setting under /proc/sys/net/ipv4/vs and the value a
// director needs.
type Sysctl struct {
	Name, Value string
}

// SyncSysctlDir is where the kernel keeps them, per network namespace.
const SyncSysctlDir = "/proc/sys/net/ipv4/vs"

// SyncSysctls are the IPVS settings connection sync depends on, set while
// sync is on in the model (the sync threads are then ipvsmand's too);
// docs/sync.md says why each has its value. The others (expire_nodest_conn,
// conntrack, ...) change every service of the network namespace, another
// tool's too: ipvsmand sets them only when the operator names them
// (ParseSysctls).
func SyncSysctls() []Sysctl {
	return []Sysctl{
		{"sync_version", "1"},
		{"sync_threshold", "3 50"},
		{"sync_refresh_period", "0"},
		{"sync_retries", "0"},
		{"backup_only", "0"},
	}
}

// syncSysctl reports whether name is one SyncSysctls sets.
func syncSysctl(name string) bool {
	return slices.ContainsFunc(SyncSysctls(), func(s Sysctl) bool { return s.Name == name })
}

// ParseSysctls reads the operator's IPVS settings, "name=value" separated
// by commas ("expire_nodest_conn=1,expire_quiescent_template=1"), and
// checks each exists under dir. The sync settings are refused: they follow
// the model's sync setting.
func ParseSysctls(list, dir string) ([]Sysctl, error) {
	var out []Sysctl
	seen := map[string]bool{}
	for _, item := range strings.Split(list, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, value, ok := strings.Cut(item, "=")
		name, value = strings.TrimSpace(name), strings.Join(strings.Fields(value), " ")
		switch {
		case !ok || name == "" || value == "":
			return nil, fmt.Errorf("%q: want name=value, e.g. expire_nodest_conn=1", item)
		case strings.ContainsAny(name, "/.") || name != filepath.Base(name):
			return nil, fmt.Errorf("%q: %q is not a sysctl name under %s", item, name, dir)
		case syncSysctl(name):
			return nil, fmt.Errorf("%q: %s is set by connection sync while it is on in the model (sync:), not here", item, name)
		case seen[name]:
			return nil, fmt.Errorf("%q: %s given twice", item, name)
		}
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return nil, fmt.Errorf("%q: %w", item, err)
		}
		seen[name] = true
		out = append(out, Sysctl{name, value})
	}
	return out, nil
}

// ApplySysctls writes each setting under dir whose value differs and
// returns what it changed ("name old -> new"). It tries every setting and
// reports the failures together.
func ApplySysctls(dir string, want []Sysctl) ([]string, error) {
	var changed []string
	var errs []error
	for _, s := range want {
		p := filepath.Join(dir, s.Name)
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, fmt.Errorf("sysctl %s: %w", s.Name, err))
			continue
		}
		old := strings.Join(strings.Fields(string(b)), " ")
		if old == s.Value {
			continue
		}
		if err := os.WriteFile(p, []byte(s.Value+"\n"), 0o644); err != nil {
			errs = append(errs, fmt.Errorf("sysctl %s %q: %w", s.Name, s.Value, err))
			continue
		}
		changed = append(changed, fmt.Sprintf("%s %s -> %s", s.Name, old, s.Value))
	}
	return changed, errors.Join(errs...)
}
