package topology

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

const exampleLine = `MyService:t:193.123.45.12:80 ["Intel_web1-10:10.3.0.10+:8080","AMD_spare5+:10.4.6.24-28:80"] (-m -swrr)`

func mustLines(t *testing.T, text string) *fsm.Config {
	t.Helper()
	cfg, err := ParseLines(strings.NewReader(text))
	if err != nil {
		t.Fatalf("ParseLines(%q): %v", text, err)
	}
	return cfg
}

// only returns the single service of cfg.
func only(t *testing.T, cfg *fsm.Config) *fsm.Service {
	t.Helper()
	if len(cfg.Services) != 1 {
		t.Fatalf("got %d services, want 1", len(cfg.Services))
	}
	for _, s := range cfg.Services {
		return s
	}
	return nil
}

// servers summarizes a service's servers in address order, one string
// each, so that tables can state expectations compactly.
func servers(svc *fsm.Service) []string {
	rs := slices.Collect(maps.Values(svc.Servers))
	slices.SortFunc(rs, func(a, b *fsm.RealServer) int {
		return cmp.Or(a.Address.Compare(b.Address), cmp.Compare(a.Port, b.Port))
	})
	var out []string
	for _, r := range rs {
		s := fmt.Sprintf("%s@%s/%s/w%d", r.Name, r.Key(), r.Forward, r.Weight)
		if r.Upper != 0 || r.Lower != 0 {
			s += fmt.Sprintf("/x%d/y%d", r.Upper, r.Lower)
		}
		if r.State != fsm.Active {
			s += "/" + string(r.State)
		}
		out = append(out, s)
	}
	return out
}

func TestExampleLine(t *testing.T) {
	svc := only(t, mustLines(t, exampleLine))
	if got := svc.Key.String(); got != "tcp:193.123.45.12:80" {
		t.Errorf("key = %s", got)
	}
	if svc.Name != "MyService" || svc.Scheduler != "wrr" || svc.Persistence != nil || svc.OnePacket || svc.Flags != nil {
		t.Errorf("service = %+v", svc)
	}
	if len(svc.Servers) != 15 {
		t.Fatalf("got %d servers, want 15", len(svc.Servers))
	}
	want := map[string]string{}
	for i := 1; i <= 10; i++ {
		want[fmt.Sprintf("10.3.0.%d:8080", 9+i)] = fmt.Sprintf("Intel_web%d", i)
	}
	for i := 5; i <= 9; i++ {
		want[fmt.Sprintf("10.4.6.%d:80", 19+i)] = fmt.Sprintf("AMD_spare%d", i)
	}
	for key, name := range want {
		r := svc.Servers[key]
		if r == nil {
			t.Errorf("server %s missing", key)
			continue
		}
		if r.Name != name || r.Forward != fsm.Masquerade || r.Weight != 1 || r.State != fsm.Active || r.Key() != key {
			t.Errorf("server %s = %+v, want %s masq weight 1 active", key, r, name)
		}
	}
}

func TestLinesGrammar(t *testing.T) {
	const h = "S:t:10.0.0.1:80 "
	tests := []struct {
		name, in string
		key      string // "" = tcp:10.0.0.1:80
		servers  []string
		check    func(*testing.T, *fsm.Service)
	}{
		{name: "single, service port", in: h + `["a:10.1.0.1"]`, servers: []string{"a@10.1.0.1:80/droute/w1"}},
		{name: "own port, masq", in: h + `["a:10.1.0.1:8080"] (-m)`, servers: []string{"a@10.1.0.1:8080/masq/w1"}},
		{name: "droute takes service port", in: h + `["a:10.1.0.1:8080"] (-g)`, servers: []string{"a@10.1.0.1:80/droute/w1"}},
		{name: "weight field", in: h + `["a:10.1.0.1:8080:3"] (-m)`, servers: []string{"a@10.1.0.1:8080/masq/w3"}},
		{name: "weight without port", in: h + `["a:10.1.0.1::3"]`, servers: []string{"a@10.1.0.1:80/droute/w3"}},
		{name: "weight 0", in: h + `["a:10.1.0.1::0"]`, servers: []string{"a@10.1.0.1:80/droute/w0"}},
		{name: "default weight -w", in: h + `["a:10.1.0.1","b:10.1.0.2::5"] (-w 2)`,
			servers: []string{"a@10.1.0.1:80/droute/w2", "b@10.1.0.2:80/droute/w5"}},
		{name: "default weight -wW", in: h + `["a:10.1.0.1"] (-w7)`, servers: []string{"a@10.1.0.1:80/droute/w7"}},
		{name: "name range, address counts", in: h + `["w1-3:10.1.0.250+"]`,
			servers: []string{"w1@10.1.0.250:80/droute/w1", "w2@10.1.0.251:80/droute/w1", "w3@10.1.0.252:80/droute/w1"}},
		{name: "name counts, address range", in: h + `["s8+:10.1.0.1-3"]`,
			servers: []string{"s8@10.1.0.1:80/droute/w1", "s9@10.1.0.2:80/droute/w1", "s10@10.1.0.3:80/droute/w1"}},
		{name: "both ranges", in: h + `["db1-3:10.1.0.7-9"]`,
			servers: []string{"db1@10.1.0.7:80/droute/w1", "db2@10.1.0.8:80/droute/w1", "db3@10.1.0.9:80/droute/w1"}},
		{name: "zero padding", in: h + `["web08-10:10.1.0.1+"]`,
			servers: []string{"web08@10.1.0.1:80/droute/w1", "web09@10.1.0.2:80/droute/w1", "web10@10.1.0.3:80/droute/w1"}},
		{name: "dash in name is not a range", in: h + `["web-1:10.1.0.1"]`, servers: []string{"web-1@10.1.0.1:80/droute/w1"}},
		{name: "range up to .255", in: h + `["w1-2:10.1.0.254+"]`,
			servers: []string{"w1@10.1.0.254:80/droute/w1", "w2@10.1.0.255:80/droute/w1"}},
		{name: "range with weight", in: h + `["w1-2:10.1.0.1+:8080:4"] (-m)`,
			servers: []string{"w1@10.1.0.1:8080/masq/w4", "w2@10.1.0.2:8080/masq/w4"}},
		{name: "unnamed server", in: h + `[":10.1.0.1"]`, servers: []string{"@10.1.0.1:80/droute/w1"}},
		{name: "IPv6", in: `W6:t:[2001:db8::1]:80 ["v1-3:[2001:db8::a]+"]`, key: "tcp:[2001:db8::1]:80",
			servers: []string{"v1@[2001:db8::a]:80/droute/w1", "v2@[2001:db8::b]:80/droute/w1", "v3@[2001:db8::c]:80/droute/w1"}},
		{name: "IPv6 hex range", in: `W6:t:[2001:db8::1]:80 ["v1+:[2001:db8::fe-101]"] (-m)`, key: "tcp:[2001:db8::1]:80",
			servers: []string{"v1@[2001:db8::fe]:80/masq/w1", "v2@[2001:db8::ff]:80/masq/w1", "v3@[2001:db8::100]:80/masq/w1", "v4@[2001:db8::101]:80/masq/w1"}},
		{name: "IPv6 port and weight", in: `W6:u:[2001:db8::1]:53 ["v:[2001:db8::a]:5353:4"] (-m)`, key: "udp:[2001:db8::1]:53",
			servers: []string{"v@[2001:db8::a]:5353/masq/w4"}},
		{name: "tunnel mixes families", in: `W6:t:[2001:db8::1]:80 ["v4:10.1.0.1"] (-i)`, key: "tcp:[2001:db8::1]:80",
			servers: []string{"v4@10.1.0.1:80/tunnel/w1"}},
		{name: "fwmark", in: `M:f:7 ["a:10.1.0.1", "b:10.1.0.2:8080"] (-m)`, key: "fwmark:7",
			servers: []string{"a@10.1.0.1:0/masq/w1", "b@10.1.0.2:8080/masq/w1"}},
		{name: "fwmark6", in: `M6:f6:7 ["a:[2001:db8::a]"]`, key: "fwmark6:7", servers: []string{"a@[2001:db8::a]:0/droute/w1"}},
		{name: "no servers, no options", in: `S:t:10.0.0.1:80`, check: func(t *testing.T, s *fsm.Service) {
			if s.Scheduler != "wlc" || len(s.Servers) != 0 {
				t.Errorf("got %+v, want wlc and no servers", s)
			}
		}},
		{name: "empty list", in: h + `[ ] (-m)`},
		{name: "unnamed service", in: `:t:10.0.0.1:80 ["a:10.1.0.1"]`, servers: []string{"a@10.1.0.1:80/droute/w1"},
			check: func(t *testing.T, s *fsm.Service) {
				if s.Name != "" {
					t.Errorf("name = %q", s.Name)
				}
			}},
		{name: "tight spacing", in: `S:t:10.0.0.1:80["a:10.1.0.1" ,"b:10.1.0.2",	"c:10.1.0.3"](-m)`,
			servers: []string{"a@10.1.0.1:80/masq/w1", "b@10.1.0.2:80/masq/w1", "c@10.1.0.3:80/masq/w1"}},
		{name: "options only", in: h + `(-s rr)`, check: schedIs("rr")},
		{name: "-sSCHED", in: h + `(-swrr)`, check: schedIs("wrr")},
		{name: "--scheduler=", in: h + `(--scheduler=lc)`, check: schedIs("lc")},
		{name: "--scheduler word", in: h + `(--scheduler sed)`, check: schedIs("sed")},
		{name: "-p", in: h + `(-p)`, check: persist(300, "")},
		{name: "-p N", in: h + `(-p 600)`, check: persist(600, "")},
		{name: "-pN", in: h + `(-p900 -m)`, check: persist(900, "")},
		{name: "--persistent=N", in: h + `(--persistent=60)`, check: persist(60, "")},
		{name: "-p then option", in: h + `(-p -M 255.255.255.0)`, check: persist(300, "255.255.255.0")},
		{name: "-M before -p", in: h + `(-M255.255.0.0 -p 60)`, check: persist(60, "255.255.0.0")},
		{name: "port 0 persistent", in: `S:t:10.0.0.1:0 ["a:10.1.0.1"] (-p)`, key: "tcp:10.0.0.1:0",
			servers: []string{"a@10.1.0.1:0/droute/w1"}},
		{name: "-b flags", in: h + `(-s sh -b sh-port,sh-fallback)`, check: func(t *testing.T, s *fsm.Service) {
			if !slices.Equal(s.Flags, []string{"sh-fallback", "sh-port"}) {
				t.Errorf("flags = %v", s.Flags)
			}
		}},
		{name: "-o", in: `S:u:10.0.0.1:53 (-o)`, key: "udp:10.0.0.1:53", check: func(t *testing.T, s *fsm.Service) {
			if !s.OnePacket {
				t.Error("one-packet not set")
			}
		}},
		{name: "-i", in: h + `["a:10.1.0.1"] (-i)`, servers: []string{"a@10.1.0.1:80/tunnel/w1"}},
		{name: "--masquerading", in: h + `["a:10.1.0.1:81"] (--masquerading)`, servers: []string{"a@10.1.0.1:81/masq/w1"}},
		{name: "thresholds", in: h + `["a:10.1.0.1"] (-x 100 -y10)`, servers: []string{"a@10.1.0.1:80/droute/w1/x100/y10"}},
		{name: "comments and blanks", in: "\n  # a comment\n\t" + h + `["a:10.1.0.1"]   # trailing` + "\n\n",
			servers: []string{"a@10.1.0.1:80/droute/w1"}},
		{name: "CRLF and BOM", in: "\ufeff# x\r\n" + h + `["a:10.1.0.1"]` + "\r\n", servers: []string{"a@10.1.0.1:80/droute/w1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svc := only(t, mustLines(t, tc.in))
			key := tc.key
			if key == "" {
				key = "tcp:10.0.0.1:80"
			}
			if got := svc.Key.String(); got != key {
				t.Errorf("key = %s, want %s", got, key)
			}
			if tc.servers != nil || tc.check == nil {
				if got := servers(svc); !slices.Equal(got, tc.servers) {
					t.Errorf("servers =\n  %q\nwant\n  %q", got, tc.servers)
				}
			}
			if tc.check != nil {
				tc.check(t, svc)
			}
		})
	}
}

func schedIs(s string) func(*testing.T, *fsm.Service) {
	return func(t *testing.T, svc *fsm.Service) {
		if svc.Scheduler != s {
			t.Errorf("scheduler = %q, want %q", svc.Scheduler, s)
		}
	}
}

func persist(timeout uint32, mask string) func(*testing.T, *fsm.Service) {
	return func(t *testing.T, svc *fsm.Service) {
		p := svc.Persistence
		if p == nil || p.Timeout != timeout || p.Netmask != mask {
			t.Errorf("persistence = %+v, want %d %q", p, timeout, mask)
		}
	}
}

func TestLinesVIPsAndMany(t *testing.T) {
	cfg := mustLines(t, `
vip 193.123.45.12/24 eth0
vip 2001:db8::1/64 bond0.10   # IPv6
vip 10.0.0.1 eth1             # host prefix
vip 10.1.0.1/24 eth1 d2=ens4 d3=bond0   # gateway VIP, NICs named differently on d2, d3
`+exampleLine+`
DNS:u:193.123.45.12:53 ["ns1-2:10.5.0.1+"]
Mark:f:1
Mark6:f6:1
`)
	want := map[string]string{"193.123.45.12/24": "eth0", "2001:db8::1/64": "bond0.10", "10.0.0.1/32": "eth1", "10.1.0.1/24": "eth1"}
	if len(cfg.VIPs) != len(want) {
		t.Errorf("vips = %v", cfg.VIPs)
	}
	for k, dev := range want {
		if v, ok := cfg.VIPs[k]; !ok || v.Interface != dev || v.Prefix.String() != k {
			t.Errorf("vip %s = %+v, want on %s", k, v, dev)
		}
	}
	gw := cfg.VIPs["10.1.0.1/24"]
	if gw.InterfaceOn("d1") != "eth1" || gw.InterfaceOn("d2") != "ens4" || gw.InterfaceOn("d3") != "bond0" || len(gw.Interfaces) != 2 {
		t.Errorf("gateway vip = %+v", gw)
	}
	if got := cfg.SortedServiceKeys(); !slices.Equal(got, []string{"fwmark6:1", "fwmark:1", "tcp:193.123.45.12:80", "udp:193.123.45.12:53"}) {
		t.Errorf("services = %v", got)
	}
}

func TestLinesEmpty(t *testing.T) {
	for _, in := range []string{"", "\n\n", "# only a comment\n", "\ufeff"} {
		cfg := mustLines(t, in)
		if len(cfg.Services) != 0 || len(cfg.VIPs) != 0 || cfg.Services == nil || cfg.VIPs == nil {
			t.Errorf("%q: got %+v, want an empty config with made maps", in, cfg)
		}
	}
}

func TestLinesErrors(t *testing.T) {
	const h = "S:t:10.0.0.1:80 "
	tests := []struct {
		name, in string
		want     []string // all must appear in the message
	}{
		{"doc example: runs past 255", "S:t:1.2.3.4:80\n\n" + `S2:t:1.2.3.4:81 ["Intel_web1-10:10.3.0.250+:8080"]`,
			[]string{`line 3: real server "Intel_web1-10:10.3.0.250+:8080": name range 1-10 gives 10 names but address 10.3.0.250+ runs past 255`}},
		{"doc example: protocol", `MyService:x:1.2.3.4:80`,
			[]string{`line 1: service "MyService:x:1.2.3.4:80": protocol "x": want t, u, s (SCTP) or f`}},
		{"doc example: defined twice", "# x\nA:t:193.123.45.12:80\nB:u:193.123.45.12:80\n\nC:t:193.123.45.12:80 (-m)",
			[]string{`line 5: service tcp:193.123.45.12:80: defined twice (also on line 2)`}},
		{"name range, single address", h + `["web1-10:10.0.0.1"]`,
			[]string{"line 1:", `real server "web1-10:10.0.0.1"`, "name range 1-10 gives 10 names but address 10.0.0.1 is a single address"}},
		{"address range, single name", h + `["spare:10.4.6.24-28"]`,
			[]string{"line 1:", `real server "spare:10.4.6.24-28"`, `address range 10.4.6.24-28 gives 5 addresses but name "spare" is a single name`}},
		{"counting name, single address", h + `["spare5+:10.0.0.1"]`,
			[]string{`real server "spare5+:10.0.0.1"`, "name spare5+ counts up with '+' but address 10.0.0.1 is not a range"}},
		{"counting address, single name", h + `["web:10.0.0.1+"]`,
			[]string{`real server "web:10.0.0.1+"`, `address 10.0.0.1+ counts up with '+' but name "web" is not a name range`}},
		{"both count", h + `["s5+:10.0.0.1+"]`, []string{`real server "s5+:10.0.0.1+"`, "both count up"}},
		{"counts disagree", h + `["db1-3:10.0.0.7-10"]`,
			[]string{`real server "db1-3:10.0.0.7-10"`, "name range 1-3 gives 3 names but address range 10.0.0.7-10 gives 4 addresses"}},
		{"name range backwards", h + `["w10-1:10.0.0.1+"]`, []string{`real server "w10-1:10.0.0.1+"`, "name range 10-1: runs backwards"}},
		{"address range backwards", h + `["w1+:10.0.0.9-7"]`, []string{`address range "10.0.0.9-7": runs backwards`}},
		{"address range past 255", h + `["w1+:10.0.0.1-300"]`, []string{`real server "w1+:10.0.0.1-300"`, `end "300"`}},
		{"IPv6 counts past ffff", `W:t:[2001:db8::1]:80 ["v1-3:[2001:db8::fffe]+"]`,
			[]string{`real server "v1-3:[2001:db8::fffe]+"`, "runs past ffff"}},
		{"plus without number", h + `["spare+:10.0.0.1-2"]`, []string{`name "spare+": '+' counts up a trailing number`}},
		{"range and plus", h + `["w1-2:10.0.0.1-2+"]`, []string{`address "10.0.0.1-2+": a range cannot also count up`}},
		{"unknown option", h + `(-m -q)`, []string{"line 1:", `service "S:t:10.0.0.1:80"`, `option "-q": unknown`}},
		{"bundled flags", h + `(-mo)`, []string{`option "-mo": unknown`}},
		{"unknown long option", h + `(--bogus)`, []string{`option "--bogus": unknown`}},
		{"not an option", h + `(m)`, []string{`option "m": options start with '-'`}},
		{"option needs value", h + `(-m -s)`, []string{`option "-s": needs a value`}},
		{"empty long value", h + `(--scheduler=)`, []string{`option "--scheduler=": needs a value`}},
		{"option twice", h + `(-s rr -swrr)`, []string{`option "-swrr": given twice (also "-s")`}},
		{"forwarding conflict", h + `(-g -m)`, []string{`option "-m": conflicts with "-g"`}},
		{"-M without -p", h + `(-M 255.255.255.0)`, []string{`option "-M": needs -p`}},
		{"-p 0", h + `(-p 0)`, []string{`option "-p": timeout "0"`}},
		{"bad -w", h + `(-w 70000)`, []string{`option "-w": weight "70000": want 0-65535`}},
		{"bad -x", h + `(-x -1)`, []string{`option "-x": threshold "-1"`}},
		{"bad flag list", h + `(-s sh -b sh-port,)`, []string{`flags "sh-port,"`}},
		{"bad scheduler", h + `(-s foo-bar)`, []string{"line 1:", `service "S:t:10.0.0.1:80"`, `scheduler "foo-bar": want lower-case letters, digits and '_'`}},
		{"flag needs scheduler", h + `(-b sh-port)`, []string{`scheduler flag "sh-port": only valid with scheduler sh`}},
		{"bad -M", h + `(-p -M 255.0.255.0)`, []string{`netmask "255.0.255.0": not a contiguous netmask`}},
		{"bad server weight", h + `["a:10.1.0.1::70000"]`, []string{`real server "a:10.1.0.1::70000"`, "weight 70000: out of range"}},
		{"weight not a number", h + `["a:10.1.0.1::x"]`, []string{`real server "a:10.1.0.1::x"`, `weight "x"`}},
		{"bad server name", h + `["a b:10.1.0.1"]`, []string{`real server "a b:10.1.0.1"`, `name "a b": use 1-64 letters`}},
		{"name range too long", h + `["` + strings.Repeat("x", 63) + `9-10:10.1.0.1+"]`, []string{`name "` + strings.Repeat("x", 63) + `10"`}},
		{"bad service name", `A/B:t:10.0.0.1:80`, []string{`service "A/B:t:10.0.0.1:80"`, `name "A/B"`}},
		{"head without port", `S:t:10.0.0.1`, []string{`service "S:t:10.0.0.1"`, `address "10.0.0.1": want ADDRESS:PORT`}},
		{"head without protocol", `web ["a:10.0.0.1"]`, []string{`service "web"`, "want NAME:PROTO:ADDRESS:PORT"}},
		{"bad port", `S:t:10.0.0.1:99999`, []string{`port "99999": want 0-65535`}},
		{"port 0 without -p", `S:t:10.0.0.1:0`, []string{"line 1:", "port 0 is only valid for a persistent service"}},
		{"bad address", `S:t:10.0.0.300:80`, []string{`address "10.0.0.300": not an IP address`}},
		{"unbracketed IPv6 head", `S:t:2001:db8::1:80`, []string{"put IPv6 addresses in brackets"}},
		{"unclosed IPv6 head", `S:t:[2001:db8::1:80`, []string{"missing ']'"}},
		{"zone", `S:t:[fe80::1%eth0]:80`, []string{`address "fe80::1%eth0": zones are not allowed`}},
		{"multicast service", `S:t:224.0.0.1:80`, []string{"multicast is not a virtual service address"}},
		{"bad mark", `M:f:x`, []string{`mark "x"`}},
		{"mark 0", `M:f:0`, []string{"a firewall mark must be 1 or more"}},
		{"bad server address", h + `["a:10.1.0.x"]`, []string{`real server "a:10.1.0.x"`, `address "10.1.0.x": not an IP address`}},
		{"unbracketed IPv6 server", h + `["a:2001:db8::1:80"]`, []string{`real server "a:2001:db8::1:80"`, "too many fields", "IPv6 addresses in brackets"}},
		{"unbracketed short IPv6 server", h + `["a:fe80::1"]`, []string{`real server "a:fe80::1"`, `address "fe80": not an IP address (IPv6 addresses go in brackets)`}},
		{"server without address", h + `["a"]`, []string{`real server "a"`, "want NAME:ADDRESS"}},
		{"too many fields", h + `["a:10.1.0.1:80:1:2"]`, []string{`real server "a:10.1.0.1:80:1:2"`, "too many fields"}},
		{"family mismatch", h + `["a:[2001:db8::a]"] (-m)`, []string{"address family differs"}},
		{"unspecified server", h + `["a:0.0.0.0"]`, []string{"is not a unicast address"}},
		{"duplicate server", h + `["a:10.1.0.1", "b:10.1.0.1"]`,
			[]string{"line 1:", `real server "b:10.1.0.1": 10.1.0.1:80 listed twice (also in "a:10.1.0.1")`}},
		{"droute ports collide", h + `["a:10.1.0.1:8080", "b:10.1.0.1:8081"]`,
			[]string{`real server "b:10.1.0.1:8081": 10.1.0.1:80 listed twice (also in "a:10.1.0.1:8080")`}},
		{"ranges overlap", h + `["w1-5:10.1.0.1+", "s1+:10.1.0.5-6"]`, []string{`real server "s1+:10.1.0.5-6": 10.1.0.5:80 listed twice (also in "w1-5:10.1.0.1+")`}},
		{"unterminated list", h + `["a:10.1.0.1"`, []string{"server list", "want ',' or ']'"}},
		{"unquoted server", h + `[a:10.1.0.1]`, []string{"server list", "want a quoted server"}},
		{"missing quote", h + `["a:10.1.0.1]`, []string{"missing closing"}},
		{"trailing comma", h + `["a:10.1.0.1",]`, []string{"want a quoted server"}},
		{"missing )", h + `(-m`, []string{"options: missing ')'"}},
		{"junk after options", h + `(-m) x`, []string{`unexpected "x"`}},
		{"options before servers", h + `(-m) ["a:10.1.0.1"]`, []string{`unexpected "[\"a:10.1.0.1\"]"`}},
		{"vip without interface", `vip 10.0.0.1/24`, []string{"line 1:", "want vip ADDRESS[/PREFIXLEN] INTERFACE"}},
		{"vip override without =", `vip 10.0.0.1/24 eth0 d2`, []string{"line 1:", `vip 10.0.0.1/24: "d2": want ecmp or NODE=INTERFACE`}},
		{"vip override twice", `vip 10.0.0.1/24 eth0 d2=a d2=b`, []string{"line 1:", "node d2: interface given twice"}},
		{"vip override bad node", `vip 10.0.0.1/24 eth0 d/2=a`, []string{"line 1:", `node id "d/2"`}},
		{"vip override bad interface", `vip 10.0.0.1/24 eth0 d2=`, []string{"line 1:", `interface on node d2 ""`}},
		{"vip bad prefix", `vip 10.0.0.1/33 eth0`, []string{"line 1:", "vip 10.0.0.1/33", "want ADDRESS/PREFIXLEN"}},
		{"vip bad interface", `vip 10.0.0.1/24 this-name-is-too-long`, []string{"line 1:", `interface "this-name-is-too-long"`}},
		{"vip twice", "vip 10.0.0.1/24 eth0\nvip 10.0.0.1/24 eth1", []string{"line 2: vip 10.0.0.1/24: defined twice (also on line 1)"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := ParseLines(strings.NewReader(tc.in))
			if err == nil {
				t.Fatalf("ParseLines(%q) = %v, want an error", tc.in, cfg)
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

func TestLinesReportsEveryBadLine(t *testing.T) {
	in := "A:t:10.0.0.1:80 (-q)\nB:t:10.0.0.2:80\nC:x:10.0.0.3:80\n"
	_, err := ParseLines(strings.NewReader(in))
	if err == nil {
		t.Fatal("no error")
	}
	msg := err.Error()
	if !strings.Contains(msg, "line 1:") || !strings.Contains(msg, "line 3:") || strings.Contains(msg, "line 2:") {
		t.Errorf("error %q: want lines 1 and 3 only", msg)
	}
	var many strings.Builder
	for i := range 50 {
		fmt.Fprintf(&many, "S%d:x:10.0.0.1:80\n", i)
	}
	_, err = ParseLines(strings.NewReader(many.String()))
	if got := strings.Count(err.Error(), "\n") + 1; got != maxErrors+1 || !strings.Contains(err.Error(), "and 30 more problems") {
		t.Errorf("got %d lines:\n%v", got, err)
	}
}

func TestLinesServerBudget(t *testing.T) {
	defer func(n int) { maxServers = n }(maxServers)
	maxServers = 10
	mustLines(t, `S:t:10.0.0.1:80 ["a1-5:10.1.0.1+", "b1+:10.1.1.1-5"]`)
	_, err := ParseLines(strings.NewReader("S:t:10.0.0.1:80 [\"a1-5:10.1.0.1+\"]\nT:t:10.0.0.1:81 [\"b1-6:10.1.0.1+\"]\n"))
	if err == nil || !strings.Contains(err.Error(), `line 2: real server "b1-6:10.1.0.1+": more than 10 real servers in one file`) {
		t.Errorf("got %v", err)
	}
}
