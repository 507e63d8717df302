//go:build checkbench

package check

import (
	"net/netip"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipvsman/ipvsman/fsm"
)

// TestLoopCPU measures the process's CPU per 1,000 answered HTTP checks:
// CHECKBENCH_N servers on 127.0.0.1 ports from CHECKBENCH_PORT (a responder
// in another process, so that its CPU is not counted: labtool serve
// --http-ports), each checked every second, over CHECKBENCH_SECONDS.
//
//	labtool serve --name b --http 127.0.0.1:19999 --echo '' --dns '' --http-ports 20000-20999 &
//	CHECKBENCH_PORT=20000 go test -tags checkbench -run TestLoopCPU -v ./director/check/
func TestLoopCPU(t *testing.T) {
	base := envInt(t, "CHECKBENCH_PORT", 0)
	if base == 0 {
		t.Fatal("CHECKBENCH_PORT unset: start a responder and name its first port (see above)")
	}
	n := envInt(t, "CHECKBENCH_N", 1000)
	window := time.Duration(envInt(t, "CHECKBENCH_SECONDS", 20)) * time.Second
	const interval, timeout, late = time.Second, 2 * time.Second, 100 * time.Millisecond
	ch, err := New(fsm.HealthCheck{Type: "http"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := NewLoop()
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	var counting atomic.Bool
	var ok, failed, slow atomic.Int64
	for i := range n {
		target := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(base+i))
		stop, added := l.Add(ch, target, interval, timeout, time.Duration(i)*interval/time.Duration(n), every(func(r Result) {
			if !counting.Load() {
				return
			}
			switch {
			case !r.OK:
				failed.Add(1)
			case r.Latency > late:
				slow.Add(1)
				ok.Add(1)
			default:
				ok.Add(1)
			}
		}))
		if !added {
			t.Fatal("not on the loop")
		}
		defer stop()
	}
	time.Sleep(3 * time.Second) // warm up
	counting.Store(true)
	c0 := cpu(t)
	time.Sleep(window)
	c1 := cpu(t)
	counting.Store(false)
	answered := ok.Load()
	per := time.Duration(0)
	if answered > 0 {
		per = (c1 - c0) * 1000 / time.Duration(answered)
	}
	t.Logf("RESULT checks/s=%d window=%v answered=%d failed=%d late(>%v)=%d cpu=%v cpu_s_per_1000=%.3f",
		n, window, answered, failed.Load(), late, slow.Load(), c1-c0, per.Seconds())
}

func cpu(t *testing.T) time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	v, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return v
}
