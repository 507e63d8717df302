package check

import (
	"bytes"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/skip"
)

// The new checkers against real servers of their protocols, from Debian's
// packages (.ci/run installs them): OpenSMTPD for SMTP and a 220 banner,
// vsftpd for FTP's banner and as a wrong answer to SMTP, openssl's
// s_server for TLS.

// daemon starts a server in the foreground, in its own process group,
// which the test's cleanup ends (SIGTERM, then SIGKILL) and awaits.
func daemon(t *testing.T, argv ...string) *bytes.Buffer {
	t.Helper()
	if _, err := exec.LookPath(argv[0]); err != nil {
		skip.Nowf(t, "no %s: install Debian's package (.ci/run does)", argv[0])
	}
	if os.Geteuid() != 0 {
		skip.Nowf(t, "%s needs root", argv[0])
	}
	var out bytes.Buffer
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("%s said:\n%s", argv[0], out.String())
		}
	})
	return &out
}

// untilOK checks until the server is up: it starts in the background.
func untilOK(t *testing.T, ch Checker, target netip.AddrPort) Result {
	t.Helper()
	var r Result
	harness.Eventually(t, 15*time.Second, "the server answering", func() (bool, string) {
		r = check(t, ch, target, 2*time.Second)
		return r.OK, r.Detail
	})
	return r
}

func writeConf(t *testing.T, name, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestRealSMTPServer(t *testing.T) {
	target := netip.MustParseAddrPort(harness.FreeAddr(t))
	conf := writeConf(t, "smtpd.conf", fmt.Sprintf("listen on %s port %d\naction \"local\" mbox\nmatch from local for local action \"local\"\n", target.Addr(), target.Port()))
	daemon(t, "/usr/sbin/smtpd", "-d", "-f", conf)
	r := untilOK(t, build(t, fsm.HealthCheck{Type: "smtp", Helo: "director1.example.com"}), target)
	if r.Detail != "SMTP 220, EHLO 250" {
		t.Errorf("detail %q, want SMTP 220, EHLO 250", r.Detail)
	}
	t.Logf("smtp check of OpenSMTPD: %+v", r)
	r = check(t, build(t, fsm.HealthCheck{Type: "tcp", Expect: `^220[ -]`}), target, 2*time.Second)
	wantOK(t, r)
	t.Logf("banner check of OpenSMTPD: %s", r.Detail)
	wantFail(t, check(t, build(t, fsm.HealthCheck{Type: "tcp", Expect: `^\+OK`}), target, time.Second), "answer does not match: \"220 ")
	wantFail(t, check(t, build(t, fsm.HealthCheck{Type: "smtp"}), closedTCPPort(t), 2*time.Second), "connection refused")
}

func TestRealFTPServer(t *testing.T) {
	target := netip.MustParseAddrPort(harness.FreeAddr(t))
	empty := t.TempDir()
	conf := writeConf(t, "vsftpd.conf", fmt.Sprintf("listen=YES\nlisten_ipv6=NO\nlisten_address=%s\nlisten_port=%d\nbackground=NO\n"+
		"anonymous_enable=YES\nanon_root=%s\nlocal_enable=NO\nsecure_chroot_dir=%s\nseccomp_sandbox=NO\n", target.Addr(), target.Port(), empty, empty))
	daemon(t, "/usr/sbin/vsftpd", conf)
	r := untilOK(t, build(t, fsm.HealthCheck{Type: "tcp", Expect: `^220[ -]`}), target)
	t.Logf("banner check of vsftpd: %s", r.Detail)
	// An FTP server is a wrong answer to SMTP: it greets with 220, then
	// refuses EHLO and HELO.
	r = check(t, build(t, fsm.HealthCheck{Type: "smtp"}), target, 2*time.Second)
	wantFail(t, r, "HELO: 530")
	t.Logf("smtp check of vsftpd: %s", r.Detail)
	wantFail(t, check(t, build(t, fsm.HealthCheck{Type: "tcp", Expect: `^\* OK`}), target, time.Second), "answer does not match: \"220 ")
}

func TestRealTLSServer(t *testing.T) {
	ca := newTestCA(t, "s_server CA")
	now := time.Now()
	leaf := ca.leaf(t, now.Add(-time.Hour), now.Add(40*24*time.Hour))
	dir := t.TempDir()
	certPEM, keyPEM := pemPair(t, leaf)
	os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600)
	target := netip.MustParseAddrPort(harness.FreeAddr(t))
	if _, err := exec.LookPath("openssl"); err != nil {
		skip.Now(t, "no openssl: install Debian's package")
	}
	var out bytes.Buffer
	cmd := exec.Command("openssl", "s_server", "-accept", target.String(), "-cert", filepath.Join(dir, "cert.pem"),
		"-key", filepath.Join(dir, "key.pem"), "-quiet")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	caFile := ca.file(t)
	r := untilOK(t, build(t, fsm.HealthCheck{Type: "tls", SNI: "health.example.com", CAFile: caFile, ExpiryMarginS: 30 * 86400}), target)
	t.Logf("tls check of openssl s_server: %s", r.Detail)
	wantFail(t, check(t, build(t, fsm.HealthCheck{Type: "tls", SNI: "health.example.com", CAFile: caFile, ExpiryMarginS: 60 * 86400}), target, 2*time.Second),
		"certificate expires in 39d (margin 60d)")
	wantFail(t, check(t, build(t, fsm.HealthCheck{Type: "tls", SNI: "www.example.org", CAFile: caFile}), target, 2*time.Second), "certificate error")
}
