package topo

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// teardown deletes this prefix's namespaces, veths and bridge, whichever
// exist, d4 and d5 included whatever this topology's Options.Directors: a
// crashed five-director run leaves them for the next build to remove. It
// first kills every process inside those namespaces (they are ours: a
// namespace holding a process outlives `ip netns del`). Deleting
// the root end of a veth pair deletes both ends at once, so a new Build can
// reuse the names immediately rather than after the namespace's
// asynchronous destruction.
func (tp *Topology) teardown() error {
	var nsPaths []string
	var b strings.Builder
	for _, n := range namespaces(MaxDirectors) {
		if exists("/sys/class/net/" + tp.Veth(n)) {
			fmt.Fprintf(&b, "link del %s\n", tp.Veth(n))
		}
		if p := "/run/netns/" + tp.NS(n); exists(p) {
			nsPaths = append(nsPaths, p)
			fmt.Fprintf(&b, "netns del %s\n", tp.NS(n))
		}
	}
	if exists("/sys/class/net/" + tp.bridge) {
		fmt.Fprintf(&b, "link del %s\n", tp.bridge)
	}
	killIn(nsPaths)
	if b.Len() > 0 {
		// -force: go on past an entry that vanished meanwhile; the checks
		// below say whether anything is really left.
		_ = ipBatch("", b.String(), true)
	}
	var left []string
	for _, n := range namespaces(MaxDirectors) {
		if exists("/run/netns/" + tp.NS(n)) {
			left = append(left, "netns "+tp.NS(n))
		}
		if exists("/sys/class/net/" + tp.Veth(n)) {
			left = append(left, "link "+tp.Veth(n))
		}
	}
	if exists("/sys/class/net/" + tp.bridge) {
		left = append(left, "link "+tp.bridge)
	}
	if len(left) > 0 {
		return fmt.Errorf("still present: %s", strings.Join(left, ", "))
	}
	return nil
}

// killIn SIGKILLs every process whose network namespace is one of the
// given /run/netns files, found as `ip netns pids` does: by comparing the
// namespace inode of /proc/PID/ns/net.
func killIn(nsPaths []string) {
	if len(nsPaths) == 0 {
		return
	}
	type id struct{ dev, ino uint64 }
	want := map[id]bool{}
	for _, p := range nsPaths {
		var st syscall.Stat_t
		if syscall.Stat(p, &st) == nil {
			want[id{st.Dev, st.Ino}] = true
		}
	}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		var st syscall.Stat_t
		if syscall.Stat(filepath.Join("/proc", e.Name(), "ns", "net"), &st) != nil {
			continue
		}
		if want[id{st.Dev, st.Ino}] {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	}
}

// lock takes an exclusive flock on a file named after the bridge. The
// kernel drops it if the process dies, so a crash never leaves it held.
func lock(bridge string, timeout time.Duration) (func(), error) {
	path := lockPath(bridge)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	err = poll(timeout, func() error {
		return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	})
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s (another lab with the same prefix is running): %w", path, err)
	}
	return func() { f.Close() }, nil
}

// lockPath is never removed by Build: deleting a lock file that another
// process may already have open would let two builds hold "the" lock.
func lockPath(bridge string) string {
	return filepath.Join(os.TempDir(), "ipvsman-topo-"+bridge+".lock")
}
