package faults

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"testing"
	"time"

	"github.com/vishvananda/netns"
)

// ClientIn returns an HTTP client (trusting tc's CAs, for a TLS cluster)
// whose connections are opened inside the network namespace ns: a socket
// belongs to the namespace of the thread that created it, so each dial
// runs on a thread switched there and back.
func ClientIn(t testing.TB, ns string, tc *tls.Config) *http.Client {
	t.Helper()
	target, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatalf("namespace %s: %v", ns, err)
	}
	t.Cleanup(func() { target.Close() })
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		home, err := netns.Get()
		if err != nil {
			return nil, err
		}
		defer home.Close()
		if err := netns.Set(target); err != nil {
			return nil, fmt.Errorf("enter %s: %w", ns, err)
		}
		conn, derr := (&net.Dialer{Timeout: 3 * time.Second}).DialContext(ctx, network, addr)
		if err := netns.Set(home); err != nil {
			// This thread must not run anything else: LockOSThread
			// without Unlock makes the runtime retire it.
			runtime.LockOSThread()
			return nil, fmt.Errorf("leave %s: %w", ns, err)
		}
		return conn, derr
	}
	return &http.Client{Transport: &http.Transport{DialContext: dial, TLSClientConfig: tc, DisableKeepAlives: true}}
}
