package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/harness"
)

// A check of the kinds ChecksProtocol added (here an smtp check) would be
// dropped or misread by an older member: such a configuration enters the
// log only while every member speaks ChecksProtocol, as alpha's does.
func TestNewChecksWaitForEveryMember(t *testing.T) {
	n := openLeader(t, func(err error) { t.Error(err) })
	ctx := context.Background()
	add := func(ip string, hc fsm.HealthCheck) error {
		svc := &fsm.Service{Key: fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr(ip), Port: 25}, Scheduler: "rr", Check: &hc}
		_, err := n.Propose(ctx, fsm.CmdOps, fsm.OpsPayload{Ops: []fsm.Op{{Kind: fsm.OpAddService, Service: svc}}}, "test")
		return err
	}
	if err := add("10.0.0.1", fsm.HealthCheck{Type: "tcp"}); err != nil {
		t.Fatal(err)
	}
	if err := n.raft.AddNonvoter("old", raft.ServerAddress(harness.FreeAddr(t)), 0, 5*time.Second).Error(); err != nil {
		t.Fatal(err)
	}
	err := add("10.0.0.2", fsm.HealthCheck{Type: "smtp", Helo: "lb.example.com"})
	var rej *RejectedError
	want := fmt.Sprintf("service tcp:10.0.0.2:25 check type smtp needs protocol %d on every member", fsm.ChecksProtocol)
	if !errors.As(err, &rej) || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "old (version unknown") {
		t.Fatalf("an smtp check with a member that may be old: %v, want a refusal containing %q", err, want)
	}
	// What older builds know still goes in.
	if err := add("10.0.0.3", fsm.HealthCheck{Type: "tcp", Fall: 2}); err != nil {
		t.Fatalf("a plain tcp check with a member that may be old: %v", err)
	}
	var services int
	n.View(func(s *fsm.State, _ uint64) { services = len(s.Config.Services) })
	if services != 2 {
		t.Fatalf("%d services, want 2 (the smtp one refused)", services)
	}
}
