package main

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/vip/bgp"
)

func TestBGPFlagsMapOntoTheSpeaker(t *testing.T) {
	pw := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pw, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, on, err := bgpConfig(bgpOptions{as: 65001, peers: []string{
		"10.0.0.1,as=65000,bfd,hold=30s,password-file=" + pw,
		"fd00::1,as=65000,bfd,bfd-interval=100ms,bfd-multiplier=5,local=fd00::11",
		"10.0.0.2,as=65001",
	}}, "10.0.0.11:7000")
	if err != nil || !on {
		t.Fatalf("bgpConfig: %v (on %v)", err, on)
	}
	if cfg.LocalAS != 65001 || cfg.RouterID != netip.MustParseAddr("10.0.0.11") || len(cfg.Peers) != 3 {
		t.Fatalf("config %+v", cfg)
	}
	p := cfg.Peers[0]
	if p.Address != netip.MustParseAddr("10.0.0.1") || p.AS != 65000 || p.HoldTime != 30*time.Second || p.Password != "s3cret" || p.BFD == nil || *p.BFD != (bgp.BFD{}) {
		t.Errorf("peer 1: %+v", p)
	}
	p = cfg.Peers[1]
	if p.LocalAddress != netip.MustParseAddr("fd00::11") || p.BFD == nil || *p.BFD != (bgp.BFD{MinTx: 100 * time.Millisecond, MinRx: 100 * time.Millisecond, Multiplier: 5}) {
		t.Errorf("peer 2: %+v", p)
	}
	if p := cfg.Peers[2]; p.BFD != nil || p.AS != 65001 {
		t.Errorf("peer 3: %+v", p)
	}
	// The router ID flag wins over the Raft address.
	cfg, _, err = bgpConfig(bgpOptions{as: 1, routerID: "192.0.2.9", peers: []string{"10.0.0.1,as=2"}}, "[fd00::11]:7000")
	if err != nil || cfg.RouterID != netip.MustParseAddr("192.0.2.9") {
		t.Fatalf("--bgp-router-id: %v %v", cfg.RouterID, err)
	}
}

func TestBGPOffWithoutPeers(t *testing.T) {
	for _, o := range []bgpOptions{{}, {as: 65001}} {
		if _, on, err := bgpConfig(o, "10.0.0.11:7000"); on || err != nil {
			t.Errorf("%+v: on %v, err %v; want off", o, on, err)
		}
	}
}

func TestBGPFlagsRefusedNameTheFlagAndValue(t *testing.T) {
	for _, c := range []struct {
		o    bgpOptions
		raft string
		want string
	}{
		{bgpOptions{peers: []string{"10.0.0.1,as=65000"}}, "10.0.0.11:7000", `--bgp-peer "10.0.0.1,as=65000" without --bgp-as`},
		{bgpOptions{as: 1, peers: []string{"router1,as=65000"}}, "10.0.0.11:7000", `--bgp-peer "router1,as=65000": want the router's address first`},
		{bgpOptions{as: 1, peers: []string{"10.0.0.1"}}, "10.0.0.11:7000", `--bgp-peer "10.0.0.1": as= missing`},
		{bgpOptions{as: 1, peers: []string{"10.0.0.1,as=x"}}, "10.0.0.11:7000", `--bgp-peer "10.0.0.1,as=x": as="x"`},
		{bgpOptions{as: 1, peers: []string{"10.0.0.1,as=2,bfd=yes"}}, "10.0.0.11:7000", "bfd takes no value"},
		{bgpOptions{as: 1, peers: []string{"10.0.0.1,as=2,bfd-interval=100ms"}}, "10.0.0.11:7000", "without bfd"},
		{bgpOptions{as: 1, peers: []string{"10.0.0.1,as=2,hold=soon"}}, "10.0.0.11:7000", `hold="soon"`},
		{bgpOptions{as: 1, peers: []string{"10.0.0.1,as=2,colour=red"}}, "10.0.0.11:7000", `unknown option "colour"`},
		{bgpOptions{as: 1, peers: []string{"10.0.0.1,as=2,password-file=/nonexistent/pw"}}, "10.0.0.11:7000", "password-file"},
		{bgpOptions{as: 1, routerID: "fd00::1", peers: []string{"10.0.0.1,as=2"}}, "10.0.0.11:7000", `--bgp-router-id "fd00::1": want an IPv4 address`},
		{bgpOptions{as: 1, peers: []string{"10.0.0.1,as=2"}}, "[fd00::11]:7000", `the --raft-addr host "fd00::11" is no IPv4 address`},
		{bgpOptions{as: 1, drainTimeout: time.Hour, peers: []string{"10.0.0.1,as=2"}}, "10.0.0.11:7000", "--bgp-drain-timeout 1h0m0s"},
	} {
		_, _, err := bgpConfig(c.o, c.raft)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%+v: err %v, want one saying %q", c.o, err, c.want)
		}
	}
}

func TestReadinessSettleCoversTheFirstFailures(t *testing.T) {
	base := trackOptions{interval: 200 * time.Millisecond, fall: 3, rise: 2}
	if d := readinessSettle(base); d != 0 {
		t.Errorf("nothing tracked but links: settle %s, want 0 (links count at once)", d)
	}
	withAddr := base
	withAddr.addrs = []string{"192.0.2.1"}
	if d := readinessSettle(withAddr); d != 800*time.Millisecond {
		t.Errorf("a tracked address: settle %s, want 3 × 200ms + 200ms", d)
	}
	withScript := withAddr
	withScript.scripts = []string{"true"}
	if d := readinessSettle(withScript); d != 3200*time.Millisecond {
		t.Errorf("a track script: settle %s, want 3 × 5 × 200ms + 200ms", d)
	}
}
