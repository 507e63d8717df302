package director

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/ipvsman/ipvsman/fsm"
)

// Sysctl is one IPVS setting under /proc/sys/net/ipv4/vs and the value a
// director needs.
type Sysctl struct {
	Name, Value string
}

// SyncSysctlDir is where the kernel keeps them, per network namespace.
const SyncSysctlDir = "/proc/sys/net/ipv4/vs"

// SyncSysctls are the IPVS settings connection sync and failover depend
// on; docs/sync.md says why each has its value. conntrack is set only with
// masquerading services, whose replies netfilter must see as belonging to
// their connection (stateful firewalls, SNAT on the director); for the
// others it only costs.
func SyncSysctls(masquerading bool) []Sysctl {
	out := []Sysctl{
		{"sync_version", "1"},
		{"sync_threshold", "3 50"},
		{"sync_refresh_period", "0"},
		{"sync_retries", "0"},
		{"backup_only", "0"},
		{"expire_nodest_conn", "1"},
		{"expire_quiescent_template", "1"},
	}
	if masquerading {
		out = append(out, Sysctl{"conntrack", "1"})
	}
	return out
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

// Masquerading reports whether any real server (or sorry server) of the
// config is masqueraded.
func Masquerading(c *fsm.Config) bool {
	for _, svc := range c.Services {
		if svc.Sorry != nil && svc.Sorry.Forward == fsm.Masquerade {
			return true
		}
		for _, rs := range svc.Servers {
			if rs.Forward == fsm.Masquerade {
				return true
			}
		}
	}
	return false
}
