package server

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/ipvsman/ipvsman/cluster"
	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/cluster/release"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/escape"
)

// drain takes this node out of the cluster for good: no more VIPs,
// leadership handed over, removed from the Raft configuration by the
// leader, out of gossip, Raft stopped. It runs on the node being drained,
// which alone can give up its own duties.
func (s *Server) drain(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
	defer cancel()
	id := s.Node.ID()
	who, err := actorOf(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "rejected", err.Error())
		return
	}
	if _, err := s.Node.BeginDrain(); err != nil {
		s.Node.CancelDrain(err.Error())
		writeFailure(w, fmt.Errorf("drain %s: %w", id, err))
		return
	}
	leader, err := s.leaveThroughLeader(ctx, id, who)
	if err != nil {
		s.Node.CancelDrain(err.Error())
		writeFailure(w, fmt.Errorf("drain %s: the leader did not remove it: %w", id, err))
		return
	}
	if err := s.Node.FinishDrain(); err != nil {
		writeError(w, http.StatusInternalServerError, "internal", fmt.Sprintf("drain %s: removed from the cluster, but stopping Raft: %v", id, err))
		return
	}
	writeJSON(w, http.StatusOK, api.DrainResponse{Node: id, Leader: leader})
}

// leaveThroughLeader asks the current leader to remove id for who (the
// operator who asked for the drain), retrying while leadership settles
// after a hand-over.
func (s *Server) leaveThroughLeader(ctx context.Context, id string, who fsm.Actor) (string, error) {
	backoff := 50 * time.Millisecond
	for {
		lid, leaderAPI, err := s.Node.LeaderAPI()
		if err == nil && lid != id {
			c := s.peer(leaderAPI, who)
			if err = c.Leave(ctx, id); err == nil {
				return lid, nil
			}
			var e *api.Error
			if errors.As(err, &e) && e.Kind == "rejected" {
				return "", err
			}
		} else if err == nil {
			err = errors.New("still the leader")
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("%w (last: %v)", ctx.Err(), err)
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, time.Second)
	}
}

// writeFailure maps a cluster error to its HTTP answer.
func writeFailure(w http.ResponseWriter, err error) {
	var rej *cluster.RejectedError
	if errors.As(err, &rej) {
		writeError(w, http.StatusBadRequest, "rejected", err.Error())
		return
	}
	writeError(w, http.StatusInternalServerError, "internal", err.Error())
}

// command serves POST /v1/commands/{name}: a command type of a protocol
// newer than the base one, its JSON payload as the body. A node that does
// not know the name says so with its version; the gate is checked here,
// before forwarding, so that a follower refuses what the oldest member
// could not apply, whatever the leader's version.
func (s *Server) command(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	typ, ok := fsm.CommandByName(name)
	if !ok || typ.Since() <= fsm.BaseCommandProtocol {
		writeError(w, http.StatusNotFound, "unknown-command", fmt.Sprintf("node %s runs ipvsmand %s (protocol %d), which does not know command %q", s.Node.ID(), release.Version, fsm.CommandProtocol, name))
		return
	}
	if err := s.Node.Gate(typ); err != nil {
		writeFailure(w, err)
		return
	}
	s.write(func(ctx context.Context, req writeReq) (any, error) {
		if !json.Valid(req.body) {
			return nil, &cluster.RejectedError{Reason: fmt.Sprintf("%s: request body: not JSON", name)}
		}
		return s.commit(ctx, typ, json.RawMessage(req.body), req)
	})(w, r)
}

// members joins the answering node's view of the configuration and of
// gossip with each member's own last contact.
func members(via api.NodeStatus, nodes []api.NodeView) []api.MemberView {
	contact := map[string]string{}
	for _, n := range nodes {
		if n.Status != nil {
			contact[n.ID] = n.Status.LastContact
		}
	}
	var out []api.MemberView
	for _, list := range [][]api.ServerStatus{via.Servers, via.Gossip} {
		for _, s := range list {
			out = append(out, api.MemberView{
				ID: s.ID, Suffrage: s.Suffrage, Leader: s.Leader, Version: s.Version, Protocol: s.Protocol,
				Gossip: s.GossipState, GossipSinceMS: s.GossipForMS, LastContact: contact[s.ID],
				RaftAddr: s.RaftAddr, GossipAddr: s.GossipAddr, Ready: cmp.Or(s.Ready, "unknown"), Unready: s.Unready,
			})
		}
	}
	return out
}

func (s *Server) join(ctx context.Context, req writeReq) (any, error) {
	j, err := decode[api.JoinRequest](req.body)
	if err != nil {
		return nil, err
	}
	add := s.Node.AddMember
	if j.Replace {
		add = s.Node.ReplaceMember
	}
	if err := add(ctx, j.Member, req.actor); err != nil {
		return nil, err
	}
	return api.WriteResponse{Leader: s.Node.ID()}, nil
}

// leave removes a node; when the leader itself is asked to leave, it hands
// leadership over first and the request is retried on the new leader.
func (s *Server) leave(ctx context.Context, w writeReq) (any, error) {
	req, err := decode[api.NodeRequest](w.body)
	if err != nil {
		return nil, err
	}
	if req.ID == "" {
		return nil, &cluster.RejectedError{Reason: "leave: id: missing"}
	}
	if req.ID == s.Node.ID() {
		if _, err := s.Node.Transfer(""); err != nil {
			return nil, err
		}
		return nil, cluster.ErrNotLeader
	}
	if err := s.Node.RemoveMember(ctx, req.ID, w.actor); err != nil {
		return nil, err
	}
	return api.WriteResponse{Leader: s.Node.ID()}, nil
}

// joinVia makes this node ask a member to add it. It runs on the joining
// node, which alone knows its own addresses.
func (s *Server) joinVia(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	req, err := decode[api.JoinViaRequest](body)
	if err != nil || req.Member == "" {
		writeError(w, http.StatusBadRequest, "rejected", fmt.Sprintf("join: member API address: missing or malformed (%v)", err))
		return
	}
	who, err := actorOf(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, "rejected", err.Error())
		return
	}
	c := s.peer(req.Member, who)
	if err := c.Join(r.Context(), api.JoinRequest{Member: s.Self, Replace: s.Replace}); err != nil {
		writeError(w, http.StatusBadGateway, "rejected", fmt.Sprintf("join through %s: %v", req.Member, err))
		return
	}
	s.Log.Info("joined the cluster", "node", s.Self.ID, "via", escape.String(req.Member))
	writeJSON(w, http.StatusOK, api.WriteResponse{})
}
