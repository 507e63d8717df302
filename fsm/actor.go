package fsm

import (
	"fmt"
	"strings"

	"github.com/ipvsman/ipvsman/fsm/escape"
)

// The principals a node's API authenticates, as recorded in an actor.
const (
	PrincipalAdminToken = "admin-token" // the cluster (admin) token
	PrincipalReadToken  = "read-token"  // the read-only token
	// PrincipalNodeKey is a node of a plain (loopback) cluster: it sent
	// the node key derived from the cluster token, which proves that it
	// holds that token, not which node it is.
	PrincipalNodeKey = "node-key"
	// principalNodeCert, with ":NAME", is a node of a TLS cluster: it
	// presented a certificate of the cluster CA whose common name is NAME.
	principalNodeCert = "node-cert"
)

// NodeCertPrincipal is the principal of a node certificate named name;
// a name that is not a valid node ID is left out rather than recorded.
func NodeCertPrincipal(name string) string {
	if ValidateNodeID(name) != nil {
		return principalNodeCert
	}
	return principalNodeCert + ":" + name
}

// ValidatePrincipal checks a principal a node passed on with a request.
func ValidatePrincipal(p string) error {
	switch {
	case p == PrincipalAdminToken, p == PrincipalReadToken, p == PrincipalNodeKey, p == principalNodeCert:
		return nil
	case strings.HasPrefix(p, principalNodeCert+":") && ValidateNodeID(strings.TrimPrefix(p, principalNodeCert+":")) == nil:
		return nil
	}
	return fmt.Errorf("principal %q: want %s, %s, %s or %s:NODE", p, PrincipalAdminToken, PrincipalReadToken, PrincipalNodeKey, principalNodeCert)
}

// MaxClaim bounds, in bytes, the actor a client claims.
const MaxClaim = 256

// claimed separates the principal from the claim in an actor.
const claimed = " (claimed "

// Actor is who made a change, as the leader stamps it into a command
// (Command.Actor) and so into its history entry: the principal the API
// authenticated and, beside it, what the client said it was, which
// nothing checks.
//
// It is kept as one string in the existing field, in the canonical form
// String writes, so that the log needs no new field: a member of an older
// build applies and snapshots the same bytes (a new field would be
// dropped by it, and the states would differ).
type Actor struct {
	Principal string
	Claim     string
}

// String is the canonical form: "PRINCIPAL" or "PRINCIPAL (claimed
// CLAIM)", with the claim escaped (escape.String), so that the log holds
// only printable text whatever a client sent. A principal never contains
// " (claimed ", so the first one ends it.
func (a Actor) String() string {
	if a.Claim == "" {
		return a.Principal
	}
	return a.Principal + claimed + escape.String(a.Claim) + ")"
}

// ParseActor splits a recorded actor into its principal and claim. It
// reports false for an actor whose principal is not one the API
// authenticates: one the leader recorded for itself (ipvsmand@NODE: health
// verdicts, a node's own addresses) or one recorded before principals
// were (the claim alone).
func ParseActor(s string) (Actor, bool) {
	p, rest, hasClaim := strings.Cut(s, claimed)
	if ValidatePrincipal(p) != nil {
		return Actor{}, false
	}
	if !hasClaim {
		return Actor{Principal: p}, true
	}
	claim, ok := strings.CutSuffix(rest, ")")
	if !ok {
		return Actor{}, false
	}
	return Actor{Principal: p, Claim: claim}, true
}
