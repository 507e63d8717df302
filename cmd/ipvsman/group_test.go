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

// group add and remove send one op naming the service and the members by
// key; list prints one line per member; a bad key is refused before
// anything is sent.
func TestGroupCommands(t *testing.T) {
	web := fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: 80}
	cfg := fsm.NewConfig()
	cfg.Services[web.String()] = &fsm.Service{Key: web, Scheduler: "wlc", Servers: map[string]*fsm.RealServer{"10.3.0.1:80": {}},
		Group: []fsm.ServiceKey{{Protocol: fsm.FWMark, Mark: 7}}}
	var sent []fsm.Op
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/ops", func(w http.ResponseWriter, r *http.Request) {
		var req api.OpsRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			t.Error(err)
		}
		sent = append(sent, req.Ops...)
		json.NewEncoder(w).Encode(api.WriteResponse{Result: fsm.Result{Version: 9, Changed: true, Summary: "~ service x"}})
	})
	mux.HandleFunc("GET /v1/config", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(api.ConfigResponse{Version: 9, Config: cfg})
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()
	cli := func(args ...string) (string, string, int) {
		var out, errOut bytes.Buffer
		code := run(append([]string{"--api", srv.URL, "--token", "secret-token-0123456789"}, args...), &out, &errOut)
		return out.String(), errOut.String(), code
	}
	if out, errOut, code := cli("group", "add", "tcp:10.0.0.1:80", "tcp:10.0.0.2:80", "fwmark:8"); code != 0 || out != "~ service x\ncommitted as version 9\n" {
		t.Fatalf("group add: %d %q %q", code, out, errOut)
	}
	if _, _, code := cli("group", "remove", "tcp:10.0.0.1:80", "fwmark:7"); code != 0 {
		t.Fatalf("group remove: exit %d", code)
	}
	want := []fsm.Op{
		{Kind: fsm.OpGroupAdd, ServiceKey: web, Group: []fsm.ServiceKey{{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.2"), Port: 80}, {Protocol: fsm.FWMark, Mark: 8}}},
		{Kind: fsm.OpGroupRemove, ServiceKey: web, Group: []fsm.ServiceKey{{Protocol: fsm.FWMark, Mark: 7}}},
	}
	if g, w := asJSONString(sent), asJSONString(want); g != w {
		t.Fatalf("sent %s\nwant %s", g, w)
	}
	if _, errOut, code := cli("group", "add", "tcp:10.0.0.1:80", "10.0.0.2:80"); code == 0 || !strings.Contains(errOut, `group add: service "10.0.0.2:80"`) || len(sent) != 2 {
		t.Fatalf("a bad key: exit %d %q, %d ops sent", code, errOut, len(sent))
	}
	if out, _, code := cli("group", "list"); code != 0 || !strings.Contains(out, "tcp:10.0.0.1:80  fwmark:7  1") {
		t.Fatalf("group list: %d\n%s", code, out)
	}
}

func asJSONString(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
