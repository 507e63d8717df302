package top

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

// fakeNode is one node's API: n1 has a kernel, the others run --ipvs=off.
func fakeNode(t *testing.T, id string, cs *api.ClusterStatus, cfg *fsm.Config, posted *[]fsm.Op) *httptest.Server {
	mux := http.NewServeMux()
	reply := func(w http.ResponseWriter, code int, v any) {
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(v)
	}
	mux.HandleFunc("GET /v1/cluster/status", func(w http.ResponseWriter, r *http.Request) { reply(w, 200, cs) })
	mux.HandleFunc("GET /v1/config", func(w http.ResponseWriter, r *http.Request) {
		reply(w, 200, api.ConfigResponse{Version: 7, Config: cfg, Node: id, Applied: 30})
	})
	mux.HandleFunc("GET /v1/kernel", func(w http.ResponseWriter, r *http.Request) {
		if id != "n1" {
			reply(w, 404, api.ErrorResponse{Kind: "rejected", Error: "node " + id + " runs with --ipvs=off: it has no kernel table"})
			return
		}
		reply(w, 200, api.KernelResponse{Node: id, Config: cfg, Stats: ipvsadm.Stats{"tcp:10.0.0.1:80": {ActiveConns: 5}}})
	})
	mux.HandleFunc("POST /v1/ops", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer secret" {
			reply(w, 401, api.ErrorResponse{Kind: "unauthorized", Error: "missing or wrong cluster token"})
			return
		}
		var req api.OpsRequest
		json.NewDecoder(r.Body).Decode(&req)
		*posted = append(*posted, req.Ops...)
		if _, err := fsm.ApplyOps(cfg, req.Ops); err != nil {
			reply(w, 400, api.ErrorResponse{Kind: "rejected", Error: err.Error()})
			return
		}
		reply(w, 200, api.WriteResponse{Result: fsm.Result{Version: 8, Changed: true}, Leader: "n1"})
	})
	s := httptest.NewServer(mux)
	t.Cleanup(s.Close)
	return s
}

func TestAPISource(t *testing.T) {
	cfg := mustOps(t, fsm.NewConfig(), "-A -t 10.0.0.1:80", "-a -t 10.0.0.1:80 -r 10.3.0.1 -g")
	cs := &api.ClusterStatus{Via: "n2"}
	var posted []fsm.Op
	servers := map[string]*httptest.Server{}
	for _, id := range []string{"n1", "n2"} {
		servers[id] = fakeNode(t, id, cs, cfg, &posted)
		cs.Nodes = append(cs.Nodes, api.NodeView{ID: id, APIAddr: servers[id].URL, Reachable: true})
	}
	cs.Nodes = append(cs.Nodes, api.NodeView{ID: "n3"}) // no API address recorded yet
	src := &APISource{Client: &api.Client{Base: servers["n2"].URL, Token: "secret"}}
	ctx := context.Background()

	// "" is the node at --api, here n2, without a kernel.
	s, err := src.Snapshot(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if s.KernelNode != "n2" || s.Kernel != nil || s.KernelErr != "node n2 runs with --ipvs=off: it has no kernel table" {
		t.Errorf("n2: node %q kernel %v err %q", s.KernelNode, s.Kernel, s.KernelErr)
	}
	if s.Version != 7 || s.Config.Services["tcp:10.0.0.1:80"] == nil || s.Cluster == nil || s.Via != "n2" {
		t.Errorf("n2 snapshot: %+v", s)
	}
	// n1's kernel, through n1's own API.
	s, err = src.Snapshot(ctx, "n1")
	if err != nil || s.KernelErr != "" || s.Kernel["tcp:10.0.0.1:80"].ActiveConns != 5 || s.At.IsZero() {
		t.Errorf("n1 snapshot: %+v %v", s, err)
	}
	for node, want := range map[string]string{"n3": "node n3: its API address is not known yet", "n9": `node "n9": not a member (members: n1, n2, n3)`} {
		if s, err := src.Snapshot(ctx, node); err != nil || s.KernelErr != want {
			t.Errorf("%s: kernel error %q (%v), want %q", node, s.KernelErr, err, want)
		}
	}
	// Act posts the ops; a refusal comes back in the leader's words.
	op := fsm.Op{Kind: fsm.OpEditServer, ServiceKey: cfg.Services["tcp:10.0.0.1:80"].Key, Server: &fsm.RealServer{Address: addr("10.3.0.1"), Port: 80, Forward: fsm.DirectRoute, Weight: 65536}}
	if _, err := src.Act(ctx, []fsm.Op{op}); err == nil || !strings.Contains(err.Error(), "weight 65536: out of range 0-65535") {
		t.Errorf("act: %v", err)
	}
	op.Server.Weight = 3
	if r, err := src.Act(ctx, []fsm.Op{op}); err != nil || r.Version != 8 || len(posted) != 2 || posted[1].Server.Weight != 3 {
		t.Errorf("act: %+v %v, posted %+v", r, err, posted)
	}
	// Without the model there is no snapshot.
	bad := &APISource{Client: &api.Client{Base: "127.0.0.1:1", Token: "secret"}}
	if _, err := bad.Snapshot(ctx, ""); err == nil || !strings.Contains(err.Error(), "read the model") {
		t.Errorf("unreachable API: %v", err)
	}
}
