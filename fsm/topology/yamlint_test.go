package topology

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// parseErr parses in, which must fail, and returns the whole error text.
func parseErr(t *testing.T, in string) string {
	t.Helper()
	cfg, err := ParseYAML(strings.NewReader(in))
	if err == nil {
		t.Fatalf("ParseYAML:\n%s\nno error, config %s", in, jsonOf(t, cfg))
	}
	if cfg != nil {
		t.Errorf("got a config with the error %v", err)
	}
	return err.Error()
}

const webHead = "services:\n  - name: Web\n    protocol: tcp\n    address: 10.0.0.1\n    port: 80\n"

// The user's reports: yaml.v3 truncated a float into an int field, so
// weight 0.5 took a server out of rotation without a word.
func TestYAMLFractionsRefused(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"server weight 0.5", webHead + "    servers:\n      - {address: 10.3.0.10, weight: 0.5}\n",
			`line 7: services[0].servers[0].weight: "0.5" is not an integer`},
		{"server port 80.9", webHead + "    forward: masq\n    servers:\n      - address: 10.3.0.10\n        port: 80.9\n",
			`line 9: services[0].servers[0].port: "80.9" is not an integer`},
		{"service port 80.9", "services:\n  - {protocol: tcp, address: 10.0.0.1, port: 80.9}\n",
			`line 2: services[0].port: "80.9" is not an integer`},
		{"persistence timeout 300.7", webHead + "    persistence: {timeout: 300.7}\n",
			`line 6: services[0].persistence.timeout: "300.7" is not an integer`},
		{"kernel timeout 300.7", "timeouts:\n  tcp: 900\n  udp: 300.7\n",
			`line 3: timeouts.udp: "300.7" is not an integer`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := parseErr(t, tc.in); got != tc.want {
				t.Errorf("error:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

// Every integer of the schema refuses what is not an integer, naming the
// key, the value as written and the line.
func TestYAMLEveryIntegerKey(t *testing.T) {
	svc := "services:\n  - {protocol: tcp, address: 10.0.0.1, port: 80, "
	keys := []struct{ doc, path string }{
		{"version: V\n", "version"},
		{"timeouts: {tcp: V}\n", "timeouts.tcp"},
		{"timeouts: {tcp_fin: V}\n", "timeouts.tcp_fin"},
		{"timeouts: {udp: V}\n", "timeouts.udp"},
		{"sync: {id: V}\n", "sync.id"},
		{"sync: {port: V}\n", "sync.port"},
		{"sync: {ttl: V}\n", "sync.ttl"},
		{"sync: {max_len: V}\n", "sync.max_len"},
		{"services:\n  - {protocol: tcp, address: 10.0.0.1, port: V}\n", "services[0].port"},
		{"services:\n  - {fwmark: V}\n", "services[0].fwmark"},
		{svc + "weight: V}\n", "services[0].weight"},
		{svc + "upper_threshold: V}\n", "services[0].upper_threshold"},
		{svc + "lower_threshold: V}\n", "services[0].lower_threshold"},
		{svc + "persistence: {timeout: V}}\n", "services[0].persistence.timeout"},
		{svc + "servers: [{address: 10.1.0.1, port: V}]}\n", "services[0].servers[0].port"},
		{svc + "servers: [{address: 10.1.0.1, tunnel_port: V}]}\n", "services[0].servers[0].tunnel_port"},
		{svc + "servers: [{address: 10.1.0.1, weight: V}]}\n", "services[0].servers[0].weight"},
		{svc + "servers: [{address: 10.1.0.1, upper_threshold: V}]}\n", "services[0].servers[0].upper_threshold"},
		{svc + "servers: [{address: 10.1.0.1, lower_threshold: V}]}\n", "services[0].servers[0].lower_threshold"},
		{svc + "servers: [{address: 10.1.0.1, check: {type: tcp, port: V}}]}\n", "services[0].servers[0].check.port"},
		{svc + "sorry_server: {address: 10.1.0.9, port: V}}\n", "services[0].sorry_server.port"},
		{svc + "sorry_server: {address: 10.1.0.9, weight: V}}\n", "services[0].sorry_server.weight"},
		{svc + "check: {type: tcp, rise: V}}\n", "services[0].check.rise"},
		{svc + "check: {type: tcp, fall: V}}\n", "services[0].check.fall"},
		{svc + "check: {type: tcp, port: V}}\n", "services[0].check.port"},
		{svc + "check: {type: http, status: [200, V]}}\n", "services[0].check.status[1]"},
	}
	values := []struct{ value, want string }{
		{"0.5", `"0.5" is not an integer`},
		{"1e3", `"1e3" is not an integer`},
		{"2.0", `"2.0" is not an integer`},
		{"-0.5", `"-0.5" is not an integer`},
		{".inf", `".inf" is not an integer`},
		{"99999999999999999999", `"99999999999999999999" is out of range`},
		{`"7"`, "cannot unmarshal !!str `7` into int"},
		{"true", "cannot unmarshal !!bool `true` into int"},
		{"[1]", "cannot unmarshal !!seq into int"},
	}
	for _, k := range keys {
		for _, v := range values {
			in := strings.Replace(k.doc, "V", v.value, 1)
			line := strings.Count(in, "\n")
			want := fmt.Sprintf("line %d: %s: %s", line, k.path, v.want)
			if got := parseErr(t, in); got != want {
				t.Errorf("%q:\n got %s\nwant %s", in, got, want)
			}
		}
	}
}

// A new integer key declared as a Go int would bring the truncation back.
func TestYAMLSchemaIntegersAreYAMLInts(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(typ reflect.Type, where string)
	walk = func(typ reflect.Type, where string) {
		switch typ.Kind() {
		case reflect.Pointer, reflect.Slice, reflect.Array, reflect.Map:
			walk(typ.Elem(), where)
		case reflect.Struct:
			if seen[typ] {
				return
			}
			seen[typ] = true
			for i := range typ.NumField() {
				walk(typ.Field(i).Type, where+"."+typ.Field(i).Name)
			}
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
			reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
			reflect.Float32, reflect.Float64:
			if typ != reflect.TypeFor[yamlInt]() {
				t.Errorf("%s is a %s: yaml.v3 would truncate 0.5 into it; make it a yamlInt", where, typ)
			}
		}
	}
	walk(reflect.TypeFor[yamlFile](), "yamlFile")
}

// YAML's integer spellings still read as before, and null still means
// "not given".
func TestYAMLIntegerSpellings(t *testing.T) {
	cfg := mustYAML(t, "services:\n  - {protocol: tcp, address: 10.0.0.1, port: 0x50, forward: masq, weight: +2, upper_threshold: 1_000,\n"+
		"     servers: [{address: 10.1.0.1, port: 0o17}, {address: 10.1.0.2, weight: ~}, {address: 10.1.0.3, weight: -0}]}\n"+
		"timeouts: {tcp: 0b101}\n")
	svc := cfg.Services["tcp:10.0.0.1:80"]
	if svc == nil {
		t.Fatalf("no service tcp:10.0.0.1:80: %s", jsonOf(t, cfg))
	}
	got := strings.Join(servers(svc), " ")
	want := "@10.1.0.1:15/masq/w2/x1000/y0 @10.1.0.2:80/masq/w2/x1000/y0 @10.1.0.3:80/masq/w0/x1000/y0"
	if got != want {
		t.Errorf("servers %s\nwant    %s", got, want)
	}
	if cfg.Timeouts == nil || cfg.Timeouts.TCP != 5 {
		t.Errorf("timeouts = %+v, want tcp 5", cfg.Timeouts)
	}
}

// Out of range is an error naming the key and the value, never a wrap-around.
func TestYAMLIntegersOutOfRange(t *testing.T) {
	svc := "services:\n  - {protocol: tcp, address: 10.0.0.1, port: 80, "
	for _, tc := range []struct{ in, want string }{
		{"services:\n  - {protocol: tcp, address: 10.0.0.1, port: -1}\n", "line 2: services[0]: port -1: want 0-65535"},
		{"services:\n  - {protocol: tcp, address: 10.0.0.1, port: 65536}\n", "line 2: services[0]: port 65536: want 0-65535"},
		{svc + "forward: masq, servers: [{address: 10.1.0.1, port: -1}]}\n", "line 2: services[0].servers[0]: port -1: want 0-65535"},
		{svc + "forward: masq, servers: [{address: 10.1.0.1, port: 65536}]}\n", "line 2: services[0].servers[0]: port 65536: want 0-65535"},
		{svc + "servers: [{address: 10.1.0.1, forward: tunnel, tunnel_type: gue, tunnel_port: -1}]}\n",
			"line 2: services[0].servers[0]: tunnel_port -1: want 1-65535"},
		{svc + "check: {type: tcp, port: 65536}}\n", "line 2: services[0].check: port 65536: want 1-65535 (leave it out for the real server's port)"},
		{"sync: {port: 65536}\n", "line 1: sync: sync port 65536: want 1-65535, or omit it for the default"},
		{"services:\n  - {fwmark: -1}\n", "line 2: services[0]: fwmark -1: want 1-4294967295"},
		{svc + "persistence: {timeout: 4294967296}}\n", "line 2: services[0].persistence: persistence timeout 4294967296: want a number of seconds, 1 or more, or omit it for 300"},
		{svc + "weight: -1}\n", "line 2: services[0]: weight -1: want 0-65535"},
		// These failed on the original code: a kernel timeout of -1 was a
		// Go type error, one past uint32 lost its key and value (yaml.v3
		// shortens long values: `4294967...`), and so did anything past
		// int64.
		{"timeouts: {tcp_fin: -1}\n", "line 1: timeouts: timeout tcp_fin -1: want 0-2678400 seconds (0 leaves it to the kernel)"},
		{"timeouts:\n  udp: 42949672960\n", "line 2: timeouts: timeout udp 42949672960: want 0-2678400 seconds (0 leaves it to the kernel)"},
		{"services:\n  - {fwmark: 99999999999999999999}\n", `line 2: services[0].fwmark: "99999999999999999999" is out of range`},
		{svc + "servers: [{address: 10.1.0.1, weight: 18446744073709551615}]}\n", `line 2: services[0].servers[0].weight: "18446744073709551615" is out of range`},
		{svc + "upper_threshold: 9223372036854775808}\n", `line 2: services[0].upper_threshold: "9223372036854775808" is out of range`},
		// Truncation turned these into port 0 and 65535.
		{svc + "forward: masq, servers: [{address: 10.1.0.1, port: -0.5}]}\n", `line 2: services[0].servers[0].port: "-0.5" is not an integer`},
		{svc + "forward: masq, servers: [{address: 10.1.0.1, port: 65535.5}]}\n", `line 2: services[0].servers[0].port: "65535.5" is not an integer`},
	} {
		if got := parseErr(t, tc.in); got != tc.want {
			t.Errorf("%q:\n got %s\nwant %s", tc.in, got, tc.want)
		}
	}
}

// One run reports every problem of the file, with its line, in line order.
func TestYAMLReportsEveryProblem(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []string
	}{
		{"the three reports in one file", webHead +
			"    persistence: {timeout: 300.7}\n" +
			"    servers:\n" +
			"      - {address: 10.3.0.10, weight: 0.5}\n" +
			"      - {address: 10.3.0.11, port: 80.9}\n",
			[]string{
				`line 6: services[0].persistence.timeout: "300.7" is not an integer`,
				`line 8: services[0].servers[0].weight: "0.5" is not an integer`,
				`line 9: services[0].servers[1].port: "80.9" is not an integer`,
			}},
		{"decoding and checking problems together", webHead +
			"    servers:\n" +
			"      - {address: 10.3.0.10, weight: 0.5}\n" +
			"      - {address: 10.3.0.x}\n" +
			"  - name: DNS\n" +
			"    protocol: udp\n" +
			"    address: 10.0.0.2\n" +
			"    port: 53\n" +
			"    forward: nat\n",
			[]string{
				`line 7: services[0].servers[0].weight: "0.5" is not an integer`,
				`line 8: services[0].servers[1]: address "10.3.0.x": not an IP address`,
				`line 13: services[1]: service "DNS": forward "nat": want droute, tunnel, masq or local`,
			}},
		{"in line order, not the order checked", "version: 1\n" +
			"services:\n" +
			"  - {protocol: tcp, address: 10.0.0.1, port: 80, forward: nat}\n" +
			"timeouts: {tcp: 99999999}\n" +
			"sync: {ttl: 300}\n" +
			"vips:\n" +
			"  - {address: 10.0.0.1/40, interface: eth0}\n",
			[]string{
				`line 3: services[0]: forward "nat": want droute, tunnel, masq or local`,
				`line 4: timeouts: timeout tcp 99999999: want 0-2678400 seconds (0 leaves it to the kernel)`,
				`line 5: sync: sync ttl 300: want 1-255, or omit it for the default`,
				`line 7: vips[0]: address "10.0.0.1/40": want ADDRESS/PREFIXLEN`,
			}},
		{"several problems of one server", webHead + "    servers:\n      - {address: 10.1.0.x, port: 70000, forward: gre, upper_threshold: -1}\n",
			[]string{
				`line 7: services[0].servers[0]: address "10.1.0.x": not an IP address`,
				`line 7: services[0].servers[0]: port 70000: want 0-65535`,
				`line 7: services[0].servers[0]: forward "gre": want droute, tunnel, masq or local`,
				`line 7: services[0].servers[0]: upper_threshold -1: want 0-4294967295 connections (0 = none)`,
			}},
		{"a wrong key and the rest of the service", "services:\n" +
			"  - protocol: icmp\n" +
			"    weight: 70000\n" +
			"    servers:\n" +
			"      - {address: 10.1.0.x}\n",
			[]string{
				`line 2: services[0]: protocol "icmp": want tcp, udp, sctp or fwmark`,
				`line 3: services[0]: weight 70000: want 0-65535`,
				`line 5: services[0].servers[0]: address "10.1.0.x": not an IP address`,
			}},
		{"several problems of a check", webHead + "    check:\n      type: tcp\n      interval: 0s\n      rise: 0\n      port: 0\n",
			[]string{
				`line 8: services[0].check: service "Web": interval 0s: want a positive duration (leave it out for the default 2s)`,
				`line 9: services[0].check: service "Web": rise 0: want 1 or more (leave it out for the default 2)`,
				`line 10: services[0].check: service "Web": port 0: want 1-65535 (leave it out for the real server's port)`,
			}},
		{"several sync settings", "sync:\n  id: 256\n  ttl: 300\n  group: nowhere\n",
			[]string{
				`line 2: sync: sync id 256: want 1-255, or omit it for the default`,
				`line 3: sync: sync ttl 300: want 1-255, or omit it for the default`,
				`line 4: sync: sync group "nowhere": not an address`,
			}},
		// A value that did not decode leaves its field unset; the item's
		// checks would only echo that ("port: missing"), so they are
		// skipped, while other items are still checked.
		{"no echoes of a bad value", "services:\n" +
			"  - protocol: tcp\n" +
			"    address: 10.0.0.1\n" +
			"    port: eighty\n" +
			"    servers: [{address: 10.1.0.1, port: 8080}]\n" +
			"  - protocol: tcp\n" +
			"    address: [10.0.0.2]\n" +
			"    port: 80\n" +
			"  - {protocol: tcp, address: 10.0.0.1, port: 0, forward: nat}\n",
			[]string{
				"line 4: services[0].port: cannot unmarshal !!str `eighty` into int",
				"line 7: services[1].address: cannot unmarshal !!seq into string",
				// Not "defined twice": services[0], port unset, is not registered.
				"line 9: services[2]: service tcp:10.0.0.1:0: port 0 is only valid for a persistent service (-p)",
				`line 9: services[2]: forward "nat": want droute, tunnel, masq or local`,
			}},
		// An anchored value is decoded once per alias: one report, and
		// no guessing which items it spoiled.
		{"a bad value under an anchor", "services:\n" +
			"  - {protocol: tcp, address: 10.0.0.1, port: 80, check: &c {type: tcp, rise: 1.5}}\n" +
			"  - {protocol: tcp, address: 10.0.0.2, port: 80, check: *c}\n",
			[]string{`line 2: services[0].check.rise: "1.5" is not an integer`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, want := parseErr(t, tc.in), strings.Join(tc.want, "\n"); got != want {
				t.Errorf("error:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

// The report keeps the first maxErrors problems by line, however late the
// early ones were found.
func TestYAMLErrorBoundKeepsEarliestLines(t *testing.T) {
	var sb strings.Builder
	sb.WriteString("services:\n")
	for i := range 25 {
		fmt.Fprintf(&sb, "  - {protocol: tcp, address: 10.0.0.%d, port: 80, forward: nat}\n", i+1)
	}
	// vips are checked first, but come last.
	sb.WriteString("vips:\n  - {address: 10.0.0.1/40, interface: eth0}\n")
	lines := strings.Split(parseErr(t, sb.String()), "\n")
	if len(lines) != maxErrors+1 {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), maxErrors+1, strings.Join(lines, "\n"))
	}
	for i, l := range lines[:maxErrors] {
		if want := fmt.Sprintf("line %d: services[%d]: forward \"nat\"", i+2, i); !strings.HasPrefix(l, want) {
			t.Errorf("line %d of the report: %s\nwant it to start with %s", i+1, l, want)
		}
	}
	if last := lines[maxErrors]; last != "and 6 more problems" {
		t.Errorf("last line %q, want \"and 6 more problems\"", last)
	}
}

// The one-line form reads numbers with strconv, which takes no fractions:
// no truncation to fix there. This pins it.
func TestLinesRefuseFractions(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`S:t:10.0.0.1:80.9 ["a:10.1.0.1"]`, `line 1: service "S:t:10.0.0.1:80.9": port "80.9": want 0-65535`},
		{`S:t:10.0.0.1:80 ["a:10.1.0.1:80.9"] (-m)`, `line 1: real server "a:10.1.0.1:80.9": port "80.9": want 0-65535`},
		{`S:t:10.0.0.1:80 ["a:10.1.0.1::0.5"]`, `line 1: real server "a:10.1.0.1::0.5": weight "0.5": want a number`},
		{`S:t:10.0.0.1:80 ["a:10.1.0.1"] (-w 0.5)`, `line 1: service "S:t:10.0.0.1:80": option "-w": weight "0.5": want 0-65535`},
		{`S:t:10.0.0.1:80 ["a:10.1.0.1"] (-p300.7)`, `line 1: service "S:t:10.0.0.1:80": option "-p300.7": timeout "300.7": want a number of seconds, 1 or more`},
		{`S:t:10.0.0.1:80 ["a:10.1.0.1"] (-x 1.5)`, `line 1: service "S:t:10.0.0.1:80": option "-x": threshold "1.5": want 0-4294967295 connections`},
		{`S:f:1.5 ["a:10.1.0.1"]`, `line 1: service "S:f:1.5": mark "1.5": want a number 1-4294967295`},
	} {
		_, err := ParseLines(strings.NewReader(tc.in))
		if err == nil || err.Error() != tc.want {
			t.Errorf("%s:\n got %v\nwant %s", tc.in, err, tc.want)
		}
	}
}
