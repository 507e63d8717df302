package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/cluster/api"
)

func TestMembersTable(t *testing.T) {
	st := api.ClusterStatus{MinProtocol: 1, Note: "maintenance at 14:00", Members: []api.MemberView{
		{ID: "d1", Suffrage: "voter", Leader: true, Version: "0.8.0", Protocol: 1, Gossip: "alive", RaftAddr: "10.0.0.11:7000", GossipAddr: "10.0.0.11:7946", Ready: "yes"},
		{ID: "d2", Suffrage: "nonvoter", Version: "0.9.0", Protocol: 2, Gossip: "alive", LastContact: "3.2104ms", Ready: "no", Unready: "link eth0: no carrier"},
		{ID: "d3", Suffrage: "voter", Version: "0.8.0", Protocol: 1, Gossip: "dead", GossipSinceMS: 6240},
		{ID: "d4", Suffrage: "voter", Gossip: "unknown", LastContact: "250µs"},
	}}
	var b bytes.Buffer
	if err := printMembers(&b, st); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"MEMBER  SUFFRAGE  VERSION  PROTOCOL  GOSSIP     LAST CONTACT  RAFT ADDRESS    GOSSIP ADDRESS  READY\n",
		"d1      voter     0.8.0    1         alive      leader        10.0.0.11:7000  10.0.0.11:7946  yes\n",
		"d2      nonvoter  0.9.0    2         alive      3ms ago       -               -               no: link eth0: no carrier\n",
		"d3      voter     0.8.0    1         dead 6.2s  -             -               -               -\n",
		"d4      voter     -        -         unknown    <1ms ago      -               -               -\n",
		"cluster protocol: 1\nnote: maintenance at 14:00\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	// The first table's role words must not appear: scripts count them.
	if strings.Contains(out, "Leader") || strings.Contains(out, "Follower") {
		t.Errorf("members table uses a role word:\n%s", out)
	}
}

// A node of an older release answers a newer command with a 404: the CLI
// says which node, which release, and what to do.
func TestNewCommandRefusedByAnOldNode(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(api.NodeStatus{Status: api.Status{ID: "d2", Version: "0.8.0", Protocol: 1}})
	})
	want := `cluster note: node d2 runs ipvsmand 0.8.0 (protocol 1), which does not know "cluster note": upgrade every node first`
	// A release without the endpoint, and one whose endpoint does not know
	// the command, read the same.
	plain := httptest.NewServer(mux)
	defer plain.Close()
	mux2 := http.NewServeMux()
	mux2.Handle("GET /v1/status", mux)
	mux2.HandleFunc("POST /v1/commands/{name}", func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(api.ErrorResponse{Kind: "unknown-command", Error: "node d2 runs ipvsmand 0.8.0 (protocol 1), which does not know command \"note\""})
	})
	knows := httptest.NewServer(mux2)
	defer knows.Close()
	for _, srv := range []*httptest.Server{plain, knows} {
		c := &api.Client{Base: srv.URL}
		_, err := c.Command(context.Background(), "note", map[string]string{"text": "x"})
		got := refusedByOldNode(context.Background(), c, "cluster note", err)
		if got == nil || got.Error() != want {
			t.Fatalf("got %v\nwant %s", got, want)
		}
	}
}
