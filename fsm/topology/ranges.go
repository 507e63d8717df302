package topology

import (
	"fmt"
	"net/netip"
	"regexp"
	"strconv"
	"strings"
)

// specServer is one real server a spec expands to, before the service's
// options are applied.
type specServer struct {
	name      string
	addr      netip.Addr
	port      uint16
	weight    int
	hasWeight bool
}

// How a name or an address takes part in a count.
type countKind int

const (
	single   countKind = iota
	counting           // trailing '+': counts up with the partner's range
	ranged             // gives the count
)

type nameSpec struct {
	kind     countKind
	text     string
	prefix   string
	first    uint64
	count    uint64
	width    int    // zero-padded width of the numbers, 0 for none
	from, to string // as written, for messages
}

type addrSpec struct {
	kind  countKind
	text  string
	first netip.Addr
	count uint64
}

// The prefix is lazy so that all trailing digits before '-' are the start.
var nameRangeRe = regexp.MustCompile(`^(.*?)([0-9]+)-([0-9]+)$`)

// expandSpec turns "NAME:ADDRESS[:PORT[:WEIGHT]]" into its servers.
func expandSpec(spec string) ([]specServer, error) {
	nameText, rest, ok := strings.Cut(spec, ":")
	if !ok {
		return nil, fmt.Errorf("want NAME:ADDRESS[:PORT[:WEIGHT]]")
	}
	var addrText string
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return nil, fmt.Errorf("address %q: missing ']'", rest)
		}
		addrText, rest = rest[:end+1], rest[end+1:]
		if strings.HasPrefix(rest, "+") {
			addrText, rest = addrText+"+", rest[1:]
		}
	} else {
		addrText, rest, _ = strings.Cut(rest, ":")
		if rest != "" {
			rest = ":" + rest
		}
	}
	if strings.Count(rest, ":") > 2 {
		return nil, fmt.Errorf("too many fields: want NAME:ADDRESS[:PORT[:WEIGHT]], with IPv6 addresses in brackets")
	}
	var portText, weightText string
	if rest != "" {
		if !strings.HasPrefix(rest, ":") {
			return nil, fmt.Errorf("unexpected %q after address %s", rest, addrText)
		}
		portText, weightText, _ = strings.Cut(rest[1:], ":")
	}
	name, err := parseNameSpec(nameText)
	if err != nil {
		return nil, err
	}
	addr, err := parseAddrSpec(addrText)
	if err != nil {
		if !strings.HasPrefix(addrText, "[") && rest != "" {
			err = fmt.Errorf("%w (IPv6 addresses go in brackets)", err)
		}
		return nil, err
	}
	count, err := reconcile(name, addr)
	if err != nil {
		return nil, err
	}
	var port uint16
	if portText != "" {
		if port, err = parsePort(portText); err != nil {
			return nil, err
		}
	}
	var weight int
	if weightText != "" {
		if weight, err = strconv.Atoi(weightText); err != nil {
			return nil, fmt.Errorf("weight %q: want a number", weightText)
		}
	}
	out := make([]specServer, count)
	for i := range out {
		out[i] = specServer{
			name: name.at(uint64(i)), addr: addrAdd(addr.first, uint64(i)),
			port: port, weight: weight, hasWeight: weightText != "",
		}
	}
	return out, nil
}

func parseNameSpec(s string) (nameSpec, error) {
	n := nameSpec{kind: single, text: s, prefix: s, count: 1}
	if base, ok := strings.CutSuffix(s, "+"); ok {
		i := len(base)
		for i > 0 && base[i-1] >= '0' && base[i-1] <= '9' {
			i--
		}
		if i == len(base) {
			return n, fmt.Errorf("name %q: '+' counts up a trailing number, e.g. spare5+", s)
		}
		first, err := strconv.ParseUint(base[i:], 10, 32)
		if err != nil {
			return n, fmt.Errorf("name %q: number too large", s)
		}
		n.kind, n.prefix, n.first, n.width = counting, base[:i], first, padWidth(base[i:])
		return n, nil
	}
	m := nameRangeRe.FindStringSubmatch(s)
	if m == nil {
		return n, nil
	}
	first, err1 := strconv.ParseUint(m[2], 10, 32)
	last, err2 := strconv.ParseUint(m[3], 10, 32)
	if err1 != nil || err2 != nil {
		return n, fmt.Errorf("name range %s-%s: number too large", m[2], m[3])
	}
	if last < first {
		return n, fmt.Errorf("name range %s-%s: runs backwards", m[2], m[3])
	}
	n.kind, n.prefix, n.first, n.count, n.width = ranged, m[1], first, last-first+1, padWidth(m[2])
	n.from, n.to = m[2], m[3]
	return n, nil
}

// padWidth keeps an operator's zero padding: web01-10 means web01..web10.
func padWidth(digits string) int {
	if len(digits) > 1 && digits[0] == '0' {
		return len(digits)
	}
	return 0
}

func (n nameSpec) at(i uint64) string {
	if n.kind == single {
		return n.text
	}
	d := strconv.FormatUint(n.first+i, 10)
	if len(d) < n.width {
		d = strings.Repeat("0", n.width-len(d)) + d
	}
	return n.prefix + d
}

func (n nameSpec) describe() string {
	if n.kind == ranged {
		return fmt.Sprintf("name range %s-%s gives %d names", n.from, n.to, n.count)
	}
	return fmt.Sprintf("name %q", n.text)
}

func parseAddrSpec(s string) (addrSpec, error) {
	a := addrSpec{kind: single, text: s, count: 1}
	inner, plus := strings.CutSuffix(s, "+")
	if plus {
		a.kind = counting
	}
	if strings.HasPrefix(inner, "[") {
		if !strings.HasSuffix(inner, "]") {
			return a, fmt.Errorf("address %q: want [IPV6] or [IPV6]+", s)
		}
		inner = inner[1 : len(inner)-1]
	}
	dash := strings.LastIndexByte(inner, '-')
	if dash < 0 {
		first, err := parseAddr(inner)
		a.first = first
		return a, err
	}
	if plus {
		return a, fmt.Errorf("address %q: a range cannot also count up with '+'", s)
	}
	first, err := parseAddr(inner[:dash])
	if err != nil {
		return a, fmt.Errorf("address range %q: %w", s, err)
	}
	endText := inner[dash+1:]
	var end uint64
	if first.Is4() {
		end, err = strconv.ParseUint(endText, 10, 8)
		if err != nil {
			return a, fmt.Errorf("address range %q: end %q: want the last octet, 0-255 (10.4.6.24-28)", s, endText)
		}
	} else {
		end, err = strconv.ParseUint(endText, 16, 16)
		if err != nil {
			return a, fmt.Errorf("address range %q: end %q: want the last group in hex, 0-ffff ([2001:db8::a-1f])", s, endText)
		}
	}
	start := lastPart(first)
	if end < start {
		return a, fmt.Errorf("address range %q: runs backwards", s)
	}
	a.kind, a.first, a.count = ranged, first, end-start+1
	return a, nil
}

// lastPart is the part of an address that ranges and '+' count in: the last
// octet of IPv4, the last 16-bit group of IPv6. Counting never carries into
// the part before, so a range stays inside one subnet.
func lastPart(a netip.Addr) uint64 {
	if a.Is4() {
		return uint64(a.As4()[3])
	}
	b := a.As16()
	return uint64(b[14])<<8 | uint64(b[15])
}

func lastPartMax(a netip.Addr) (uint64, string) {
	if a.Is4() {
		return 255, "255"
	}
	return 0xffff, "ffff"
}

// addrAdd assumes the caller checked that the sum stays in the last part.
func addrAdd(a netip.Addr, i uint64) netip.Addr {
	if i == 0 {
		return a
	}
	if a.Is4() {
		b := a.As4()
		b[3] += byte(i)
		return netip.AddrFrom4(b)
	}
	b := a.As16()
	v := uint16(b[14])<<8 | uint16(b[15]) + uint16(i)
	b[14], b[15] = byte(v>>8), byte(v)
	return netip.AddrFrom16(b)
}

// reconcile finds how many servers a spec gives: a count must come from a
// range, and every range or '+' needs a partner.
func reconcile(n nameSpec, a addrSpec) (uint64, error) {
	switch {
	case n.kind == single && a.kind == single:
		return 1, nil
	case n.kind == ranged && a.kind == ranged:
		if n.count != a.count {
			return 0, fmt.Errorf("%s but address range %s gives %d addresses", n.describe(), a.text, a.count)
		}
		return n.count, nil
	case n.kind == ranged && a.kind == counting:
		if max, maxText := lastPartMax(a.first); lastPart(a.first)+n.count-1 > max {
			return 0, fmt.Errorf("%s but address %s runs past %s", n.describe(), a.text, maxText)
		}
		return n.count, nil
	case n.kind == counting && a.kind == ranged:
		return a.count, nil
	case n.kind == counting && a.kind == counting:
		return 0, fmt.Errorf("name %s and address %s both count up with '+': one of them must be a range", n.text, a.text)
	case n.kind == ranged:
		return 0, fmt.Errorf("%s but address %s is a single address (count it up with %s+ or give a range)", n.describe(), a.text, a.text)
	case a.kind == ranged:
		return 0, fmt.Errorf("address range %s gives %d addresses but %s is a single name (count it up with a trailing number and '+', e.g. %s1+)", a.text, a.count, n.describe(), n.text)
	case n.kind == counting:
		return 0, fmt.Errorf("name %s counts up with '+' but address %s is not a range", n.text, a.text)
	default:
		return 0, fmt.Errorf("address %s counts up with '+' but %s is not a name range (e.g. %s1-4)", a.text, n.describe(), n.text)
	}
}
