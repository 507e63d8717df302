// Package topology compiles an ipvsman topology file into an *fsm.Config.
// Two forms give the same config: the one-line form of the 2007 ipvsman GUI
// (this file) and a structured YAML form (yaml.go). Every returned config
// has passed fsm.ValidateConfig, and any problem anywhere in a file means
// no config at all.
//
// It is pure: no network, no clock, and it reads no file itself (Parse is
// handed the name and the bytes). It imports only fsm and commits nothing:
// the CLI sends what it returns.
//
// # The one-line form
//
// One item per line. '#' starts a comment that runs to the end of the line;
// blank lines and leading and trailing whitespace are ignored.
//
// A service line is
//
//	HEAD [ "[" SPEC { "," SPEC } "]" ] [ "pool" "[" SPEC { "," SPEC } "]" ]
//	     [ "group" "[" MEMBER { "," MEMBER } "]" ] [ "(" OPTION ... ")" ]
//
// in that order, with whitespace allowed between the parts and around the
// commas (none is needed) and no comma after the last SPEC.
//
// HEAD is one of
//
//	NAME:t:ADDRESS:PORT   TCP service
//	NAME:u:ADDRESS:PORT   UDP service
//	NAME:s:ADDRESS:PORT   SCTP service (ipvsadm --sctp-service)
//	NAME:f:MARK           IPv4 firewall-mark service
//	NAME:f6:MARK          IPv6 firewall-mark service
//
// IPv6 addresses go in brackets: Web6:t:[2001:db8::1]:80. NAME may be empty
// (":t:10.0.0.1:80") for an unnamed service. PORT 0 is only valid with -p.
// A service may appear on one line only.
//
// The list after the word pool holds the service's pool: real servers
// defined for it, with the line's options, but not assigned, so in no
// kernel table until `ipvsman pool assign` assigns one. A server may be in
// one of the two lists only.
//
// The list after the word group holds the service's group: further
// virtual services the service is served on, with its real servers,
// checks and verdicts (fsm/group.go). A MEMBER is a double-quoted HEAD
// without a name: "t:10.0.0.2:80", "u:[2001:db8::2]:53", "f:7", "f6:7".
//
// SPEC is a double-quoted real server, "NAME:ADDRESS[:PORT[:WEIGHT]]":
//
//	"web:10.0.0.1"            one server, the service's port
//	"web:10.0.0.1:8080"       one server on port 8080 (masquerading only;
//	                          -g and -i always use the service's port)
//	"web:10.0.0.1:8080:3"     ... with weight 3 (overrides -w)
//	"web:10.0.0.1::3"         weight 3, the service's port
//	"web:[2001:db8::10]:80"   IPv6, in brackets
//	"web1-10:10.3.0.10+"      web1..web10 at 10.3.0.10..10.3.0.19
//	"spare5+:10.4.6.24-28"    spare5..spare9 at 10.4.6.24..10.4.6.28
//	"db1-3:10.0.0.7-9"        db1..db3 at 10.0.0.7..10.0.0.9
//	"v1-3:[2001:db8::a]+"     IPv6 counts up in the last group (a, b, c)
//	"v1+:[2001:db8::a-c]"     IPv6 last-group range, in hex
//
// A name range is a trailing number range (web1-10); a name that ends in a
// number and '+' (spare5+) counts that number up. An address ending in '+'
// counts up in its last octet (IPv6: last 16-bit group); an address range
// gives the last octet's end (10.4.6.24-28; IPv6: the last group's end in
// hex). A count comes from a range: a name range pairs with a counting
// address or an address range of the same size, an address range with a
// counting name or a name range of the same size. A range or a '+' with no
// partner is an error, and so is counting past .255 (IPv6: ffff). A range
// that starts with a zero keeps its width: web01-10 gives web01..web10.
// Names must satisfy fsm's name rule (1-64 of A-Z a-z 0-9 _ . -); NAME may
// be empty (":10.0.0.1") for an unnamed single server. The servers of a
// service must differ in address and port, as fsm will key them (so with -g
// or -i two specs for one address collide whatever ports they give). A file
// may expand to at most 1048576 real servers.
//
// OPTIONs are ipvsadm's, for the service and all its real servers; a value
// may be attached (-swrr) or the next word (-s wrr), and the long names
// (--scheduler=wrr, --scheduler wrr) work too:
//
//	-s SCHED     --scheduler     scheduler (default wlc)
//	-p [SECS]    --persistent    persistence, default 300 s; SECS 1 or more
//	-M MASK      --netmask       persistence netmask (needs -p)
//	-b F[,F]     --sched-flags   scheduler flags, e.g. sh-port
//	-o           --ops           one-packet scheduling (UDP, fwmark)
//	-g -i -m     --gatewaying --ipip --masquerading
//	                             forwarding of its servers (default -g)
//	-w W         --weight        default weight of its servers (default 1)
//	-x N         --u-threshold   upper connection threshold of its servers
//	-y N         --l-threshold   lower connection threshold of its servers
//
// Each option may be given once; -g, -i and -m exclude each other; flags
// cannot be bundled (-mo is unknown, write -m -o).
//
// A VIP line, an ipvsman extension the GUI did not have, is
//
//	vip ADDRESS[/PREFIXLEN] INTERFACE [NODE=INTERFACE ...]
//
// A bare address is a host prefix (/32 or /128). NODE=INTERFACE names the
// interface on a director whose NIC is named differently. A file without vip lines
// has no VIPs. The line form cannot say a real server's state or per-server
// thresholds; use the YAML form for those.
//
// Every problem in the file is reported (up to 20), one per line of the
// error, as "line N: ITEM: problem", where ITEM quotes the service head or
// the server spec as written.
package topology

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"

	"github.com/ipvsman/ipvsman/fsm"
)

// ParseLines parses the one-line form (a whole file).
func ParseLines(r io.Reader) (*fsm.Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read topology: %w", err)
	}
	return parseLines(data)
}

func parseLines(data []byte) (*fsm.Config, error) {
	text := strings.TrimPrefix(string(data), "\ufeff")
	cfg := fsm.NewConfig()
	var errs errList
	svcLine := map[string]int{}
	vipLine := map[string]int{}
	memberLine := map[string]int{}
	budget := maxServers
	for i, line := range strings.Split(text, "\n") {
		n := i + 1
		if j := strings.IndexByte(line, '#'); j >= 0 {
			line = line[:j]
		}
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if f := strings.Fields(line); f[0] == "vip" {
			v, err := parseVIPLine(f)
			if err != nil {
				errs.addf(n, "%w", err)
				continue
			}
			key := v.Prefix.String()
			if prev, dup := vipLine[key]; dup {
				errs.addf(n, "vip %s: defined twice (also on line %d)", key, prev)
				continue
			}
			vipLine[key] = n
			cfg.VIPs[key] = v
			continue
		}
		svc, err := parseServiceLine(line, &budget)
		if err != nil {
			errs.addf(n, "%w", err)
			continue
		}
		key := svc.Key.String()
		if prev, dup := svcLine[key]; dup {
			errs.addf(n, "service %s: defined twice (also on line %d)", key, prev)
			continue
		}
		svcLine[key] = n
		cfg.Services[key] = svc
		for _, m := range svc.Group {
			if prev, dup := memberLine[m.String()]; dup {
				errs.addf(n, "service %s group member %s: also in the group on line %d", key, m, prev)
			}
			memberLine[m.String()] = n
		}
	}
	for m, n := range memberLine {
		if l, dup := svcLine[m]; dup {
			errs.addf(n, "group member %s: also a service (line %d)", m, l)
		}
	}
	return finish(cfg, &errs)
}

func parseVIPLine(f []string) (fsm.VIP, error) {
	if len(f) < 3 {
		return fsm.VIP{}, fmt.Errorf("vip %q: want vip ADDRESS[/PREFIXLEN] INTERFACE [ecmp] [NODE=INTERFACE ...]", strings.Join(f, " "))
	}
	p, err := parseVIPAddr(f[1])
	if err != nil {
		return fsm.VIP{}, fmt.Errorf("vip %s: %w", f[1], err)
	}
	v := fsm.VIP{Prefix: p, Interface: f[2]}
	for _, o := range f[3:] {
		// The mode is a bare word: a word without '=' was an error before
		// it, so no older file reads differently (mode=ecmp would be node
		// "mode" on interface "ecmp").
		if o == fsm.VIPModeECMP {
			if v.ECMP() {
				return fsm.VIP{}, fmt.Errorf("vip %s: ecmp: given twice", f[1])
			}
			v.Mode = fsm.VIPModeECMP
			continue
		}
		node, iface, ok := strings.Cut(o, "=")
		if !ok {
			return fsm.VIP{}, fmt.Errorf("vip %s: %q: want ecmp or NODE=INTERFACE", f[1], o)
		}
		if _, dup := v.Interfaces[node]; dup {
			return fsm.VIP{}, fmt.Errorf("vip %s: node %s: interface given twice", f[1], node)
		}
		if v.Interfaces == nil {
			v.Interfaces = map[string]string{}
		}
		v.Interfaces[node] = iface
	}
	if err := fsm.ValidateVIP(v); err != nil {
		return fsm.VIP{}, err
	}
	return v, nil
}

// headEnd finds where HEAD stops. A '[' right after a ':' opens an IPv6
// address, any other '[' opens the server list.
func headEnd(line string) int {
	for i, r := range line {
		if unicode.IsSpace(r) || r == '(' || (r == '[' && i > 0 && line[i-1] != ':') {
			return i
		}
	}
	return len(line)
}

// maxServers bounds the real servers of one file: ranges let a few bytes
// ask for 65536 servers, and a file must not be able to exhaust memory.
// A variable so that tests need not build a million servers.
var maxServers = 1 << 20

func parseServiceLine(line string, budget *int) (*fsm.Service, error) {
	end := headEnd(line)
	head, rest := line[:end], strings.TrimSpace(line[end:])
	svc, err := parseHead(head)
	if err != nil {
		return nil, fmt.Errorf("service %q: %w", head, err)
	}
	var specs, poolSpecs []string
	if strings.HasPrefix(rest, "[") {
		specs, rest, err = splitSpecs(rest)
		if err != nil {
			return nil, fmt.Errorf("service %q: server list: %w", head, err)
		}
		rest = strings.TrimSpace(rest)
	}
	if after, ok := strings.CutPrefix(rest, poolMarker); ok && strings.HasPrefix(strings.TrimSpace(after), "[") {
		poolSpecs, rest, err = splitSpecs(strings.TrimSpace(after))
		if err != nil {
			return nil, fmt.Errorf("service %q: pool list: %w", head, err)
		}
		rest = strings.TrimSpace(rest)
	}
	if after, ok := strings.CutPrefix(rest, groupMarker); ok && strings.HasPrefix(strings.TrimSpace(after), "[") {
		var members []string
		if members, rest, err = splitSpecs(strings.TrimSpace(after)); err != nil {
			return nil, fmt.Errorf("service %q: group list: %w", head, err)
		}
		if svc.Group, err = lineGroup(members); err != nil {
			return nil, fmt.Errorf("service %q: %w", head, err)
		}
		rest = strings.TrimSpace(rest)
	}
	opts := lineOpts{forward: fsm.DirectRoute, weight: fsm.DefaultWeight}
	if strings.HasPrefix(rest, "(") {
		end := strings.IndexByte(rest, ')')
		if end < 0 {
			return nil, fmt.Errorf("service %q: options: missing ')'", head)
		}
		if opts, err = parseOptions(rest[1:end], svc); err != nil {
			return nil, fmt.Errorf("service %q: %w", head, err)
		}
		rest = strings.TrimSpace(rest[end+1:])
	}
	if rest != "" {
		return nil, fmt.Errorf("service %q: unexpected %q (want [\"SERVER\", ...], then pool [\"SERVER\", ...], then group [\"t:ADDRESS:PORT\", ...], then (OPTIONS))", head, rest)
	}
	if err := checkService(svc); err != nil {
		return nil, fmt.Errorf("service %q: %w", head, err)
	}
	if err := fsm.ValidateGroup(svc); err != nil {
		return nil, fmt.Errorf("service %q: %w", head, err)
	}
	from := map[string]string{} // server key -> spec that gave it, in either list
	if svc.Servers, err = lineServers(svc, specs, opts, budget, from); err != nil {
		return nil, err
	}
	if svc.Pool, err = lineServers(svc, poolSpecs, opts, budget, from); err != nil {
		return nil, err
	}
	if len(svc.Pool) == 0 {
		svc.Pool = nil
	}
	return svc, nil
}

// poolMarker opens a service line's second list: real servers defined for
// the service but not assigned (its pool). The 2007 GUI's files never hold
// a word between the server list and the options, so no old file means
// anything else by it.
const poolMarker = "pool"

// groupMarker opens a service line's third list: the service's group
// members. Like the pool's marker, it sits where old files have nothing.
const groupMarker = "group"

// lineGroup reads a group list's members, each a HEAD without a name.
func lineGroup(members []string) ([]fsm.ServiceKey, error) {
	if len(members) == 0 {
		return nil, fmt.Errorf("group list: empty (leave out the word group for none)")
	}
	out := make([]fsm.ServiceKey, 0, len(members))
	for _, m := range members {
		svc, err := parseHead(":" + m)
		if err != nil {
			return nil, fmt.Errorf("group member %q: %w", m, err)
		}
		out = append(out, svc.Key)
	}
	return out, nil
}

// lineServers expands specs into real servers of svc with the line's
// options; from (server key -> the spec that gave it) spans both of a
// line's lists, so that a server listed in both is an error.
func lineServers(svc *fsm.Service, specs []string, opts lineOpts, budget *int, from map[string]string) (map[string]*fsm.RealServer, error) {
	out := map[string]*fsm.RealServer{}
	for _, spec := range specs {
		servers, err := expandSpec(spec)
		if err != nil {
			return nil, fmt.Errorf("real server %q: %w", spec, err)
		}
		if *budget -= len(servers); *budget < 0 {
			return nil, fmt.Errorf("real server %q: more than %d real servers in one file", spec, maxServers)
		}
		for _, s := range servers {
			r := &fsm.RealServer{
				Name: s.name, Address: s.addr, Port: s.port,
				Forward: opts.forward, Weight: opts.weight,
				Upper: opts.upper, Lower: opts.lower, State: fsm.Active,
			}
			r.LocalIfLoopback() // as ipvsadm's -g to the director itself
			if s.hasWeight {
				r.Weight = s.weight
			}
			if err := checkServer(svc, r); err != nil {
				return nil, fmt.Errorf("real server %q: %w", spec, err)
			}
			key := r.Key()
			if prev, dup := from[key]; dup {
				return nil, fmt.Errorf("real server %q: %s listed twice (also in %q)", spec, key, prev)
			}
			from[key] = spec
			out[key] = r
		}
	}
	return out, nil
}

func parseHead(head string) (*fsm.Service, error) {
	name, rest, ok1 := strings.Cut(head, ":")
	proto, where, ok2 := strings.Cut(rest, ":")
	if !ok1 || !ok2 {
		return nil, fmt.Errorf("want NAME:PROTO:ADDRESS:PORT or NAME:f:MARK")
	}
	svc := &fsm.Service{Name: name}
	switch proto {
	case "t", "u", "s":
		svc.Key.Protocol = map[string]fsm.Protocol{"t": fsm.TCP, "u": fsm.UDP, "s": fsm.SCTP}[proto]
		addr, port, err := splitHostPort(where)
		if err != nil {
			return nil, err
		}
		if svc.Key.Address, err = parseAddr(addr); err != nil {
			return nil, err
		}
		if svc.Key.Port, err = parsePort(port); err != nil {
			return nil, err
		}
	case "f", "f6":
		m, err := strconv.ParseUint(where, 10, 32)
		if err != nil {
			return nil, fmt.Errorf("mark %q: want a number 1-4294967295", where)
		}
		svc.Key = fsm.ServiceKey{Protocol: fsm.FWMark, Mark: uint32(m), IPv6: proto == "f6"}
	default:
		return nil, fmt.Errorf("protocol %q: want t, u, s (SCTP) or f (f6 for IPv6 fwmark)", proto)
	}
	return svc, nil
}

// splitHostPort insists on brackets for IPv6 because "2001:db8::1:80" has
// no single reading.
func splitHostPort(s string) (host, port string, err error) {
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return "", "", fmt.Errorf("address %q: missing ']'", s)
		}
		host, rest := s[1:end], s[end+1:]
		port, ok := strings.CutPrefix(rest, ":")
		if !ok {
			return "", "", fmt.Errorf("address %q: want [IPV6]:PORT", s)
		}
		return host, port, nil
	}
	i := strings.LastIndexByte(s, ':')
	if i < 0 {
		return "", "", fmt.Errorf("address %q: want ADDRESS:PORT", s)
	}
	if strings.Contains(s[:i], ":") {
		return "", "", fmt.Errorf("address %q: put IPv6 addresses in brackets, [2001:db8::1]:80", s)
	}
	return s[:i], s[i+1:], nil
}

func parsePort(s string) (uint16, error) {
	p, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("port %q: want 0-65535", s)
	}
	return uint16(p), nil
}

// splitSpecs reads the bracketed list at the start of s and returns the
// specs and what follows the list. Quotes are scanned rather than split on,
// because IPv6 specs contain brackets of their own.
func splitSpecs(s string) (specs []string, rest string, err error) {
	i := 1 // past '['
	skip := func() {
		for i < len(s) && strings.IndexByte(" \t\v\f\r", s[i]) >= 0 {
			i++
		}
	}
	for {
		skip()
		if i < len(s) && s[i] == ']' && len(specs) == 0 {
			return nil, s[i+1:], nil
		}
		if i >= len(s) || s[i] != '"' {
			return nil, "", fmt.Errorf("at %q: want a quoted server, \"NAME:ADDRESS[:PORT]\"", clip(s[i:]))
		}
		end := strings.IndexByte(s[i+1:], '"')
		if end < 0 {
			return nil, "", fmt.Errorf("at %q: missing closing '\"'", clip(s[i:]))
		}
		specs = append(specs, s[i+1:i+1+end])
		i += end + 2
		skip()
		switch {
		case i < len(s) && s[i] == ',':
			i++
		case i < len(s) && s[i] == ']':
			return specs, s[i+1:], nil
		default:
			return nil, "", fmt.Errorf("after %q: want ',' or ']'", specs[len(specs)-1])
		}
	}
}

// clip keeps error messages readable when the rest of a line is long.
func clip(s string) string {
	if len(s) > 24 {
		return s[:24] + "..."
	}
	return s
}
