package fsm

import (
	"net/netip"
	"strings"
	"testing"
)

// ipvsadm -d -t 10.0.0.1:80 -r 10.3.0.10:8080 deletes a masquerading server
// on another port than the service's: the op carries no forwarding method.
func TestNameDeletedServers(t *testing.T) {
	key := ServiceKey{Protocol: TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: 80}
	c, err := ApplyOps(NewConfig(), []Op{
		{Kind: OpAddService, Service: &Service{Key: key, Scheduler: "rr"}},
		{Kind: OpAddServer, ServiceKey: key, Server: &RealServer{Address: netip.MustParseAddr("10.3.0.10"), Port: 8080, Forward: Masquerade, Weight: 1}},
		{Kind: OpAddServer, ServiceKey: key, Server: &RealServer{Address: netip.MustParseAddr("10.3.0.11"), Weight: 1}},
	})
	if err != nil {
		t.Fatal(err)
	}
	del := func(addr string, port uint16) Op {
		return Op{Kind: OpDeleteServer, ServiceKey: key, Server: &RealServer{Address: netip.MustParseAddr(addr), Port: port}}
	}
	ops := []Op{del("10.3.0.10", 8080)}
	if _, err := ApplyOps(c, ops); err == nil || !strings.Contains(err.Error(), "10.3.0.10:80") {
		t.Fatalf("unnamed: want the miss at the service's port, got %v", err)
	}
	named := NameDeletedServers(c, ops)
	if ops[0].Server.Forward != "" {
		t.Fatal("NameDeletedServers changed its input")
	}
	next, err := ApplyOps(c, named)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := next.Services[key.String()].Servers["10.3.0.10:8080"]; ok || len(next.Services[key.String()].Servers) != 1 {
		t.Fatalf("after delete: %v", next.Services[key.String()].Servers)
	}
	// A direct-routing server, a server without a port and an unknown one
	// are left as they were.
	for _, op := range []Op{del("10.3.0.11", 0), del("10.3.0.99", 8080)} {
		if got := NameDeletedServers(c, []Op{op}); got[0].Server.Forward != "" {
			t.Fatalf("%s: forward set to %q", op.Server.Key(), got[0].Server.Forward)
		}
	}
	if got := NameDeletedServers(c, []Op{del("10.3.0.11", 80)}); got[0].Server.Forward != DirectRoute {
		t.Fatalf("droute server: %q", got[0].Server.Forward)
	}
}
