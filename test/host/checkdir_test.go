package host

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/skip"
)

// TestExecChecksOnlyFromTheCheckDir: the cluster token names a program,
// the leader runs it, as root; so a program must be in the leader's
// --check-dir. A write whose exec check names one outside it (an absolute
// path elsewhere, "..", a link leading out; by check set, apply -f or a
// keepalived import; sent through a follower) is refused by the leader
// before the log: the error names the check, the command and the
// directory, the history is unchanged, and nothing runs. A program in the
// directory is accepted and runs; removed from it, the check fails saying
// why, and the leader logs that once.
func TestExecChecksOnlyFromTheCheckDir(t *testing.T) {
	if os.Geteuid() != 0 {
		skip.Now(t, "needs root: ipvsmand runs only programs root owns (CI runs as root)")
	}
	work := t.TempDir()
	victim := filepath.Join(work, "victim") // what the refused commands would create
	ran := filepath.Join(work, "ran")       // what the accepted one writes
	dir := harness.CheckDir(t, map[string]string{
		"up": "#!/bin/sh\necho \"$IPVSMAN_CHECK_ADDR:$IPVSMAN_CHECK_PORT\" > " + ran + "\n",
	})
	if err := os.Symlink("/usr/bin/touch", filepath.Join(dir, "escape")); err != nil {
		t.Fatal(err)
	}

	c := harness.NewCluster(t)
	nodes := []*harness.Node{c.Add("n1", "--check-dir", dir), c.Add("n2", "--check-dir", dir), c.Add("n3", "--check-dir", dir)}
	nodes[0].Start("--bootstrap")
	nodes[1].Start("--join", nodes[0].APIAddr)
	nodes[2].Start("--join", nodes[0].APIAddr)
	c.Voters(t, nodes[0], nodes...)
	lead := leader(t, c, nodes...)
	via := others(nodes, lead)[0] // writes go through a follower, as an operator's may
	const svc, rs = "192.0.2.1:80", "127.0.0.1:80"
	c.MustCLI(via, "", "-A", "-t", svc, "-s", "rr")
	c.MustCLI(via, "", "-a", "-t", svc, "-r", rs, "-m")
	history := c.MustCLI(lead, "", "history", "--json")

	topo := filepath.Join(work, "web.yaml")
	writeFile(t, topo, fmt.Sprintf(`services:
  - protocol: tcp
    address: 192.0.2.1
    port: 80
    scheduler: rr
    forward: masq
    check: {type: exec, command: [/usr/bin/touch, %s]}
    servers:
      - {address: 127.0.0.1, port: 80}
`, victim))
	ka := filepath.Join(work, "keepalived.conf")
	writeFile(t, ka, fmt.Sprintf(`virtual_server 192.0.2.1 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
    real_server 127.0.0.1 80 {
        MISC_CHECK {
            misc_path "/usr/bin/touch %s"
        }
    }
}
`, victim))
	set := func(command string) []string {
		return []string{"check", "set", "-t", svc, "-r", rs, "--type", "exec", "--command", command,
			"--interval", "200ms", "--timeout", "100ms", "--rise", "1", "--fall", "1"}
	}
	where := fmt.Sprintf("(checked by the leader, %s)", lead.ID)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"absolute path outside", set("/usr/bin/touch " + victim),
			[]string{`real server 127.0.0.1:80 of service tcp:192.0.2.1:80 check command "/usr/bin/touch": outside --check-dir "` + dir + `"`, where}},
		{"dot-dot", set("../../../../usr/bin/touch " + victim),
			[]string{`check command "../../../../usr/bin/touch"`, `".." may not leave --check-dir "` + dir + `"`}},
		{"link leading out", set("escape " + victim),
			[]string{`check command "escape": leads to "/usr/bin/touch", outside --check-dir "` + dir + `"`}},
		{"apply -f", []string{"apply", "-f", topo},
			[]string{`service tcp:192.0.2.1:80 check command "/usr/bin/touch": outside --check-dir`, where}},
		{"apply -f --dry-run", []string{"apply", "--dry-run", "-f", topo}, []string{`check command "/usr/bin/touch"`}},
		{"keepalived import", []string{"import", "--from", "keepalived", ka},
			// The import makes the one real server's checker the service's check.
			[]string{`service tcp:192.0.2.1:80 check command "/usr/bin/touch": outside --check-dir`, where}},
	} {
		r := c.CLI(via, "", tc.args...)
		if r.Err == nil {
			t.Errorf("%s: accepted: %s", tc.name, r.Stdout)
			continue
		}
		for _, w := range tc.want {
			if !strings.Contains(r.Stderr, w) {
				t.Errorf("%s: the error does not say %q:\n%s", tc.name, w, r.Stderr)
			}
		}
		t.Logf("%s: %s", tc.name, strings.TrimSpace(r.Stderr))
	}
	// The API's answer: 400, kind rejected, the field and the value.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	key := fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: 80}
	_, err := (&api.Client{Base: via.APIAddr, Token: c.Token()}).Ops(ctx, []fsm.Op{{Kind: fsm.OpSetCheck, ServiceKey: key,
		Check: &fsm.HealthCheck{Type: "exec", Command: []string{"/usr/bin/touch", victim}}}})
	var ae *api.Error
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Kind != "rejected" ||
		!strings.Contains(ae.Msg, `service tcp:192.0.2.1:80 check command "/usr/bin/touch": outside --check-dir`) {
		t.Errorf("POST /v1/ops with an exec check outside --check-dir: %#v, want 400 rejected naming the command", err)
	}
	if got := c.MustCLI(lead, "", "history", "--json"); got != history {
		t.Fatalf("the history changed with refused writes:\nbefore %s\nafter  %s", history, got)
	}

	// In the directory: accepted, and it runs.
	c.MustCLI(via, "", set("up")...)
	harness.Eventually(t, 20*time.Second, "the check in the directory runs and the server is up", func() (bool, string) {
		b, _ := os.ReadFile(ran)
		st := checkStatus(t, c, nodes[2], rs)
		return strings.TrimSpace(string(b)) == rs && st.Health == "up", fmt.Sprintf("%q wrote %q; %+v", ran, b, st)
	})

	// Removed from the leader's directory: the check fails, saying why;
	// the leader says so once, however many checks fail.
	if err := os.Remove(filepath.Join(dir, "up")); err != nil {
		t.Fatal(err)
	}
	// A check already past the directory test when the file went may
	// fail in the shell instead ("cannot open"); the one after it must
	// say why it was not run.
	var down api.CheckStatus
	want := `not run: "up": not in --check-dir "` + dir + `"`
	harness.Eventually(t, 20*time.Second, "the check fails without its program, saying why", func() (bool, string) {
		down = checkStatus(t, c, lead, rs)
		return down.Health == "down" && strings.HasPrefix(down.Detail, want), fmt.Sprintf("%+v, want the detail to start %q", down, want)
	})
	harness.Eventually(t, 20*time.Second, "five more failed checks", func() (bool, string) {
		st := checkStatus(t, c, lead, rs)
		return st.Checks >= down.Checks+5 && !st.OK, fmt.Sprintf("%+v", st)
	})
	if n := strings.Count(lead.Log(), `"msg":"exec check not run`); n != 1 {
		t.Errorf("the leader logged the missing program %d times, want once:\n%s", n, grepLines(lead.Log(), "exec check"))
	}
	if _, err := os.Stat(victim); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s exists (%v): a refused command ran", victim, err)
	}
}

// checkStatus is the leader's last result for real server rs, asked
// through via.
func checkStatus(t *testing.T, c *harness.Cluster, via *harness.Node, rs string) api.CheckStatus {
	t.Helper()
	r := c.CLI(via, "", "health", "--json")
	if r.Err != nil {
		return api.CheckStatus{Detail: "ipvsman health: " + r.Stderr}
	}
	var h api.HealthResponse
	if err := json.Unmarshal([]byte(r.Stdout), &h); err != nil {
		t.Fatalf("ipvsman health --json: %v\n%s", err, r.Stdout)
	}
	for _, s := range h.Checks {
		if s.Server == rs {
			return s
		}
	}
	return api.CheckStatus{Detail: "no check of " + rs + " yet"}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func grepLines(s, part string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, part) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
