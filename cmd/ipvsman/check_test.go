package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
)

// fakeOps is POST /v1/ops over a bare config: it applies what the CLI
// sends with fsm.ApplyOps, as the leader would, and records the ops.
type fakeOps struct {
	cfg     *fsm.Config
	ops     []fsm.Op
	version uint64
}

func (f *fakeOps) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var req api.OpsRequest
	if r.URL.Path != "/v1/ops" || json.NewDecoder(r.Body).Decode(&req) != nil {
		http.Error(w, `{"error":"bad request"}`, http.StatusBadRequest)
		return
	}
	f.ops = append(f.ops, req.Ops...)
	next, err := fsm.ApplyOps(f.cfg, req.Ops)
	if err != nil {
		w.WriteHeader(http.StatusConflict)
		_ = json.NewEncoder(w).Encode(api.ErrorResponse{Error: err.Error(), Kind: "rejected"})
		return
	}
	summary := strings.Join(fsm.DiffConfig(f.cfg, next), "\n")
	f.cfg = next
	f.version++
	_ = json.NewEncoder(w).Encode(api.WriteResponse{Result: fsm.Result{Version: f.version, Changed: true, Summary: summary}})
}

func checkFixture(t *testing.T) (*fakeOps, func(args ...string) (string, error)) {
	t.Helper()
	web := fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: 80}
	cfg, err := fsm.ApplyOps(fsm.NewConfig(), []fsm.Op{
		{Kind: fsm.OpAddService, Service: &fsm.Service{Key: web}},
		{Kind: fsm.OpAddServer, ServiceKey: web, Server: &fsm.RealServer{Address: netip.MustParseAddr("10.3.0.10"), Port: 8080, Forward: fsm.Masquerade, Weight: 1}},
		{Kind: fsm.OpAddService, Service: &fsm.Service{Key: fsm.ServiceKey{Protocol: fsm.FWMark, Mark: 7, IPv6: true}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeOps{cfg: cfg}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, func(args ...string) (string, error) {
		root := rootCmd(&globals{})
		root.SetArgs(append([]string{"--api", srv.URL, "--token", "x"}, args...))
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetErr(io.Discard)
		err := root.Execute()
		return out.String(), err
	}
}

func TestCheckSetAndClear(t *testing.T) {
	f, run := checkFixture(t)
	web := f.cfg.Services["tcp:10.0.0.1:80"].Key
	mark := fsm.ServiceKey{Protocol: fsm.FWMark, Mark: 7, IPv6: true}
	rs := &fsm.RealServer{Address: netip.MustParseAddr("10.3.0.10"), Port: 8080}
	for _, tc := range []struct {
		args []string
		want fsm.Op
	}{
		{[]string{"check", "set", "-t", "10.0.0.1:80", "--type", "http", "--path", "/health", "--status", "200,204",
			"--body", "^ok", "--host", "h", "--method", "HEAD", "--interval", "1s", "--timeout", "500ms", "--rise", "1", "--fall", "4"},
			fsm.Op{Kind: fsm.OpSetCheck, ServiceKey: web, Check: &fsm.HealthCheck{Type: "http", Path: "/health", Status: []int{200, 204},
				Body: "^ok", Host: "h", Method: "HEAD", IntervalMS: 1000, TimeoutMS: 500, Rise: 1, Fall: 4}}},
		{[]string{"check", "set", "-t", "10.0.0.1:80", "-r", "10.3.0.10:8080", "--type", "https", "--sni", "s", "--insecure",
			"--check-port", "8443", "--check-address", "10.3.0.11"},
			fsm.Op{Kind: fsm.OpSetCheck, ServiceKey: web, Server: rs, Check: &fsm.HealthCheck{Type: "https", SNI: "s", Insecure: true,
				Port: 8443, Address: netip.MustParseAddr("10.3.0.11")}}},
		{[]string{"check", "set", "fwmark6:7", "--type", "dns", "--query", "example.com.", "--qtype", "AAAA", "--proto", "tcp", "--rcode", "NXDOMAIN", "--answer", "x"},
			fsm.Op{Kind: fsm.OpSetCheck, ServiceKey: mark, Check: &fsm.HealthCheck{Type: "dns", Query: "example.com.", QType: "AAAA", Proto: "tcp", RCode: "NXDOMAIN", Answer: "x"}}},
		{[]string{"check", "set", "-f", "7", "-6", "--type", "exec", "--command", " /usr/bin/check  --quick  -v "},
			fsm.Op{Kind: fsm.OpSetCheck, ServiceKey: mark, Check: &fsm.HealthCheck{Type: "exec", Command: []string{"/usr/bin/check", "--quick", "-v"}}}},
		{[]string{"check", "set", "tcp:10.0.0.1:80", "-r", "10.3.0.10:8080", "--type", "udp", "--send", "ping", "--expect", "pong"},
			fsm.Op{Kind: fsm.OpSetCheck, ServiceKey: web, Server: rs, Check: &fsm.HealthCheck{Type: "udp", Send: "ping", Expect: "pong"}}},
		{[]string{"check", "clear", "-t", "10.0.0.1:80", "-r", "10.3.0.10:8080"}, fsm.Op{Kind: fsm.OpClearCheck, ServiceKey: web, Server: rs}},
		{[]string{"check", "clear", "fwmark6:7"}, fsm.Op{Kind: fsm.OpClearCheck, ServiceKey: mark}},
	} {
		n := len(f.ops)
		out, err := run(tc.args...)
		if err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if len(f.ops) != n+1 || !reflect.DeepEqual(f.ops[n], tc.want) {
			t.Fatalf("%q sent %+v\nwant %+v", tc.args, f.ops[n:], tc.want)
		}
		if !strings.Contains(out, "committed as version") {
			t.Errorf("%q printed %q", tc.args, out)
		}
	}
	// What the fake leader holds now: the service check, the server's
	// cleared again, the fwmark service's cleared.
	if c := f.cfg.Services["tcp:10.0.0.1:80"]; c.Check == nil || c.Check.Path != "/health" || c.Servers["10.3.0.10:8080"].Check != nil {
		t.Errorf("web = %+v", c)
	}
	if c := f.cfg.Services["fwmark6:7"]; c.Check != nil {
		t.Errorf("fwmark6:7 check = %+v", c.Check)
	}
	// The cluster's refusal is the command's error.
	if _, err := run("check", "clear", "fwmark6:7"); err == nil || !strings.Contains(err.Error(), "service fwmark6:7: has no check to clear") {
		t.Errorf("clearing twice: %v", err)
	}
}

func TestCheckSetErrors(t *testing.T) {
	f, run := checkFixture(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"check", "set", "--type", "tcp"}, "check set: no service: give -t|-u ADDR:PORT, -f MARK or a service key"},
		{[]string{"check", "set", "-t", "10.0.0.1:80"}, `required flag(s) "type" not set`},
		{[]string{"check", "set", "tcp:10.0.0.1:80", "-t", "10.0.0.1:80", "--type", "tcp"}, "check set: service tcp:10.0.0.1:80: give it once"},
		{[]string{"check", "set", "icmp:10.0.0.1:80", "--type", "tcp"}, `protocol "icmp"`},
		{[]string{"check", "set", "-t", "10.0.0.x:80", "--type", "tcp"}, `check set: -t`},
		{[]string{"check", "set", "-t", "10.0.0.1:80", "-u", "10.0.0.1:80", "--type", "tcp"}, "conflicts with"},
		{[]string{"check", "set", "-t", "10.0.0.1:80", "-6", "--type", "tcp"}, "only valid with -f"},
		{[]string{"check", "set", "-t", "10.0.0.1:80", "--type", "sip"}, `check set: check type "sip": want one of`},
		{[]string{"check", "set", "-t", "10.0.0.1:80", "--type", "tcp", "--path", "/"}, `check set: --path: only for http and https checks, not "tcp"`},
		{[]string{"check", "set", "-t", "10.0.0.1:80", "--type", "http", "--sni", "x"}, `--sni: only for https and tls checks, not "http"`},
		{[]string{"check", "set", "-t", "10.0.0.1:80", "--type", "http", "--interval", "1500us"}, "--interval 1.5ms: not a whole number of milliseconds"},
		{[]string{"check", "set", "-t", "10.0.0.1:80", "--type", "http", "--timeout", "0s"}, "--timeout 0s: want a positive duration"},
		{[]string{"check", "set", "-t", "10.0.0.1:80", "--type", "http", "--interval", "1s", "--timeout", "2s"}, "check timeout_ms 2000: out of range 10-1000 (the interval)"},
		{[]string{"check", "set", "-t", "10.0.0.1:80", "--type", "http", "--rise", "0"}, "--rise 0: leave it out for the default"},
		{[]string{"check", "set", "-t", "10.0.0.1:80", "--type", "http", "--check-port", "70000"}, "--check-port"},
		{[]string{"check", "set", "-t", "10.0.0.1:80", "--type", "http", "--check-address", "fe80::1%eth0"}, `--check-address "fe80::1%eth0": want a numeric`},
		{[]string{"check", "set", "-t", "10.0.0.1:80", "--type", "http", "--status", "200,abc"}, "--status"},
		{[]string{"check", "set", "-t", "10.0.0.1:80", "--type", "exec", "--command", "  "}, `--command "": want a program`},
		{[]string{"check", "set", "-t", "10.0.0.1:80", "--type", "dns"}, `check query "": required for a dns check`},
		{[]string{"check", "set", "-t", "10.0.0.1:80", "-r", "10.3.0.10", "--type", "tcp"}, "real server 10.3.0.10:80 of service tcp:10.0.0.1:80: no such real server"},
		{[]string{"check", "set", "-t", "10.0.0.9:80", "--type", "tcp"}, "service tcp:10.0.0.9:80: no such service"},
		{[]string{"check", "clear"}, "check clear: no service"},
	} {
		_, err := run(tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v\nwant it to contain %q", tc.args, err, tc.want)
		}
	}
	// Only the last two reached the cluster, and were refused there.
	if len(f.ops) != 2 || f.version != 0 {
		t.Errorf("sent %d ops, version %d", len(f.ops), f.version)
	}
}
