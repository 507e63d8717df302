// Package harness starts real ipvsmand processes and runs the real ipvsman
// CLI against them, for the multi-process tests (loopback, network
// namespaces and the lab). Production code never imports it.
package harness

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// Binaries builds bin/ipvsmand and bin/ipvsman once per test process, with
// the race detector when the test binary has it.
//
// With IPVSMAN_BIN_DIR set (the lab: building under emulation is slow), the
// binaries already built there are used instead.
func Binaries(t testing.TB) (daemon, cli string) {
	t.Helper()
	if dir := os.Getenv("IPVSMAN_BIN_DIR"); dir != "" {
		return filepath.Join(dir, "ipvsmand"), filepath.Join(dir, "ipvsman")
	}
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "ipvsman-bin-")
		if buildErr != nil {
			return
		}
		root, err := repoRoot()
		if err != nil {
			buildErr = err
			return
		}
		for _, name := range []string{"ipvsmand", "ipvsman"} {
			args := []string{"build", "-o", filepath.Join(buildDir, name)}
			if raceEnabled {
				args = append(args, "-race")
			}
			cmd := exec.Command("go", append(args, "./cmd/"+name)...)
			cmd.Dir = root
			if out, err := cmd.CombinedOutput(); err != nil {
				buildErr = fmt.Errorf("go build %s: %w\n%s", name, err, out)
				return
			}
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return filepath.Join(buildDir, "ipvsmand"), filepath.Join(buildDir, "ipvsman")
}

func repoRoot() (string, error) {
	_, file, _, _ := runtime.Caller(0)
	dir := filepath.Dir(file)
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", fmt.Errorf("go.mod not found above %s", file)
		}
		dir = parent
	}
}

// handedOut holds the ports FreeAddr gave: a cluster's addresses are all
// picked before any node binds, and the kernel may offer a just-closed port
// again.
var handedOut = struct {
	sync.Mutex
	ports map[string]bool
}{ports: map[string]bool{}}

// FreeAddr returns a loopback address with a port the kernel just had free
// and this process has not handed out before.
func FreeAddr(t testing.TB) string {
	t.Helper()
	handedOut.Lock()
	defer handedOut.Unlock()
	for range 100 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if !handedOut.ports[addr] {
			handedOut.ports[addr] = true
			return addr
		}
	}
	t.Fatal("FreeAddr: no port the kernel offered was new in 100 tries")
	return ""
}

// Eventually polls cond until it reports true or the deadline passes; the
// last reason is in the failure message.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	wait := 20 * time.Millisecond
	var why string
	for {
		ok, reason := cond()
		if ok {
			return
		}
		why = reason
		if time.Now().After(deadline) {
			t.Fatalf("%s: not reached within %s: %s", what, timeout, why)
		}
		time.Sleep(wait)
		wait = min(wait*2, 250*time.Millisecond)
	}
}

// Cluster is a set of ipvsmand processes sharing a token.
//
// A cluster runs TLS once any node of it has a non-loopback address (AddAt
// in a namespace: ipvsmand refuses to run there without it) or UseTLS was
// called: every node started from then on gets a certificate of the
// cluster's CA, made with `ipvsman tls init` in TLSDir, and the CLI gets
// --ca.
type Cluster struct {
	t         testing.TB
	Dir       string
	Daemon    string
	CLIBin    string
	TokenFile string
	Nodes     map[string]*Node
	CLINetNS  string // network namespace the CLI runs in ("" = this one)
	// TLSDir holds the CA (ca.pem, ca-key.pem) and a NAME.pem and
	// NAME-key.pem per node once the cluster runs TLS; "" before.
	TLSDir string
}

// Node is one ipvsmand process and its fixed addresses.
type Node struct {
	c  *Cluster
	ID string
	// Name is the node's key in Cluster.Nodes and the name of its log
	// and data dir: its ID, unless a test runs a second process under one
	// ID (AddNamed).
	Name     string
	RaftAddr string
	APIAddr  string
	// GossipAddr is the memberlist address: a free loopback port for Add,
	// the Raft host's port 7946 for AddAt.
	GossipAddr string
	DataDir    string
	NetNS      string   // network namespace to run in ("" = this one)
	IPVS       string   // --ipvs value; "off" unless set
	Args       []string // extra flags, kept across restarts
	Env        []string // extra environment (NAME=value), kept across restarts
	Daemon     string   // ipvsmand binary to run instead of the cluster's (a node upgraded in place); kept across restarts
	// CertFile, KeyFile and CAFile are the node's --tls-* files: made on
	// its first start in a TLS cluster, unless a test set them (a node
	// with a certificate of another CA).
	CertFile, KeyFile, CAFile string
	// Plain starts the node without --tls-* flags even in a TLS cluster
	// (a test of ipvsmand's refusal).
	Plain   bool
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has ended; exitErr is then set
	exitErr error
	logFile *os.File
}

// NewCluster prepares a directory and a token; nodes are added with Add.
func NewCluster(t testing.TB) *Cluster {
	t.Helper()
	d, cli := Binaries(t)
	dir := t.TempDir()
	b := make([]byte, 24)
	rand.Read(b)
	tf := filepath.Join(dir, "token")
	if err := os.WriteFile(tf, []byte(hex.EncodeToString(b)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &Cluster{t: t, Dir: dir, Daemon: d, CLIBin: cli, TokenFile: tf, Nodes: map[string]*Node{}}
	t.Cleanup(c.killAll)
	return c
}

// Add defines a node with fresh loopback ports; Start runs it.
func (c *Cluster) Add(id string, args ...string) *Node {
	return c.AddNamed(id, id, args...)
}

// AddNamed is Add for a process known to the test as name but started
// with --node-id id: a second process claiming a node's ID (its own log
// NAME.log and data dir), or a node's replacement beside the dead one.
func (c *Cluster) AddNamed(name, id string, args ...string) *Node {
	if _, ok := c.Nodes[name]; ok {
		c.t.Fatalf("harness: a node named %s exists", name)
	}
	n := c.node(id, FreeAddr(c.t), FreeAddr(c.t), "", args...)
	n.Name, n.DataDir, n.GossipAddr = name, filepath.Join(c.Dir, name), FreeAddr(c.t)
	c.Nodes[name] = n
	return n
}

// AddAt defines a node with given addresses inside network namespace netns.
func (c *Cluster) AddAt(id, raftAddr, apiAddr, netns string, args ...string) *Node {
	n := c.node(id, raftAddr, apiAddr, netns, args...)
	c.Nodes[id] = n
	return n
}

// node is a node of c named by its ID, not yet in c.Nodes.
func (c *Cluster) node(id, raftAddr, apiAddr, netns string, args ...string) *Node {
	host, _, _ := net.SplitHostPort(raftAddr)
	return &Node{c: c, ID: id, Name: id, RaftAddr: raftAddr, APIAddr: apiAddr, GossipAddr: net.JoinHostPort(host, "7946"), DataDir: filepath.Join(c.Dir, id), NetNS: netns, IPVS: "off", Args: args}
}

// UseTLS makes a loopback cluster run TLS like one in namespaces.
func (c *Cluster) UseTLS() {
	c.t.Helper()
	c.initTLS()
}

// CAFile is the cluster CA's certificate, or "" when it runs without TLS.
func (c *Cluster) CAFile() string {
	if c.TLSDir == "" {
		return ""
	}
	return filepath.Join(c.TLSDir, "ca.pem")
}

func (c *Cluster) initTLS() {
	if c.TLSDir == "" {
		c.TLSDir = filepath.Join(c.Dir, "tls")
	}
}

// TLSInit runs `ipvsman tls init --dir dir --node NAME=IP...` (the CLI
// binary, as an operator would), failing the test on an error.
func (c *Cluster) TLSInit(dir string, nodes ...string) string {
	c.t.Helper()
	args := []string{"tls", "init", "--dir", dir}
	for _, n := range nodes {
		args = append(args, "--node", n)
	}
	out, err := exec.Command(c.CLIBin, args...).CombinedOutput()
	if err != nil {
		c.t.Fatalf("ipvsman %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// isLoopback reports whether addr's host is a loopback IP.
func isLoopback(addr string) bool {
	host, _, _ := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	return host == "localhost" || ip != nil && ip.IsLoopback()
}

// tlsArgs gives the node its --tls-* flags when the cluster runs TLS,
// making its certificate (for its Raft and API addresses) the first time.
func (n *Node) tlsArgs() []string {
	c := n.c
	if n.Plain || c.TLSDir == "" && isLoopback(n.RaftAddr) && isLoopback(n.APIAddr) {
		return nil
	}
	c.initTLS()
	if n.CertFile == "" {
		cert, key := filepath.Join(c.TLSDir, n.ID+".pem"), filepath.Join(c.TLSDir, n.ID+"-key.pem")
		if _, err := os.Stat(cert); err != nil {
			var ips []string
			for _, a := range []string{n.RaftAddr, n.APIAddr} {
				host, _, _ := net.SplitHostPort(a)
				if !slices.Contains(ips, host) {
					ips = append(ips, host)
				}
			}
			c.TLSInit(c.TLSDir, n.ID+"="+strings.Join(ips, ","))
		}
		n.CertFile, n.KeyFile = cert, key
	}
	if n.CAFile == "" {
		n.CAFile = c.CAFile()
	}
	return []string{"--tls-cert", n.CertFile, "--tls-key", n.KeyFile, "--tls-ca", n.CAFile}
}

// inNetNS prefixes a command with `ip netns exec NS` when ns is set; ip
// execs the command, so the PID is the command's own.
func inNetNS(ns, bin string, args ...string) (string, []string) {
	if ns == "" {
		return bin, args
	}
	return "ip", append([]string{"netns", "exec", ns, bin}, args...)
}

// startedLine is what ipvsmand logs once its API socket is listening.
const startedLine = `"msg":"ipvsmand started"`

// Start runs the node's daemon with its addresses, data dir and extra args,
// and returns once its API accepts connections or the process has ended (a
// test expecting a failed start collects it with Wait).
func (n *Node) Start(extra ...string) {
	n.c.t.Helper()
	if n.cmd != nil {
		n.c.t.Fatalf("node %s already running", n.ID)
	}
	args := []string{
		"--node-id", n.ID, "--data-dir", n.DataDir, "--raft-addr", n.RaftAddr, "--api-addr", n.APIAddr, "--gossip-addr", n.GossipAddr,
		"--token-file", n.c.TokenFile, "--ipvs=" + n.IPVS, "--log-format", "json",
	}
	if n.NetNS == "" {
		// Nodes sharing the test's namespace must not put VIPs on its
		// interfaces.
		args = append(args, "--vips=off")
	}
	args = append(args, n.tlsArgs()...)
	args = append(append(args, n.Args...), extra...)
	f, err := os.OpenFile(n.LogFile(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		n.c.t.Fatal(err)
	}
	from, _ := f.Seek(0, io.SeekEnd)
	daemon := n.c.Daemon
	if n.Daemon != "" {
		daemon = n.Daemon
	}
	bin, args := inNetNS(n.NetNS, daemon, args...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if len(n.Env) > 0 {
		cmd.Env = append(os.Environ(), n.Env...)
	}
	if err := cmd.Start(); err != nil {
		n.c.t.Fatal(err)
	}
	n.cmd, n.logFile, n.exited = cmd, f, make(chan struct{})
	go func() { n.exitErr = cmd.Wait(); close(n.exited) }()
	Eventually(n.c.t, 60*time.Second, "node "+n.ID+" listening", func() (bool, string) {
		select {
		case <-n.exited:
			return true, ""
		default:
		}
		b, _ := os.ReadFile(f.Name())
		if int64(len(b)) > from && strings.Contains(string(b[from:]), startedLine) {
			return true, ""
		}
		return false, "no " + startedLine + " in its log yet"
	})
}

// Running reports whether the daemon process is alive.
func (n *Node) Running() bool { return n.cmd != nil }

// Kill sends SIGKILL, as a crash would, and waits for the process to end.
func (n *Node) Kill() { n.signal(syscall.SIGKILL) }

// Pause stops the process (SIGSTOP) without ending it, as a stall would:
// nothing of the daemon runs, while what it put in the kernel (addresses)
// stays and keeps answering. Resume lets it run on.
func (n *Node) Pause() {
	if n.cmd != nil {
		_ = n.cmd.Process.Signal(syscall.SIGSTOP)
	}
}

// Resume undoes Pause (SIGCONT); harmless on a node that is not paused.
func (n *Node) Resume() {
	if n.cmd != nil {
		_ = n.cmd.Process.Signal(syscall.SIGCONT)
	}
}

// Stop sends SIGTERM and waits for a clean exit.
func (n *Node) Stop() error { return n.signal(syscall.SIGTERM) }

func (n *Node) signal(sig syscall.Signal) error {
	if n.cmd == nil {
		return nil
	}
	_ = n.cmd.Process.Signal(sig)
	var err error
	select {
	case <-n.exited:
		err = n.exitErr
	case <-time.After(30 * time.Second):
		// SIGQUIT first: Go prints every goroutine's stack to the log,
		// which tells where the shutdown hung.
		_ = n.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-n.exited:
		case <-time.After(5 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.exited
		}
		err = fmt.Errorf("node %s did not exit within 30s of %s (its goroutines are in its log, after SIGQUIT): %v", n.ID, sig, n.exitErr)
	}
	n.cmd = nil
	n.logFile.Close()
	return err
}

// Wait waits for the daemon to exit by itself and returns its exit error.
func (n *Node) Wait(timeout time.Duration) error {
	select {
	case <-n.exited:
		n.cmd = nil
		n.logFile.Close()
		return n.exitErr
	case <-time.After(timeout):
		return fmt.Errorf("node %s still running after %s", n.ID, timeout)
	}
}

// Log returns what the daemon wrote so far.
func (n *Node) Log() string {
	b, _ := os.ReadFile(n.LogFile())
	return string(b)
}

// LogFile is where the daemon's output goes.
func (n *Node) LogFile() string { return filepath.Join(n.c.Dir, n.Name+".log") }

func (c *Cluster) killAll() {
	for _, n := range c.Nodes {
		if n.Running() {
			n.Kill()
		}
	}
	if c.t.Failed() {
		for _, n := range c.Nodes {
			c.t.Logf("---- log of %s ----\n%s", n.Name, tail(n.Log(), 40))
		}
	}
}

func tail(s string, lines int) string {
	l := strings.Split(s, "\n")
	if len(l) > lines {
		l = l[len(l)-lines:]
	}
	return strings.Join(l, "\n")
}

// Result of one CLI run.
type Result struct {
	Stdout, Stderr string
	Err            error // non-nil when the exit status was not 0
}

// CLIFlags are the flags that point ipvsman at node's API: --api,
// --token-file and, in a TLS cluster, --ca.
func (c *Cluster) CLIFlags(node *Node) []string {
	f := []string{"--api", node.APIAddr, "--token-file", c.TokenFile}
	if ca := c.CAFile(); ca != "" {
		f = append(f, "--ca", ca)
	}
	return f
}

// Token is the cluster token.
func (c *Cluster) Token() string {
	b, err := os.ReadFile(c.TokenFile)
	if err != nil {
		c.t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

// BaseURL is node's API address with its scheme: https in a TLS cluster.
func (c *Cluster) BaseURL(n *Node) string {
	if c.TLSDir != "" {
		return "https://" + n.APIAddr
	}
	return "http://" + n.APIAddr
}

// ClientTLS is what a test's own HTTP client needs to reach the nodes'
// APIs (with BaseURL): the cluster CA as its roots. nil without TLS.
func (c *Cluster) ClientTLS() *tls.Config {
	ca := c.CAFile()
	if ca == "" {
		return nil
	}
	b, err := os.ReadFile(ca)
	if err != nil {
		c.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		c.t.Fatalf("%s: no certificate", ca)
	}
	return &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
}

// Curl is a curl command line that fetches path from node's API: with the
// cluster CA in a TLS cluster, and with the cluster token when token is
// set. opts go before the URL.
func (c *Cluster) Curl(n *Node, path string, token bool, opts ...string) []string {
	args := append([]string{"curl"}, opts...)
	if ca := c.CAFile(); ca != "" {
		args = append(args, "--cacert", ca)
	}
	if token {
		args = append(args, "-H", "Authorization: Bearer "+c.Token())
	}
	return append(args, c.BaseURL(n)+path)
}

// CLI runs ipvsman against node's API with the cluster token.
func (c *Cluster) CLI(node *Node, stdin string, args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	full := append(c.CLIFlags(node), args...)
	bin, full := inNetNS(c.CLINetNS, c.CLIBin, full...)
	cmd := exec.CommandContext(ctx, bin, full...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Stdin = strings.NewReader(stdin)
	err := cmd.Run()
	return Result{Stdout: out.String(), Stderr: errb.String(), Err: err}
}

// MustCLI is CLI that fails the test on a non-zero exit.
func (c *Cluster) MustCLI(node *Node, stdin string, args ...string) string {
	c.t.Helper()
	r := c.CLI(node, stdin, args...)
	if r.Err != nil {
		c.t.Fatalf("ipvsman %s (via %s): %v\nstdout: %s\nstderr: %s", strings.Join(args, " "), node.ID, r.Err, r.Stdout, r.Stderr)
	}
	return r.Stdout
}

// CheckDir makes a directory for ipvsmand --check-dir holding programs
// (name -> content, written 0755) and returns its path; give it to nodes
// as "--check-dir", dir. ipvsmand runs exec checks' programs only from
// there, and only if it and every directory above it are root's and
// writable by no one else: a test's temporary directory is, as the tests
// run as root.
func CheckDir(t testing.TB, programs map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range programs {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o755); err != nil { // past the umask
			t.Fatal(err)
		}
	}
	return dir
}
