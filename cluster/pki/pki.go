// Package pki is a cluster's TLS key material: it makes the small private
// CA and the node certificates (`ipvsman tls init`, and the tests), loads
// and checks a node's files (LoadTLS), and gives the TLS configurations of
// the Raft port, the API and calls between nodes. It uses only the standard
// library: an ECDSA P-256 CA, and node certificates valid for both ends of
// a connection (ServerAuth and ClientAuth), since every node is the server
// of some connections and the client of others.
//
// It never listens or dials and imports nothing of the module: the cluster
// and the daemon's API server open their own connections with its
// configurations, and the CLI links it for `tls init` without linking Raft.
package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"time"
)

// Defaults for validity.
const (
	CADays   = 3650
	NodeDays = 825
)

// CA is a certificate authority with its key.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	PEM  []byte // the certificate, PEM encoded
}

// Pair is a node certificate and key, both PEM encoded.
type Pair struct {
	CertPEM, KeyPEM []byte
	Cert            *x509.Certificate
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
}

// NewCA makes a self-signed CA valid from now for days.
func NewCA(name string, now time.Time, days int) (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("ca key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: name, Organization: []string{"ipvsman"}},
		NotBefore:             now.Add(-5 * time.Minute), // a neighbour's clock a little behind
		NotAfter:              now.AddDate(0, 0, days),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("ca certificate: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key, PEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}, nil
}

// KeyPEM is the CA key, PEM encoded.
func (ca *CA) KeyPEM() ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(ca.Key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// Node signs a certificate for node name, valid for the given IPs plus
// loopback, with name and "localhost" as DNS names, and name as its node
// ID (the URI SAN NodeURI(name), and the common name for people). Nodes
// verify each other by chain to the CA and act only as the node ID their
// certificate names (see TLS); the host names and IPs let an operator's
// client verify the host it typed.
func (ca *CA) Node(name string, ips []net.IP, now time.Time, days int) (*Pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("node %s key: %w", name, err)
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	all := append([]net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback}, ips...)
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: name, Organization: []string{"ipvsman"}},
		NotBefore:    now.Add(-5 * time.Minute),
		NotAfter:     now.AddDate(0, 0, days),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{name, "localhost"},
		IPAddresses:  dedupe(all),
		URIs:         []*url.URL{NodeURI(name)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("node %s certificate: %w", name, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &Pair{
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		Cert:    cert,
	}, nil
}

func dedupe(ips []net.IP) []net.IP {
	var out []net.IP
	for _, ip := range ips {
		seen := false
		for _, o := range out {
			seen = seen || o.Equal(ip)
		}
		if !seen {
			out = append(out, ip)
		}
	}
	return out
}

// LoadCA reads a CA written by WriteCA.
func LoadCA(certFile, keyFile string) (*CA, error) {
	cb, err := os.ReadFile(certFile)
	if err != nil {
		return nil, fmt.Errorf("ca certificate %q: %w", certFile, err)
	}
	blk, _ := pem.Decode(cb)
	if blk == nil || blk.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("ca certificate %q: no PEM CERTIFICATE block", certFile)
	}
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca certificate %q: %w", certFile, err)
	}
	if !cert.IsCA {
		return nil, fmt.Errorf("ca certificate %q: not a CA certificate", certFile)
	}
	kb, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, fmt.Errorf("ca key %q: %w", keyFile, err)
	}
	kblk, _ := pem.Decode(kb)
	if kblk == nil {
		return nil, fmt.Errorf("ca key %q: no PEM block", keyFile)
	}
	key, err := x509.ParseECPrivateKey(kblk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("ca key %q: %w", keyFile, err)
	}
	if !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("ca key %q does not match ca certificate %q", keyFile, certFile)
	}
	return &CA{Cert: cert, Key: key, PEM: cb}, nil
}

// Files of a CA and of node name in dir.
func CAFiles(dir string) (cert, key string) {
	return filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ca-key.pem")
}

// NodeFiles are the certificate and key paths of node name in dir.
func NodeFiles(dir, name string) (cert, key string) {
	return filepath.Join(dir, name+".pem"), filepath.Join(dir, name+"-key.pem")
}

// WriteNew writes data to a file that must not exist yet.
func WriteNew(path string, data []byte, mode os.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s: already exists; not overwriting it (remove it first to make a new one)", path)
		}
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", path, err)
	}
	return f.Close()
}
