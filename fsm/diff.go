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
	for _, k := range union(a.SortedServiceKeys(), b.SortedServiceKeys()) {
		sa, sb := a.Services[k], b.Services[k]
		switch {
		case sa == nil:
			out = append(out, "+ service "+describeService(sb))
			for _, rk := range sb.SortedServerKeys() {
				out = append(out, "+ real server "+k+" -> "+describeServer(sb.Servers[rk]))
			}
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
	if s.Check != nil {
		b.WriteString(" check=" + describeCheck(s.Check))
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
