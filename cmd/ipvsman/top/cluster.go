package top

import (
	"fmt"
	"strings"

	"github.com/ipvsman/ipvsman/cluster/api"
)

// The header's and the cluster pane's reading of GET /v1/cluster/status.

func (m *Model) cluster() *api.ClusterStatus {
	if !m.haveSnap {
		return nil
	}
	return m.snap.Cluster
}

// leader is the member the answering node's Raft calls leader.
func (m *Model) leader() string {
	cs := m.cluster()
	if cs == nil {
		return "?"
	}
	for _, mv := range cs.Members {
		if mv.Leader {
			return mv.ID
		}
	}
	for _, n := range cs.Nodes {
		if n.Status != nil && n.Status.LeaderID != "" {
			return n.Status.LeaderID
		}
	}
	return "none"
}

// vipOwner is the node holding the VIPs: "off" when no node manages them,
// "none" when none holds one, "SPLIT a+b" when more than one does (the
// split brain ipvsman exists to rule out). The ecmp VIPs, which every node
// holds, are not counted there but after it: "d1, ecmp on 3".
func (m *Model) vipOwner() string {
	cs := m.cluster()
	if cs == nil {
		return "?"
	}
	managed := false
	var holders []string
	ecmp := 0
	for _, n := range cs.Nodes {
		if n.Status == nil || n.Status.VIPs == nil {
			continue
		}
		managed = true
		if v := n.Status.VIPs; len(v.Held) > len(v.ECMP) {
			holders = append(holders, n.ID)
		}
		if len(n.Status.VIPs.ECMP) > 0 {
			ecmp++
		}
	}
	owner := ""
	switch {
	case !managed:
		return "off"
	case len(holders) == 0:
		owner = "none"
	case len(holders) > 1:
		owner = "SPLIT " + strings.Join(holders, "+")
	default:
		owner = holders[0]
	}
	if ecmp > 0 {
		owner += fmt.Sprintf(", ecmp on %d", ecmp)
	}
	return owner
}

func (m *Model) nodeStatus(id string) *api.NodeStatus {
	cs := m.cluster()
	if cs == nil {
		return nil
	}
	for _, n := range cs.Nodes {
		if n.ID == id {
			return n.Status
		}
	}
	return nil
}

// applied is the Raft index the shown node has applied.
func (m *Model) applied() string {
	if st := m.nodeStatus(m.node); st != nil {
		return fmt.Sprint(st.AppliedIndex)
	}
	return "?"
}

// fingerprints compares the kernel tables the nodes read back
// (api.TableAlarm): "agree", "DISAGREE" (an alarm), or "-" when no node
// has read one back yet (--ipvs=off, or before the first read-back).
func (m *Model) fingerprints() string {
	cs := m.cluster()
	if cs == nil {
		return "?"
	}
	if api.TableAlarm(*cs) != "" {
		return "DISAGREE"
	}
	for _, n := range cs.Nodes {
		if n.Status != nil && n.Status.Director != nil && n.Status.Director.KernelIndex > 0 {
			return "agree"
		}
	}
	return "-"
}

// clusterPane is the members table the `c` key shows under the services:
// id, Raft role and suffrage, gossip, applied index, kernel table
// fingerprint and whether the node answered.
func (m *Model) clusterPane() []string {
	cs := m.cluster()
	if cs == nil {
		if m.haveSnap && m.snap.ClusterErr != "" {
			return []string{m.st.err.Render(m.fit("cluster status: " + printable(m.snap.ClusterErr)))}
		}
		return []string{m.fit("cluster: no status yet")}
	}
	lines := []string{m.st.title.Render(m.fit(fmt.Sprintf("%-12s %-9s %-8s %-9s %8s %-22s %s", "MEMBER", "ROLE", "SUFFRAGE", "GOSSIP", "APPLIED", "KERNEL TABLE", "REACH")))}
	views := map[string]api.NodeView{}
	for _, n := range cs.Nodes {
		views[n.ID] = n
	}
	for _, mv := range cs.Members {
		role, applied, table, reach := "-", "-", "-", "-"
		if n, ok := views[mv.ID]; ok {
			reach = "no"
			role = "unreachable"
			if n.Status != nil {
				reach, role, applied = "yes", n.Status.State, fmt.Sprint(n.Status.AppliedIndex)
				if d := n.Status.Director; d != nil {
					table = fmt.Sprintf("%s v%d", dash(d.Fingerprint), d.Version)
					if d.Failed > 0 {
						table += " !"
					}
				}
			}
		}
		lines = append(lines, m.fit(printable(fmt.Sprintf("%-12s %-9s %-8s %-9s %8s %-22s %s", cut(mv.ID, 12), cut(role, 9), cut(mv.Suffrage, 8), cut(dash(mv.Gossip), 9), applied, cut(table, 22), reach))))
	}
	if cs.Note != "" {
		lines = append(lines, m.fit("note: "+printable(cs.Note)))
	}
	// At most half the space the table has: the services stay in view.
	limit := max(2, (m.height-fixedLines)/2)
	if len(lines) > limit {
		lines = lines[:limit]
	}
	return lines
}

func cut(s string, n int) string {
	if len(s) > n {
		return s[:n-1] + "~"
	}
	return s
}
