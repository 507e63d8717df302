package fsm

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// DiffConfig lists, one line per item, what changes from a to b: "+" added,
// "-" removed, "~" changed. It is the history summary and apply's dry run.
func DiffConfig(a, b *Config) []string {
	var out []string
	for _, k := range changedServices(a, b) {
		sa, sb := a.Services[k], b.Services[k]
		switch {
		case sa == nil:
			out = append(out, "+ service "+describeService(sb))
			for _, rk := range sb.SortedServerKeys() {
				out = append(out, "+ real server "+k+" -> "+describeServer(sb.Servers[rk]))
			}
			out = diffPool(out, k, nil, sb.Pool)
			continue
		case sb == nil:
			out = append(out, "- service "+describeService(sa))
			continue
		case sa == sb:
			continue
		}
		if d := describeService(sb); d != describeService(sa) {
			out = append(out, "~ service "+describeService(sa)+" => "+d)
		}
		for _, rk := range union(sa.SortedServerKeys(), sb.SortedServerKeys()) {
			ra, rb := sa.Servers[rk], sb.Servers[rk]
			switch {
			case ra == nil:
				out = append(out, "+ real server "+k+" -> "+describeServer(rb))
			case rb == nil:
				out = append(out, "- real server "+k+" -> "+describeServer(ra))
			case !reflect.DeepEqual(*ra, *rb):
				out = append(out, "~ real server "+k+" -> "+describeServer(ra)+" => "+describeServer(rb))
			}
		}
		out = diffPool(out, k, sa.Pool, sb.Pool)
	}
	for _, k := range union(sortedKeys(a.VIPs), sortedKeys(b.VIPs)) {
		va, oka := a.VIPs[k]
		vb, okb := b.VIPs[k]
		switch {
		case !oka:
			out = append(out, fmt.Sprintf("+ vip %s %s", k, vb.Describe()))
		case !okb:
			out = append(out, fmt.Sprintf("- vip %s %s", k, va.Describe()))
		case !va.Equal(vb):
			out = append(out, fmt.Sprintf("~ vip %s %s => %s", k, va.Describe(), vb.Describe()))
		}
	}
	if ta, tb := describeTimeouts(a.Timeouts), describeTimeouts(b.Timeouts); ta != tb {
		out = append(out, "~ timeouts "+ta+" => "+tb)
	}
	if sa, sb := SyncOf(a).Describe(), SyncOf(b).Describe(); sa != sb {
		out = append(out, "~ connection sync "+sa+" => "+sb)
	}
	return out
}

// diffPool adds the lines of service k's pool going from a to b: an
// unassigned server reads "- real server" then "+ pool server".
func diffPool(out []string, k string, a, b map[string]*RealServer) []string {
	for _, rk := range union(sortedKeys(a), sortedKeys(b)) {
		ra, rb := a[rk], b[rk]
		switch {
		case ra == nil:
			out = append(out, "+ pool server "+k+" -> "+describeServer(rb))
		case rb == nil:
			out = append(out, "- pool server "+k+" -> "+describeServer(ra))
		case !reflect.DeepEqual(*ra, *rb):
			out = append(out, "~ pool server "+k+" -> "+describeServer(ra)+" => "+describeServer(rb))
		}
	}
	return out
}

// changedServices lists, sorted, the keys of the services that are not
// the same object in a and b: added, removed or changed. A version shares
// every unchanged service with the one before, so a change to one service
// of thousands sorts one key, not all of them.
func changedServices(a, b *Config) []string {
	var keys []string
	for k, sa := range a.Services {
		if sb, ok := b.Services[k]; !ok || sb != sa {
			keys = append(keys, k)
		}
	}
	for k := range b.Services {
		if _, ok := a.Services[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func describeTimeouts(t *Timeouts) string {
	if t == nil {
		return "(kernel's)"
	}
	show := func(v uint32) string {
		if v == 0 {
			return "kernel's"
		}
		return fmt.Sprint(v)
	}
	return fmt.Sprintf("tcp %s tcpfin %s udp %s", show(t.TCP), show(t.TCPFin), show(t.UDP))
}

func describeService(s *Service) string {
	var b strings.Builder
	b.WriteString(s.Key.String())
	if s.Name != "" {
		b.WriteString(" (" + s.Name + ")")
	}
	b.WriteString(" " + s.Scheduler)
	if len(s.Flags) > 0 {
		b.WriteString(" flags=" + strings.Join(s.Flags, ","))
	}
	if p := s.Persistence; p != nil {
		fmt.Fprintf(&b, " persistent=%d", p.Timeout)
		if p.Netmask != "" {
			b.WriteString(" mask=" + p.Netmask)
		}
		if p.Engine != "" {
			b.WriteString(" pe=" + p.Engine)
		}
	}
	if s.OnePacket {
		b.WriteString(" ops")
	}
	if s.OnFailure != "" {
		b.WriteString(" on-failure=" + s.OnFailure)
	}
	if s.Sorry != nil {
		b.WriteString(" sorry=" + describeServer(s.Sorry))
	}
	if s.Quorum > 0 {
		fmt.Fprintf(&b, " quorum=%d", s.Quorum)
		if s.Hysteresis > 0 {
			fmt.Fprintf(&b, " hysteresis=%d", s.Hysteresis)
		}
	}
	if s.Check != nil {
		b.WriteString(" check=" + describeCheck(s.Check))
	}
	if len(s.Group) > 0 {
		b.WriteString(" group=" + describeGroup(s.Group))
	}
	return b.String()
}

func describeServer(r *RealServer) string {
	var b strings.Builder
	b.WriteString(r.Key())
	if r.Name != "" {
		b.WriteString(" (" + r.Name + ")")
	}
	fmt.Fprintf(&b, " %s weight=%d", r.Forward, r.Weight)
	if r.Upper > 0 || r.Lower > 0 {
		fmt.Fprintf(&b, " x=%d y=%d", r.Upper, r.Lower)
	}
	if r.TunnelType != "" {
		fmt.Fprintf(&b, " tun=%s", r.TunnelType)
		if r.TunnelPort != 0 {
			fmt.Fprintf(&b, ":%d", r.TunnelPort)
		}
		if r.TunnelCsum != "" {
			b.WriteString(" " + string(r.TunnelCsum))
		}
	}
	if r.State != Active {
		b.WriteString(" " + string(r.State))
	}
	if r.Check != nil {
		b.WriteString(" check=" + describeCheck(r.Check))
	}
	return b.String()
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	return sortStrings(keys)
}

// union merges two sorted key lists into one sorted list without repeats.
func union(a, b []string) []string {
	out := make([]string, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || (i < len(a) && a[i] < b[j]):
			out = append(out, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i, j = i+1, j+1
		}
	}
	return out
}

func sortStrings(s []string) []string { slices.Sort(s); return s }

// describeCheck shows every field a check sets, so that any change of a
// check is a change of the configuration.
func describeCheck(c *HealthCheck) string {
	j, err := json.Marshal(c)
	if err != nil {
		return c.Type
	}
	return string(j)
}

// Tally counts what a change from a to b adds, removes and changes, the
// real servers of added and removed services included: the line an
// operator reads before a whole-topology write removes what it does.
type Tally struct {
	ServicesAdded   int `json:"services_added"`
	ServicesRemoved int `json:"services_removed"`
	ServicesChanged int `json:"services_changed"`
	ServersAdded    int `json:"real_servers_added"`
	ServersRemoved  int `json:"real_servers_removed"`
	ServersChanged  int `json:"real_servers_changed"`
	VIPsAdded       int `json:"vips_added"`
	VIPsRemoved     int `json:"vips_removed"`
	// Pool servers (pool.go), which no kernel table holds: a server moved
	// between the pool and the service counts on both sides.
	PoolAdded   int `json:"pool_servers_added,omitempty"`
	PoolRemoved int `json:"pool_servers_removed,omitempty"`
}

// Count tallies the change from a to b.
func Count(a, b *Config) Tally {
	var t Tally
	for k, sa := range a.Services {
		sb, ok := b.Services[k]
		if !ok {
			t.ServicesRemoved++
			t.ServersRemoved += len(sa.Servers)
			t.PoolRemoved += len(sa.Pool)
			continue
		}
		if sa == sb {
			continue
		}
		if describeService(sa) != describeService(sb) {
			t.ServicesChanged++
		}
		for rk, ra := range sa.Servers {
			rb, ok := sb.Servers[rk]
			switch {
			case !ok:
				t.ServersRemoved++
			case !reflect.DeepEqual(*ra, *rb):
				t.ServersChanged++
			}
		}
		for rk := range sb.Servers {
			if _, ok := sa.Servers[rk]; !ok {
				t.ServersAdded++
			}
		}
		t.countPool(sa.Pool, sb.Pool)
	}
	for k, sb := range b.Services {
		if _, ok := a.Services[k]; !ok {
			t.ServicesAdded++
			t.ServersAdded += len(sb.Servers)
			t.PoolAdded += len(sb.Pool)
		}
	}
	for k := range a.VIPs {
		if _, ok := b.VIPs[k]; !ok {
			t.VIPsRemoved++
		}
	}
	for k := range b.VIPs {
		if _, ok := a.VIPs[k]; !ok {
			t.VIPsAdded++
		}
	}
	return t
}

// countPool tallies one service's pool going from a to b; a changed pool
// server counts as removed and added.
func (t *Tally) countPool(a, b map[string]*RealServer) {
	for rk, ra := range a {
		if rb, ok := b[rk]; !ok || !reflect.DeepEqual(*ra, *rb) {
			t.PoolRemoved++
		}
	}
	for rk, rb := range b {
		if ra, ok := a[rk]; !ok || !reflect.DeepEqual(*ra, *rb) {
			t.PoolAdded++
		}
	}
}

// String is "removes 2 services, 14 real servers; adds 1 service, 3 real
// servers; changes 1 real server", or "no changes to services or VIPs".
func (t Tally) String() string {
	var parts []string
	part := func(verb string, items ...string) {
		var nonzero []string
		for _, it := range items {
			if it != "" {
				nonzero = append(nonzero, it)
			}
		}
		if len(nonzero) > 0 {
			parts = append(parts, verb+" "+strings.Join(nonzero, ", "))
		}
	}
	n := func(v int, one, many string) string {
		switch v {
		case 0:
			return ""
		case 1:
			return "1 " + one
		}
		return fmt.Sprintf("%d %s", v, many)
	}
	part("removes", n(t.ServicesRemoved, "service", "services"), n(t.ServersRemoved, "real server", "real servers"), n(t.VIPsRemoved, "VIP", "VIPs"), n(t.PoolRemoved, "pool server", "pool servers"))
	part("adds", n(t.ServicesAdded, "service", "services"), n(t.ServersAdded, "real server", "real servers"), n(t.VIPsAdded, "VIP", "VIPs"), n(t.PoolAdded, "pool server", "pool servers"))
	part("changes", n(t.ServicesChanged, "service", "services"), n(t.ServersChanged, "real server", "real servers"))
	if len(parts) == 0 {
		return "no changes to services or VIPs"
	}
	return strings.Join(parts, "; ")
}
