package fsm

import (
	"net/netip"
	"strings"
	"testing"
)

// ecmpVIP is 10.0.0.50 in mode ecmp on iface.
func ecmpVIP(prefix, iface string) VIP {
	return VIP{Prefix: netip.MustParsePrefix(prefix), Interface: iface, Mode: VIPModeECMP}
}

// ecmpConfig is one VIP and services at its address.
func ecmpConfig(v VIP, svcs ...*Service) *Config {
	c := &Config{Services: map[string]*Service{}, VIPs: map[string]VIP{v.Prefix.String(): v}}
	for _, s := range svcs {
		if s.Servers == nil {
			s.Servers = map[string]*RealServer{}
		}
		c.Services[s.Key.String()] = s
	}
	return c
}

func tcpSvc(addr string, port uint16, sched string, flags ...string) *Service {
	return &Service{Key: ServiceKey{Protocol: TCP, Address: netip.MustParseAddr(addr), Port: port}, Scheduler: sched, Flags: flags}
}

func TestValidateECMPVIP(t *testing.T) {
	for _, tc := range []struct {
		name string
		v    VIP
		want string // "" for valid
	}{
		{"host route v4", ecmpVIP("10.0.0.50/32", "lo"), ""},
		{"host route v6", ecmpVIP("2001:db8::50/128", "lo"), ""},
		{"no interface (lo)", ecmpVIP("10.0.0.50/32", ""), ""},
		{"explicit interface", ecmpVIP("10.0.0.50/32", "dummy0"), ""},
		{"a subnet", ecmpVIP("10.0.0.50/24", "lo"), "vip 10.0.0.50/24: mode ecmp: want a single address (/32)"},
		{"a v6 subnet", ecmpVIP("2001:db8::50/64", "lo"), "want a single address (/128)"},
		{"unknown mode", VIP{Prefix: netip.MustParsePrefix("10.0.0.50/32"), Interface: "lo", Mode: "anycast"}, `vip 10.0.0.50/32 mode "anycast": want ecmp`},
		{"leader mode needs an interface", VIP{Prefix: netip.MustParsePrefix("10.0.0.50/24")}, `interface "": want an interface name`},
	} {
		err := ValidateVIP(tc.v)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestValidateConfigECMPDefaultsToLo(t *testing.T) {
	c := ecmpConfig(ecmpVIP("10.0.0.50/32", ""))
	if err := ValidateConfig(c); err != nil {
		t.Fatal(err)
	}
	if got := c.VIPs["10.0.0.50/32"].Interface; got != "lo" {
		t.Errorf("interface %q, want lo", got)
	}
}

func TestValidateConfigECMPServices(t *testing.T) {
	v := ecmpVIP("10.0.0.50/32", "lo")
	for _, tc := range []struct {
		name string
		svcs []*Service
		want string
	}{
		{"mh with both flags", []*Service{tcpSvc("10.0.0.50", 80, "mh", "mh-fallback", "mh-port")}, ""},
		{"another address", []*Service{tcpSvc("10.0.0.51", 80, "wlc")}, ""},
		{"fwmark is not tied to a VIP", []*Service{{Key: ServiceKey{Protocol: FWMark, Mark: 1}, Scheduler: "wlc"}}, ""},
		{"wlc", []*Service{tcpSvc("10.0.0.50", 80, "wlc")},
			"service tcp:10.0.0.50:80: scheduler wlc: a service of ecmp VIP 10.0.0.50 must use mh with mh-port and mh-fallback"},
		{"mh without flags", []*Service{tcpSvc("10.0.0.50", 80, "mh")},
			"service tcp:10.0.0.50:80: scheduler flags none (missing mh-port and mh-fallback): a service of ecmp VIP 10.0.0.50 must use mh"},
		{"mh without fallback", []*Service{tcpSvc("10.0.0.50", 80, "mh", "mh-port")},
			"scheduler flags mh-port (missing mh-fallback)"},
		{"three wrong", []*Service{tcpSvc("10.0.0.50", 80, "wlc"), tcpSvc("10.0.0.50", 443, "rr"), tcpSvc("10.0.0.50", 22, "sh")},
			"service tcp:10.0.0.50:22: scheduler sh: a service of ecmp VIP 10.0.0.50 must use mh with mh-port and mh-fallback (and 2 more services of ecmp VIPs)"},
	} {
		err := ValidateConfig(ecmpConfig(v, tc.svcs...))
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
	}
	// The same services under a leader-mode VIP are fine.
	lv := v
	lv.Mode = ""
	if err := ValidateConfig(ecmpConfig(lv, tcpSvc("10.0.0.50", 80, "wlc"))); err != nil {
		t.Errorf("leader mode: %v", err)
	}
}

func TestApplyOpsECMPService(t *testing.T) {
	c := ecmpConfig(ecmpVIP("10.0.0.50/32", "lo"), tcpSvc("10.0.0.50", 80, "mh", "mh-fallback", "mh-port"))
	key := ServiceKey{Protocol: TCP, Address: netip.MustParseAddr("10.0.0.50"), Port: 443}
	_, err := ApplyOps(c, []Op{{Kind: OpAddService, Service: &Service{Key: key, Scheduler: "wlc"}}})
	if want := "service tcp:10.0.0.50:443: scheduler wlc: a service of ecmp VIP 10.0.0.50 must use mh with mh-port and mh-fallback"; err == nil || err.Error() != want {
		t.Errorf("add wlc: %v, want %q", err, want)
	}
	edit := tcpSvc("10.0.0.50", 80, "mh", "mh-port")
	if _, err := ApplyOps(c, []Op{{Kind: OpEditService, Service: edit}}); err == nil || !strings.Contains(err.Error(), "missing mh-fallback") {
		t.Errorf("edit dropping mh-fallback: %v", err)
	}
	ok := &Service{Key: key, Scheduler: "mh", Flags: []string{"mh-port", "mh-fallback"}}
	next, err := ApplyOps(c, []Op{{Kind: OpAddService, Service: ok}, addSrv(key, "10.0.0.101", 443, DirectRoute, 1)})
	if err != nil {
		t.Fatalf("add mh: %v", err)
	}
	if len(next.Services) != 2 {
		t.Errorf("services %d, want 2", len(next.Services))
	}
	// Ops on other addresses pay nothing and are not refused.
	if _, err := ApplyOps(c, []Op{addSvc(web, "wlc")}); err != nil {
		t.Errorf("other address: %v", err)
	}
}

func TestConfigNeedsECMPProtocol(t *testing.T) {
	c := ecmpConfig(VIP{Prefix: netip.MustParsePrefix("10.0.0.50/32"), Interface: "eth0"})
	if need, _ := c.Needs(); need >= ECMPProtocol {
		t.Errorf("leader mode needs %d", need)
	}
	c = ecmpConfig(ecmpVIP("10.0.0.50/32", "lo"))
	if need, what := c.Needs(); need != ECMPProtocol || what != "vip 10.0.0.50/32 mode ecmp" {
		t.Errorf("ecmp needs %d (%s), want %d", need, what, ECMPProtocol)
	}
	if !c.HasECMP() {
		t.Error("HasECMP false")
	}
}

func TestVIPDescribeECMP(t *testing.T) {
	if got := ecmpVIP("10.0.0.50/32", "lo").Describe(); got != "on lo mode ecmp" {
		t.Errorf("Describe %q", got)
	}
	a, b := ecmpVIP("10.0.0.50/32", "lo"), ecmpVIP("10.0.0.50/32", "lo")
	b.Mode = ""
	if a.Equal(b) {
		t.Error("Equal ignores the mode")
	}
}
