package cluster

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/cluster/pki"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/harness"
)

// testCA is a CA in a directory, making node certificates on demand.
type testCA struct {
	t   *testing.T
	dir string
	ca  *pki.CA
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	ca, err := pki.NewCA(name, time.Now(), 1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write(t, filepath.Join(dir, "ca.pem"), ca.PEM)
	return &testCA{t: t, dir: dir, ca: ca}
}

func write(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// files makes a node certificate valid from now for days (negative: long
// expired) and returns the cert, key and CA paths.
func (c *testCA) files(node string, days int) (cert, key, ca string) {
	c.t.Helper()
	now := time.Now()
	if days < 0 {
		now = now.AddDate(0, 0, 2*days)
	}
	p, err := c.ca.Node(node, []net.IP{net.IPv4(127, 0, 0, 1)}, now, max(days, -days))
	if err != nil {
		c.t.Fatal(err)
	}
	cert, key = pki.NodeFiles(c.dir, node)
	write(c.t, cert, p.CertPEM)
	write(c.t, key, p.KeyPEM)
	return cert, key, filepath.Join(c.dir, "ca.pem")
}

func (c *testCA) load(node string) *TLS {
	c.t.Helper()
	cert, key, ca := c.files(node, 1)
	m, err := LoadTLS(cert, key, ca, time.Now())
	if err != nil {
		c.t.Fatal(err)
	}
	return m
}

func TestLoadTLSNamesTheFlagAndFile(t *testing.T) {
	a, b := newTestCA(t, "a"), newTestCA(t, "b")
	cert, key, ca := a.files("n1", 1)
	if _, err := LoadTLS(cert, key, ca, time.Now()); err != nil {
		t.Fatalf("good material: %v", err)
	}
	_, otherKey, _ := a.files("n2", 1)
	foreignCert, foreignKey, _ := b.files("x", 1)
	oldCert, oldKey, _ := a.files("old", -3)
	junk := filepath.Join(t.TempDir(), "junk.pem")
	write(t, junk, []byte("not pem\n"))
	missing := filepath.Join(t.TempDir(), "missing.pem")
	for _, tc := range []struct {
		name          string
		cert, key, ca string
		want1, want2  string
	}{
		{"missing CA", cert, key, missing, `--tls-ca "` + missing + `"`, "no such file"},
		{"missing cert", missing, key, ca, `--tls-cert "` + missing + `"`, "no such file"},
		{"missing key", cert, missing, ca, `--tls-key "` + missing + `"`, "no such file"},
		{"CA not PEM", cert, key, junk, `--tls-ca "` + junk + `"`, "no PEM CERTIFICATE block"},
		{"cert not PEM", junk, key, ca, `--tls-cert "` + junk + `"`, "no PEM CERTIFICATE block"},
		{"key not PEM", cert, junk, ca, `--tls-key "` + junk + `"`, "no PEM private key"},
		{"key of another cert", cert, otherKey, ca, `--tls-key "` + otherKey + `" does not go with --tls-cert "` + cert + `"`, "private key does not match"},
		{"cert of another CA", foreignCert, foreignKey, ca, `--tls-cert "` + foreignCert + `" is not a node certificate of --tls-ca "` + ca + `"`, "unknown authority"},
		{"expired", oldCert, oldKey, ca, `--tls-cert "` + oldCert + `": expired on`, ""},
	} {
		_, err := LoadTLS(tc.cert, tc.key, tc.ca, time.Now())
		if err == nil || !strings.Contains(err.Error(), tc.want1) || !strings.Contains(err.Error(), tc.want2) {
			t.Errorf("%s: got %v, want %q … %q", tc.name, err, tc.want1, tc.want2)
		}
	}
}

func openTLS(t *testing.T, id string, m *TLS, bootstrap bool, log io.Writer) *Node {
	t.Helper()
	return openNode(t, Config{NodeID: id, TLS: m, Bootstrap: bootstrap}, log)
}

// openNode opens a node of cfg on a fresh loopback port and data dir,
// logging as text to log (nil: nowhere) unless cfg has a Logger.
func openNode(t *testing.T, cfg Config, log io.Writer) *Node {
	t.Helper()
	if log == nil {
		log = io.Discard
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(log, nil))
	}
	cfg.DataDir, cfg.RaftAddr, cfg.APIAddr, cfg.ApplyTimeout = t.TempDir(), harness.FreeAddr(t), "127.0.0.1:1", 3*time.Second
	cfg.Fatal = func(err error) { t.Errorf("fatal: %v", err) }
	n, err := Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { n.Shutdown(context.Background()) })
	return n
}

func waitLeader(t *testing.T, n *Node) {
	t.Helper()
	harness.Eventually(t, 10*time.Second, n.ID()+" leads", func() (bool, string) { return n.IsLeader(), "not leader" })
}

func addService(t *testing.T, n *Node, port uint16) uint64 {
	t.Helper()
	svc := &fsm.Service{Key: fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.1"), Port: port}, Scheduler: "rr"}
	res, err := n.Propose(context.Background(), fsm.CmdOps, fsm.OpsPayload{Ops: []fsm.Op{{Kind: fsm.OpAddService, Service: svc}}}, "test")
	if err != nil {
		t.Fatal(err)
	}
	return res.Version
}

func version(n *Node) (v uint64) {
	n.View(func(s *fsm.State, _ uint64) { v = s.Version })
	return v
}

func member(n *Node) fsm.Member {
	return fsm.Member{ID: n.ID(), RaftAddr: string(n.transport.LocalAddr()), APIAddr: "127.0.0.1:1"}
}

// Three nodes with certificates from the cluster CA form a cluster over
// TLS and replicate; a fourth whose certificate another CA signed is added
// by the leader but never gets a byte of the log.
func TestTLSClusterReplicatesAndShutsOutAForeignCertificate(t *testing.T) {
	ca, other := newTestCA(t, "cluster"), newTestCA(t, "other")
	n1 := openTLS(t, "n1", ca.load("n1"), true, nil)
	waitLeader(t, n1)
	n2 := openTLS(t, "n2", ca.load("n2"), false, nil)
	n3 := openTLS(t, "n3", ca.load("n3"), false, nil)
	ctx := context.Background()
	for _, n := range []*Node{n2, n3} {
		if err := n1.AddMember(ctx, member(n), "test"); err != nil {
			t.Fatalf("add %s: %v", n.ID(), err)
		}
	}
	want := addService(t, n1, 80)
	for _, n := range []*Node{n2, n3} {
		harness.Eventually(t, 10*time.Second, n.ID()+" applies the leader's log", func() (bool, string) {
			v := version(n)
			return v == want, fmt.Sprintf("version %d, want %d", v, want)
		})
	}

	var xlog harness.LogBuffer
	x := openTLS(t, "x", other.load("x"), false, &xlog)
	// Three voters of four: the change commits with n2 and n3, so the
	// leader goes on; x never hears from it.
	if err := n1.AddMember(ctx, member(x), "test"); err != nil {
		t.Fatalf("add x: %v", err)
	}
	want = addService(t, n1, 81)
	// Proof of absence needs the leader to have tried: several of its
	// connections refused, each a chance to replicate to x.
	harness.Eventually(t, 20*time.Second, "three of the leader's connections refused by x", func() (bool, string) {
		n := strings.Count(xlog.String(), "raft: refused a connection")
		return n >= 3, fmt.Sprintf("%d refused", n)
	})
	if v, idx := version(x), x.raft.AppliedIndex(); v != 0 || idx != 0 {
		t.Errorf("the node with a foreign certificate applied the leader's log: version %d, applied index %d", v, idx)
	}
	if _, lid := x.raft.LeaderWithID(); lid != "" {
		t.Errorf("the node with a foreign certificate knows leader %q", lid)
	}
	if !strings.Contains(xlog.String(), "raft: refused a connection") {
		t.Errorf("x's log does not show the refused connection:\n%s", xlog.String())
	}
	// The write committed with n2 and n3 (three of four voters); n3
	// applies it at the leader's next message.
	harness.Eventually(t, 10*time.Second, "n3 applies the write: the cluster goes on without x", func() (bool, string) {
		v := version(n3)
		return v == want, fmt.Sprintf("n3 at version %d, want %d", v, want)
	})
}

// The leader dials a member at the address the configuration gives it and
// talks only to that member: a node of the cluster CA whose certificate
// names another ID, added under ID n4 at its address, gets no byte of the
// log, and the leader's log says why.
func TestRaftDialsOnlyTheMemberTheConfigurationNames(t *testing.T) {
	ca := newTestCA(t, "cluster")
	var l1 harness.LogBuffer
	n1 := openNode(t, Config{NodeID: "n1", TLS: ca.load("n1"), Bootstrap: true, HeartbeatTimeout: relaxed, ElectionTimeout: relaxed, LeaderLeaseTimeout: relaxed / 2}, &l1)
	waitLeader(t, n1)
	n2 := openNode(t, Config{NodeID: "n2", TLS: ca.load("n2"), HeartbeatTimeout: relaxed, ElectionTimeout: relaxed, LeaderLeaseTimeout: relaxed / 2}, nil)
	n3 := openNode(t, Config{NodeID: "n3", TLS: ca.load("n3"), HeartbeatTimeout: relaxed, ElectionTimeout: relaxed, LeaderLeaseTimeout: relaxed / 2}, nil)
	ctx := context.Background()
	for _, n := range []*Node{n2, n3} {
		if err := n1.AddMember(ctx, member(n), "test"); err != nil {
			t.Fatalf("add %s: %v", n.ID(), err)
		}
	}
	// Raft ID n4, the certificate of node y: what a daemon refuses to
	// start with, run here by hand.
	x := openNode(t, Config{NodeID: "n4", TLS: ca.load("y"), HeartbeatTimeout: relaxed, ElectionTimeout: relaxed, LeaderLeaseTimeout: relaxed / 2}, nil)
	if err := n1.AddMember(ctx, member(x), "test"); err != nil {
		t.Fatalf("add n4: %v", err)
	}
	want := addService(t, n1, 80)
	harness.Eventually(t, 20*time.Second, "the leader refuses the server at n4's address", func() (bool, string) {
		return strings.Contains(l1.String(), `peer certificate is node \"y\"'s, and the Raft configuration has node \"n4\" at this address`), "not yet"
	})
	harness.Eventually(t, 10*time.Second, "n3 applies the write", func() (bool, string) {
		v := version(n3)
		return v == want, fmt.Sprintf("n3 at version %d, want %d", v, want)
	})
	if v, idx := version(x), x.raft.AppliedIndex(); v != 0 || idx != 0 {
		t.Errorf("the node whose certificate names y applied the leader's log as n4: version %d, applied index %d", v, idx)
	}
}

// A client that is not a node gets no Raft bytes: no certificate, one from
// another CA, or plain TCP.
func TestRaftPortRefusesClientsWithoutANodeCertificate(t *testing.T) {
	ca, other := newTestCA(t, "cluster"), newTestCA(t, "other")
	n1 := openTLS(t, "n1", ca.load("n1"), true, nil)
	waitLeader(t, n1)
	addr := string(n1.transport.LocalAddr())
	foreign := other.load("x")
	// A Raft AppendEntries header would start with type byte 0; any answer
	// to it from an unauthenticated client would be a leak.
	probe := []byte{0, 0x80}
	for name, cfg := range map[string]*tls.Config{
		"no certificate":      {InsecureSkipVerify: true, MinVersion: tls.VersionTLS13},
		"foreign certificate": {InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{foreign.Cert}},
	} {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
		if err != nil {
			continue // refused during the handshake: what we want
		}
		c.SetDeadline(time.Now().Add(5 * time.Second))
		c.Write(probe)
		n, err := c.Read(make([]byte, 64))
		c.Close()
		if n != 0 || err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("%s: read %d bytes, err %v; want none and a certificate alert", name, n, err)
		}
	}
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(5 * time.Second))
	c.Write(append(probe, make([]byte, 64)...))
	b, _ := io.ReadAll(c)
	c.Close()
	// At most a TLS alert record (type 21), never a Raft response.
	if len(b) > 0 && b[0] != 21 {
		t.Errorf("plain TCP client read %d bytes that are not a TLS alert: %x", len(b), b)
	}
}

// A peer that connects and never speaks is dropped after the handshake
// timeout instead of holding Raft's connection goroutine.
func TestSilentPeerTimesOutInTheHandshake(t *testing.T) {
	m := newTestCA(t, "cluster").load("n1")
	s, err := newTLSStreamLayer("127.0.0.1:0", nil, m, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	c, err := net.Dial("tcp", s.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	conn, err := s.Accept()
	if err != nil {
		t.Fatal(err)
	}
	conn.(*handshakeConn).timeout = 200 * time.Millisecond
	start := time.Now()
	_, err = conn.Read(make([]byte, 1))
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("read on a silent peer: %v after %s", err, time.Since(start))
	}
}
