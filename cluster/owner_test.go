package cluster

import (
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
)

// nodeGoroutines lists the goroutines running code of a Node: once
// Shutdown has returned there must be none.
func nodeGoroutines() []string {
	buf := make([]byte, 1<<22)
	buf = buf[:runtime.Stack(buf, true)]
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if strings.Contains(g, "ipvsman/cluster.(*Node)") {
			out = append(out, g)
		}
	}
	return out
}

// silentPeer accepts TCP connections (the kernel completes the handshake)
// and never answers: a gossip join to it waits for memberlist's TCP
// timeout, 10 s on the lan profile.
func silentPeer(t *testing.T) (addr string, accepted <-chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			t.Cleanup(func() { c.Close() })
			ch <- c
		}
	}()
	return ln.Addr().String(), ch
}

// A gossip join stuck on a silent peer ends when gossip stops, not at
// memberlist's TCP timeout.
func TestGossipShutdownEndsAJoin(t *testing.T) {
	g, err := startGossip("a", GossipConfig{Addr: harness.FreeAddr(t), Key: GossipKey("0123456789abcdef0123"), Profile: "lan"}, Meta{Version: "1", Protocol: 1}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	peer, accepted := silentPeer(t)
	joined := make(chan error, 1)
	go func() {
		_, err := g.join([]string{peer})
		joined <- err
	}()
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("the join never reached the peer")
	}
	start := time.Now()
	g.shutdown()
	select {
	case <-joined:
	case <-time.After(3 * time.Second):
		t.Fatal("the join still runs 3 s after gossip stopped")
	}
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("join ended %s after shutdown", took)
	}
}

// Shutdown returns only once every goroutine of the node has exited,
// including a gossip join still waiting on a peer that does not answer
// and the leader's pilot.
func TestShutdownAwaitsEveryGoroutine(t *testing.T) {
	if gs := nodeGoroutines(); len(gs) > 0 {
		t.Fatalf("node goroutines before the test (another test leaked them):\n%s", strings.Join(gs, "\n\n"))
	}
	peer, accepted := silentPeer(t)
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, gossipPeersFile), []byte(peer+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := Open(Config{
		NodeID: "t1", DataDir: dir, RaftAddr: harness.FreeAddr(t), APIAddr: "127.0.0.1:1", Bootstrap: true,
		Logger: slog.New(slog.DiscardHandler), Fatal: func(err error) { t.Errorf("fatal: %v", err) },
		Gossip: GossipConfig{Addr: harness.FreeAddr(t), Key: GossipKey("0123456789abcdef0123"), Profile: "lan"},
	})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-accepted:
	case <-time.After(5 * time.Second):
		n.Shutdown(context.Background())
		t.Fatal("the gossip join never reached the silent peer")
	}
	harness.Eventually(t, 10*time.Second, "leader", func() (bool, string) { return n.IsLeader(), "not leader" })
	start := time.Now()
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	// A goroutine's last act is its deferred wg.Done, so it may still be
	// on its way out when Shutdown returns: give it a moment. One that is
	// still blocked (a join waiting on the silent peer) stays and fails.
	var left []string
	for deadline := time.Now().Add(time.Second); ; time.Sleep(10 * time.Millisecond) {
		if left = nodeGoroutines(); len(left) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(left) > 0 {
		t.Fatalf("%d goroutine(s) of the node still run a second after Shutdown returned:\n%s", len(left), strings.Join(left, "\n\n"))
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Fatalf("Shutdown took %s: it waited out the join's TCP timeout", took)
	}
	if err := n.Shutdown(context.Background()); err != nil {
		t.Fatalf("second Shutdown: %v", err)
	}
}
