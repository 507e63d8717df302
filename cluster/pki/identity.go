package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// NodeURIPrefix starts the URI a node certificate names its node ID with:
// spiffe://ipvsman/node/NAME. A SPIFFE ID, so that an operator's own PKI
// (SPIRE, cfssl, step-ca) can issue it, and a URI SAN, so that a machine
// checks it instead of trusting a common name written for people.
const NodeURIPrefix = "spiffe://ipvsman/node/"

// ErrNoNodeID is a certificate that names no node ID: one made before node
// IDs were bound to certificates, or by a PKI that was not told to.
var ErrNoNodeID = errors.New("names no node ID (no URI SAN " + NodeURIPrefix + "NAME): reissue it with `ipvsman tls init` (a certificate of your own PKI needs that URI too)")

// NodeURI is the URI SAN naming node id.
func NodeURI(id string) *url.URL {
	u, _ := url.Parse(NodeURIPrefix + id)
	return u
}

// NodeID is the node ID cert names in its URI SANs. A certificate with
// none is ErrNoNodeID; one naming two different IDs is refused, since it
// would let its holder act as either.
func NodeID(cert *x509.Certificate) (string, error) {
	id := ""
	for _, u := range cert.URIs {
		name, ok := strings.CutPrefix(u.String(), NodeURIPrefix)
		if !ok {
			continue
		}
		if name == "" || strings.Contains(name, "/") {
			return "", fmt.Errorf("has a URI SAN %q that is not %sNAME", u, NodeURIPrefix)
		}
		if id != "" && id != name {
			return "", fmt.Errorf("names two node IDs, %q and %q: a certificate is one node's", id, name)
		}
		id = name
	}
	if id == "" {
		return "", ErrNoNodeID
	}
	return id, nil
}

// PeerNode is the node ID of the verified certificate a TLS peer
// presented: the leaf of the chain the handshake verified against the
// cluster CA, never a certificate only presented.
func PeerNode(cs *tls.ConnectionState) (string, error) {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", errors.New("no verified certificate")
	}
	leaf := cs.VerifiedChains[0][0]
	id, err := NodeID(leaf)
	if err != nil {
		return "", fmt.Errorf("certificate %q %w", leaf.Subject.CommonName, err)
	}
	return id, nil
}
