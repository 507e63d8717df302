package harness

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/ipvsman/ipvsman/test/skip"
)

// ScratchNS makes a network namespace with lo up and an interface holding
// cidr (an address off loopback, such as 10.77.0.1/24), and
// removes it with t.Cleanup: an address a test can listen on and reach
// without a lab topology. The name carries this process's ID, so that
// packages testing at once do not share one. It needs root.
func ScratchNS(t testing.TB, name, cidr string) string {
	t.Helper()
	if os.Geteuid() != 0 {
		skip.Now(t, "harness: a network namespace needs root")
	}
	ns := fmt.Sprintf("%s-%d", name, os.Getpid())
	ip := func(args ...string) error {
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
		}
		return nil
	}
	_ = ip("netns", "del", ns) // left by a crashed run of this process ID
	if err := ip("netns", "add", ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := ip("netns", "del", ns); err != nil {
			t.Error(err)
		}
	})
	for _, args := range [][]string{
		{"-n", ns, "link", "set", "lo", "up"},
		// A veth pair with both ends inside: the dummy driver is not in
		// every kernel that has veth (the lab's topology needs it too).
		{"-n", ns, "link", "add", "scratch0", "type", "veth", "peer", "name", "scratch1"},
		{"-n", ns, "addr", "add", cidr, "dev", "scratch0"},
		{"-n", ns, "link", "set", "scratch1", "up"},
		{"-n", ns, "link", "set", "scratch0", "up"},
	} {
		if err := ip(args...); err != nil {
			t.Fatal(err)
		}
	}
	return ns
}

// ListenIn opens a TCP listener on addr inside network namespace ns; the
// socket stays in that namespace. The listener is closed with t.Cleanup.
func ListenIn(t testing.TB, ns, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	err := InNamespace(ns, func() (err error) {
		ln, err = net.Listen("tcp", addr)
		return err
	})
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		t.Fatalf("listen on %s in namespace %s: %v", addr, ns, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// InNamespace runs f on a thread of its own inside network namespace ns,
// so that what f creates (sockets) belongs to ns, and returns f's error.
// The thread comes back to the test's namespace afterwards; one that
// cannot stays locked and parked, out of the way: no other goroutine may
// run in ns, and a thread that exits would take with it the processes it
// started with Pdeathsig.
func InNamespace(ns string, f func() error) error {
	done := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		home, err := netns.Get()
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer home.Close()
		h, err := netns.GetFromName(ns)
		if err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		defer h.Close()
		if err := netns.Set(h); err != nil {
			runtime.UnlockOSThread()
			done <- err
			return
		}
		err = f()
		if back := netns.Set(home); back != nil {
			done <- errors.Join(err, fmt.Errorf("back to the test's namespace: %w", back))
			select {}
		}
		runtime.UnlockOSThread()
		done <- err
	}()
	return <-done
}
