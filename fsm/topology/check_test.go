package topology

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

// checks has a service check, per-server overrides and every check key.
const checks = `
services:
  - name: Web
    protocol: tcp
    address: 10.0.0.1
    port: 443
    forward: masq
    check:
      type: https
      interval: 1s
      timeout: 500ms
      rise: 1
      fall: 5
      method: HEAD
      path: /health
      host: www.example.com
      sni: www.example.com
      status: [200, 204]
      body: ^ok$
      insecure: true
    servers:
      - {name: web1, address: 10.3.0.10, port: 8443}
      - name: web2
        address: 10.3.0.11
        check: {type: tcp, address: 10.3.0.111, port: 9000, interval: 1.5s}
  - name: DNS
    protocol: udp
    address: 10.0.0.2
    port: 53
    check: {type: dns, query: example.com., qtype: AAAA, proto: tcp, rcode: NXDOMAIN, answer: "2001:db8::1"}
    servers:
      - {address: 10.5.0.53}
      - {address: 10.5.0.54, check: {type: udp, send: ping, expect: ^pong, timeout: 100ms}}
      - {address: 10.5.0.55, check: {type: exec, command: [/usr/lib/check_dns, --server, "with space"], interval: 1m}}
      - {address: 10.5.0.56, check: {type: icmp, alpha: true}}
`

func TestYAMLChecks(t *testing.T) {
	cfg := mustYAML(t, checks)
	web := cfg.Services["tcp:10.0.0.1:443"]
	want := fsm.HealthCheck{
		Type: "https", IntervalMS: 1000, TimeoutMS: 500, Rise: 1, Fall: 5, Method: "HEAD", Path: "/health",
		Host: "www.example.com", SNI: "www.example.com", Status: []int{200, 204}, Body: "^ok$", Insecure: true,
	}
	if web == nil || web.Check == nil || !reflect.DeepEqual(*web.Check, want) {
		t.Fatalf("Web check = %+v\nwant %+v", web.Check, want)
	}
	if c := web.Servers["10.3.0.10:8443"].Check; c != nil {
		t.Errorf("web1 has a check of its own: %+v", c)
	}
	wantTCP := fsm.HealthCheck{Type: "tcp", Address: netip.MustParseAddr("10.3.0.111"), Port: 9000, IntervalMS: 1500}
	if c := web.Servers["10.3.0.11:443"].Check; c == nil || !reflect.DeepEqual(*c, wantTCP) {
		t.Errorf("web2 check = %+v, want %+v", c, wantTCP)
	}
	dns := cfg.Services["udp:10.0.0.2:53"]
	wantDNS := fsm.HealthCheck{Type: "dns", Query: "example.com.", QType: "AAAA", Proto: "tcp", RCode: "NXDOMAIN", Answer: "2001:db8::1"}
	if dns == nil || dns.Check == nil || !reflect.DeepEqual(*dns.Check, wantDNS) {
		t.Fatalf("DNS check = %+v", dns)
	}
	for k, w := range map[string]fsm.HealthCheck{
		"10.5.0.54:53": {Type: "udp", Send: "ping", Expect: "^pong", TimeoutMS: 100},
		"10.5.0.55:53": {Type: "exec", Command: []string{"/usr/lib/check_dns", "--server", "with space"}, IntervalMS: 60000},
		"10.5.0.56:53": {Type: "icmp", Alpha: true},
	} {
		if c := dns.Servers[k].Check; c == nil || !reflect.DeepEqual(*c, w) {
			t.Errorf("%s check = %+v, want %+v", k, c, w)
		}
	}

	out, err := MarshalYAML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{
		"    check:\n      type: https\n      interval: 1s\n      timeout: 500ms\n      rise: 1\n      fall: 5\n",
		"      status: [200, 204]\n",
		"      - {name: web1, address: 10.3.0.10, port: 8443}\n",
		"      - name: web2\n        address: 10.3.0.11\n        check: {type: tcp, interval: 1.5s, address: 10.3.0.111, port: 9000}\n",
		"        check: {type: exec, interval: 1m0s, command: [/usr/lib/check_dns, --server, with space]}\n",
		"      - {address: 10.5.0.53}\n",
	} {
		if !strings.Contains(string(out), w) {
			t.Errorf("export lacks %q:\n%s", w, out)
		}
	}
}

func TestYAMLCheckErrors(t *testing.T) {
	head := "services:\n  - name: S\n    protocol: tcp\n    address: 10.0.0.1\n    port: 80\n"
	server := head + "    servers:\n      - name: a\n        address: 10.1.0.1\n        check:\n"
	for _, tc := range []struct{ in, want string }{
		{head + "    check: {type: sip}\n", `line 6: services[0].check: service "S": service tcp:10.0.0.1:80 check type "sip": want one of tcp, http`},
		{head + "    check: {interval: 1s}\n", `line 6: services[0].check: service "S": service tcp:10.0.0.1:80 check type "": want one of`},
		{head + "    check: http\n", "line 6: services[0].check: cannot unmarshal !!str `http` into a check (a mapping)"},
		{head + "    check:\n      type: tcp\n      colour: red\n", `line 8: services[0].check: field "colour" is not a check key (want type, interval,`},
		{head + "    check:\n      type: tcp\n      interval: 2\n", `line 8: services[0].check: service "S": interval "2": want a duration such as 2s or 500ms`},
		{head + "    check:\n      type: tcp\n      interval: 1.5ms\n", `line 8: services[0].check: service "S": interval 1.5ms: not a whole number of milliseconds`},
		{head + "    check:\n      type: tcp\n      timeout: 0s\n", `line 8: services[0].check: service "S": timeout 0s: want a positive duration (leave it out for the default 1s)`},
		{head + "    check:\n      type: tcp\n      interval: -1s\n", `interval -1s: want a positive duration (leave it out for the default 2s)`},
		{head + "    check:\n      type: tcp\n      interval: 2000h\n", `line 8: services[0].check: service "S": interval 2000h: out of range`},
		{head + "    check:\n      type: tcp\n      interval: 2h\n", `line 8: services[0].check: service "S": service tcp:10.0.0.1:80 check interval_ms 7200000: out of range 100-3600000`},
		{head + "    check:\n      type: tcp\n      interval: 1s\n      timeout: 2s\n", `line 9: services[0].check: service "S": service tcp:10.0.0.1:80 check timeout_ms 2000: out of range 10-1000 (the interval)`},
		{head + "    check:\n      type: tcp\n      rise: 0\n", `line 8: services[0].check: service "S": rise 0: want 1 or more (leave it out for the default 2)`},
		{head + "    check:\n      type: tcp\n      fall: 101\n", `line 8: services[0].check: service "S": service tcp:10.0.0.1:80 check fall 101: out of range 1-100`},
		{head + "    check:\n      type: tcp\n      port: 70000\n", `line 8: services[0].check: service "S": port 70000: want 1-65535`},
		{head + "    check:\n      type: tcp\n      address: 10.0.0.x\n", `line 8: services[0].check: service "S": address "10.0.0.x": not an IP address`},
		{head + "    check:\n      type: tcp\n      address: 224.0.0.1\n", `line 8: services[0].check: service "S": service tcp:10.0.0.1:80 check address 224.0.0.1: not a unicast address`},
		{head + "    check:\n      type: http\n      status: [200, 700]\n", `line 8: services[0].check: service "S": service tcp:10.0.0.1:80 check status 700: not an HTTP status code`},
		{head + "    check:\n      type: http\n      status: [200, x]\n", "line 8: services[0].check.status[1]: cannot unmarshal !!str `x` into int"},
		{head + "    check:\n      type: http\n      path: health\n", `line 8: services[0].check: service "S": service tcp:10.0.0.1:80 check path "health": must start with /`},
		{head + "    check:\n      type: http\n      body: (\n", `line 8: services[0].check: service "S": service tcp:10.0.0.1:80 check body "(": error parsing regexp`},
		{head + "    check:\n      type: dns\n", `line 6: services[0].check: service "S": service tcp:10.0.0.1:80 check query "": required for a dns check`},
		{head + "    check:\n      type: exec\n      command: ls -l\n", "line 8: services[0].check.command: cannot unmarshal !!str `ls -l` into []string"},
		{server + "          type: udp\n          expect: (\n", `line 11: services[0].servers[0].check: real server "a": real server 10.1.0.1:80 of service tcp:10.0.0.1:80 check expect "(": error parsing regexp`},
		{server + "          type: exec\n", `line 9: services[0].servers[0].check: real server "a": real server 10.1.0.1:80 of service tcp:10.0.0.1:80 check command []: required for an exec check`},
		{server + "          type: tcp\n          retries: 3\n", `line 11: services[0].servers[0].check: field "retries" is not a check key`},
		{head + "    sorry_server: {address: 10.1.0.9, check: {type: tcp}}\n", "line 6: services[0].sorry_server: sorry server: check: a sorry server is not health-checked"},
	} {
		cfg, err := ParseYAML(strings.NewReader(tc.in))
		if err == nil || cfg != nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s\nerror %v\nwant it to contain %q", tc.in[len(head):], err, tc.want)
		}
	}
}

func TestMarshalSorryServerCheck(t *testing.T) {
	cfg := mustYAML(t, "services:\n  - {protocol: tcp, address: 10.0.0.1, port: 80, sorry_server: {address: 10.1.0.9}}\n")
	svc := cfg.Services["tcp:10.0.0.1:80"].Clone()
	svc.Sorry.Check = &fsm.HealthCheck{Type: "tcp"}
	cfg.Services["tcp:10.0.0.1:80"] = svc
	if _, err := MarshalYAML(cfg); err == nil || !strings.Contains(err.Error(), "service tcp:10.0.0.1:80: sorry server 10.1.0.9:80: check: a sorry server is not health-checked") {
		t.Errorf("MarshalYAML: %v", err)
	}
}
