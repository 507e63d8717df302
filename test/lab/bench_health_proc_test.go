//go:build lab && labbench

package lab

// What bench-health reads of a process and of the VM in /proc.

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// userHZ is the unit of /proc/PID/stat's times: USER_HZ, 100 on every
// Linux architecture the lab runs (sysconf would need cgo).
const userHZ = 100

// procCPU is the process's user+system CPU time in seconds, all threads.
func procCPU(t *testing.T, pid int) float64 {
	u, s := procCPUSplit(t, pid)
	return u + s
}

// procCPUSplit is the process's user and system CPU time in seconds.
func procCPUSplit(t *testing.T, pid int) (user, system float64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after its closing parenthesis. Fields 14 and 15 (utime, stime) are
	// the 12th and 13th after it.
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	ut, err1 := strconv.ParseUint(f[11], 10, 64)
	st, err2 := strconv.ParseUint(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		t.Fatalf("/proc/%d/stat: %q", pid, b)
	}
	return float64(ut) / userHZ, float64(st) / userHZ
}

// procMem is VmRSS and VmHWM (peak RSS) in MiB.
func procMem(t *testing.T, pid int) (rss, hwm float64) {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseFloat(f[1], 64)
		switch f[0] {
		case "VmRSS:":
			rss = kb / 1024
		case "VmHWM:":
			hwm = kb / 1024
		}
	}
	return rss, hwm
}

// vmCPU is the whole VM's busy and total jiffies (all CPUs, /proc/stat).
func vmCPU(t *testing.T) (busy, total uint64) {
	t.Helper()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	for i, f := range strings.Fields(line)[1:] {
		v, _ := strconv.ParseUint(f, 10, 64)
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}
