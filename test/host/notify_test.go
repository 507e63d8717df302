package host

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// hookLine is one run of the test's hook: what the event's variables said.
type hookLine struct {
	seq                               int
	event, node, vip, service, server string
}

func readHooks(t *testing.T, file string) []hookLine {
	t.Helper()
	b, err := os.ReadFile(file)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []hookLine
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(l, "|")
		if len(f) != 6 {
			t.Fatalf("hook line %q: want 6 fields", l)
		}
		seq, err := strconv.Atoi(f[0])
		if err != nil {
			t.Fatalf("hook line %q: IPVSMAN_SEQ: %v", l, err)
		}
		out = append(out, hookLine{seq, f[1], f[2], f[3], f[4], f[5]})
	}
	return out
}

// events is the hook's lines as "event vip service server", and whether
// their sequence numbers count up by one from 1 with this node's ID.
func events(lines []hookLine, node string) ([]string, string) {
	var out []string
	for i, l := range lines {
		if l.seq != i+1 {
			return out, fmt.Sprintf("line %d has IPVSMAN_SEQ %d", i+1, l.seq)
		}
		if l.node != node {
			return out, fmt.Sprintf("line %d has IPVSMAN_NODE %q, want %q", i+1, l.node, node)
		}
		out = append(out, strings.Join(strings.Fields(strings.Join([]string{l.event, l.vip, l.service, l.server}, " ")), " "))
	}
	return out, ""
}

// The notify hooks run, in order, with the event in their environment:
// the leader hears it leads before its VIPs are added, the real server's
// verdicts up and down, and on a hand-over its VIPs removed before it
// hears it no longer leads; the new leader hears it leads, then its VIPs.
func TestNotifyHooksRunInOrder(t *testing.T) {
	dir := t.TempDir()
	hook := `printf '%s|%s|%s|%s|%s|%s\n' "$IPVSMAN_SEQ" "$IPVSMAN_EVENT" "$IPVSMAN_NODE" "$IPVSMAN_VIP" "$IPVSMAN_SERVICE" "$IPVSMAN_SERVER" >> ` + dir + `/"$IPVSMAN_NODE".events`
	checks := harness.CheckDir(t, map[string]string{"exists": "#!/bin/sh\ntest -e \"$1\"\n"})
	l := newVIPLab(t, "--notify", hook, "--check-dir", checks)
	c, nodes := l.c, l.nodes
	lead := c.Leader(t, nodes[0], nodes)
	l.waitOwner(t, lead, others(nodes, lead)...)
	file := func(n *harness.Node) string { return filepath.Join(dir, n.ID+".events") }

	var vipAdds, vipRemoves []string
	for _, v := range l.vips {
		vipAdds = append(vipAdds, "vip-add "+v)
		vipRemoves = append(vipRemoves, "vip-remove "+v)
	}
	want := append([]string{"leader"}, vipAdds...)
	wait := func(n *harness.Node, want []string, what string) {
		t.Helper()
		harness.Eventually(t, 20*time.Second, n.ID+"'s hooks: "+what, func() (bool, string) {
			got, bad := events(readHooks(t, file(n)), n.ID)
			if bad != "" {
				t.Fatalf("%s's hooks: %s:\n%s", n.ID, bad, strings.Join(got, "\n"))
			}
			// The VIPs are added in an order of the manager's; compare as sets
			// within each run of vip events.
			return sameEvents(got, want), strings.Join(got, "\n")
		})
	}
	wait(lead, want, "leadership and the VIPs")

	up := filepath.Join(dir, "up")
	if err := os.WriteFile(up, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	svc, rs := topo.VIP+":80", topo.RealServerAddr(1)+":80"
	c.MustCLI(lead, "", "-A", "-t", svc, "-s", "rr")
	c.MustCLI(lead, "", "-a", "-t", svc, "-r", rs, "-g")
	c.MustCLI(lead, "", "check", "set", "-t", svc, "-r", rs, "--type", "exec", "--command", "exists "+up,
		"--interval", "200ms", "--timeout", "100ms", "--rise", "1", "--fall", "1")
	want = append(want, "up tcp:"+svc+" "+rs)
	wait(lead, want, "the real server up")
	if err := os.Remove(up); err != nil {
		t.Fatal(err)
	}
	want = append(want, "down tcp:"+svc+" "+rs)
	wait(lead, want, "the real server down")

	c.MustCLI(lead, "", "cluster", "transfer")
	want = append(append(want, vipRemoves...), "backup")
	wait(lead, want, "the VIPs removed, then leadership lost")
	next := c.Leader(t, nodes[0], others(nodes, lead))
	wait(next, append([]string{"leader"}, vipAdds...), "leadership and the VIPs")
}

// sameEvents compares hook events in order, except that each run of VIP
// adds or removes may come in any order.
func sameEvents(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	norm := func(in []string) []string {
		out := append([]string(nil), in...)
		for i := 0; i < len(out); {
			j := i
			kind := strings.Fields(out[i])[0]
			for j < len(out) && strings.Fields(out[j])[0] == kind && strings.HasPrefix(kind, "vip-") {
				j++
			}
			if j > i+1 {
				slices.Sort(out[i:j])
				i = j
			} else {
				i++
			}
		}
		return out
	}
	g, w := norm(got), norm(want)
	for i := range g {
		if g[i] != w[i] {
			return false
		}
	}
	return true
}
