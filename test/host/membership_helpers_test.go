package host

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/failover"
	"github.com/ipvsman/ipvsman/test/harness"
)

// Helpers of the membership tests: the members table as the CLI prints
// it, waits, the VIP observer's holders, and the daemons' log lines.

// The membership tests run clusters of up to five directors in
// the lab's topology on the host (namespaces on a bridge, --ipvs=off, real
// VIPs), under their own prefix so that they can run beside the others.
const mbPrefix = "mb-"

// gossipProfile is every daemon's --gossip-profile here: memberlist's
// local timing (measured here: a killed node declared dead in 5-8 s; the
// LAN default took 7 s). MEMBERSHIP_GOSSIP_PROFILE=lan runs the tests with
// the default instead. The local profile retransmits each gossip message
// only twice, so a node can miss the others' suspect and dead messages and
// wait out its own suspicion, at most six times the 3 s minimum.
func gossipProfile() string {
	if p := os.Getenv("MEMBERSHIP_GOSSIP_PROFILE"); p != "" {
		return p
	}
	return "local"
}

// deadWithin bounds the time from SIGKILL to "dead" in the members table.
func deadWithin() time.Duration {
	if gossipProfile() == "local" {
		return 10 * time.Second
	}
	return 20 * time.Second
}

// member is one entry of `cluster status --json`'s members.
type member struct {
	ID            string          `json:"id"`
	Suffrage      string          `json:"suffrage"`
	Leader        bool            `json:"leader"`
	Version       string          `json:"version"`
	Protocol      int             `json:"protocol"`
	Gossip        string          `json:"gossip"`
	GossipSinceMS int64           `json:"gossip_since_ms"` // age of the gossip state
	LastContact   json.RawMessage `json:"last_contact"`
	RaftAddr      string          `json:"raft_addr"`
	GossipAddr    string          `json:"gossip_addr"`
}

// memberFields are the keys every member has. Scripts read them by
// these names: gossip_since_ms is the state's age, last_contact a
// duration string.
var memberFields = []string{"id", "suffrage", "leader", "version", "protocol", "gossip", "gossip_since_ms", "last_contact", "raft_addr", "gossip_addr"}

// view is what these tests read of `ipvsman cluster status --json`.
type view struct {
	Via   string `json:"via"`
	Nodes []struct {
		ID     string `json:"id"`
		Status *struct {
			State        string `json:"state"`
			AppliedIndex uint64 `json:"applied_index"`
		} `json:"status"`
	} `json:"nodes"`
	Members     []member `json:"members"`
	MinProtocol int      `json:"min_protocol"`
	Note        string   `json:"note"`
	raw         string
}

func (v view) member(id string) (member, bool) {
	for _, m := range v.Members {
		if m.ID == id {
			return m, true
		}
	}
	return member{}, false
}

// raftMembers are the members in the Raft configuration: the table may
// also list nodes known to gossip only (suffrage "none"), such as a
// drained or removed node that gossip still remembers.
func (v view) raftMembers() []member {
	var out []member
	for _, m := range v.Members {
		if m.Suffrage != "none" {
			out = append(out, m)
		}
	}
	return out
}

// leader is the node reporting itself Leader ("" if none or several).
func (v view) leader() string {
	var ids []string
	for _, n := range v.Nodes {
		if n.Status != nil && n.Status.State == "Leader" {
			ids = append(ids, n.ID)
		}
	}
	if len(ids) != 1 {
		return ""
	}
	return ids[0]
}

// applied is a node's applied index as it reports it (false: unreachable
// or not listed).
func (v view) applied(id string) (uint64, bool) {
	for _, n := range v.Nodes {
		if n.ID == id && n.Status != nil {
			return n.Status.AppliedIndex, true
		}
	}
	return 0, false
}

func (v view) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "via %s, leader %q:", v.Via, v.leader())
	for _, m := range v.Members {
		fmt.Fprintf(&b, " %s=%s/%s", m.ID, m.Suffrage, m.Gossip)
	}
	return b.String()
}

// clusterView runs `ipvsman cluster status --json` through via.
func clusterView(c *harness.Cluster, via *harness.Node) (view, error) {
	r := c.CLI(via, "", "cluster", "status", "--json")
	if r.Err != nil {
		return view{}, fmt.Errorf("cluster status --json via %s: %v: %s", via.ID, r.Err, strings.TrimSpace(r.Stderr))
	}
	var v view
	if err := json.Unmarshal([]byte(r.Stdout), &v); err != nil {
		return view{}, fmt.Errorf("cluster status --json via %s: %v: %q", via.ID, err, r.Stdout)
	}
	v.raw = r.Stdout
	return v, nil
}

// settled reports why the status through via is not yet: exactly ids as
// members, every one a voter and alive in gossip, and one leader among
// them.
func settled(c *harness.Cluster, via *harness.Node, ids ...string) (bool, string) {
	v, err := clusterView(c, via)
	if err != nil {
		return false, err.Error()
	}
	var got []string
	for _, m := range v.raftMembers() {
		got = append(got, m.ID)
		if m.Suffrage != "voter" || m.Gossip != "alive" {
			return false, v.summary()
		}
	}
	slices.Sort(got)
	want := slices.Sorted(slices.Values(ids))
	if !slices.Equal(got, want) || !slices.Contains(ids, v.leader()) {
		return false, fmt.Sprintf("want members %v all voter/alive with a leader among them; %s", want, v.summary())
	}
	return true, ""
}

func waitSettled(t *testing.T, c *harness.Cluster, via *harness.Node, timeout time.Duration, ids ...string) {
	t.Helper()
	harness.Eventually(t, timeout, fmt.Sprintf("members %v voters, alive, one leader (via %s)", ids, via.ID), func() (bool, string) {
		return settled(c, via, ids...)
	})
}

// keepLogs copies every daemon's log of c to $MEMBERSHIP_LOG_DIR/TEST/
// at the end of the test, when that is set: the harness shows only their
// last lines, and only of a failed test.
func keepLogs(t *testing.T, c *harness.Cluster) {
	dir := os.Getenv("MEMBERSHIP_LOG_DIR")
	if dir == "" {
		return
	}
	t.Cleanup(func() {
		d := filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_"))
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Errorf("keeping logs: %v", err)
			return
		}
		for id, n := range c.Nodes {
			if err := os.WriteFile(filepath.Join(d, id+".log"), []byte(n.Log()), 0o644); err != nil {
				t.Errorf("keeping logs: %v", err)
			}
		}
	})
}

// noRaces fails the test if any daemon of c reported a data race (the
// binaries have the race detector when the tests do). Call it right after
// the cluster is made: the check runs at cleanup, before the nodes are
// killed.
func noRaces(t *testing.T, c *harness.Cluster) {
	keepLogs(t, c)
	t.Cleanup(func() {
		for id, n := range c.Nodes {
			if log := n.Log(); strings.Contains(log, "WARNING: DATA RACE") {
				i := strings.Index(log, "WARNING: DATA RACE")
				t.Errorf("data race in %s:\n%s", id, log[i:min(len(log), i+4000)])
			}
		}
	})
}

func nodeIDs(nodes []*harness.Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, n.ID)
	}
	return out
}

// daemonVersion is what `ipvsmand --version` says: "ipvsmand V (protocol N)".
func daemonVersion(t *testing.T, c *harness.Cluster) (string, int) {
	t.Helper()
	out, err := exec.Command(c.Daemon, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("ipvsmand --version: %v: %s", err, out)
	}
	var v string
	var p int
	if _, err := fmt.Sscanf(strings.TrimSpace(string(out)), "ipvsmand %s (protocol %d)", &v, &p); err != nil {
		t.Fatalf("ipvsmand --version: %q: %v", out, err)
	}
	return v, p
}

// membersTable reads the members table of `cluster status` (the text
// form): one map per row, keyed by header, cells cut at the header's
// column starts (GOSSIP may be two words, "dead 12s"). It also returns
// the lines after the table.
func membersTable(out string) (rows []map[string]string, after []string, err error) {
	cols := []string{"MEMBER", "SUFFRAGE", "VERSION", "PROTOCOL", "GOSSIP", "LAST CONTACT", "RAFT ADDRESS", "GOSSIP ADDRESS"}
	lines := strings.Split(out, "\n")
	h := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, "MEMBER ") })
	if h < 0 {
		return nil, nil, fmt.Errorf("no members table (a line starting with MEMBER) in:\n%s", out)
	}
	if h == 0 || strings.TrimSpace(lines[h-1]) != "" {
		return nil, nil, fmt.Errorf("the members table does not follow a blank line:\n%s", out)
	}
	var starts []int
	from := 0
	for _, c := range cols {
		i := strings.Index(lines[h][from:], c)
		if i < 0 {
			return nil, nil, fmt.Errorf("members header %q lacks %s (in order %v)", lines[h], c, cols)
		}
		starts = append(starts, from+i)
		from += i + len(c)
	}
	i := h + 1
	for ; i < len(lines) && strings.TrimSpace(lines[i]) != "" && !strings.HasPrefix(lines[i], "cluster protocol:"); i++ {
		row := map[string]string{}
		for j, c := range cols {
			end := len(lines[i])
			if j+1 < len(starts) {
				end = min(end, starts[j+1])
			}
			if starts[j] < end {
				row[c] = strings.TrimSpace(lines[i][starts[j]:end])
			}
		}
		rows = append(rows, row)
	}
	return rows, lines[i:], nil
}

// holdsFrom lists the VIP holds that began in (from, to], as "dN from +Xms".
func holdsFrom(obs *failover.Observer, nodes []*harness.Node, from, to time.Time) []string {
	var out []string
	for _, n := range nodes {
		for _, iv := range obs.Intervals(n.ID) {
			if iv.From.After(from) && !iv.From.After(to) {
				out = append(out, fmt.Sprintf("%s from +%dms", n.ID, iv.From.Sub(from).Milliseconds()))
			}
		}
	}
	return out
}

// holderChanges lists, in order, the changes of the VIP's holder between
// distinct nodes in (from, to] ("d1>d2"; a stretch with no holder in
// between is no holder of its own), and counts the times a node retook it
// after dropping it with nobody else holding it in between.
func holderChanges(obs *failover.Observer, nodes []*harness.Node, from, to time.Time) (moves []string, retakes int) {
	type ev struct {
		at   time.Time
		node string
	}
	var evs []ev
	for _, n := range nodes {
		for _, iv := range obs.Intervals(n.ID) {
			if iv.From.After(from) && !iv.From.After(to) {
				evs = append(evs, ev{iv.From, n.ID})
			}
		}
	}
	slices.SortFunc(evs, func(a, b ev) int { return a.at.Compare(b.at) })
	prev := obs.Holders(from)
	last := ""
	if len(prev) == 1 {
		last = prev[0]
	}
	for _, e := range evs {
		if e.node == last {
			retakes++
			continue
		}
		moves = append(moves, last+">"+e.node)
		last = e.node
	}
	return moves, retakes
}

// leadershipLines are the nodes' log lines since t that say why their
// leadership, or the VIPs they hold, changed, each prefixed with the node.
func leadershipLines(nodes []*harness.Node, since time.Time) string {
	var out []string
	for _, n := range nodes {
		out = append(out, logLines(n.ID, n.Log(), since)...)
	}
	slices.Sort(out) // each line starts with its time
	return strings.Join(out, "\n")
}

func logLines(id, log string, since time.Time) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		var e struct {
			Time time.Time `json:"time"`
			Msg  string    `json:"msg"`
		}
		if json.Unmarshal([]byte(l), &e) != nil || e.Time.Before(since) {
			continue
		}
		switch e.Msg {
		case "leadership lost", "leadership gained", "failed to contact", "failed to contact quorum of nodes, stepping down",
			"heartbeat timeout reached, starting election", "vip added", "vip removed", "member removed", "leadership transferred",
			"non-voter promoted to voter", "member added":
			out = append(out, e.Time.Format("15:04:05.000")+" "+id+": "+e.Msg+" "+l)
		}
	}
	return out
}

func lastLine(s string) string {
	l := strings.Split(strings.TrimSpace(s), "\n")
	return l[len(l)-1]
}

func TestMembersTableParse(t *testing.T) {
	out := `NODE  ROLE      TERM
d1    Leader    2

MEMBER  SUFFRAGE  VERSION  PROTOCOL  GOSSIP    LAST CONTACT  RAFT ADDRESS    GOSSIP ADDRESS
d1      voter     0.8.0    1         alive     0s            10.0.0.11:7000  10.0.0.11:7946
d2      nonvoter  0.8.0    1         dead 12s  4.2s          10.0.0.12:7000  10.0.0.12:7946
cluster protocol: 1
`
	rows, after, err := membersTable(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[1]["GOSSIP"] != "dead 12s" || rows[1]["SUFFRAGE"] != "nonvoter" || rows[1]["GOSSIP ADDRESS"] != "10.0.0.12:7946" || rows[0]["LAST CONTACT"] != "0s" {
		t.Errorf("rows %v", rows)
	}
	if len(after) == 0 || after[0] != "cluster protocol: 1" {
		t.Errorf("after %q", after)
	}
	if _, _, err := membersTable("NODE  ROLE\nd1    Leader\n"); err == nil {
		t.Error("no error without a members table")
	}
}
