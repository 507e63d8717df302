package bgp

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
)

var (
	vip4 = netip.MustParsePrefix("10.99.0.1/32")
	vip6 = netip.MustParsePrefix("fd99::1/128")
)

// speakerConfig is speaker i's configuration: an IPv4 and an IPv6 session
// to the router, with BFD at 100 ms × 3 and a hold time (30 s) far longer
// than any wait in the test, so that a route gone within seconds of a cut
// link was taken away by BFD. Speaker 3's IPv4 session has a TCP MD5
// password, as the router's configuration for it has.
func speakerConfig(i int) Config {
	bfd := &BFD{MinTx: 100 * time.Millisecond, MinRx: 100 * time.Millisecond, Multiplier: 3}
	c := Config{
		LocalAS:  speakerAS,
		RouterID: speakerAddr(i),
		Peers: []Peer{
			{Address: routerAddr, AS: routerAS, HoldTime: 30 * time.Second, ConnectRetry: time.Second, BFD: bfd},
			{Address: routerAddr6, AS: routerAS, HoldTime: 30 * time.Second, ConnectRetry: time.Second},
		},
	}
	if i == passwordSpeaker {
		c.Peers[0].Password = routerPassword
	}
	return c
}

// TestRouterECMP: three directors announce one VIP to a BIRD router; the
// router's kernel holds one route with a next hop per director, and each
// way a director leaves (withdraw, drain, close, crash, cut link) takes
// exactly its next hop away.
func TestRouterECMP(t *testing.T) {
	requireRouter(t)
	tp := newTopology(t, 3)
	router := harness.StartBird(t, tp.router, routerConf(routerOptions{speakers: 3, hold: 30, bfd: true, ipv6: true, password: true}))
	f := newFIB(t, tp.router)
	s1, s2, s3 := speakerAddr(1), speakerAddr(2), speakerAddr(3)

	var sp []*speakerProc
	for i := 1; i <= 3; i++ {
		sp = append(sp, tp.startSpeaker(i, "gobgp", speakerConfig(i)))
	}
	for _, s := range sp {
		s.do("announce " + vip4.String())
		s.do("announce " + vip6.String())
	}
	f.waitNexthops(t, vip4, 30*time.Second, s1, s2, s3)
	f.waitNexthops(t, vip6, 30*time.Second, speakerAddr6(1), speakerAddr6(2), speakerAddr6(3))

	// Each speaker reports both sessions up, BFD up on the IPv4 one, and
	// what it advertises on each.
	for i, s := range sp {
		harness.Eventually(t, 10*time.Second, "speaker's sessions and BFD up", func() (bool, string) {
			st := s.peers()
			ok := len(st) == 2 && st[0].State == "established" && st[1].State == "established" &&
				st[0].BFD == "up" && st[1].BFD == "" &&
				slices.Equal(st[0].Announced, []netip.Prefix{vip4}) && slices.Equal(st[1].Announced, []netip.Prefix{vip6}) &&
				!st[0].Since.IsZero()
			return ok, tp.speaker[i] + ": " + s.do("peers")
		})
	}
	out, err := router.Cmd("show", "bfd", "sessions")
	if err != nil || strings.Count(out, " Up ") != 3 {
		t.Fatalf("the router's BFD sessions, want 3 up: %v\n%s", err, out)
	}

	// The router resets speaker 2's IPv4 session: the speaker logs it down
	// with the router's reason, then up again, and its next hop returns.
	if _, err := router.Cmd("restart", "s2"); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 30*time.Second, "speaker 2's session down once, then up again", func() (bool, string) {
		out := sp[1].p.output()
		down := strings.Count(out, `msg="bgp session down" peer=10.98.0.254 peer_as=65000`)
		up := strings.Count(out, `msg="bgp session up" peer=10.98.0.254 peer_as=65000 router_id=10.98.0.254`)
		return down == 1 && up == 2, out
	})
	f.waitNexthops(t, vip4, 30*time.Second, s1, s2, s3)
	harness.Eventually(t, 10*time.Second, "speaker 2's BFD up again", func() (bool, string) {
		st := sp[1].peers()
		out, _ := router.Cmd("show", "bfd", "sessions")
		return st[0].BFD == "up" && strings.Count(out, " Up ") == 3, out
	})

	// Withdraw takes exactly that speaker's next hop; announcing again
	// brings it back.
	sp[1].do("withdraw " + vip4.String())
	f.waitNexthops(t, vip4, 10*time.Second, s1, s3)
	f.waitNexthops(t, vip6, time.Second, speakerAddr6(1), speakerAddr6(2), speakerAddr6(3))
	sp[1].do("announce " + vip4.String())
	f.waitNexthops(t, vip4, 10*time.Second, s1, s2, s3)

	// Drain: the router sees 65535:0 on speaker 1's path and, by its
	// RFC 8326 policy, drops it from the ECMP set.
	sp[0].do("drain " + vip4.String())
	harness.Eventually(t, 10*time.Second, "GRACEFUL_SHUTDOWN on speaker 1's path at the router", func() (bool, string) {
		c, out, err := router.Communities(vip4)
		return err == nil && c["s1"] == "(65535,0)" && c["s2"] == "" && c["s3"] == "", out
	})
	f.waitNexthops(t, vip4, 10*time.Second, s2, s3)

	// Close: a Cease to the router, which withdraws at once.
	sp[2].close()
	f.waitNexthops(t, vip4, 10*time.Second, s2)
	f.waitNexthops(t, vip6, 10*time.Second, speakerAddr6(1), speakerAddr6(2))

	// A crash: the kernel closes the dead process's connections. Speaker
	// 1's drained path is the only one left, so the router uses it.
	sp[1].p.kill()
	f.waitNexthops(t, vip4, 10*time.Second, s1)
	f.waitNexthops(t, vip6, 10*time.Second, speakerAddr6(1))

	// A cut link: nothing reaches the router, which only BFD can tell
	// (the hold time is 30 s); the IPv6 session, without BFD, keeps its
	// route until the hold timer, beyond this wait.
	if err := tp.cut(1); err != nil {
		t.Fatal(err)
	}
	cut := time.Now()
	f.waitNexthops(t, vip4, 5*time.Second, nil...)
	t.Logf("route gone %s after the link was cut (BFD 100 ms × 3)", time.Since(cut).Round(time.Millisecond))
	if got, err := f.nexthops(vip6); err != nil || len(got) != 1 {
		t.Fatalf("IPv6 route without BFD: via %v (%v); want speaker 1's until the hold time", got, err)
	}
}
