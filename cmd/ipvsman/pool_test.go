package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
)

// Each pool subcommand sends one op of its kind, the server named as
// ipvsadm names it; add takes -a's options; list prints the pool.
func TestPoolCommands(t *testing.T) {
	web := fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: 80}
	cfg := fsm.NewConfig()
	cfg.Services[web.String()] = &fsm.Service{Key: web, Scheduler: "wlc", Servers: map[string]*fsm.RealServer{},
		Pool: map[string]*fsm.RealServer{"10.3.0.20:8080": {Name: "spare", Address: netip.MustParseAddr("10.3.0.20"), Port: 8080,
			Forward: fsm.Masquerade, Weight: 3, State: fsm.Active}}}
	var sent []fsm.Op
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/ops", func(w http.ResponseWriter, r *http.Request) {
		var req api.OpsRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Error(err)
		}
		sent = append(sent, req.Ops...)
		json.NewEncoder(w).Encode(api.WriteResponse{Result: fsm.Result{Version: 7, Changed: true, Summary: "+ pool server x"}})
	})
	mux.HandleFunc("GET /v1/config", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(api.ConfigResponse{Version: 7, Config: cfg})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	cli := func(args ...string) string {
		var out, errOut bytes.Buffer
		if code := run(append([]string{"--api", srv.URL, "--token", "secret-token-0123456789"}, args...), &out, &errOut); code != 0 {
			t.Fatalf("ipvsman %s: exit %d: %s", strings.Join(args, " "), code, errOut.String())
		}
		return out.String()
	}
	if out := cli("pool", "add", "-t", "10.0.0.1:80", "-r", "10.3.0.21:8080", "-m", "-w", "4"); out != "+ pool server x\ncommitted as version 7\n" {
		t.Errorf("pool add printed %q", out)
	}
	for _, sub := range []string{"assign", "unassign", "forget"} {
		cli("pool", sub, "-t", "10.0.0.1:80", "-r", "10.3.0.20:8080")
	}
	want := []fsm.Op{
		{Kind: fsm.OpPoolServer, ServiceKey: web, Server: &fsm.RealServer{Address: netip.MustParseAddr("10.3.0.21"), Port: 8080, Forward: fsm.Masquerade, Weight: 4}},
		{Kind: fsm.OpAssignServer, ServiceKey: web, Server: &fsm.RealServer{Address: netip.MustParseAddr("10.3.0.20"), Port: 8080}},
		{Kind: fsm.OpUnassignServer, ServiceKey: web, Server: &fsm.RealServer{Address: netip.MustParseAddr("10.3.0.20"), Port: 8080}},
		{Kind: fsm.OpForgetServer, ServiceKey: web, Server: &fsm.RealServer{Address: netip.MustParseAddr("10.3.0.20"), Port: 8080}},
	}
	if a, b := jsonString(t, sent), jsonString(t, want); a != b {
		t.Errorf("ops sent:\n%s\nwant:\n%s", a, b)
	}
	out := cli("pool", "list")
	if want := "SERVICE          POOL SERVER     FORWARD  WEIGHT  STATE   NAME\ntcp:10.0.0.1:80  10.3.0.20:8080  Masq     3       active  spare\n"; out != want {
		t.Errorf("pool list printed:\n%s\nwant:\n%s", out, want)
	}
	var stderr bytes.Buffer
	if code := run([]string{"--api", srv.URL, "--token", "secret-token-0123456789", "pool", "list", "tcp:10.0.0.9:80"}, &bytes.Buffer{}, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "service tcp:10.0.0.9:80: no such service") {
		t.Errorf("pool list of an unknown service: exit %d, %q", code, stderr.String())
	}
	if code := run([]string{"--api", srv.URL, "--token", "secret-token-0123456789", "pool", "assign", "-t", "10.0.0.1:80"}, &bytes.Buffer{}, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "pool assign: ") {
		t.Errorf("pool assign without -r: exit %d, %q", code, stderr.String())
	}
}

func jsonString(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPoolSubcommandHelp(t *testing.T) {
	for _, sub := range []string{"add", "assign", "unassign", "forget"} {
		root := rootCmd(&globals{})
		var out bytes.Buffer
		root.SetOut(&out)
		root.SetArgs([]string{"pool", sub, "--help"})
		if err := root.Execute(); err != nil {
			t.Fatalf("pool %s --help: %v", sub, err)
		}
		if !strings.Contains(out.String(), "ipvsman pool "+sub+" -t|-u ADDR:PORT") {
			t.Fatalf("pool %s --help printed:\n%s", sub, out.String())
		}
	}
}
