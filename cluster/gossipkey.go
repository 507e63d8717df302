package cluster

import (
	"bytes"
	"errors"
)

// Rotating the gossip key (it follows the cluster token, GossipKey) takes
// two steps, each done on every node before the next begins: first every
// node installs the new key beside the old one, so that it reads messages
// sealed with either while it still sends with the old; then every node
// sends with the new one. The old key stays installed (readable) until the
// process restarts: a node still at step one keeps being understood.

// errNoGossip is the answer of a node that runs without gossip.
var errNoGossip = errors.New("gossip is off")

// InstallGossipKey adds key to the gossip keyring: messages sealed with it
// are read from now on. This node still sends with its primary key.
func (n *Node) InstallGossipKey(key []byte) error {
	if n.gossip == nil || n.gossip.keys == nil {
		return errNoGossip
	}
	return n.gossip.keys.AddKey(key)
}

// UseGossipKey makes key the one this node sends with, installing it if
// needed; the keys installed before stay readable.
func (n *Node) UseGossipKey(key []byte) error {
	if n.gossip == nil || n.gossip.keys == nil {
		return errNoGossip
	}
	if err := n.gossip.keys.AddKey(key); err != nil {
		return err
	}
	return n.gossip.keys.UseKey(key)
}

// GossipPrimaryKey reports whether key is the one this node sends with.
func (n *Node) GossipPrimaryKey(key []byte) bool {
	return n.gossip != nil && n.gossip.keys != nil && bytes.Equal(n.gossip.keys.GetPrimaryKey(), key)
}
