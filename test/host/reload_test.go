package host

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/failover"
	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// TestSIGHUPRotatesTheCertificate: three directors over TLS hold a VIP
// that a client polls. The leader's certificate is replaced by a new one
// of the cluster CA (`ipvsman tls init`, the CA copied beside it) and the
// leader gets SIGHUP: it stays alive, the client sees no failed request,
// a write through it commits on every node, and its API presents the new
// certificate to a new handshake. A second SIGHUP with a key that does
// not match changes nothing and logs the error naming --tls-key.
func TestSIGHUPRotatesTheCertificate(t *testing.T) {
	l := newVIPLab(t)
	c, nodes := l.c, l.nodes
	lead := c.Leader(t, nodes[0], nodes)
	l.waitOwner(t, lead, others(nodes, lead)...)
	poll := failover.StartPoller(t, l.tp, l.tool, topo.Client, "http://"+topo.VIP+"/", 20*time.Millisecond, 250*time.Millisecond)
	if _, ok := poll.WaitStreak(time.Now(), 10, lead.ID, time.Now().Add(20*time.Second)); !ok {
		t.Fatalf("the client is not answered by %s: %s", lead.ID, poll.Health())
	}

	oldFile := fileFingerprint(t, lead.CertFile)
	if got := wireFingerprint(t, l.tp, c, lead); got != oldFile {
		t.Fatalf("%s's API presents %s, its file holds %s", lead.ID, got, oldFile)
	}
	oldKey, err := os.ReadFile(lead.KeyFile)
	if err != nil {
		t.Fatal(err)
	}

	// A new certificate of the same CA, as an operator makes one.
	dir := filepath.Join(c.Dir, "rotated")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca.pem", "ca-key.pem"} {
		copyFile(t, filepath.Join(c.TLSDir, f), filepath.Join(dir, f))
	}
	host, _, _ := net.SplitHostPort(lead.RaftAddr)
	c.TLSInit(dir, lead.ID+"="+host)
	copyFile(t, filepath.Join(dir, lead.ID+".pem"), lead.CertFile)
	copyFile(t, filepath.Join(dir, lead.ID+"-key.pem"), lead.KeyFile)
	newFile := fileFingerprint(t, lead.CertFile)
	if newFile == oldFile {
		t.Fatal("tls init made the same certificate")
	}

	from := time.Now()
	if err := lead.Reload(); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 20*time.Second, lead.ID+" logs the reload", func() (bool, string) {
		return strings.Contains(lead.Log(), `"tls certificate"`), lastLine(lead.Log())
	})
	if !lead.Alive() {
		t.Fatalf("%s exited on SIGHUP", lead.ID)
	}
	onWire := wireFingerprint(t, l.tp, c, lead)
	t.Logf("old certificate sha256 %s; new file %s; on the wire after the reload %s", oldFile, newFile, onWire)
	if onWire != newFile {
		t.Errorf("after the reload %s's API presents %s, want the new file's %s", lead.ID, onWire, newFile)
	}
	if !strings.Contains(lead.Log(), `"certificate_sha256":"`+newFile+`"`) {
		t.Errorf("the reload line does not name the new certificate: %s", lastLine(lead.Log()))
	}

	// A write through the reloaded node commits everywhere; so does one
	// a follower forwards to it (its API checks the follower's
	// certificate, the follower checks its new one).
	c.MustCLI(lead, "", "-A", "-t", "10.0.0.9:80", "-s", "rr")
	c.MustCLI(others(nodes, lead)[0], "", "-A", "-t", "10.0.0.9:81", "-s", "rr")
	harness.Eventually(t, 20*time.Second, "both writes applied on every node", func() (bool, string) {
		for _, n := range nodes {
			out := c.MustCLI(n, "", "-L", "-n")
			if !strings.Contains(out, "10.0.0.9:80") || !strings.Contains(out, "10.0.0.9:81") {
				return false, n.ID + ": " + out
			}
		}
		return true, ""
	})

	// The client kept its service across the reload: every request from
	// a second before the SIGHUP to now (all ended once 20 more have been
	// answered, each timing out after 250 ms).
	end := time.Now()
	if _, ok := poll.WaitStreak(end, 20, lead.ID, time.Now().Add(20*time.Second)); !ok {
		t.Fatalf("no service after the reload: %s", poll.Health())
	}
	total, failed := poll.Count(from.Add(-time.Second), end)
	t.Logf("reload_failed_requests: %d (of %d requests from 1 s before the SIGHUP, over %s)", failed, total, end.Sub(from.Add(-time.Second)).Round(time.Millisecond))
	if failed != 0 || total == 0 {
		t.Errorf("%d of %d client requests failed over the reload", failed, total)
	}

	// Bad material: the old key with the new certificate.
	copyFile(t, lead.KeyFile, lead.KeyFile+".new")
	if err := os.WriteFile(lead.KeyFile, oldKey, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := lead.Reload(); err != nil {
		t.Fatal(err)
	}
	want := `--tls-key \"` + lead.KeyFile + `\" does not go with --tls-cert \"` + lead.CertFile + `\"`
	harness.Eventually(t, 20*time.Second, lead.ID+" logs the refused reload", func() (bool, string) {
		lg := lead.Log()
		return strings.Contains(lg, "reload refused") && strings.Contains(lg, want), lastLine(lg)
	})
	if !lead.Alive() {
		t.Fatalf("%s exited on a SIGHUP with a bad key", lead.ID)
	}
	if got := wireFingerprint(t, l.tp, c, lead); got != newFile {
		t.Errorf("after a refused reload %s's API presents %s, want the certificate in use before, %s", lead.ID, got, newFile)
	}
	c.MustCLI(lead, "", "-A", "-t", "10.0.0.9:82", "-s", "rr")
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// fileFingerprint is the SHA-256 of the first certificate in a PEM file.
func fileFingerprint(t *testing.T, file string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatalf("%s: no PEM block", file)
	}
	sum := sha256.Sum256(blk.Bytes)
	return hex.EncodeToString(sum[:])
}

// wireFingerprint is the SHA-256 of the certificate n's API presents to a
// new TLS handshake from the client's namespace, verified against the
// cluster CA.
func wireFingerprint(t *testing.T, tp *topo.Topology, c *harness.Cluster, n *harness.Node) string {
	t.Helper()
	var fp string
	// The socket is made in the client's namespace.
	err := harness.InNamespace(tp.NS(topo.Client), func() error {
		d := &net.Dialer{Timeout: 10 * time.Second}
		conn, err := tls.DialWithDialer(d, "tcp", n.APIAddr, c.ClientTLS())
		if err != nil {
			return err
		}
		defer conn.Close()
		sum := sha256.Sum256(conn.ConnectionState().PeerCertificates[0].Raw)
		fp = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatalf("TLS handshake with %s's API from %s: %v", n.ID, topo.Client, err)
	}
	return fp
}
