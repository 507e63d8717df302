package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/harness"
)

// TestPlanJoin: a restart rejoins, an unknown ID is added, and a known ID
// at another address is refused while its member is alive (whatever
// --replace says), refused without --replace once it is dead, and
// replaced with it. Every refusal names the ID and both addresses.
func TestPlanJoin(t *testing.T) {
	const oldAddr, newAddr = "10.0.0.12:7000", "10.0.0.22:7000"
	alive := liveness{Gossip: GossipAlive, GossipRaft: oldAddr, Heartbeat: heartbeatContact}
	dead := liveness{Gossip: GossipDead, GossipFor: 8 * time.Second, GossipRaft: oldAddr, Heartbeat: heartbeatFailing, LastContact: 9 * time.Second}
	for _, tc := range []struct {
		name    string
		known   bool
		from    string
		replace bool
		live    liveness
		want    joinKind
		refused []string // the refusal says all of these; nil: accepted
	}{
		{"a new ID", false, "", false, liveness{}, joinNew, nil},
		{"a new ID with --replace", false, "", true, liveness{}, joinNew, nil},
		{"a restart at the member's address", true, newAddr, false, alive, joinAgain, nil},
		{"a restart with --replace", true, newAddr, true, dead, joinAgain, nil},
		{"a second process under a live ID", true, oldAddr, false, alive, 0,
			[]string{`join of node "d2" at raft_addr "10.0.0.22:7000" refused: node "d2" is a live member at raft_addr "10.0.0.12:7000" (alive in gossip)`, "another --node-id"}},
		{"--replace of a live member", true, oldAddr, true, alive, 0, []string{"is a live member", "--replace takes over only a dead member's ID"}},
		{"alive by Raft alone", true, oldAddr, true, liveness{Gossip: GossipDead, Heartbeat: heartbeatContact}, 0, []string{"is a live member", "the leader's Raft heartbeats reach it"}},
		{"alive in gossip at a third address", true, oldAddr, true, liveness{Gossip: GossipAlive, GossipRaft: "10.0.0.32:7000", Heartbeat: heartbeatFailing}, 0, []string{"is a live member", `gossip, which says it is at raft_addr "10.0.0.32:7000"`}},
		{"no evidence either way", true, oldAddr, true, liveness{Gossip: GossipUnknown}, 0, []string{"is a live member", "retry in a few seconds"}},
		{"dead, without --replace", true, oldAddr, false, dead, 0,
			[]string{`node "d2" is a member at raft_addr "10.0.0.12:7000" (dead in gossip for 8s, no answer to the leader's Raft heartbeats for 9s)`, `raft_addr "10.0.0.22:7000"`, "start this node with --replace"}},
		{"dead, with --replace", true, oldAddr, true, dead, joinReplace, nil},
		{"dead in gossip, the leader too newAddr to tell", true, oldAddr, true, liveness{Gossip: GossipDead, Heartbeat: heartbeatUnknown}, joinReplace, nil},
		{"gossip sees only the joining node; the heartbeats fail", true, oldAddr, true, liveness{Gossip: GossipAlive, GossipRaft: newAddr, Heartbeat: heartbeatFailing}, joinReplace, nil},
		{"gossip sees only the joining node; the heartbeats cannot tell", true, oldAddr, true, liveness{Gossip: GossipAlive, GossipRaft: newAddr}, 0, []string{"gossip sees only the joining node", "retry in a few seconds"}},
		{"the leader itself", true, oldAddr, true, liveness{Self: true, Gossip: GossipUnknown}, 0, []string{"it is the leader deciding this join"}},
	} {
		from := tc.from
		if !tc.known {
			from = ""
		}
		got, why, err := planJoin("d2", newAddr, from, tc.known, tc.replace, tc.live)
		if tc.refused == nil {
			if err != nil || got != tc.want {
				t.Errorf("%s: %v, %v; want %v accepted", tc.name, got, err, tc.want)
			}
			continue
		}
		var rej *RejectedError
		if !errors.As(err, &rej) {
			t.Errorf("%s: %v (%s), want a refusal", tc.name, err, why)
			continue
		}
		for _, want := range append(tc.refused, `"d2"`, `"`+oldAddr+`"`, `"`+newAddr+`"`) {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%s: refusal %q lacks %q", tc.name, err, want)
			}
		}
	}
}

// TestHeartbeatsTellContactFromFailure: Raft's observations, as the
// leader's record keeps them.
func TestHeartbeatsTellContactFromFailure(t *testing.T) {
	var h heartbeats
	t0 := time.Unix(1_700_000_000, 0)
	const settle = 2 * time.Second
	obs := func(d any, at time.Time) { h.observe(raft.Observation{Data: d}, "d1", at) }
	if s, _ := h.state("d2", t0, settle); s != heartbeatUnknown {
		t.Errorf("before leading: %v, want unknown", s)
	}
	obs(raft.LeaderObservation{LeaderID: "d1"}, t0)
	if s, _ := h.state("d2", t0.Add(time.Second), settle); s != heartbeatUnknown {
		t.Errorf("leading for 1s of a 2s settle: %v, want unknown", s)
	}
	if s, _ := h.state("d2", t0.Add(3*time.Second), settle); s != heartbeatContact {
		t.Errorf("leading for 3s, no failure: %v, want contact", s)
	}
	obs(raft.FailedHeartbeatObservation{PeerID: "d2", LastContact: t0.Add(2 * time.Second)}, t0.Add(4*time.Second))
	if s, since := h.state("d2", t0.Add(5*time.Second), settle); s != heartbeatFailing || since != 3*time.Second {
		t.Errorf("after a failure: %v, last contact %s ago; want failing, 3s", s, since)
	}
	obs(raft.ResumedHeartbeatObservation{PeerID: "d2"}, t0.Add(6*time.Second))
	if s, _ := h.state("d2", t0.Add(6*time.Second), settle); s != heartbeatContact {
		t.Errorf("resumed: %v, want contact", s)
	}
	obs(raft.FailedHeartbeatObservation{PeerID: "d2"}, t0.Add(7*time.Second))
	h.forget("d2")
	if s, _ := h.state("d2", t0.Add(7*time.Second), settle); s != heartbeatContact {
		t.Errorf("forgotten: %v, want contact", s)
	}
	obs(raft.FailedHeartbeatObservation{PeerID: "d3"}, t0.Add(7*time.Second))
	obs(raft.LeaderObservation{LeaderID: "d2"}, t0.Add(8*time.Second))
	if s, _ := h.state("d3", t0.Add(20*time.Second), settle); s != heartbeatUnknown {
		t.Errorf("after losing leadership: %v, want unknown", s)
	}
}

// relaxed is the Raft timing of the multi-node tests here: the defaults
// are tuned for a LAN failover, and a loaded test machine can miss a
// 75 ms lease while a second voter makes its first connection.
const relaxed = time.Second

// TestJoinUnderALiveIDChangesNothing: three nodes without gossip (the
// leader's heartbeats alone tell who is alive). A join as n2 from another
// address is refused while n2 runs, and n2 stays a voter at its address;
// once n2 is down, the same join is refused without --replace and takes
// n2's place with it, logged in one line with both addresses.
func TestJoinUnderALiveIDChangesNothing(t *testing.T) {
	var log harness.LogBuffer
	open := func(id string, logger *slog.Logger) *Node {
		return openNode(t, Config{NodeID: id, Bootstrap: id == "n1", Logger: logger, HeartbeatTimeout: relaxed, ElectionTimeout: relaxed, LeaderLeaseTimeout: relaxed / 2}, nil)
	}
	n1 := open("n1", slog.New(slog.NewJSONHandler(&log, nil)))
	waitLeader(t, n1)
	n2 := open("n2", nil)
	n3 := open("n3", nil)
	ctx := context.Background()
	for _, n := range []*Node{n2, n3} {
		if err := n1.AddMember(ctx, member(n), "test"); err != nil {
			t.Fatalf("add %s: %v", n.ID(), err)
		}
	}
	addr2 := member(n2).RaftAddr
	other := harness.FreeAddr(t)
	twin := fsm.Member{ID: "n2", RaftAddr: other, APIAddr: "127.0.0.1:2"}
	for _, add := range []func(context.Context, fsm.Member, string) error{n1.AddMember, n1.ReplaceMember} {
		err := add(ctx, twin, "test")
		if err == nil || !strings.Contains(err.Error(), `node "n2" is a live member at raft_addr "`+addr2+`"`) || !strings.Contains(err.Error(), `at raft_addr "`+other+`" refused`) {
			t.Errorf("join as n2 from %s while n2 runs at %s: %v; want a refusal naming both", other, addr2, err)
		}
	}
	if s, ok := n1.suffrage("n2"); !ok || s != raft.Voter || string(n1.addressOf("n2")) != addr2 {
		t.Fatalf("after the refused joins n2 is %v (in the configuration: %v) at %s; want a voter at %s", s, ok, n1.addressOf("n2"), addr2)
	}
	addService(t, n1, 80)

	if err := n2.stop(); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, "n1's heartbeats to n2 fail", func() (bool, string) {
		s, _ := n1.hb.state("n2", time.Now(), n1.hb.settle(n1.cfg.HeartbeatTimeout))
		return s == heartbeatFailing, fmt.Sprint(s)
	})
	n2b := open("n2", nil)
	twin = member(n2b)
	err := n1.AddMember(ctx, twin, "test")
	if err == nil || !strings.Contains(err.Error(), "start this node with --replace") || !strings.Contains(err.Error(), addr2) || !strings.Contains(err.Error(), twin.RaftAddr) {
		t.Errorf("join as the dead n2 without --replace: %v; want a refusal that names both addresses and --replace", err)
	}
	if err := n1.ReplaceMember(ctx, twin, "test"); err != nil {
		t.Fatalf("replace the dead n2: %v", err)
	}
	if string(n1.addressOf("n2")) != twin.RaftAddr {
		t.Errorf("n2 is at %s after the replacement, want %s", n1.addressOf("n2"), twin.RaftAddr)
	}
	want := addService(t, n1, 81)
	harness.Eventually(t, 10*time.Second, "the new n2 applies the log", func() (bool, string) {
		v := version(n2b)
		return v == want, fmt.Sprintf("version %d, want %d", v, want)
	})
	var lines []map[string]any
	for _, l := range strings.Split(log.String(), "\n") {
		var e map[string]any
		if json.Unmarshal([]byte(l), &e) == nil && e["msg"] == "member replaced" {
			lines = append(lines, e)
		}
	}
	if len(lines) != 1 || lines[0]["node"] != "n2" || lines[0]["old_raft_addr"] != addr2 || lines[0]["raft_addr"] != twin.RaftAddr {
		t.Errorf("member replaced lines %v; want one for n2 from %s to %s", lines, addr2, twin.RaftAddr)
	}
	if strings.Count(log.String(), `"msg":"join refused"`) != 3 {
		t.Errorf("want one \"join refused\" line per refusal (3):\n%s", log.String())
	}
}
