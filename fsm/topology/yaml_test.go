package topology

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/netip"
	"os"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/escape"
)

func mustYAML(t *testing.T, text string) *fsm.Config {
	t.Helper()
	cfg, err := ParseYAML(strings.NewReader(text))
	if err != nil {
		t.Fatalf("ParseYAML:\n%s\nerror: %v", text, err)
	}
	return cfg
}

func jsonOf(t testing.TB, cfg *fsm.Config) string {
	t.Helper()
	b, err := json.MarshalIndent(cfg, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func load(t *testing.T, name string) *fsm.Config {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Parse(name, data)
	if err != nil {
		t.Fatalf("Parse(%s): %v", name, err)
	}
	return cfg
}

func TestClassicFilesAgree(t *testing.T) {
	lines := load(t, "testdata/classic.topo")
	structured := load(t, "testdata/classic.yaml")
	if a, b := jsonOf(t, lines), jsonOf(t, structured); a != b {
		t.Errorf("classic.topo and classic.yaml differ:\n%s\n---\n%s", a, b)
	}
	if len(lines.Services) != 3 {
		t.Errorf("got %d services, want MyService, DNS and Shop", len(lines.Services))
	}
	if svc := lines.Services["tcp:193.123.45.12:80"]; svc == nil || len(svc.Servers) != 15 {
		t.Errorf("MyService = %+v, want 15 servers", svc)
	}
	shop := lines.Services["fwmark:7"]
	if shop == nil || shop.Persistence == nil || shop.Persistence.Timeout != 600 || shop.Servers["10.6.0.20:0"].Weight != 0 {
		t.Errorf("Shop = %+v", shop)
	}
}

// full exercises every field of the schema.
const full = `
version: 1
vips:
  - {address: 193.123.45.12/24, interface: eth0}
  - {address: "2001:db8::1", interface: eth0.10}
  - {address: 10.1.0.1/24, interface: eth1, interfaces: {d2: ens4}}
services:
  - name: Web
    protocol: tcp
    address: 193.123.45.12
    port: 443
    scheduler: sh
    flags: [sh-port, sh-fallback]
    persistence: {timeout: 900, netmask: 255.255.255.0}
    forward: masq
    weight: 5
    upper_threshold: 1000
    lower_threshold: 100
    servers:
      - {name: web1, address: 10.3.0.10, port: 8443}
      - {name: web2, address: 10.3.0.11, weight: 0, state: draining}
      - {name: web3, address: 10.3.0.12, forward: droute, upper_threshold: 0, lower_threshold: 0, state: suspended}
  - name: DNS6
    protocol: udp
    address: "2001:db8::53"
    port: 53
    one_packet: true
    servers:
      - {address: "2001:db8::a"}
      - {address: 10.5.0.1, forward: tunnel}
  - name: AllPorts
    protocol: tcp
    address: 193.123.45.14
    port: 0
    persistence: {}
    servers:
      - {name: any, address: 10.7.0.1}
  - fwmark: 9
    ipv6: true
    scheduler: rr
    servers:
      - {address: "2001:db8::c", port: 8080, forward: masq}
`

func TestYAMLFull(t *testing.T) {
	cfg := mustYAML(t, full)
	if len(cfg.VIPs) != 3 || cfg.VIPs["2001:db8::1/128"].Interface != "eth0.10" || cfg.VIPs["193.123.45.12/24"].Interface != "eth0" ||
		cfg.VIPs["10.1.0.1/24"].InterfaceOn("d2") != "ens4" || cfg.VIPs["10.1.0.1/24"].InterfaceOn("d1") != "eth1" || cfg.VIPs["193.123.45.12/24"].Interfaces != nil {
		t.Errorf("vips = %v", cfg.VIPs)
	}
	web := cfg.Services["tcp:193.123.45.12:443"]
	if web == nil || web.Name != "Web" || web.Scheduler != "sh" || strings.Join(web.Flags, ",") != "sh-fallback,sh-port" ||
		*web.Persistence != (fsm.Persistence{Timeout: 900, Netmask: "255.255.255.0"}) {
		t.Fatalf("Web = %+v", web)
	}
	got := servers(web)
	want := []string{
		"web1@10.3.0.10:8443/masq/w5/x1000/y100",
		"web2@10.3.0.11:443/masq/w0/x1000/y100/draining",
		"web3@10.3.0.12:443/droute/w5/suspended",
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("Web servers = %q\nwant %q", got, want)
	}
	dns := cfg.Services["udp:[2001:db8::53]:53"]
	if dns == nil || !dns.OnePacket || dns.Scheduler != "wlc" || strings.Join(servers(dns), " ") != "@10.5.0.1:53/tunnel/w1 @[2001:db8::a]:53/droute/w1" {
		t.Errorf("DNS6 = %+v %q", dns, servers(dns))
	}
	all := cfg.Services["tcp:193.123.45.14:0"]
	if all == nil || all.Persistence == nil || all.Persistence.Timeout != fsm.DefaultPersistence {
		t.Errorf("AllPorts = %+v", all)
	}
	m := cfg.Services["fwmark6:9"]
	if m == nil || strings.Join(servers(m), " ") != "@[2001:db8::c]:8080/masq/w1" {
		t.Errorf("fwmark6:9 = %+v", m)
	}
}

func TestYAMLEmpty(t *testing.T) {
	for _, in := range []string{"", "# nothing\n", "---\n", "{}", "services: []\n", "version: 1\n"} {
		cfg := mustYAML(t, in)
		if len(cfg.Services) != 0 || len(cfg.VIPs) != 0 || cfg.Services == nil {
			t.Errorf("%q: got %+v", in, cfg)
		}
	}
}

func TestYAMLErrors(t *testing.T) {
	svc := "services:\n  - name: S\n    protocol: tcp\n    address: 10.0.0.1\n    port: 80\n"
	tests := []struct {
		name, in string
		want     []string
	}{
		{"unknown top-level", "version: 1\nhealth: {}\n", []string{`line 2: field "health" is not a top-level key`}},
		{"unknown service field", svc + "    colour: red\n", []string{`line 6: services[0]: field "colour" is not a service key`}},
		{"unknown server field", svc + "    servers:\n      - {address: 10.1.0.1}\n      - {address: 10.1.0.2, colour: red}\n",
			[]string{`line 8: services[0].servers[1]: field "colour" is not a real server key`}},
		{"unknown persistence field", svc + "    persistence: {time: 5}\n", []string{`line 6: services[0].persistence: field "time" is not a persistence key`}},
		{"unknown vip field", "vips:\n  - {address: 10.0.0.1/24, interface: eth0, label: x}\n", []string{`line 2: vips[0]: field "label" is not a vip key`}},
		{"wrong type", "services: 3\n", []string{"line 1:", "a list of services"}},
		{"wrong scalar", svc + "    weight: heavy\n", []string{"line 6: services[0].weight: cannot unmarshal !!str `heavy` into int"}},
		{"wrong scalar in flow", svc + "    servers:\n      - {address: 10.1.0.1, port: eighty}\n", []string{"line 7: services[0].servers[0].port: cannot unmarshal !!str `eighty` into int"}},
		{"syntax", "services:\n  - name: [\n", []string{"line 2: did not find expected node content"}},
		{"two documents", "version: 1\n---\nversion: 1\n", []string{"line 2: a topology is one YAML document"}},
		{"duplicate key", "version: 1\nversion: 1\n", []string{`line 2: mapping key "version" already defined at line 1`}},
		{"version", "version: 2\n", []string{"line 1: version 2: this ipvsman reads version 1"}},
		{"protocol", "services:\n  - name: S\n    protocol: icmp\n", []string{`line 3: services[0]: service "S": protocol "icmp": want tcp, udp, sctp or fwmark`}},
		{"no protocol", "services:\n  - name: S\n    address: 10.0.0.1\n", []string{`line 2: services[0]: service "S": protocol: missing`}},
		{"no port", "services:\n  - name: S\n    protocol: tcp\n    address: 10.0.0.1\n", []string{`services[0]: service "S": port: missing`}},
		{"port range", "services:\n  - {protocol: udp, address: 10.0.0.1, port: 70000}\n", []string{"line 2: services[0]: port 70000: want 0-65535"}},
		{"bad address", "services:\n  - name: S\n    protocol: tcp\n    address: 10.0.0.x\n    port: 80\n",
			[]string{`line 4: services[0]: service "S": address "10.0.0.x": not an IP address`}},
		{"fwmark with address", "services:\n  - {protocol: fwmark, fwmark: 1, address: 10.0.0.1}\n", []string{`services[0]: address "10.0.0.1": a fwmark service matches by mark`}},
		{"fwmark with port", "services:\n  - {fwmark: 1, port: 80}\n", []string{"services[0]: port: a fwmark service matches by mark"}},
		{"fwmark 0", "services:\n  - {fwmark: 0}\n", []string{"services[0]: fwmark 0: want 1-4294967295"}},
		{"fwmark missing", "services:\n  - {protocol: fwmark}\n", []string{"services[0]: fwmark: missing"}},
		{"tcp with fwmark", svc + "    fwmark: 3\n", []string{`line 6: services[0]: service "S": fwmark: only for protocol fwmark`}},
		{"tcp with ipv6", svc + "    ipv6: true\n", []string{`line 6: services[0]: service "S": ipv6: only for fwmark services`}},
		{"scheduler", svc + "    scheduler: Fair\n", []string{`line 2: services[0]: service "S": service tcp:10.0.0.1:80 scheduler "Fair": want lower-case letters, digits and '_'`}},
		{"persistence timeout", svc + "    persistence: {timeout: -1}\n", []string{`line 6: services[0].persistence: service "S": persistence timeout -1`}},
		{"forward", svc + "    forward: nat\n", []string{`line 6: services[0]: service "S": forward "nat": want droute, tunnel, masq or local`}},
		{"default weight", svc + "    weight: 70000\n", []string{`line 6: services[0]: service "S": weight 70000: want 0-65535`}},
		{"default threshold", svc + "    upper_threshold: -5\n", []string{`line 6: services[0]: service "S": upper_threshold -5`}},
		{"server address", svc + "    servers:\n      - {name: web1, address: 10.1.0.x}\n",
			[]string{`line 7: services[0].servers[0]: real server "web1": address "10.1.0.x": not an IP address`}},
		{"server address missing", svc + "    servers:\n      - {name: web1}\n", []string{`line 7: services[0].servers[0]: real server "web1": address: missing`}},
		{"server port", svc + "    servers:\n      - {address: 10.1.0.1, port: -1}\n", []string{"line 7: services[0].servers[0]: port -1"}},
		{"server forward", svc + "    servers:\n      - {address: 10.1.0.1, forward: gre}\n", []string{`services[0].servers[0]: forward "gre"`}},
		{"server weight", svc + "    servers:\n      - {address: 10.1.0.1, weight: 65536}\n", []string{"services[0].servers[0]: real server 10.1.0.1:80 of service tcp:10.0.0.1:80 weight 65536: out of range"}},
		{"server threshold", svc + "    servers:\n      - {address: 10.1.0.1, lower_threshold: 4294967296}\n", []string{"services[0].servers[0]: lower_threshold 4294967296"}},
		{"thresholds order", svc + "    servers:\n      - {address: 10.1.0.1, upper_threshold: 5, lower_threshold: 6}\n", []string{"lower threshold 6: above the upper threshold 5"}},
		{"server state", svc + "    servers:\n      - {name: a, address: 10.1.0.1, state: down}\n", []string{`line 7: services[0].servers[0]: real server "a":`, `state "down": want active, suspended or draining`}},
		{"server family", svc + "    servers:\n      - {address: \"2001:db8::1\"}\n", []string{"services[0].servers[0]:", "address family differs"}},
		{"duplicate server", svc + "    forward: droute\n    servers:\n      - {name: a, address: 10.1.0.1}\n      - {name: b, address: 10.1.0.1, port: 8080}\n",
			[]string{`line 9: services[0].servers[1]: real server "b": 10.1.0.1:80: listed twice (also services[0].servers[0] on line 8)`}},
		{"duplicate service", svc + "  - {name: T, protocol: tcp, address: 10.0.0.1, port: 80}\n",
			[]string{`line 6: services[1]: service "T": service tcp:10.0.0.1:80: defined twice (also services[0] on line 2)`}},
		{"duplicate fwmark", "services:\n  - {fwmark: 1}\n  - {protocol: fwmark, fwmark: 1}\n", []string{"line 3: services[1]: service fwmark:1: defined twice (also services[0] on line 2)"}},
		{"vip", "vips:\n  - {address: 10.0.0.1/40, interface: eth0}\n", []string{`line 2: vips[0]: address "10.0.0.1/40": want ADDRESS/PREFIXLEN`}},
		{"vip missing address", "vips:\n  - {interface: eth0}\n", []string{"line 2: vips[0]: address: missing"}},
		{"vip interface", "vips:\n  - {address: 10.0.0.1/24}\n", []string{`line 2: vips[0]: vip 10.0.0.1/24 interface ""`}},
		{"vip twice", "vips:\n  - {address: 10.0.0.1/24, interface: eth0}\n  - address: 10.0.0.1/24\n    interface: eth1\n",
			[]string{"line 3: vips[1]: vip 10.0.0.1/24: defined twice (also vips[0] on line 2)"}},
		{"several", "services:\n  - {protocol: x}\n  - {protocol: y}\n", []string{`line 2: services[0]: protocol "x"`, `line 3: services[1]: protocol "y"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseYAML(strings.NewReader(tc.in))
			if err == nil {
				t.Fatalf("ParseYAML(%q) = %v, want an error", tc.in, cfg)
			}
			if cfg != nil {
				t.Errorf("got a config with the error %v", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q\ndoes not contain %q", err, w)
				}
			}
		})
	}
}

func TestParseChoosesForm(t *testing.T) {
	yamlText := []byte("services:\n  - {name: S, protocol: tcp, address: 10.0.0.1, port: 80}\n")
	lineText := []byte("S:t:10.0.0.1:80\n")
	for _, name := range []string{"a.yaml", "a.yml", "A.YAML", "dir.d/b.Yml"} {
		if cfg, err := Parse(name, yamlText); err != nil || cfg.Services["tcp:10.0.0.1:80"] == nil {
			t.Errorf("Parse(%s) = %v, %v", name, cfg, err)
		}
	}
	for _, name := range []string{"a.topo", "a", "-", "", "yaml", "a.yaml.bak"} {
		if cfg, err := Parse(name, lineText); err != nil || cfg.Services["tcp:10.0.0.1:80"] == nil {
			t.Errorf("Parse(%q) = %v, %v", name, cfg, err)
		}
	}
	_, err := Parse("lb.topo", []byte("A:x:1.2.3.4:80\nB:y:1.2.3.4:80\n"))
	want := "lb.topo: line 1: service \"A:x:1.2.3.4:80\": protocol \"x\": want t, u, s (SCTP) or f (f6 for IPv6 fwmark)\n" +
		"lb.topo: line 2: service \"B:y:1.2.3.4:80\": protocol \"y\": want t, u, s (SCTP) or f (f6 for IPv6 fwmark)"
	if err == nil || err.Error() != want {
		t.Errorf("got %v\nwant %s", err, want)
	}
	if _, err := Parse("-", []byte("A:x:1.2.3.4:80")); err == nil || !strings.HasPrefix(err.Error(), "line 1:") {
		t.Errorf("stdin error = %v, want no file prefix", err)
	}
}

func TestReadError(t *testing.T) {
	boom := errors.New("boom")
	if _, err := ParseLines(failReader{boom}); !errors.Is(err, boom) {
		t.Errorf("ParseLines: %v", err)
	}
	if _, err := ParseYAML(failReader{boom}); !errors.Is(err, boom) {
		t.Errorf("ParseYAML: %v", err)
	}
}

type failReader struct{ err error }

func (r failReader) Read([]byte) (int, error) { return 0, r.err }

// roundTrip checks the MarshalYAML contract and that a second export is
// byte-identical, so exports can be diffed.
func roundTrip(t testing.TB, cfg *fsm.Config) {
	t.Helper()
	before := jsonOf(t, cfg)
	out, err := MarshalYAML(cfg)
	if err != nil {
		t.Fatalf("MarshalYAML: %v", err)
	}
	if after := jsonOf(t, cfg); after != before {
		t.Fatalf("MarshalYAML changed its input")
	}
	back, err := ParseYAML(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("ParseYAML(MarshalYAML(cfg)): %v\n%s", err, out)
	}
	if got := jsonOf(t, back); got != before {
		t.Fatalf("round trip differs:\n%s\n---\n%s\nYAML:\n%s", before, got, out)
	}
	again, err := MarshalYAML(back)
	if err != nil || !bytes.Equal(again, out) {
		t.Fatalf("second export differs (%v):\n%s\n---\n%s", err, out, again)
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	t.Run("classic", func(t *testing.T) { roundTrip(t, load(t, "testdata/classic.topo")) })
	t.Run("full", func(t *testing.T) { roundTrip(t, mustYAML(t, full)) })
	t.Run("empty", func(t *testing.T) { roundTrip(t, fsm.NewConfig()) })
	t.Run("tunnels", func(t *testing.T) { roundTrip(t, mustYAML(t, tunnels)) })
	t.Run("checks", func(t *testing.T) { roundTrip(t, mustYAML(t, checks)) })
	t.Run("lines", func(t *testing.T) {
		roundTrip(t, mustLines(t, `vip 10.0.0.1/24 eth0
`+exampleLine+`
W6:t:[::1]:80 ["v1+:[::a-c]:8080:3"] (-m -w 0 -x 9 -y 1)
T6:u:[2001:db8::1]:0 ["t:10.0.0.9"] (-i -p 60 -M 64)
M:f:1 ["a:10.1.0.1:81", "b:10.1.0.2"] (-i -o)
true:u:10.0.0.2:53 ["yes:10.5.0.1", "null:10.5.0.2", "0x1:10.5.0.3", "1e3:10.5.0.4"]`))
	})
	t.Run("built", func(t *testing.T) {
		// A config as the cluster holds it, built through fsm's ops.
		cfg, err := fsm.ApplyOps(fsm.NewConfig(), []fsm.Op{
			{Kind: fsm.OpAddService, Service: &fsm.Service{Key: fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: 80}, Name: "x"}},
			{Kind: fsm.OpAddServer, ServiceKey: fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: 80},
				Server: &fsm.RealServer{Address: netip.MustParseAddr("10.1.0.1"), Forward: fsm.Masquerade, Weight: 2, State: fsm.Draining}},
			{Kind: fsm.OpAddServer, ServiceKey: fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: 80},
				Server: &fsm.RealServer{Address: netip.MustParseAddr("10.1.0.2"), Port: 8080, Forward: fsm.Masquerade, Weight: 2}},
			{Kind: fsm.OpSetCheck, ServiceKey: fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: 80},
				Check: &fsm.HealthCheck{Type: "http", IntervalMS: 2500, Path: "/health", Status: []int{200}}},
			{Kind: fsm.OpSetCheck, ServiceKey: fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: 80},
				Server: &fsm.RealServer{Address: netip.MustParseAddr("10.1.0.2"), Port: 8080},
				Check:  &fsm.HealthCheck{Type: "exec", Command: []string{"/bin/check", "a b"}, TimeoutMS: 750}},
		})
		if err != nil {
			t.Fatal(err)
		}
		cfg.VIPs["10.0.0.1/24"] = fsm.VIP{Prefix: netip.MustParsePrefix("10.0.0.1/24"), Interface: "eth0"}
		if err := fsm.ValidateConfig(cfg); err != nil {
			t.Fatal(err)
		}
		roundTrip(t, cfg)
	})
}

// An export printed by the CLI, which escapes bidi overrides and control
// characters (escape.Text), still reads back as the configuration it came
// from: such strings are double-quoted, where the CLI's escapes are YAML's.
func TestMarshalRoundTripThroughTheCLIsEscaping(t *testing.T) {
	key := fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: 80}
	cfg, err := fsm.ApplyOps(fsm.NewConfig(), []fsm.Op{
		{Kind: fsm.OpAddService, Service: &fsm.Service{Key: key, Scheduler: "rr"}},
		{Kind: fsm.OpSetCheck, ServiceKey: key, Check: &fsm.HealthCheck{Type: "http", Path: "/he\u202ealth\u2028x", Host: "a\u009bb", Body: "ok\u200f"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	roundTrip(t, cfg)
	out, err := MarshalYAML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	printed := escape.Text(string(out))
	if strings.ContainsAny(printed, "\u202e\u2028\u009b\u200f") {
		t.Fatalf("escaped export still holds a bidi or control rune:\n%s", printed)
	}
	back, err := ParseYAML(strings.NewReader(printed))
	if err != nil {
		t.Fatalf("ParseYAML(escaped export): %v\n%s", err, printed)
	}
	if got, want := jsonOf(t, back), jsonOf(t, cfg); got != want {
		t.Fatalf("escaped export reads back differently:\n%s\n---\n%s\nYAML:\n%s", want, got, printed)
	}
}

func TestMarshalShape(t *testing.T) {
	out, err := MarshalYAML(load(t, "testdata/classic.topo"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"version: 1\n",
		"    forward: masq\n",
		"      - {name: Intel_web1, address: 10.3.0.10, port: 8080}\n",
		"      - {name: AMD_spare9, address: 10.4.6.28}\n",
		"    persistence: {timeout: 600, netmask: 255.255.255.0}\n",
		"      - {name: shop_spare, address: 10.6.0.20, weight: 0}\n",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("export lacks %q:\n%s", want, out)
		}
	}
	// Servers in numeric address order, not string order.
	if i, j := strings.Index(string(out), "Intel_web2,"), strings.Index(string(out), "Intel_web10,"); i > j {
		t.Errorf("Intel_web10 sorted before Intel_web2:\n%s", out)
	}
	if _, err := MarshalYAML(nil); err == nil {
		t.Error("MarshalYAML(nil): no error")
	}
	bad := fsm.NewConfig()
	bad.Services["tcp:10.0.0.1:80"] = nil
	if _, err := MarshalYAML(bad); err == nil {
		t.Error("MarshalYAML with a nil service: no error")
	}
}

func TestYAMLSorryServerAndOnFailure(t *testing.T) {
	src := `services:
  - name: Web
    protocol: tcp
    address: 10.0.0.10
    port: 80
    scheduler: wlc
    on_failure: remove
    sorry_server: {name: rs3, address: 10.0.0.23}
    servers:
      - {name: rs1, address: 10.0.0.21, weight: 3, state: suspended}
`
	cfg, err := ParseYAML(strings.NewReader(src))
	if err != nil {
		t.Fatal(err)
	}
	svc := cfg.Services["tcp:10.0.0.10:80"]
	if svc.OnFailure != "remove" || svc.Sorry == nil || svc.Sorry.Key() != "10.0.0.23:80" || svc.Sorry.Weight != 1 {
		t.Fatalf("service = %+v sorry = %+v", svc, svc.Sorry)
	}
	out, err := MarshalYAML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, err := ParseYAML(strings.NewReader(string(out)))
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if fsm.DiffConfig(cfg, again) != nil {
		t.Fatalf("round trip differs: %v\n%s", fsm.DiffConfig(cfg, again), out)
	}
	for _, bad := range []struct{ yaml, want string }{
		{strings.Replace(src, "on_failure: remove", "on_failure: explode", 1), `on_failure "explode"`},
		{strings.Replace(src, "address: 10.0.0.23}", "address: 10.0.0.21}", 1), "sorry server: 10.0.0.21:80: also a real server"},
	} {
		if _, err := ParseYAML(strings.NewReader(bad.yaml)); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("error = %v, want it to contain %q", err, bad.want)
		}
	}
}

func TestYAMLTimeouts(t *testing.T) {
	cfg, err := ParseYAML(strings.NewReader("timeouts: {tcp: 901, udp: 301}\n"))
	if err != nil || cfg.Timeouts == nil || *cfg.Timeouts != (fsm.Timeouts{TCP: 901, UDP: 301}) {
		t.Fatalf("%+v %v", cfg, err)
	}
	out, _ := MarshalYAML(cfg)
	again, err := ParseYAML(strings.NewReader(string(out)))
	if err != nil || *again.Timeouts != *cfg.Timeouts {
		t.Fatalf("round trip: %v\n%s", err, out)
	}
	if _, err := ParseYAML(strings.NewReader("timeouts: {tcp: 99999999}\n")); err == nil || !strings.Contains(err.Error(), "timeout tcp 99999999") {
		t.Fatalf("too large: %v", err)
	}
}

// tunnels has every encapsulation and checksum mode, the default spellings
// ipip and nocsum (which the model keeps as ""), and a tunnelling sorry
// server.
const tunnels = `
services:
  - name: T
    protocol: udp
    address: 10.0.0.5
    port: 53
    forward: tunnel
    servers:
      - {name: g1, address: 10.3.0.50, tunnel_type: gue, tunnel_port: 6080, tunnel_csum: csum}
      - {name: g2, address: 10.3.0.51, tunnel_type: gue, tunnel_port: 6081, tunnel_csum: nocsum}
      - {name: r1, address: 10.3.0.52, tunnel_type: gre, tunnel_csum: csum}
      - {name: r2, address: "2001:db8::53", tunnel_type: gre}
      - {name: i1, address: 10.3.0.54, tunnel_type: ipip}
      - {name: m1, address: 10.3.0.55, forward: masq, port: 5353}
    sorry_server: {address: 10.3.0.60, tunnel_type: gue, tunnel_port: 7000, tunnel_csum: remcsum}
`

func TestYAMLTunnels(t *testing.T) {
	cfg := mustYAML(t, tunnels)
	svc := cfg.Services["udp:10.0.0.5:53"]
	if svc == nil {
		t.Fatalf("no service: %s", jsonOf(t, cfg))
	}
	want := map[string]fsm.RealServer{
		"10.3.0.50:53":      {TunnelType: fsm.TunnelGUE, TunnelPort: 6080, TunnelCsum: fsm.TunnelCsumOn},
		"10.3.0.51:53":      {TunnelType: fsm.TunnelGUE, TunnelPort: 6081},
		"10.3.0.52:53":      {TunnelType: fsm.TunnelGRE, TunnelCsum: fsm.TunnelCsumOn},
		"[2001:db8::53]:53": {TunnelType: fsm.TunnelGRE},
		"10.3.0.54:53":      {},
		"10.3.0.55:5353":    {},
	}
	for k, w := range want {
		r := svc.Servers[k]
		if r == nil || r.TunnelType != w.TunnelType || r.TunnelPort != w.TunnelPort || r.TunnelCsum != w.TunnelCsum {
			t.Errorf("server %s = %+v, want tunnel %q port %d csum %q", k, r, w.TunnelType, w.TunnelPort, w.TunnelCsum)
		}
	}
	if s := svc.Sorry; s == nil || s.Forward != fsm.Tunnel || s.TunnelType != fsm.TunnelGUE || s.TunnelPort != 7000 || s.TunnelCsum != fsm.TunnelRemCsum {
		t.Errorf("sorry server = %+v", s)
	}
	roundTrip(t, cfg)
	out, err := MarshalYAML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		"      - {name: g1, address: 10.3.0.50, forward: tunnel, tunnel_type: gue, tunnel_port: 6080, tunnel_csum: csum}\n",
		"      - {name: g2, address: 10.3.0.51, forward: tunnel, tunnel_type: gue, tunnel_port: 6081}\n",
		"      - {name: r1, address: 10.3.0.52, forward: tunnel, tunnel_type: gre, tunnel_csum: csum}\n",
		"      - {name: i1, address: 10.3.0.54, forward: tunnel}\n",
		"    sorry_server: {address: 10.3.0.60, forward: tunnel, tunnel_type: gue, tunnel_port: 7000, tunnel_csum: remcsum, weight: 1}\n",
	} {
		if !strings.Contains(string(out), w) {
			t.Errorf("export lacks %q:\n%s", w, out)
		}
	}

	svcHead := "services:\n  - name: S\n    protocol: tcp\n    address: 10.0.0.1\n    port: 80\n    servers:\n"
	for _, tc := range []struct{ server, want string }{
		{"{address: 10.1.0.1, forward: tunnel, tunnel_type: vxlan}", `line 7: services[0].servers[0]: real server 10.1.0.1:80 of service tcp:10.0.0.1:80 tunnel type "vxlan": want ipip, gue or gre`},
		{"{address: 10.1.0.1, forward: tunnel, tunnel_type: gue}", "line 7: services[0].servers[0]: real server 10.1.0.1:80 of service tcp:10.0.0.1:80 tunnel type gue: needs a tunnel port"},
		{"{address: 10.1.0.1, forward: tunnel, tunnel_type: gre, tunnel_port: 1}", "tunnel type gre: takes no tunnel port (1)"},
		{"{address: 10.1.0.1, forward: tunnel, tunnel_csum: csum}", "ipip tunnels have no port or checksum option"},
		{"{address: 10.1.0.1, forward: tunnel, tunnel_type: gre, tunnel_csum: crc}", `tunnel checksum "crc": want nocsum, csum or remcsum`},
		{"{address: 10.1.0.1, forward: tunnel, tunnel_type: gre, tunnel_csum: remcsum}", `tunnel checksum remcsum: only with gue, not gre`},
		{"{address: 10.1.0.1, tunnel_type: gue, tunnel_port: 6080}", "tunnel type, port and checksum are only for tunnelling (-i)"},
		{"{address: 10.1.0.1, forward: tunnel, tunnel_type: gue, tunnel_port: 65536}", "line 7: services[0].servers[0]: tunnel_port 65536: want 1-65535"},
		{"{address: 10.1.0.1, forward: tunnel, tunnel_type: gue, tunnel_port: x}", "line 7: services[0].servers[0].tunnel_port: cannot unmarshal !!str `x` into int"},
	} {
		_, err := ParseYAML(strings.NewReader(svcHead + "      - " + tc.server + "\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v\nwant it to contain %q", tc.server, err, tc.want)
		}
	}
	// Tunnel keys are per server: a service default is an unknown key.
	_, err = ParseYAML(strings.NewReader("services:\n  - {protocol: tcp, address: 10.0.0.1, port: 80, tunnel_type: gre}\n"))
	if err == nil || !strings.Contains(err.Error(), `field "tunnel_type" is not a service key`) {
		t.Errorf("service-level tunnel_type: %v", err)
	}
}

func TestYAMLSync(t *testing.T) {
	cfg := mustYAML(t, "sync: {id: 7, group: 239.1.1.81, port: 9000, ttl: 2, max_len: 1400}\n")
	want := fsm.Sync{ID: 7, Group: netip.MustParseAddr("239.1.1.81"), Port: 9000, TTL: 2, MaxLen: 1400}
	if cfg.Sync == nil || *cfg.Sync != want {
		t.Fatalf("sync = %+v, want %+v", cfg.Sync, want)
	}
	out, err := MarshalYAML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if back := mustYAML(t, string(out)); back.Sync == nil || *back.Sync != want {
		t.Fatalf("round trip through\n%s\ngave %+v", out, back.Sync)
	}
	if off := mustYAML(t, "sync: {off: true}\n"); off.Sync == nil || !off.Sync.Off {
		t.Fatalf("off: %+v", off.Sync)
	}
	if none := mustYAML(t, "version: 1\n"); none.Sync != nil {
		t.Fatalf("no sync block: %+v, want nil (the defaults)", none.Sync)
	}
	for _, tc := range []struct{ in, want string }{
		{"sync: {id: 256}\n", "line 1: sync: sync id 256: want 1-255, or omit it for the default"},
		{"sync: {group: 10.0.0.1}\n", "line 1: sync: sync group 10.0.0.1: not a multicast group"},
		{"sync: {group: nowhere}\n", `line 1: sync: sync group "nowhere": not an address`},
		{"sync: {max_len: 100}\n", "line 1: sync: sync max_len 100"},
		{"sync: {interface: eth0}\n", `field "interface" is not a sync key (want off, id, group, port, ttl, max_len)`},
	} {
		_, err := ParseYAML(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: err %v, want %q", tc.in, err, tc.want)
		}
	}
}

// In block style, an error names the sync field's own line.
func TestYAMLSyncErrorLine(t *testing.T) {
	_, err := ParseYAML(strings.NewReader("version: 1\nsync:\n  id: 3\n  ttl: 300\n"))
	if err == nil || !strings.Contains(err.Error(), "line 4: sync: sync ttl 300: want 1-255") {
		t.Fatalf("err %v, want line 4 and the ttl named", err)
	}
}
