package check

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/skip"
)

// canOpen reports whether this process may open an ICMP socket of kind k,
// and why not.
func canOpen(v6 bool, k icmpKind) (bool, string) {
	if k == icmpAuto {
		fam := 0
		if v6 {
			fam = 1
		}
		if _, err := icmpKinds[fam](); err != nil {
			return false, err.Error()
		}
		return true, ""
	}
	fd, err := icmpSocket(v6, k)
	if err != nil {
		return false, k.String() + ": " + err.Error()
	}
	unix.Close(fd)
	return true, ""
}

func TestICMP(t *testing.T) {
	for _, addr := range []string{"127.0.0.1", "::1"} {
		target := netip.AddrPortFrom(netip.MustParseAddr(addr), 0)
		for _, k := range []icmpKind{icmpAuto, icmpDgram, icmpRaw} {
			t.Run(addr+"/"+k.String(), func(t *testing.T) {
				if ok, why := canOpen(target.Addr().Is6(), k); !ok {
					skip.Nowf(t, "cannot open an ICMP socket: %s", why)
				}
				var ch Checker = icmpChecker{kind: k}
				if k == icmpAuto {
					ch = build(t, fsm.HealthCheck{Type: "icmp"})
				}
				r := check(t, ch, target, 5*time.Second)
				wantOK(t, r)
				if r.Detail != "echo reply" {
					t.Errorf("detail %q, want echo reply", r.Detail)
				}
			})
		}
	}
}

// TestICMPConcurrent: concurrent pings of one host each get their own
// reply (a raw socket sees them all).
func TestICMPConcurrent(t *testing.T) {
	for _, k := range []icmpKind{icmpDgram, icmpRaw} {
		t.Run(k.String(), func(t *testing.T) {
			if ok, why := canOpen(false, k); !ok {
				skip.Nowf(t, "cannot open an ICMP socket: %s", why)
			}
			ch := icmpChecker{kind: k}
			target := netip.MustParseAddrPort("127.0.0.1:0")
			var wg sync.WaitGroup
			for range 16 {
				wg.Go(func() {
					for range 10 {
						ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
						if r := ch.Check(ctx, target); !r.OK {
							t.Errorf("ping failed: %+v", r)
						}
						cancel()
					}
				})
			}
			wg.Wait()
		})
	}
}

func TestICMPCanceled(t *testing.T) {
	if ok, why := canOpen(false, icmpAuto); !ok {
		skip.Nowf(t, "cannot open an ICMP socket: %s", why)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r := build(t, fsm.HealthCheck{Type: "icmp"}).Check(ctx, netip.MustParseAddrPort("127.0.0.1:0"))
	wantFail(t, r, "cancel")
}

func TestInetChecksum(t *testing.T) {
	// An echo request, id 1, seq 1, no payload: 0x0800 + 0x0001 + 0x0001.
	b := []byte{8, 0, 0, 0, 0, 1, 0, 1}
	if got, want := inetChecksum(b), uint16(^uint16(0x0802)); got != want {
		t.Fatalf("checksum %#04x, want %#04x", got, want)
	}
	// A packet with its checksum in place sums to zero.
	sum := ^uint16(0x0802)
	b[2], b[3] = byte(sum>>8), byte(sum)
	if got := inetChecksum(b); got != 0 {
		t.Fatalf("checksum over a summed packet %#04x, want 0", got)
	}
	if got, want := inetChecksum([]byte{0xff}), ^uint16(0xff00); got != want {
		t.Fatalf("odd length: %#04x, want %#04x", got, want)
	}
}

// inNetNS runs fn on an OS thread of its own in a new network namespace
// with lo up and ping sockets allowed for every group, so that the ping
// socket path is tested whatever the host's net.ipv4.ping_group_range.
// The thread is never unlocked: it dies with the goroutine, and the
// namespace with it.
func inNetNS(t *testing.T, fn func()) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		errc <- func() error {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return fmt.Errorf("unshare: %w", err)
			}
			fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			ifr, err := unix.NewIfreq("lo")
			if err != nil {
				return err
			}
			if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
				return fmt.Errorf("lo flags: %w", err)
			}
			ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
			if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
				return fmt.Errorf("lo up: %w", err)
			}
			// /proc/sys/net shows the namespace of the thread that opens it.
			if err := os.WriteFile("/proc/sys/net/ipv4/ping_group_range", []byte("0 2147483647"), 0); err != nil {
				return fmt.Errorf("ping_group_range: %w", err)
			}
			fn()
			return nil
		}()
	}()
	select {
	case err := <-errc:
		if err != nil {
			skip.Nowf(t, "no private network namespace for ping sockets: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the network namespace test did not finish within 30s")
	}
}

func TestICMPPingSocketInNetNS(t *testing.T) {
	var results []Result
	inNetNS(t, func() {
		for _, addr := range []string{"127.0.0.1", "::1"} {
			if ok, why := canOpen(addr == "::1", icmpDgram); !ok {
				results = append(results, Result{Detail: "cannot open: " + why})
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			results = append(results, icmpChecker{kind: icmpDgram}.Check(ctx, netip.AddrPortFrom(netip.MustParseAddr(addr), 0)))
			cancel()
		}
	})
	if len(results) != 2 {
		t.Fatalf("got %d results, want 2", len(results))
	}
	for i, r := range results {
		t.Logf("%d: %+v", i, r)
		wantOK(t, r)
	}
}
