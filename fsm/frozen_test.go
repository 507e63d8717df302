package fsm

import (
	"bytes"
	"fmt"
	"net/netip"
	"testing"
)

// A snapshot encodes a frozen copy while later entries are applied: the
// copy must encode as the state was when it was frozen, byte for byte,
// and as Marshal does.
func TestFrozenIgnoresLaterCommands(t *testing.T) {
	s := NewState()
	applyLog(t, s, sampleLog(t))
	first := mustCmd(t, CmdOps, OpsPayload{Ops: []Op{{Kind: OpEditServer, ServiceKey: web, Server: &RealServer{Address: netip.MustParseAddr("10.3.0.11"), Forward: DirectRoute, Weight: 9}}}})
	first.Request = "before"
	applyLog(t, s, makeLog(t, first))
	if len(s.Requests) == 0 {
		t.Fatal("no request remembered before the freeze: the test proves nothing about them")
	}
	want, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	f := s.Frozen()
	// Every kind of change after the freeze: configuration versions (the
	// history grows and is trimmed), verdicts, requests.
	later := []any{
		mustCmd(t, CmdSetVerdicts, SetVerdictsPayload{Verdicts: []VerdictChange{{Service: web.String(), Server: "10.3.0.10:8080", Health: HealthUp}}}),
		mustCmd(t, CmdSetMember, SetMemberPayload{Member: Member{ID: "n1", RaftAddr: "127.0.0.1:7001", APIAddr: "127.0.0.1:8001"}}),
	}
	for i := range HistoryLimit + 3 {
		c := mustCmd(t, CmdOps, OpsPayload{Ops: []Op{{Kind: OpEditServer, ServiceKey: web, Server: &RealServer{Address: netip.MustParseAddr("10.3.0.11"), Forward: DirectRoute, Weight: 10 + i%2}}}})
		c.Request = fmt.Sprintf("r%d", i)
		later = append(later, c)
	}
	for i, r := range applyLog(t, s, makeLog(t, later...)) {
		if r.Err != "" {
			t.Fatalf("later entry %d rejected: %s", i, r.Err)
		}
	}
	var buf bytes.Buffer
	if err := f.Encode(&buf); err != nil {
		t.Fatal(err)
	}
	got := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	if !bytes.Equal(got, want) {
		t.Fatalf("the frozen copy changed with later commands (%d bytes, want %d)", len(got), len(want))
	}
	now, _ := s.Marshal()
	if bytes.Equal(now, want) {
		t.Fatal("the later commands changed nothing: the test proves nothing")
	}
}
