package topology

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

// Besides "never panics", both targets check that whatever parses survives
// the export round trip, which ties the two forms and MarshalYAML together.

func FuzzParseLines(f *testing.F) {
	// A range expands to up to 65536 servers in ~150 ms; a lower budget lets
	// the fuzzer try many such lines per second and still reach the limit.
	defer func(n int) { maxServers = n }(maxServers)
	maxServers = 4096
	if data, err := os.ReadFile("testdata/classic.topo"); err == nil {
		f.Add(string(data))
	}
	for _, s := range []string{
		exampleLine,
		`W6:t:[2001:db8::1]:80 ["v1-3:[2001:db8::a]+", "s1+:[2001:db8::fe-101]:81:2"] (-m -p 60 -M 64)`,
		`M:f6:7 ["a:[2001:db8::a]"] (-i -o -x 10 -y 1 -w0)`,
		`S:u:10.0.0.1:0 ["web01-10:10.0.0.1+", "x:10.0.1.1::3"] (--scheduler=sh --sched-flags sh-port -p)`,
		"vip 10.0.0.1/24 eth0\n# c\n:t:10.0.0.1:80[]()",
		`A:t:1.2.3.4:80 ["a:1.2.3.4-"] (-b ,)`,
		`P:t:10.0.0.1:80 ["a1-2:10.3.0.1+"] pool ["s1-3:10.3.0.10+:8080", "t:10.3.0.20::4"] (-m -w 2)`,
		`Q:f:9 pool["c:10.0.0.7"]`,
		groupLines,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		cfg, err := ParseLines(strings.NewReader(in))
		if err != nil {
			if cfg != nil {
				t.Fatalf("config with error %v", err)
			}
			return
		}
		if err := fsm.ValidateConfig(cfg); err != nil {
			t.Fatalf("returned config fails validation: %v", err)
		}
		if small(cfg) {
			roundTrip(t, cfg)
		}
	})
}

func FuzzParseYAML(f *testing.F) {
	// Small seeds on purpose: the engine minimizes every input that finds
	// new coverage, and with kilobyte seeds that minimizing eats the run.
	for _, s := range []string{
		"version: 1\nvips: [{address: 10.0.0.1/24, interface: eth0}]\nservices:\n" +
			"- {name: W, protocol: tcp, address: 10.0.0.1, port: 80, scheduler: sh, flags: [sh-port], forward: masq, weight: 2,\n" +
			"   persistence: {timeout: 60, netmask: 255.255.255.0}, upper_threshold: 9, lower_threshold: 1,\n" +
			"   servers: [{name: a, address: 10.1.0.1, port: 81, weight: 0, state: draining, upper_threshold: 0}, {address: 10.1.0.2, forward: droute}]}\n",
		"services:\n- {protocol: udp, address: \"::1\", port: 0, one_packet: true, persistence: {},\n   servers: [{address: 10.0.0.1, forward: tunnel}]}\n",
		"services:\n  - {fwmark: 1, servers: [{address: 10.0.0.1, port: 1}]}\n",
		"vips: [{address: 10.0.0.1, interface: lo}]\n",
		"services:\n- {protocol: tcp, address: 10.0.0.1, port: 80, forward: tunnel, servers: [{address: 10.1.0.1, tunnel_type: gue, tunnel_port: 6080, tunnel_csum: csum},\n   {address: 10.1.0.2, tunnel_type: gre, tunnel_csum: remcsum}, {address: 10.1.0.3, tunnel_type: ipip}]}\n",
		"services:\n- {protocol: tcp, address: 10.0.0.1, port: 80, check: {type: http, interval: 1.5s, timeout: 500ms, rise: 1, status: [200]},\n" +
			"   servers: [{address: 10.1.0.1, check: {type: exec, command: [/bin/true], address: \"::ffff:1.2.3.4\", port: 9}}]}\n",
		"a: &x [*x]\n",
		"services:\n  - &s {protocol: tcp, address: 10.0.0.1, port: 80}\n  - *s\n",
		"services:\n  - {protocol: tcp, address: 10.0.0.1, port: 80, colour: 1}\n---\n",
		"services:\n- {protocol: tcp, address: 10.0.0.1, port: 80.5, weight: 1e3, servers: [{address: 10.1.0.x, weight: 0.5}, {address: 10.1.0.2, port: -1}]}\n" +
			"timeouts: {tcp: -1, udp: 99999999999999999999}\nsync: {id: 256, ttl: \"1\"}\n",
		groupYAML,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		cfg, err := ParseYAML(bytes.NewReader(in))
		if err != nil {
			if cfg != nil {
				t.Fatalf("config with error %v", err)
			}
			return
		}
		if err := fsm.ValidateConfig(cfg); err != nil {
			t.Fatalf("returned config fails validation: %v", err)
		}
		if small(cfg) {
			roundTrip(t, cfg)
		}
	})
}

// small keeps the round trip off the inputs where one range expands to
// tens of thousands of servers: exporting those takes seconds, which starves
// the fuzzer and tests nothing a small range does not.
func small(cfg *fsm.Config) bool {
	n := 0
	for _, svc := range cfg.Services {
		n += len(svc.Servers)
	}
	return n <= 1000
}
