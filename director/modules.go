package director

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/ipvsman/ipvsman/fsm"
)

// Modules says which IPVS schedulers and persistence engines this node's
// kernel can provide. The kernel loads ip_vs_NAME (ip_vs_pe_NAME) itself,
// through request_module, the first time a service names it, so a
// scheduler is available when that module is loaded or built in
// (/sys/module/NAME) or installed for the running kernel (modules.dep or
// modules.builtin under /lib/modules/RELEASE), whatever list ipvsman was
// built with.
type Modules struct {
	// Release is the running kernel's (uname -r), for messages.
	Release string
	// Sys is /sys/module; Lib is /lib/modules/RELEASE.
	Sys, Lib string

	mu    sync.Mutex
	index map[string]bool // module names in modules.dep and modules.builtin
	stamp string          // their sizes and times when index was read
}

// KernelModules is the running kernel's.
func KernelModules() (*Modules, error) {
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		return nil, fmt.Errorf("uname: %w", err)
	}
	var b strings.Builder
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b.WriteByte(byte(c))
	}
	rel := b.String()
	return &Modules{Release: rel, Sys: "/sys/module", Lib: filepath.Join("/lib/modules", rel)}, nil
}

// ErrNoModuleIndex means the kernel's module lists could not be read (no
// /lib/modules for the running kernel, as in some containers): nothing
// can be said about a module that is not loaded.
var ErrNoModuleIndex = errors.New("no module index")

// Has reports whether the kernel has module name, loaded, built in or
// installed. It re-reads the module lists only when they changed (a
// kernel package installed its modules).
func (m *Modules) Has(name string) (bool, error) {
	if _, err := os.Stat(filepath.Join(m.Sys, name)); err == nil {
		return true, nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.load(); err != nil {
		return false, err
	}
	return m.index[name], nil
}

var moduleLists = []string{"modules.dep", "modules.builtin"}

func (m *Modules) load() error {
	var stamp strings.Builder
	for _, f := range moduleLists {
		st, err := os.Stat(filepath.Join(m.Lib, f))
		if err != nil {
			if f == "modules.builtin" && errors.Is(err, fs.ErrNotExist) {
				continue // a kernel without built-in modules may lack it
			}
			return fmt.Errorf("%w for kernel %s: %w", ErrNoModuleIndex, m.Release, err)
		}
		fmt.Fprintf(&stamp, "%d.%d ", st.Size(), st.ModTime().UnixNano())
	}
	if m.index != nil && stamp.String() == m.stamp {
		return nil
	}
	index := map[string]bool{}
	for _, f := range moduleLists {
		if err := readModuleList(filepath.Join(m.Lib, f), index); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%w for kernel %s: %w", ErrNoModuleIndex, m.Release, err)
		}
	}
	m.index, m.stamp = index, stamp.String()
	return nil
}

// readModuleList adds the modules a modules.dep ("kernel/.../ip_vs_rr.ko:
// kernel/.../ip_vs.ko") or modules.builtin ("kernel/.../ip_vs.ko") file
// names, by module name: the file's base name without .ko and any
// compression suffix, '-' read as '_' as modprobe does.
func readModuleList(file string, into map[string]bool) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		p, _, _ := strings.Cut(sc.Text(), ":")
		base := path.Base(strings.TrimSpace(p))
		for _, suffix := range []string{".xz", ".zst", ".gz"} {
			base = strings.TrimSuffix(base, suffix)
		}
		if name, ok := strings.CutSuffix(base, ".ko"); ok {
			into[strings.ReplaceAll(name, "-", "_")] = true
		}
	}
	return sc.Err()
}

// Admit refuses a configuration (next, replacing cur) naming a scheduler
// or persistence engine this kernel cannot load, naming the service, the
// field and the value. It is the leader's, before a write is proposed:
// fsm cannot ask a kernel, and a name no kernel has would otherwise become
// a replicated service that fails in every kernel for ever. A name cur
// already uses is let through (it was admitted when it came, and refusing
// it would refuse every unrelated write); a node whose kernel lacks it
// reports the failure from its reconciler. When the kernel's module lists
// cannot be read, nothing is refused: the reconcilers' reports say.
func (m *Modules) Admit(cur, next *fsm.Config) error {
	if next == nil {
		return nil
	}
	have := map[string]bool{}
	if cur != nil {
		for _, s := range cur.Services {
			have[schedModule(s.Scheduler)] = true
			if p := s.Persistence; p != nil && p.Engine != "" {
				have[peModule(p.Engine)] = true
			}
		}
	}
	verdict := map[string]error{}
	check := func(module string) error {
		if have[module] {
			return nil
		}
		if err, done := verdict[module]; done {
			return err
		}
		ok, err := m.Has(module)
		switch {
		case err != nil:
			verdict[module] = nil // cannot tell: the reconcilers will
		case !ok:
			verdict[module] = fmt.Errorf("this kernel (%s) has no module %s", m.Release, module)
		default:
			verdict[module] = nil
		}
		return verdict[module]
	}
	refused := false
	for _, s := range next.Services {
		if check(schedModule(s.Scheduler)) != nil {
			refused = true
		}
		if p := s.Persistence; p != nil && p.Engine != "" && check(peModule(p.Engine)) != nil {
			refused = true
		}
	}
	if !refused {
		return nil
	}
	// Name the first service in order, so that the answer is the same
	// every time; sorting is left to this rare path.
	for _, k := range next.SortedServiceKeys() {
		s := next.Services[k]
		if err := check(schedModule(s.Scheduler)); err != nil {
			return fmt.Errorf("service %s scheduler %q: %w", k, s.Scheduler, err)
		}
		if p := s.Persistence; p != nil && p.Engine != "" {
			if err := check(peModule(p.Engine)); err != nil {
				return fmt.Errorf("service %s persistence engine %q: %w", k, p.Engine, err)
			}
		}
	}
	return nil
}

func schedModule(name string) string { return "ip_vs_" + name }
func peModule(name string) string    { return "ip_vs_pe_" + name }
