// Tests of the real binaries on loopback: three ipvsmand --ipvs=off
// processes and the ipvsman CLI. No root, no IPVS.
package host

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/director"
	"github.com/ipvsman/ipvsman/test/harness"
)

func status(c *harness.Cluster, n *harness.Node) (api.NodeStatus, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	b, _ := os.ReadFile(c.TokenFile)
	return (&api.Client{Base: n.APIAddr, Token: strings.TrimSpace(string(b))}).Status(ctx)
}

// leader waits until one of nodes is leader and all others that run agree.
func leader(t *testing.T, c *harness.Cluster, nodes ...*harness.Node) *harness.Node {
	t.Helper()
	var found *harness.Node
	harness.Eventually(t, 20*time.Second, "a leader agreed by all running nodes", func() (bool, string) {
		found = nil
		ids := map[string]bool{}
		for _, n := range nodes {
			st, err := status(c, n)
			if err != nil {
				return false, err.Error()
			}
			ids[st.LeaderID] = true
			if st.State == "Leader" {
				found = n
			}
		}
		if found == nil || len(ids) != 1 {
			return false, fmt.Sprintf("leaders seen: %v", ids)
		}
		return true, ""
	})
	return found
}

// sameListing waits until every node lists want (or, with want empty, the
// same text as the first node) and returns it.
func sameListing(t *testing.T, c *harness.Cluster, want string, nodes ...*harness.Node) string {
	t.Helper()
	harness.Eventually(t, 20*time.Second, "identical ipvsman -L -n on every node", func() (bool, string) {
		ref := want
		for _, n := range nodes {
			r := c.CLI(n, "", "-L", "-n")
			if r.Err != nil {
				return false, n.ID + ": " + r.Stderr
			}
			if r.Stderr != "" { // a stale read (node just started): only a consistent one counts
				return false, n.ID + ": " + r.Stderr
			}
			if ref == "" {
				ref = r.Stdout
			}
			if r.Stdout != ref {
				return false, fmt.Sprintf("%s lists:\n%s\nwant:\n%s", n.ID, r.Stdout, ref)
			}
		}
		want = ref
		return true, ""
	})
	return want
}

var setup = [][]string{
	{"-A", "-t", "193.123.45.12:23", "-s", "rr"},
	{"-a", "-t", "193.123.45.12:23", "-r", "10.3.0.10", "-g"},
	{"-a", "-t", "193.123.45.12:23", "-r", "10.3.0.11", "-g"},
	{"-A", "-t", "193.123.45.12:80", "-s", "wlc", "-p", "600", "-M", "255.255.255.0"},
	{"-a", "-t", "193.123.45.12:80", "-r", "10.3.0.10:8080", "-m", "-w", "3"},
	{"-a", "-t", "193.123.45.12:80", "-r", "10.3.0.11:8080", "-m", "-w", "2", "-x", "100", "-y", "10"},
	{"-A", "-u", "[2001:db8::53]:53", "-s", "sh", "-b", "sh-port"},
	{"-a", "-u", "[2001:db8::53]:53", "-r", "2001:db8::10", "-i"},
	{"-A", "-f", "7", "-s", "mh", "-b", "mh-fallback,mh-port"},
	{"-a", "-f", "7", "-r", "10.3.0.12", "-g", "-w", "5"},
	{"-e", "-t", "193.123.45.12:80", "-r", "10.3.0.10:8080", "-m", "-w", "4"},
}

func TestThreeNodeClusterOnLoopback(t *testing.T) {
	c := harness.NewCluster(t)
	n1, n2, n3 := c.Add("n1"), c.Add("n2"), c.Add("n3")
	all := []*harness.Node{n1, n2, n3}
	n1.Start("--bootstrap")
	leader(t, c, n1)
	n2.Start()
	n3.Start()
	// Join through different members: n2 through the leader, n3 through the follower n2.
	out := c.MustCLI(n2, "", "cluster", "join", n1.APIAddr)
	if !strings.Contains(out, "node n2 joined") {
		t.Fatalf("join output: %q", out)
	}
	c.MustCLI(n3, "", "cluster", "join", n2.APIAddr)
	lead := leader(t, c, all...)
	harness.Eventually(t, 10*time.Second, "one leader, two followers", func() (bool, string) {
		out := c.MustCLI(n3, "", "cluster", "status")
		return strings.Count(out, "Leader") == 1 && strings.Count(out, "Follower") == 2, out
	})
	c.Voters(t, n3, all...)

	follower := n2
	if lead == n2 {
		follower = n3
	}
	for _, args := range setup {
		c.MustCLI(follower, "", args...)
	}
	listing := sameListing(t, c, "", all...)
	for _, want := range []string{
		"TCP  193.123.45.12:80 wlc persistent 600 mask 255.255.255.0",
		"  -> 10.3.0.10:8080               Masq    4      0          0",
		"UDP  [2001:db8::53]:53 sh (sh-port)",
		"FWM  7 mh (mh-fallback,mh-port)",
	} {
		if !strings.Contains(listing, want) {
			t.Errorf("listing lacks %q:\n%s", want, listing)
		}
	}

	t.Run("bad input changes nothing", func(t *testing.T) {
		hist := c.MustCLI(n1, "", "history")
		for _, tc := range []struct {
			args []string
			want string
		}{
			{[]string{"-A", "-t", "193.123.45.12:80", "-s", "rr"}, "service tcp:193.123.45.12:80: already exists"},
			{[]string{"-A", "-t", "10.0.0.300:80"}, "10.0.0.300"},
			{[]string{"-A", "-t", "10.0.0.1:80", "-s", "Fastest"}, `scheduler "Fastest": want lower-case letters`},
			{[]string{"-a", "-t", "10.9.9.9:80", "-r", "10.0.0.1"}, "service tcp:10.9.9.9:80: no such service"},
			{[]string{"-a", "-t", "193.123.45.12:80", "-r", "10.3.0.20", "-w", "70000"}, "weight 70000: out of range"},
		} {
			r := c.CLI(follower, "", tc.args...)
			if r.Err == nil || !strings.Contains(r.Stderr, tc.want) {
				t.Errorf("ipvsman %v: err=%v stderr=%q, want non-zero exit naming %q", tc.args, r.Err, r.Stderr, tc.want)
			}
		}
		bad := filepath.Join(c.Dir, "bad.topo")
		os.WriteFile(bad, []byte("Web:t:10.0.0.1:80 [\"web1-3:10.0.0.10:80\"]\n"), 0o600)
		if r := c.CLI(follower, "", "apply", "-f", bad); r.Err == nil || !strings.Contains(r.Stderr, "line 1") {
			t.Errorf("bad topology line: err=%v stderr=%q", r.Err, r.Stderr)
		}
		sameListing(t, c, listing, all...)
		if h := c.MustCLI(n1, "", "history"); h != hist {
			t.Errorf("history changed after rejected commands:\n%s", h)
		}
	})

	t.Run("timeouts", func(t *testing.T) {
		c.MustCLI(follower, "", "--set", "901", "0", "301")
		if got := c.MustCLI(lead, "", "-L", "--timeout"); got != "Timeout (tcp tcpfin udp): 901 120 301\n" {
			t.Fatalf("-L --timeout after --set 901 0 301: %q", got)
		}
	})

	t.Run("server suspend and resume", func(t *testing.T) {
		out := c.MustCLI(follower, "", "server", "suspend", "-t", "193.123.45.12:80", "-r", "10.3.0.11:8080")
		if !strings.Contains(out, "masq weight=2 x=100 y=10 suspended") {
			t.Fatalf("suspend output: %q", out)
		}
		if r := c.CLI(follower, "", "server", "drain", "-t", "193.123.45.12:80", "-r", "10.9.9.9"); r.Err == nil || !strings.Contains(r.Stderr, "10.9.9.9:80 of service tcp:193.123.45.12:80: no such real server") {
			t.Fatalf("drain of a stranger: %v %q", r.Err, r.Stderr)
		}
		c.MustCLI(lead, "", "--api", follower.APIAddr, "server", "resume", "-t", "193.123.45.12:80", "-r", "10.3.0.11:8080")
		sameListing(t, c, listing, all...)
	})

	t.Run("save, clear, restore and import round-trip", func(t *testing.T) {
		saved := c.MustCLI(follower, "", "-S", "-n")
		c.MustCLI(follower, "", "-C")
		if l := sameListing(t, c, "", all...); strings.Contains(l, "TCP") {
			t.Fatalf("-C left services:\n%s", l)
		}
		c.MustCLI(follower, saved, "-R")
		sameListing(t, c, listing, all...)
		if again := c.MustCLI(lead, "", "-S", "-n"); again != saved {
			t.Fatalf("-S after -R differs:\n%s\nwant:\n%s", again, saved)
		}
		// The migration path: ipvsman import of -S output, after a clear.
		c.MustCLI(follower, "", "-C")
		out := c.MustCLI(follower, saved, "import", "--from", "ipvsadm", "--strict", "-")
		sameListing(t, c, listing, all...)
		if again := c.MustCLI(lead, "", "-S", "-n"); again != saved {
			t.Fatalf("-S after import differs:\n%s\nwant:\n%s\nimport printed:\n%s", again, saved, out)
		}
	})

	t.Run("leader killed: new leader, writes continue, restart catches up", func(t *testing.T) {
		lead := leader(t, c, all...)
		lead.Kill()
		var rest []*harness.Node
		for _, n := range all {
			if n != lead {
				rest = append(rest, n)
			}
		}
		nl := leader(t, c, rest...)
		if nl == lead {
			t.Fatalf("killed node still leader")
		}
		c.MustCLI(rest[0], "", "-a", "-t", "193.123.45.12:23", "-r", "10.3.0.13", "-g")
		after := sameListing(t, c, "", rest...)
		if !strings.Contains(after, "10.3.0.13:23") {
			t.Fatalf("write after failover missing:\n%s", after)
		}
		lead.Start()
		sameListing(t, c, after, all...)
		listing = after
	})

	t.Run("whole cluster restart keeps state and history", func(t *testing.T) {
		hist := c.MustCLI(n1, "", "history")
		// The leader goes first: SIGTERM must hand leadership over before it exits.
		lead := leader(t, c, all...)
		if err := lead.Stop(); err != nil {
			t.Errorf("stop %s: %v", lead.ID, err)
		}
		if !strings.Contains(lead.Log(), "leadership handed over before shutdown") {
			t.Errorf("leader %s stopped without handing over:\n%s", lead.ID, lead.Log())
		}
		for _, n := range all {
			if err := n.Stop(); err != nil {
				t.Errorf("stop %s: %v", n.ID, err)
			}
		}
		for _, n := range all {
			n.Start()
		}
		leader(t, c, all...)
		sameListing(t, c, listing, all...)
		harness.Eventually(t, 10*time.Second, "history intact", func() (bool, string) {
			h := c.MustCLI(n3, "", "history")
			return h == hist, h
		})
	})

	t.Run("topology file, history and rollback", func(t *testing.T) {
		topo := filepath.Join(c.Dir, "classic.topo")
		os.WriteFile(topo, []byte(`MyService:t:193.123.45.12:80 ["Intel_web1-10:10.3.0.10+:8080","AMD_spare5+:10.4.6.24-28:80"] (-m -swrr)`+"\n"), 0o600)
		dry := c.MustCLI(n2, "", "apply", "-f", topo, "--dry-run")
		if !strings.Contains(dry, "dry run:") || !strings.Contains(dry, "+ real server tcp:193.123.45.12:80 -> 10.4.6.28:80 (AMD_spare9)") {
			t.Fatalf("dry run output:\n%s", dry)
		}
		sameListing(t, c, listing, all...)
		applied := c.MustCLI(n2, "", "apply", "-f", topo)
		if !strings.Contains(applied, "committed as version") {
			t.Fatalf("apply output:\n%s", applied)
		}
		l := sameListing(t, c, "", all...)
		if got := strings.Count(l, " Masq "); got != 15 {
			t.Fatalf("topology gave %d real servers, want 15:\n%s", got, l)
		}
		hist := c.MustCLI(n3, "", "history", "--json")
		if !strings.Contains(hist, "apply classic.topo") {
			t.Fatalf("history lacks the apply:\n%s", hist)
		}
		items, err := historyVersions(c, n3)
		if err != nil {
			t.Fatal(err)
		}
		prev := items[len(items)-2]
		out := c.MustCLI(n1, "", "rollback", fmt.Sprint(prev))
		if !strings.Contains(out, "committed as version") {
			t.Fatalf("rollback output:\n%s", out)
		}
		sameListing(t, c, listing, all...)
	})
}

func TestTransferAndLeave(t *testing.T) {
	c := harness.NewCluster(t)
	n1, n2, n3 := c.Add("n1"), c.Add("n2"), c.Add("n3")
	n1.Start("--bootstrap")
	leader(t, c, n1)
	n2.Start("--join", n1.APIAddr)
	n3.Start("--join", n1.APIAddr)
	all := []*harness.Node{n1, n2, n3}
	c.Voters(t, n1, all...)
	leader(t, c, all...)

	out := c.MustCLI(n1, "", "cluster", "transfer", "n3")
	if !strings.Contains(out, "leader is now n3") {
		t.Fatalf("transfer output: %q", out)
	}
	if got := leader(t, c, all...); got != n3 {
		t.Fatalf("leader after transfer to n3 is %s", got.ID)
	}
	if r := c.CLI(n1, "", "cluster", "transfer", "n9"); r.Err == nil || !strings.Contains(r.Stderr, `node "n9": not a member`) {
		t.Fatalf("transfer to a stranger: err=%v stderr=%q", r.Err, r.Stderr)
	}

	// The leader leaves: it hands over first, then the new leader removes it.
	c.MustCLI(n1, "", "cluster", "leave", "n3")
	harness.Eventually(t, 20*time.Second, "n3 out of the configuration", func() (bool, string) {
		st, err := status(c, n1)
		if err != nil {
			return false, err.Error()
		}
		for _, s := range st.Servers {
			if s.ID == "n3" {
				return false, fmt.Sprint(st.Servers)
			}
		}
		return len(st.Servers) == 2, fmt.Sprint(st.Servers)
	})
	lead := leader(t, c, n1, n2)
	c.MustCLI(n2, "", "-A", "-u", "10.0.0.53:53", "-s", "rr")
	if l := c.MustCLI(lead, "", "-S", "-n"); l != "-A -u 10.0.0.53:53 -s rr\n" {
		t.Fatalf("write after leave: %q", l)
	}
}

func historyVersions(c *harness.Cluster, n *harness.Node) ([]uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, _ := os.ReadFile(c.TokenFile)
	items, err := (&api.Client{Base: n.APIAddr, Token: strings.TrimSpace(string(b))}).History(ctx)
	if err != nil {
		return nil, err
	}
	var vs []uint64
	for _, h := range items {
		vs = append(vs, h.Version)
	}
	return vs, nil
}

func TestWrongTokenIsRefused(t *testing.T) {
	c := harness.NewCluster(t)
	n1 := c.Add("n1")
	n1.Start("--bootstrap")
	leader(t, c, n1)
	cmd := exec.Command(c.CLIBin, "--api", n1.APIAddr, "--token", "not-the-cluster-token", "-A", "-t", "10.0.0.1:80")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "wrong cluster token") {
		t.Fatalf("write with a wrong token: err=%v out=%s", err, out)
	}
	if l := c.MustCLI(n1, "", "-S", "-n"); l != "" {
		t.Fatalf("refused write changed the model: %q", l)
	}
}

// TestIPVSOnNeedsAKernelWithIPVS: with --ipvs=on the daemon must refuse to
// start on a kernel without IPVS (this host's), and start where IPVS exists.
func TestIPVSOnNeedsAKernelWithIPVS(t *testing.T) {
	c := harness.NewCluster(t)
	n := c.Add("x")
	n.Start("--bootstrap", "--ipvs=on")
	if director.CheckKernel() == nil {
		leader(t, c, n) // the kernel has IPVS: the daemon must run
		return
	}
	err := n.Wait(20 * time.Second)
	var ee *exec.ExitError
	out := n.Log()
	if !errors.As(err, &ee) || !strings.Contains(out, "--ipvs=on: the kernel has no IPVS") || !strings.Contains(out, "--ipvs=off") {
		t.Fatalf("ipvsmand --ipvs=on on a kernel without IPVS: err=%v out=%s", err, out)
	}
}

// TestReadOnlyToken: a --read-token-file token reads through any node (a
// follower forwards it to the leader) and is refused every write.
func TestReadOnlyToken(t *testing.T) {
	c := harness.NewCluster(t)
	ro := filepath.Join(c.Dir, "read-token")
	if err := os.WriteFile(ro, []byte("read-only-token-0123456789\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	n1, n2 := c.Add("n1"), c.Add("n2")
	n1.Start("--bootstrap", "--read-token-file", ro)
	leader(t, c, n1)
	n2.Start("--join", n1.APIAddr, "--read-token-file", ro)
	c.Voters(t, n1, n1, n2)
	c.MustCLI(n1, "", "-A", "-t", "10.0.0.1:80", "-s", "rr")
	cli := func(args ...string) (string, error) {
		out, err := exec.Command(c.CLIBin, append([]string{"--api", n2.APIAddr, "--token-file", ro}, args...)...).CombinedOutput()
		return string(out), err
	}
	harness.Eventually(t, 10*time.Second, "reads with the read-only token through the follower", func() (bool, string) {
		out, err := cli("-S", "-n")
		if err != nil || out != "-A -t 10.0.0.1:80 -s rr\n" {
			return false, fmt.Sprintf("-S -n: %v %q", err, out)
		}
		out, err = cli("health") // forwarded to the leader with the caller's token
		return err == nil, fmt.Sprintf("health: %v %q", err, out)
	})
	for _, args := range [][]string{{"-A", "-t", "10.0.0.2:80"}, {"-D", "-t", "10.0.0.1:80"}, {"cluster", "transfer"}, {"server", "suspend", "-t", "10.0.0.1:80", "-r", "10.3.0.1"}} {
		out, err := cli(args...)
		if err == nil || !strings.Contains(out, "read-only token may not change anything") {
			t.Errorf("ipvsman %v with the read-only token: err=%v out=%s", args, err, out)
		}
	}
	if l := c.MustCLI(n1, "", "-S", "-n"); l != "-A -t 10.0.0.1:80 -s rr\n" {
		t.Fatalf("refused writes changed the model: %q", l)
	}
}
