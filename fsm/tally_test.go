package fsm

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
)

func TestCountTalliesRemovedServicesWithTheirServers(t *testing.T) {
	svc := func(port uint16, servers ...string) *Service {
		s := &Service{Key: ServiceKey{Protocol: TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: port}, Scheduler: "wlc", Servers: map[string]*RealServer{}}
		for _, a := range servers {
			r := &RealServer{Address: netip.MustParseAddr(a), Port: port, Forward: DirectRoute, Weight: 1, State: Active}
			s.Servers[r.Key()] = r
		}
		return s
	}
	a := NewConfig()
	a.Services["tcp:10.0.0.1:80"] = svc(80, "10.3.0.1", "10.3.0.2")
	a.Services["tcp:10.0.0.1:443"] = svc(443, "10.3.0.1")
	b := NewConfig()
	b.Services["tcp:10.0.0.1:443"] = svc(443, "10.3.0.1", "10.3.0.9")
	got := Count(a, b)
	want := Tally{ServicesRemoved: 1, ServersRemoved: 2, ServersAdded: 1}
	if got != want {
		t.Fatalf("Count = %+v, want %+v", got, want)
	}
	if s := got.String(); s != "removes 1 service, 2 real servers; adds 1 real server" {
		t.Errorf("String = %q", s)
	}
	if s := Count(a, NewConfig()).String(); s != "removes 2 services, 3 real servers" {
		t.Errorf("emptying: %q", s)
	}
	if s := Count(a, a).String(); s != "no changes to services or VIPs" {
		t.Errorf("no change: %q", s)
	}
}

// ApplyPrepared of a plan made by Prepare on the same state is Apply.
func TestApplyPreparedIsApply(t *testing.T) {
	key := ServiceKey{Protocol: TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: 80}
	cmds := []Command{
		mustCommand(t, CmdOps, OpsPayload{Ops: []Op{{Kind: OpAddService, Service: &Service{Key: key, Scheduler: "rr"}}}}, "r1"),
		mustCommand(t, CmdOps, OpsPayload{Ops: []Op{{Kind: OpAddServer, ServiceKey: key, Server: &RealServer{Address: netip.MustParseAddr("10.3.0.1"), Weight: 2}}}}, "r2"),
		mustCommand(t, CmdOps, OpsPayload{Ops: []Op{{Kind: OpAddService, Service: &Service{Key: key, Scheduler: "rr"}}}}, "r3"), // refused: exists
		mustCommand(t, CmdOps, OpsPayload{Ops: []Op{{Kind: OpAddService, Service: &Service{Key: key, Scheduler: "rr"}}}}, "r1"), // a retry
	}
	a, b := NewState(), NewState()
	for i, c := range cmds {
		want, err := a.Apply(c)
		if err != nil {
			t.Fatal(err)
		}
		p, perr := b.Prepare(c)
		var got Result
		if perr != nil {
			got, _ = b.Apply(c) // a refused plan is applied as Apply does
		} else {
			got = b.ApplyPrepared(c, p)
		}
		if got != want {
			t.Fatalf("command %d: ApplyPrepared %+v, Apply %+v", i, got, want)
		}
	}
	ja, _ := a.Marshal()
	jb, _ := b.Marshal()
	if string(ja) != string(jb) {
		t.Fatalf("states differ:\n%s\n%s", ja, jb)
	}
}

func mustCommand(t *testing.T, typ CommandType, payload any, request string) Command {
	t.Helper()
	c, err := NewCommand(typ, 1, "test", payload)
	if err != nil {
		t.Fatal(err)
	}
	c.Request = request
	return c
}

// Encode writes the envelope around the payload; the bytes are those of
// encoding/json, and they decode to the same command.
func TestEncodeIsJSON(t *testing.T) {
	c := mustCommand(t, CmdOps, OpsPayload{Ops: []Op{{Kind: OpClear}}}, "e-1")
	c.Actor = `a "quoted" <actor>`
	got, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	body, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	if want := append([]byte{byte(CmdOps)}, body...); !bytes.Equal(got, want) {
		t.Fatalf("Encode:\n%s\nencoding/json:\n%s", got[1:], want[1:])
	}
	back, err := Decode(got)
	if err != nil || back.Request != "e-1" || back.Actor != c.Actor || string(back.Payload) != string(c.Payload) {
		t.Fatalf("Decode: %+v %v", back, err)
	}
	z, err := Compress(got)
	if err != nil {
		t.Fatal(err)
	}
	if back2, err := Decode(z); err != nil || string(back2.Payload) != string(c.Payload) || back2.Type != CmdOps {
		t.Fatalf("Decode of the compressed entry: %+v %v", back2, err)
	}
}
