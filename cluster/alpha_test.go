package cluster

import (
	"context"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/harness"
)

// A check with alpha makes a server without a verdict down where an older
// build would count it up: such a configuration enters the log only while
// every member speaks AlphaProtocol.
func TestAlphaWaitsForEveryMember(t *testing.T) {
	n := openLeader(t, func(err error) { t.Error(err) })
	ctx := context.Background()
	add := func(ip string, alpha bool) error {
		svc := &fsm.Service{Key: fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr(ip), Port: 80}, Scheduler: "rr",
			Check: &fsm.HealthCheck{Type: "tcp", Alpha: alpha}}
		_, err := n.Propose(ctx, fsm.CmdOps, fsm.OpsPayload{Ops: []fsm.Op{{Kind: fsm.OpAddService, Service: svc}}}, "test")
		return err
	}
	if err := add("10.0.0.1", true); err != nil {
		t.Fatalf("alone, at protocol %d: %v", fsm.CommandProtocol, err)
	}
	if err := n.raft.AddNonvoter("old", raft.ServerAddress(harness.FreeAddr(t)), 0, 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	err := add("10.0.0.2", true)
	var rej *RejectedError
	if !errors.As(err, &rej) || !strings.Contains(err.Error(), "check alpha needs protocol 3 on every member") || !strings.Contains(err.Error(), "old (version unknown") {
		t.Fatalf("alpha with a member that may be old: %v, want a refusal naming the check and the member", err)
	}
	var services int
	n.View(func(s *fsm.State, _ uint64) { services = len(s.Config.Services) })
	if services != 1 {
		t.Fatalf("%d services after the refusal, want 1", services)
	}
}
