package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// TLS is a node's key material: its certificate and key, and the cluster's
// private CA. A TLS cluster is all-TLS: Raft, and every API call between
// nodes, is mutual TLS with these.
//
// Nodes verify each other by chain to the cluster CA, not by host name:
// Raft addresses are IP:port pairs that change when a node moves. What
// the chain proves is that the cluster CA made the holder a node; which
// node is the node ID the certificate names (NodeID), and a node acts only
// as that one: it must start with that --node-id, and the API refuses a
// join or a forwarded write that claims another (PeerNode). Whoever holds
// the CA key decides who may be a node; keep it off the directors
// (`ipvsman tls init` writes it next to the node certificates only for
// convenience).
//
// The certificate and key may be replaced while the node runs (Reload, on
// SIGHUP): every tls.Config built here presents the current pair to each
// new handshake. The CA stays the one read at start.
type TLS struct {
	Cert tls.Certificate // as loaded at start; Current is the one in use
	CA   *x509.CertPool
	Leaf *x509.Certificate
	// CAFile names the CA's file in errors about later material.
	CAFile string
	node   string // the node ID the certificate names; a reload keeps it
	cur    atomic.Pointer[tls.Certificate]
}

// LoadTLS reads the node's certificate (--tls-cert), key (--tls-key) and
// the cluster CA (--tls-ca), and checks that they go together: the key
// matches the certificate, the CA signed it for both server and client use,
// it is valid now, and it names a node ID; the key's file is private to
// its owner (ReadSecret). Every error names the flag and the file.
func LoadTLS(certFile, keyFile, caFile string, now time.Time) (*TLS, error) {
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca %q: %w", caFile, err)
	}
	cas, err := parseCerts(caPEM)
	if err != nil {
		return nil, fmt.Errorf("--tls-ca %q: %w", caFile, err)
	}
	pool := x509.NewCertPool()
	for _, c := range cas {
		pool.AddCert(c)
	}
	pair, node, err := loadPair(certFile, keyFile, caFile, pool, now)
	if err != nil {
		return nil, err
	}
	t := &TLS{Cert: *pair, CA: pool, Leaf: pair.Leaf, CAFile: caFile, node: node}
	t.cur.Store(pair)
	return t, nil
}

// loadPair reads a node certificate and its key and checks them against
// the CA pool as LoadTLS does; node is the ID the certificate names.
func loadPair(certFile, keyFile, caFile string, pool *x509.CertPool, now time.Time) (_ *tls.Certificate, node string, err error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, "", fmt.Errorf("--tls-cert %q: %w", certFile, err)
	}
	chain, err := parseCerts(certPEM)
	if err != nil {
		return nil, "", fmt.Errorf("--tls-cert %q: %w", certFile, err)
	}
	keyPEM, err := ReadSecret("--tls-key", keyFile)
	if err != nil {
		return nil, "", err
	}
	if !hasPrivateKey(keyPEM) {
		return nil, "", fmt.Errorf("--tls-key %q: no PEM private key block", keyFile)
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return nil, "", fmt.Errorf("--tls-key %q does not go with --tls-cert %q: %w", keyFile, certFile, err)
	}
	leaf := chain[0]
	switch {
	case now.After(leaf.NotAfter):
		return nil, "", fmt.Errorf("--tls-cert %q: expired on %s", certFile, leaf.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(leaf.NotBefore):
		return nil, "", fmt.Errorf("--tls-cert %q: not valid before %s (check the clock)", certFile, leaf.NotBefore.UTC().Format(time.RFC3339))
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	for _, usage := range []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth} {
		_, err := leaf.Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{usage}})
		if err != nil {
			return nil, "", fmt.Errorf("--tls-cert %q is not a node certificate of --tls-ca %q (a node needs one signed by the cluster CA for server and client use): %w", certFile, caFile, err)
		}
	}
	if node, err = NodeID(leaf); err != nil {
		return nil, "", fmt.Errorf("--tls-cert %q %w", certFile, err)
	}
	pair.Leaf = leaf
	return &pair, node, nil
}

// Current is the certificate new handshakes present.
func (t *TLS) Current() *tls.Certificate {
	if c := t.cur.Load(); c != nil {
		return c
	}
	return &t.Cert // a TLS built by hand, not by LoadTLS
}

// Reload reads the certificate and key again and checks them exactly as
// LoadTLS does, against the CA held since start (its file is not read
// again: a new CA needs a restart). Only material that passes replaces the
// current pair, for new handshakes; connections already up keep theirs.
// On an error nothing changes. changed is false when the files hold the
// certificate in use.
func (t *TLS) Reload(certFile, keyFile string, now time.Time) (changed bool, err error) {
	pair, err := t.LoadPair(certFile, keyFile, now)
	if err != nil {
		return false, err
	}
	return t.Use(pair), nil
}

// LoadPair is the first half of Reload: it reads and checks a pair
// without using it. The new certificate must name the node ID of the one
// loaded at start: a node's ID is its data dir's and the cluster's, and
// does not change while it runs.
func (t *TLS) LoadPair(certFile, keyFile string, now time.Time) (*tls.Certificate, error) {
	pair, node, err := loadPair(certFile, keyFile, t.CAFile, t.CA, now)
	if err != nil {
		return nil, err
	}
	if t.node != "" && node != t.node {
		return nil, fmt.Errorf("--tls-cert %q is node %q's certificate, and this node is %q: a reload cannot change the node ID", certFile, node, t.node)
	}
	return pair, nil
}

// Node is the node ID this node's certificate names ("" for a TLS built
// by hand, not by LoadTLS).
func (t *TLS) Node() string { return t.node }

// Use is the second half of Reload: pair, from LoadPair, serves new
// handshakes from now on. It reports whether it differs from the pair in
// use.
func (t *TLS) Use(pair *tls.Certificate) (changed bool) {
	old := t.Current()
	if len(old.Certificate) > 0 && string(old.Certificate[0]) == string(pair.Certificate[0]) {
		return false
	}
	t.cur.Store(pair)
	return true
}

func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no PEM CERTIFICATE block")
	}
	return out, nil
}

func hasPrivateKey(b []byte) bool {
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return false
		}
		switch blk.Type {
		case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY":
			return true
		}
	}
}

// verifyChain checks a peer's certificate against the cluster CA for
// usage, without a host name (see TLS).
func (t *TLS) verifyChain(usage x509.ExtKeyUsage) func(tls.ConnectionState) error {
	return func(cs tls.ConnectionState) error {
		if len(cs.PeerCertificates) == 0 {
			return errors.New("peer presented no certificate")
		}
		inter := x509.NewCertPool()
		for _, c := range cs.PeerCertificates[1:] {
			inter.AddCert(c)
		}
		_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{Roots: t.CA, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}})
		if err != nil {
			return fmt.Errorf("peer certificate %q is not from the cluster CA: %w", cs.PeerCertificates[0].Subject.CommonName, err)
		}
		return nil
	}
}

// verifyNode is verifyChain that also wants the peer's certificate to
// name node.
func (t *TLS) verifyNode(usage x509.ExtKeyUsage, node string) func(tls.ConnectionState) error {
	chain := t.verifyChain(usage)
	return func(cs tls.ConnectionState) error {
		if err := chain(cs); err != nil {
			return err
		}
		leaf := cs.PeerCertificates[0]
		id, err := NodeID(leaf)
		if err != nil {
			return fmt.Errorf("peer certificate %q %w", leaf.Subject.CommonName, err)
		}
		if id != node {
			return fmt.Errorf("peer certificate is node %q's, and the Raft configuration has node %q at this address", id, node)
		}
		return nil
	}
}

// PeerServer is the server side of the Raft port: a client certificate
// from the cluster CA is required.
func (t *TLS) PeerServer() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: t.getCertificate,
		ClientAuth:     tls.RequireAndVerifyClientCert,
		ClientCAs:      t.CA,
	}
}

// APIServer is the server side of the API: operators authenticate with a
// token and need no certificate; nodes present theirs, and the API asks
// for it on joins and forwarded writes (see the daemon's API server).
func (t *TLS) APIServer() *tls.Config {
	return &tls.Config{
		MinVersion:     tls.VersionTLS13,
		GetCertificate: t.getCertificate,
		ClientAuth:     tls.VerifyClientCertIfGiven,
		ClientCAs:      t.CA,
	}
}

// PeerClient is the client side of a node-to-node connection (Raft and the
// API): it presents this node's certificate and accepts a server whose
// chain leads to the cluster CA, whatever address it was reached at.
func (t *TLS) PeerClient() *tls.Config {
	return &tls.Config{
		MinVersion:           tls.VersionTLS13,
		GetClientCertificate: t.getClientCertificate,
		// The chain is checked by VerifyConnection instead of by name.
		InsecureSkipVerify: true,
		VerifyConnection:   t.verifyChain(x509.ExtKeyUsageServerAuth),
	}
}

// PeerClientFor is PeerClient for a connection to node: the server must
// also present node's certificate (Raft dials a member at the address its
// configuration gives it, and talks to that member only).
func (t *TLS) PeerClientFor(node string) *tls.Config {
	c := t.PeerClient()
	c.VerifyConnection = t.verifyNode(x509.ExtKeyUsageServerAuth, node)
	return c
}

// getCertificate and getClientCertificate present the current pair, so
// that a reloaded certificate serves every new handshake.
func (t *TLS) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return t.Current(), nil
}

// A server that names CAs this certificate is not from gets none, as Go's
// client does with a fixed Certificates list.
func (t *TLS) getClientCertificate(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
	c := t.Current()
	if cri.SupportsCertificate(c) != nil {
		return &tls.Certificate{}, nil
	}
	return c, nil
}
