package director

import (
	"time"

	"golang.org/x/sys/unix"
)

// threadCPU is the user and system CPU time of the calling OS thread. The
// kernel's work for a netlink request (a dump's filling included) is
// system time of the thread that sends or reads it, so a goroutine locked
// to its thread around a pass measures the pass's whole cost, kernel side
// too, and none of the other goroutines'.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
