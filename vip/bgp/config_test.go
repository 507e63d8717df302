package bgp

import (
	"net/netip"
	"strings"
	"testing"
	"time"
)

func goodConfig() Config {
	return Config{
		LocalAS:  65001,
		RouterID: netip.MustParseAddr("10.0.0.11"),
		Peers:    []Peer{{Address: netip.MustParseAddr("10.0.0.1"), AS: 65000}},
	}
}

func TestConfigDefaults(t *testing.T) {
	c := goodConfig()
	c.Peers[0].BFD = &BFD{MinTx: 100 * time.Millisecond}
	given := *c.Peers[0].BFD
	if err := c.validate(); err != nil {
		t.Fatal(err)
	}
	p := c.Peers[0]
	if p.HoldTime != DefaultHoldTime || p.ConnectRetry != DefaultConnectRetry {
		t.Fatalf("hold %s, connect retry %s; want the defaults %s, %s", p.HoldTime, p.ConnectRetry, DefaultHoldTime, DefaultConnectRetry)
	}
	if *p.BFD != (BFD{MinTx: 100 * time.Millisecond, MinRx: DefaultBFDInterval, Multiplier: DefaultBFDMultiplier}) {
		t.Fatalf("BFD %+v: want min tx as given and the other defaults", *p.BFD)
	}
	if given != (BFD{MinTx: 100 * time.Millisecond}) {
		t.Fatalf("the caller's BFD was changed to %+v", given)
	}
}

// Each bad field is refused with an error that names it and its value.
func TestConfigRefusals(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"local AS", func(c *Config) { c.LocalAS = 0 }, "local AS 0"},
		{"router ID missing", func(c *Config) { c.RouterID = netip.Addr{} }, `router ID "invalid IP"`},
		{"router ID IPv6", func(c *Config) { c.RouterID = netip.MustParseAddr("fd00::1") }, `router ID "fd00::1"`},
		{"listen without port", func(c *Config) { c.Listen = netip.AddrPortFrom(netip.IPv4Unspecified(), 0) }, "listen address 0.0.0.0:0"},
		{"no peers", func(c *Config) { c.Peers = nil }, "no peers"},
		{"peer address", func(c *Config) { c.Peers[0].Address = netip.IPv4Unspecified() }, `peer address "0.0.0.0"`},
		{"peer AS", func(c *Config) { c.Peers[0].AS = 0 }, "peer 10.0.0.1: AS 0"},
		{"peer twice", func(c *Config) { c.Peers = append(c.Peers, c.Peers[0]) }, "peer 10.0.0.1: configured twice"},
		{"local address family", func(c *Config) { c.Peers[0].LocalAddress = netip.MustParseAddr("fd00::2") }, "local address fd00::2"},
		{"hold time short", func(c *Config) { c.Peers[0].HoldTime = 2 * time.Second }, "hold time 2s"},
		{"hold time fraction", func(c *Config) { c.Peers[0].HoldTime = 3500 * time.Millisecond }, "hold time 3.5s"},
		{"connect retry", func(c *Config) { c.Peers[0].ConnectRetry = 10 * time.Millisecond }, "connect retry 10ms"},
		{"password", func(c *Config) { c.Peers[0].Password = strings.Repeat("x", 81) }, "password of 81 bytes"},
		{"BFD interval", func(c *Config) { c.Peers[0].BFD = &BFD{MinRx: time.Millisecond} }, "BFD min rx interval 1ms"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := goodConfig()
			tc.edit(&c)
			err := c.validate()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v; want one naming %q", err, tc.want)
			}
		})
	}
}

func TestCommunity(t *testing.T) {
	if s := GracefulShutdown.String(); s != "65535:0" {
		t.Fatalf("GracefulShutdown is %s; want 65535:0", s)
	}
	for _, s := range []string{"65535:0", "0:0", "65001:100", "1:65535"} {
		c, err := ParseCommunity(s)
		if err != nil || c.String() != s {
			t.Fatalf("ParseCommunity(%q) = %v, %v; want it back", s, c, err)
		}
	}
	for _, s := range []string{"", "65535", "65536:0", "1:65536", "a:1", "1:-1"} {
		if _, err := ParseCommunity(s); err == nil || !strings.Contains(err.Error(), s) {
			t.Fatalf("ParseCommunity(%q): %v; want an error naming it", s, err)
		}
	}
}

func TestCheckPrefix(t *testing.T) {
	for _, p := range []string{"10.99.0.1/32", "fd99::1/128", "192.0.2.0/24"} {
		if err := checkPrefix(netip.MustParsePrefix(p)); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	for p, want := range map[netip.Prefix]string{
		{}:                                    "not a prefix",
		netip.MustParsePrefix("10.99.0.1/24"): "host bits set (the network is 10.99.0.0/24)",
		netip.MustParsePrefix("::ffff:10.99.0.1/128"): "IPv4-mapped",
	} {
		if err := checkPrefix(p); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v; want %q", p, err, want)
		}
	}
}
