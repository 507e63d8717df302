// Package top is `ipvsman top`, the live console: a bubbletea model fed
// by snapshots of the cluster, whose actions are the same fsm.Op values the
// CLI sends, through the same API, so the console can do nothing the CLI
// could not. All I/O sits behind Source; the model itself is pure and is
// unit-tested with a fake source.
//
// It never reaches a node but through Source (the API client in the
// binary) and imports only cluster/api, director/table and the fsm
// packages, so the console links nothing of Raft, gossip or netlink.
package top

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

// Source is everything the console reads and writes.
type Source interface {
	// Snapshot reads the model, the cluster's status and the kernel table
	// of node ("" = the node the console talks to). A kernel table that
	// cannot be read is not an error: Snapshot.KernelErr says why.
	Snapshot(ctx context.Context, node string) (Snapshot, error)
	// Act commits ops atomically, as `ipvsman -a/-e/-d` and `ipvsman
	// server` do.
	Act(ctx context.Context, ops []fsm.Op) (fsm.Result, error)
}

// Snapshot is one refresh of the screen's data.
type Snapshot struct {
	At       time.Time // when the kernel counters were read: the base of the rates
	Version  uint64    // configuration version of Config
	Config   *fsm.Config
	Verdicts map[string]fsm.Verdict
	QuorumUp map[string]bool // fsm.State.QuorumUp
	Via      string          // the node that answered the model read
	Stale    string          // why the model read may miss recent writes

	Cluster    *api.ClusterStatus // nil when ClusterErr is set
	ClusterErr string

	KernelNode string        // the node whose kernel table this is
	Kernel     ipvsadm.Stats // nil when KernelErr is set
	KernelErr  string
}

// APISource reads and writes through the API of one node, as the CLI does.
type APISource struct {
	Client *api.Client
}

// Snapshot reads the cluster status and the model in parallel, then the
// kernel table of node through that node's own API (found in the status).
func (s *APISource) Snapshot(ctx context.Context, node string) (Snapshot, error) {
	var (
		wg     sync.WaitGroup
		cs     api.ClusterStatus
		csErr  error
		cfg    api.ConfigResponse
		cfgErr error
	)
	wg.Add(2)
	go func() { defer wg.Done(); cs, csErr = s.Client.ClusterStatus(ctx) }()
	go func() { defer wg.Done(); cfg, cfgErr = s.Client.Config(ctx) }()
	wg.Wait()
	if cfgErr != nil {
		return Snapshot{}, fmt.Errorf("read the model: %w", cfgErr)
	}
	snap := Snapshot{Version: cfg.Version, Config: cfg.Config, Verdicts: cfg.Verdicts, QuorumUp: cfg.QuorumUp, Via: cfg.Node, Stale: cfg.Stale}
	if snap.Config == nil {
		snap.Config = fsm.NewConfig()
	}
	if csErr != nil {
		snap.ClusterErr = csErr.Error()
	} else {
		snap.Cluster = &cs
	}
	if node == "" {
		node = cfg.Node
	}
	snap.KernelNode = node
	kc, err := nodeClient(s.Client, cfg.Node, node, snap.Cluster)
	if err != nil {
		snap.KernelErr, snap.At = err.Error(), time.Now()
		return snap, nil
	}
	k, err := kc.Kernel(ctx)
	snap.At = time.Now()
	if err != nil {
		snap.KernelErr = err.Error()
		return snap, nil
	}
	snap.Kernel = k.Stats
	if snap.Kernel == nil {
		snap.Kernel = ipvsadm.Stats{}
	}
	return snap, nil
}

// nodeClient is a client of node: the console's own when node is the one
// it talks to, else one at the API address the cluster status lists.
func nodeClient(c *api.Client, via, node string, cs *api.ClusterStatus) (*api.Client, error) {
	if node == via {
		return c, nil
	}
	if cs == nil {
		return nil, fmt.Errorf("node %s: its API address is unknown (no cluster status)", node)
	}
	var known []string
	for _, n := range cs.Nodes {
		known = append(known, n.ID)
		if n.ID != node {
			continue
		}
		if n.APIAddr == "" {
			return nil, fmt.Errorf("node %s: its API address is not known yet", node)
		}
		nc := *c
		nc.Base = n.APIAddr
		return &nc, nil
	}
	slices.Sort(known)
	return nil, fmt.Errorf("node %q: not a member (members: %s)", node, strings.Join(known, ", "))
}

// Act sends ops to POST /v1/ops, the door `ipvsman -a/-e/-d` and
// `ipvsman server` use; the leader validates them as it validates theirs.
func (s *APISource) Act(ctx context.Context, ops []fsm.Op) (fsm.Result, error) {
	r, err := s.Client.Ops(ctx, ops)
	return r.Result, err
}
