package topology

import (
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

const ecmpYAML = `vips:
  - address: 10.0.0.50/32
    mode: ecmp
  - address: 2001:db8::50/128
    interface: dummy0
    mode: ecmp
  - address: 10.0.0.1/24
    interface: eth0
services:
  - protocol: tcp
    address: 10.0.0.50
    port: 80
    scheduler: mh
    flags: [mh-port, mh-fallback]
    servers:
      - {address: 10.0.0.101}
`

func TestYAMLECMP(t *testing.T) {
	cfg := mustYAML(t, ecmpYAML)
	v := cfg.VIPs["10.0.0.50/32"]
	if !v.ECMP() || v.Interface != "lo" {
		t.Errorf("10.0.0.50 = %+v, want ecmp on lo", v)
	}
	if v6 := cfg.VIPs["2001:db8::50/128"]; !v6.ECMP() || v6.Interface != "dummy0" {
		t.Errorf("2001:db8::50 = %+v, want ecmp on dummy0", v6)
	}
	if l := cfg.VIPs["10.0.0.1/24"]; l.ECMP() || l.Mode != "" {
		t.Errorf("leader-mode VIP = %+v", l)
	}
	roundTrip(t, cfg)
	out, err := MarshalYAML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "mode: ecmp") || strings.Count(string(out), "mode:") != 2 {
		t.Errorf("export:\n%s", out)
	}
}

func TestYAMLECMPErrors(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"subnet", "vips:\n  - {address: 10.0.0.50/24, mode: ecmp}\n", "vip 10.0.0.50/24: mode ecmp: want a single address (/32)"},
		{"mode", "vips:\n  - {address: 10.0.0.50/32, interface: lo, mode: anycast}\n", `mode "anycast"`},
		{"wlc", strings.Replace(ecmpYAML, "scheduler: mh\n    flags: [mh-port, mh-fallback]", "scheduler: wlc", 1),
			"service tcp:10.0.0.50:80: scheduler wlc: a service of ecmp VIP 10.0.0.50 must use mh with mh-port and mh-fallback"},
	} {
		_, err := Parse("t.yaml", []byte(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

func TestLinesECMP(t *testing.T) {
	cfg := mustLines(t, `vip 10.0.0.50 lo ecmp
vip 10.0.0.51/32 eth1 d2=ens4 ecmp
vip 10.0.0.1/24 eth0 d2=ens4
Web:t:10.0.0.50:80 ["w1:10.0.0.101"] (-smh -b mh-port,mh-fallback)
`)
	for k, want := range map[string]fsm.VIP{
		"10.0.0.50/32": {Interface: "lo", Mode: fsm.VIPModeECMP},
		"10.0.0.51/32": {Interface: "eth1", Mode: fsm.VIPModeECMP, Interfaces: map[string]string{"d2": "ens4"}},
		"10.0.0.1/24":  {Interface: "eth0", Interfaces: map[string]string{"d2": "ens4"}},
	} {
		v := cfg.VIPs[k]
		if v.Interface != want.Interface || v.Mode != want.Mode || v.InterfaceOn("d2") != want.InterfaceOn("d2") {
			t.Errorf("%s = %+v, want %+v", k, v, want)
		}
	}
	roundTrip(t, cfg)
	for _, tc := range []struct{ in, want string }{
		{"vip 10.0.0.50 lo ecmp ecmp", "vip 10.0.0.50: ecmp: given twice"},
		{"vip 10.0.0.50/24 lo ecmp", "mode ecmp: want a single address"},
		{"vip 10.0.0.50 lo anycast", `"anycast": want ecmp or NODE=INTERFACE`},
	} {
		if _, err := ParseLines(strings.NewReader(tc.in)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.in, err, tc.want)
		}
	}
}
