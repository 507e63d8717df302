package server

import (
	"bytes"
	"testing"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
)

// FuzzRequestBodies feeds arbitrary bytes to the API's request decoder for
// every write body, and what decodes to the same admission check the leader
// runs before anything enters the log (fsm.State.Check): neither may panic,
// and a refused command changes nothing.
func FuzzRequestBodies(f *testing.F) {
	for _, r := range writeRoutes {
		f.Add(r.body)
	}
	f.Add(`{"ops":[{"kind":"add-server","service_key":{"protocol":"tcp","address":"10.0.0.1","port":80},"server":{"address":"10.3.0.1","port":8080,"forward":"masq","weight":70000}}]}`)
	f.Add(`{"config":{"services":{"tcp:10.0.0.1:80":{"key":{"protocol":"tcp","address":"10.0.0.1","port":80},"scheduler":"wrr"}},"vips":{"10.0.0.1/32":{"prefix":"10.0.0.1/32","interface":"eth0"}}}}`)
	f.Fuzz(func(t *testing.T, body string) {
		b := []byte(body)
		for _, d := range []func([]byte) error{
			func(b []byte) error { _, err := decode[api.JoinViaRequest](b); return err },
			func(b []byte) error { _, err := decode[api.NodeRequest](b); return err },
			func(b []byte) error { _, err := decode[api.ZeroRequest](b); return err },
			func(b []byte) error { _, err := decode[api.RollbackRequest](b); return err },
		} {
			_ = d(b)
		}
		s := fsm.NewState()
		before, _ := s.Marshal()
		admit := func(typ fsm.CommandType, payload any) {
			c, err := fsm.NewCommand(typ, 1, "fuzz", payload)
			if err != nil {
				return
			}
			if s.Check(c) != nil {
				if after, _ := s.Marshal(); !bytes.Equal(before, after) {
					t.Fatalf("a refused %s changed the state", typ)
				}
			}
		}
		if req, err := decode[api.OpsRequest](b); err == nil {
			ops := fsm.NameDeletedServers(s.Config, req.Ops)
			admit(fsm.CmdOps, fsm.OpsPayload{Ops: ops})
		}
		if req, err := decode[api.ApplyRequest](b); err == nil {
			admit(fsm.CmdReplaceConfig, fsm.ReplaceConfigPayload{Config: req.Config, Reason: req.Reason})
		}
	})
}
