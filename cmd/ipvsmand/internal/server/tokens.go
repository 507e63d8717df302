package server

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sync/atomic"
)

// Rotation is one token (the cluster's or the read-only one) across
// reloads: the current token and, while a rotation is under way, the
// previous one, which is still accepted and is what this node sends its
// peers, so that a peer not yet reloaded accepts it.
//
// A rotation is two reloads of every node: the first finds the new token
// (accept both, send the previous), the second finds it unchanged (accept
// and send the new one only). Every node must have done the first before
// any does the second.
type Rotation struct {
	Current, Previous string
}

// Next is the rotation after a reload that read token.
func (r Rotation) Next(token string) Rotation {
	switch {
	case token == r.Current:
		return Rotation{Current: token} // unchanged: a rotation under way ends
	case token == r.Send():
		return Rotation{Current: token} // back to the token the peers use
	case r.Current == "" && r.Previous == "":
		return Rotation{Current: token} // none before
	}
	// The token the peers agreed on stays accepted and sent; a token that
	// was current only since the last reload (a rotation begun again) goes.
	return Rotation{Current: token, Previous: r.Send()}
}

// Send is the token to send to other nodes.
func (r Rotation) Send() string {
	if r.Previous != "" {
		return r.Previous
	}
	return r.Current
}

// Accepts reports whether got is the current or the previous token, in
// constant time; the empty token matches nothing.
func (r Rotation) Accepts(got string) bool {
	return equalToken(got, r.Current) || equalToken(got, r.Previous)
}

// Rotating reports whether a previous token is still accepted.
func (r Rotation) Rotating() bool { return r.Previous != "" && r.Previous != r.Current }

// Tokens holds the API's two rotations, swapped whole by a reload.
type Tokens struct {
	p atomic.Pointer[tokenSet]
}

type tokenSet struct{ admin, read Rotation }

// NewTokens holds the tokens read at start; read may be "" (none).
func NewTokens(admin, read string) *Tokens {
	t := &Tokens{}
	t.p.Store(&tokenSet{admin: Rotation{Current: admin}, read: Rotation{Current: read}})
	return t
}

// Rotate moves both rotations on with the tokens a reload read, and
// returns them. A read-only token that any cluster token accepted would
// also accept (current or previous) is refused and changes nothing: it
// would grant the admin role.
func (t *Tokens) Rotate(admin, read string) (Rotation, Rotation, error) {
	old := t.p.Load()
	next := &tokenSet{admin: old.admin.Next(admin), read: old.read.Next(read)}
	for _, r := range []string{next.read.Current, next.read.Previous} {
		if r != "" && next.admin.Accepts(r) {
			return old.admin, old.read, fmt.Errorf("a read-only token equal to a cluster token still accepted (current or previous): a read-only token must differ from the cluster token")
		}
	}
	t.p.Store(next)
	return next.admin, next.read, nil
}

// Admin and Read are the rotations in force.
func (t *Tokens) Admin() Rotation { return t.p.Load().admin }
func (t *Tokens) Read() Rotation  { return t.p.Load().read }

// Send is the cluster token this node sends to other nodes.
func (t *Tokens) Send() string { return t.p.Load().admin.Send() }

// role tells whether got is an accepted cluster (admin) or read-only token.
func (t *Tokens) role(got string) (admin, read bool) {
	s := t.p.Load()
	if s.admin.Accepts(got) {
		return true, false
	}
	return false, s.read.Accepts(got)
}

// forwardAs is the token a request authenticated with got is passed on
// with: this node's own token of the same role, which a leader not yet
// reloaded still accepts during a rotation.
func (t *Tokens) forwardAs(got string) string {
	s := t.p.Load()
	switch {
	case s.admin.Accepts(got):
		return s.admin.Send()
	case s.read.Accepts(got):
		return s.read.Send()
	}
	return got
}

// NodeKey is the key a node of a plain (loopback) cluster sends with its
// requests to other nodes (api.HeaderNodeKey), derived from the cluster
// token. The CLI never derives or sends it, so a client's request, even
// with the cluster token, is not taken for a node's: its forwarding
// headers count for nothing. What it cannot do is keep out a holder of
// the cluster token who derives it on purpose; on loopback nothing can,
// since such a holder may already change anything, and Raft there is
// plain TCP (docs/security.md).
func NodeKey(token string) string {
	if token == "" {
		return ""
	}
	m := hmac.New(sha256.New, []byte(token))
	m.Write([]byte("ipvsman node key v1"))
	return hex.EncodeToString(m.Sum(nil))
}

// NodeKey is the node key this node sends: the one of the cluster token it
// sends, which a peer not yet reloaded accepts during a rotation.
func (t *Tokens) NodeKey() string { return NodeKey(t.Send()) }

// acceptsNodeKey reports whether got is the node key of a cluster token
// this node accepts, in constant time.
func (t *Tokens) acceptsNodeKey(got string) bool {
	a := t.p.Load().admin
	return equalToken(got, NodeKey(a.Current)) || equalToken(got, NodeKey(a.Previous))
}
