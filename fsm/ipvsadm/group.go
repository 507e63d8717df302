package ipvsadm

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/ipvsman/ipvsman/fsm"
)

// Service groups (fsm/group.go) in ipvsadm's language. ipvsadm knows none:
// a group is, to it, one kernel service per key with equal destinations.
// So -S writes every member's -A and -a lines as ipvsadm -S of a
// director's kernel shows them, and after the whole table one line per
// group that says which of those services are one:
//
//	#ipvsman group add tcp:10.0.0.1:80 tcp:10.0.0.2:80 fwmark:7
//
// which reads as the command that makes the group. ParseRestore reads it
// back into a group-add op and folds the members' lines into it. Plain
// ipvsadm -R has no comments (its config_stream stops at a line starting
// with '#', seen in the lab), so the marker lines come last: a plain -R
// has restored every service when it meets the first, and `grep -v '^#'`
// makes a file it reads whole.

// groupMarker starts a group's line in -S output and -R input.
const groupMarker = "#ipvsman group add "

// withGroups is cfg with every group member as a service of its own, the
// group's service under the member's key, as the kernels hold it.
func withGroups(cfg *fsm.Config) *fsm.Config {
	grouped := false
	for _, svc := range cfg.Services {
		if len(svc.Group) > 0 {
			grouped = true
			break
		}
	}
	if !grouped {
		return cfg
	}
	out := &fsm.Config{Services: maps.Clone(cfg.Services), VIPs: cfg.VIPs, Timeouts: cfg.Timeouts, Sync: cfg.Sync}
	for _, svc := range cfg.Services {
		for _, k := range svc.Group {
			m := *svc
			m.Key, m.Group = k, nil
			out.Services[k.String()] = &m
		}
	}
	return out
}

// groupLines are the marker lines of cfg's groups, in key order.
func groupLines(cfg *fsm.Config) string {
	var b strings.Builder
	for _, k := range cfg.SortedServiceKeys() {
		svc := cfg.Services[k]
		if len(svc.Group) == 0 {
			continue
		}
		b.WriteString(groupMarker + k)
		for _, m := range svc.Group {
			b.WriteString(" " + m.String())
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// restoreGroup is one marker line of -R input.
type restoreGroup struct {
	line    int
	service fsm.ServiceKey
	members []fsm.ServiceKey
}

// parseGroupLine reads a marker line's keys: the service, then its members.
func parseGroupLine(line int, text string) (restoreGroup, error) {
	words := strings.Fields(strings.TrimPrefix(text, groupMarker))
	if len(words) < 2 {
		return restoreGroup{}, fmt.Errorf("line %d: %q: want %sSERVICE MEMBER... (keys such as tcp:10.0.0.1:80, fwmark:7)", line, text, groupMarker)
	}
	g := restoreGroup{line: line}
	for i, w := range words {
		k, err := fsm.ParseServiceKey(w)
		if err != nil {
			return restoreGroup{}, fmt.Errorf("line %d: group: %w", line, err)
		}
		if i == 0 {
			g.service = k
		} else {
			g.members = append(g.members, k)
		}
	}
	return g, nil
}

// foldGroups turns restore input's ops and group lines into ops that
// make the groups: each member's -A and -a lines, which -S wrote as the
// kernels hold them, must be its service's (equal attributes, equal real
// servers) or absent, and are replaced by one group-add op at the end.
// lines[i] is the input line of ops[i].
func foldGroups(ops []fsm.Op, lines []int, groups []restoreGroup) ([]fsm.Op, error) {
	if len(groups) == 0 {
		return ops, nil
	}
	byKey := func(k fsm.ServiceKey) string { return k.String() }
	opKey := func(op fsm.Op) string {
		if op.Service != nil && (op.Kind == fsm.OpAddService || op.Kind == fsm.OpEditService) {
			return byKey(op.Service.Key)
		}
		return byKey(op.ServiceKey)
	}
	member := map[string]restoreGroup{}
	for _, g := range groups {
		for _, m := range g.members {
			if prev, dup := member[byKey(m)]; dup {
				return nil, fmt.Errorf("line %d: group member %s: also on line %d", g.line, m, prev.line)
			}
			member[byKey(m)] = g
		}
	}
	at := map[string][]int{} // the ops of each service key, in order
	for i, op := range ops {
		at[opKey(op)] = append(at[opKey(op)], i)
	}
	// said is what a service's -A and -a lines say, to compare a member's
	// with; any other op on a member is refused.
	said := func(key string, isMember bool) (attrs string, servers []string, err error) {
		for _, i := range at[key] {
			op := ops[i]
			switch op.Kind {
			case fsm.OpAddService:
				s := *op.Service
				s.Key = fsm.ServiceKey{}
				b, _ := json.Marshal(s)
				attrs = string(b)
			case fsm.OpAddServer:
				b, _ := json.Marshal(op.Server)
				servers = append(servers, string(b))
			default:
				if isMember {
					return "", nil, fmt.Errorf("line %d: service %s: %s on a group member (line %d makes it one): restore input may hold only its -A and -a lines", lines[i], key, op.Kind, member[key].line)
				}
			}
		}
		slices.Sort(servers)
		return attrs, servers, nil
	}
	var out []fsm.Op
	for _, op := range ops {
		if _, ok := member[opKey(op)]; !ok {
			out = append(out, op)
		}
	}
	for _, g := range groups {
		sa, ss, err := said(byKey(g.service), false)
		if err != nil {
			return nil, err
		}
		for _, m := range g.members {
			ma, ms, err := said(byKey(m), true)
			switch {
			case err != nil:
				return nil, err
			case ma == "" && len(ms) == 0:
				// Only the marker names it: the group makes its service.
			case ma != sa || !slices.Equal(ms, ss):
				return nil, fmt.Errorf("line %d: group member %s: its -A and -a lines differ from those of service %s, which it would serve with the same real servers", g.line, m, g.service)
			}
		}
		out = append(out, fsm.Op{Kind: fsm.OpGroupAdd, ServiceKey: g.service, Group: g.members})
	}
	return out, nil
}
