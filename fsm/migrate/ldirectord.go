package migrate

import (
	"bytes"
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/ipvsman/ipvsman/fsm"
)

// ldirectord's defaults, from ldirectord(8) and set_defaults() in its
// source. The manual says quiescent defaults to yes; the code has said
// "no" for years, and the code is what runs.
const (
	ldCheckInterval    = 10
	ldCheckTimeout     = 5
	ldNegotiateTimeout = 30
	ldFailureCount     = 1
	ldScheduler        = "wrr"
	ldQuiescent        = "no"
)

// ldirectordGlobals are the keys ldirectord accepts outside a virtual
// section.
var ldirectordGlobals = []string{"checktimeout", "negotiatetimeout", "checkinterval", "checkcount", "failurecount",
	"fallback", "fallback6", "fallbackcommand", "autoreload", "callback", "logfile", "execute", "fork", "supervised",
	"quiescent", "readdquiescent", "emailalert", "emailalertfreq", "emailalertstatus", "emailalertfrom", "cleanstop",
	"smtp", "maintenancedir", "connecttimeout", "timeout"}

// ldNotImported says why the daemon settings have no counterpart.
var ldNotImported = map[string]string{
	"autoreload":     "ipvsman's topology changes through its API, not by watching a file",
	"callback":       "ipvsman's topology changes through its API, not by watching a file",
	"logfile":        "a daemon setting: ipvsmand logs with slog to standard error",
	"supervised":     "a daemon setting: ipvsmand runs under systemd",
	"fork":           "a daemon setting: ipvsman checks every real server concurrently",
	"execute":        "import each ldirectord configuration on its own",
	"maintenancedir": "use `ipvsman server suspend` (or drain) for maintenance",
	"readdquiescent": "ipvsman keeps quiescent servers in the table itself",
	"cleanstop":      "the cluster keeps the table while any director runs",
	"emailalert":     "ipvsman sends no mail; watch `ipvsman health` or the metrics",
	"emailalertfreq": "ipvsman sends no mail", "emailalertstatus": "ipvsman sends no mail",
	"emailalertfrom": "ipvsman sends no mail", "smtp": "ipvsman sends no mail",
	"fallbackcommand": "ipvsman runs no scripts when a service loses its last real server",
	"connecttimeout":  "deprecated in ldirectord: use negotiatetimeout",
	"timeout":         "deprecated in ldirectord: use checktimeout and negotiatetimeout",
	"monitorfile":     "ipvsman records check results in its health history and metrics",
	"login":           "ipvsman's checks do not log in", "passwd": "ipvsman's checks do not log in",
	"database": "ipvsman has no database checks", "secret": "ipvsman has no RADIUS check",
	"load": "ipvsman does not adjust weights by load",
}

// ldServicePorts is ldirectord's own service-name table (ld_service_to_port).
var ldServicePorts = map[string]uint16{"ftp": 21, "smtp": 25, "dns": 53, "domain": 53, "http": 80, "pop": 110, "nntp": 119,
	"imap": 143, "ldap": 389, "https": 443, "submission": 587, "imaps": 993, "pops": 995, "oracle": 1521,
	"radius": 1812, "http_proxy": 3128, "mysql": 3306, "sip": 5060, "pgsql": 5432}

type ldVal struct {
	v    string
	line int
}

type ldVirtual struct {
	at    origin
	v6    bool
	addr  string
	kv    map[string]ldVal
	reals []ldVal
}

// FromLdirectord imports an ldirectord.cf: global settings, then
// virtual= / virtual6= sections whose lines are indented.
func FromLdirectord(name string, data []byte) (*Result, error) {
	b := newBuilder()
	global := map[string]ldVal{}
	var virtuals []*ldVirtual
	var cur *ldVirtual
	n := 0
	for raw := range bytes.Lines(data) {
		n++
		line := strings.TrimRight(string(raw), "\r\n")
		if t := strings.TrimSpace(line); t == "" || t[0] == '#' {
			continue // ldirectord ends a section at a blank line; carrying on reads what was meant
		}
		line = stripComment(line)
		indented := line[0] == ' ' || line[0] == '\t'
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		k, v = strings.TrimSpace(k), unquote(strings.TrimSpace(v))
		if !ok {
			b.item(name, n, strings.TrimSpace(line), "", "not a KEY = VALUE line: ignored")
			continue
		}
		switch {
		case !indented && (k == "virtual" || k == "virtual6"):
			cur = &ldVirtual{at: origin{name, n, k, v}, v6: k == "virtual6", addr: v, kv: map[string]ldVal{}}
			virtuals = append(virtuals, cur)
		case indented && cur != nil:
			if k == "real" || k == "real6" {
				cur.reals = append(cur.reals, ldVal{v, n})
			} else {
				cur.kv[k] = ldVal{v, n}
			}
		case indented:
			b.item(name, n, k, v, "indented line outside a virtual section: ignored")
		default:
			cur = nil
			global[k] = ldVal{v, n}
		}
	}
	l := &ldMapper{b: b, name: name, global: global}
	for k, v := range global {
		if !slices.Contains(ldGlobalsRead, k) {
			l.notImported(k, v, "global")
		}
	}
	for _, v := range virtuals {
		l.virtual(v)
	}
	res, err := b.finish()
	if err == nil {
		sortItems(res.Unmapped) // settings are read from maps; list them in file order
	}
	return res, err
}

type ldMapper struct {
	b      *builder
	name   string
	global map[string]ldVal
}

// get is a virtual's setting, else the global one (for the keys ldirectord
// lets a section override).
func (l *ldMapper) get(v *ldVirtual, key string) (ldVal, bool) {
	if x, ok := v.kv[key]; ok {
		return x, true
	}
	x, ok := l.global[key]
	return x, ok
}

func (l *ldMapper) item(line int, key, val, why string) { l.b.item(l.name, line, key, val, why) }

// notImported lists a key the import has no use for, with why when the
// key is one ldirectord knows.
func (l *ldMapper) notImported(k string, x ldVal, where string) {
	if why := ldNotImported[k]; why != "" {
		l.item(x.line, k, x.v, why)
		return
	}
	l.item(x.line, k, x.v, "unknown "+where+" keyword: ignored")
}

// ldGlobalsRead are the global keys that the sections read (get).
var ldGlobalsRead = []string{"checktimeout", "negotiatetimeout", "checkinterval", "failurecount", "checkcount", "quiescent", "fallback", "fallback6"}

// ldSection is a virtual section being mapped to svc.
type ldSection struct {
	v   *ldVirtual
	key fsm.ServiceKey // as virtual= gives it
	svc *fsm.Service
}

// ldKeyword maps one key = value of a virtual section.
type ldKeyword func(l *ldMapper, s *ldSection, k string, x ldVal)

// ldVirtualKeywords are the keys of a virtual section. Those that the
// check, the timing, the servers and the fallback read where they are
// built are in it too, doing nothing here, so that only a key nothing
// reads is listed as unknown.
var ldVirtualKeywords = map[string]ldKeyword{
	"scheduler":        ldSectionScheduler,
	"persistent":       ldSectionPersistent,
	"netmask":          ldSectionNetmask,
	"protocol":         ldSectionProtocol,
	"ops":              func(_ *ldMapper, s *ldSection, _ string, x ldVal) { s.svc.OnePacket = x.v == "yes" },
	"real":             ldReadElsewhere,
	"real6":            ldReadElsewhere,
	"request":          ldReadElsewhere,
	"receive":          ldReadElsewhere,
	"checktype":        ldReadElsewhere,
	"checkcommand":     ldReadElsewhere,
	"checktimeout":     ldReadElsewhere,
	"negotiatetimeout": ldReadElsewhere,
	"failurecount":     ldReadElsewhere,
	"checkcount":       ldReadElsewhere,
	"checkinterval":    ldReadElsewhere,
	"checkport":        ldReadElsewhere,
	"service":          ldReadElsewhere,
	"httpmethod":       ldReadElsewhere,
	"virtualhost":      ldReadElsewhere,
	"quiescent":        ldReadElsewhere,
	"fallback":         ldReadElsewhere,
	"fallback6":        ldReadElsewhere,
}

func ldReadElsewhere(*ldMapper, *ldSection, string, ldVal) {}

func ldSectionScheduler(l *ldMapper, s *ldSection, k string, x ldVal) {
	if err := fsm.ValidateSchedulerName(x.v); err != nil {
		l.item(x.line, k, x.v, fmt.Sprintf("%v: the service uses ldirectord's default %s", err, ldScheduler))
		return
	}
	s.svc.Scheduler = x.v
}

func ldSectionPersistent(l *ldMapper, s *ldSection, k string, x ldVal) {
	t, err := strconv.ParseUint(x.v, 10, 32)
	if err != nil || t > fsm.MaxPersistence {
		l.item(x.line, k, x.v, "want seconds")
		return
	}
	if t > 0 {
		s.svc.Persistence = &fsm.Persistence{Timeout: uint32(t), Netmask: svcMask(s.svc)}
	}
}

func ldSectionNetmask(l *ldMapper, s *ldSection, k string, x ldVal) {
	if _, ok := s.v.kv["persistent"]; !ok {
		l.item(x.line, k, x.v, "a netmask only matters with persistent=")
		return
	}
	if s.svc.Persistence == nil {
		s.svc.Persistence = &fsm.Persistence{}
	}
	s.svc.Persistence.Netmask = x.v
}

func ldSectionProtocol(l *ldMapper, s *ldSection, k string, x ldVal) {
	switch {
	case x.v == "fwm" && s.key.Protocol == fsm.FWMark:
	case (x.v == "tcp" || x.v == "udp") && s.key.Protocol != fsm.FWMark:
		s.svc.Key.Protocol = fsm.Protocol(x.v)
	default:
		l.item(x.line, k, x.v, "want tcp or udp for an address, fwm for a firewall mark")
	}
}

func (l *ldMapper) virtual(v *ldVirtual) {
	key, err := ldServiceKey(v)
	if err != nil {
		l.b.itemAt(v.at, ""+err.Error())
		return
	}
	svc := &fsm.Service{Key: key, Scheduler: ldScheduler, Servers: map[string]*fsm.RealServer{}}
	s := &ldSection{v: v, key: key, svc: svc}
	for k, x := range v.kv {
		if h, ok := ldVirtualKeywords[k]; ok {
			h(l, s, k, x)
		} else {
			l.notImported(k, x, "virtual")
		}
	}
	svc.OnFailure = fsm.OnFailureRemove
	q := ldVal{v: ldQuiescent}
	if x, ok := l.get(v, "quiescent"); ok {
		q = x
	}
	if q.v == "yes" {
		svc.OnFailure = ""
	}
	check, off := l.check(v, svc.Key)
	origins := l.servers(v, svc, check, off)
	svc.Check = check
	sorryAt := l.fallback(v, svc)
	l.b.addService(svc, v.at, origins, sorryAt)
}

// servers adds the section's real servers to svc, and returns where each
// was read.
func (l *ldMapper) servers(v *ldVirtual, svc *fsm.Service, check *fsm.HealthCheck, off bool) map[string]origin {
	origins := map[string]origin{}
	for _, r := range v.reals {
		for _, rs := range l.reals(v, r, svc.Key, check) {
			if off {
				rs.State = fsm.Suspended // checktype=off: "no real or fallback servers will be activated"
			}
			if _, dup := svc.Servers[rs.Key()]; dup {
				l.item(r.line, "real", r.v, "real server listed twice: the second is not imported")
				continue
			}
			svc.Servers[rs.Key()] = rs
			origins[rs.Key()] = origin{l.name, r.line, "real", r.v}
		}
	}
	return origins
}

// fallback makes the section's (else the global) fallback the sorry
// server, and returns where it was read (nil: none).
func (l *ldMapper) fallback(v *ldVirtual, svc *fsm.Service) *origin {
	fb := "fallback"
	if v.v6 {
		fb = "fallback6"
	}
	x, ok := l.get(v, fb)
	if !ok {
		return nil
	}
	rs, err := ldServer(x.v, v.v6, true)
	if err != nil {
		l.item(x.line, fb, x.v, "fallback not imported: "+err.Error())
		return nil
	}
	svc.Sorry = rs
	return &origin{l.name, x.line, fb, x.v}
}

func svcMask(s *fsm.Service) string {
	if s.Persistence == nil {
		return ""
	}
	return s.Persistence.Netmask
}

func slicesContains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// ldServiceKey reads virtual=IP:PORT, virtual6=[IP]:PORT or a firewall
// mark. Ports may be ldirectord's service names; host names are not
// resolved.
func ldServiceKey(v *ldVirtual) (fsm.ServiceKey, error) {
	s := v.addr
	if m, err := strconv.ParseUint(s, 10, 32); err == nil {
		if m == 0 {
			return fsm.ServiceKey{}, fmt.Errorf("firewall mark 0: want 1 or more")
		}
		return fsm.ServiceKey{Protocol: fsm.FWMark, Mark: uint32(m), IPv6: v.v6}, nil
	}
	a, port, err := ldAddrPort(s)
	if err != nil {
		return fsm.ServiceKey{}, err
	}
	if v.v6 && !a.Is6() {
		return fsm.ServiceKey{}, fmt.Errorf("address %s: virtual6= takes an IPv6 address", a)
	}
	v.v6 = a.Is6() // virtual=[v6]:port is accepted too, though ldirectord wants virtual6=
	proto := fsm.TCP
	if port == 53 {
		proto = fsm.UDP // ldirectord's default for port 53
	}
	return fsm.ServiceKey{Protocol: proto, Address: a, Port: port}, nil
}

func ldAddrPort(s string) (netip.Addr, uint16, error) {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		i := strings.Index(s, "]")
		if i < 0 {
			return netip.Addr{}, 0, fmt.Errorf("address %q: missing ]", s)
		}
		host, port = s[1:i], strings.TrimPrefix(s[i+1:], ":")
	} else if i := strings.LastIndex(s, ":"); i >= 0 {
		host, port = s[:i], s[i+1:]
	}
	a, err := netip.ParseAddr(host)
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, 0, fmt.Errorf("address %q: want a numeric IP address (host names are not resolved)", host)
	}
	var p uint16
	if port != "" {
		if n, err := strconv.ParseUint(port, 10, 16); err == nil {
			p = uint16(n)
		} else if n, ok := ldServicePorts[port]; ok {
			p = n
		} else {
			return netip.Addr{}, 0, fmt.Errorf("port %q: want a number or one of ldirectord's service names", port)
		}
	}
	return a.Unmap(), p, nil
}

var ldRealRe = regexp.MustCompile(`^(\S+?)(?:->(\S+?))?(?::(\w[\w-]*))?\s+(gate|masq|ipip)(?:\s+(\d+))?(?:\s+"([^"]*)"\s*,?\s*"([^"]*)")?\s*$`)

// reals reads "IP[->IP][:PORT] gate|masq|ipip [WEIGHT] ["REQUEST", "RECEIVE"]".
// A request/receive pair gives the server its own copy of the check.
func (l *ldMapper) reals(v *ldVirtual, r ldVal, key fsm.ServiceKey, check *fsm.HealthCheck) []*fsm.RealServer {
	m := ldRealRe.FindStringSubmatch(r.v)
	if m == nil {
		l.item(r.line, "real", r.v, `want IP[->IP][:PORT] gate|masq|ipip [WEIGHT] ["REQUEST", "RECEIVE"]`)
		return nil
	}
	hostPort := m[1]
	if m[3] != "" {
		hostPort += ":" + m[3]
	}
	first, port, err := ldAddrPort(hostPort)
	if err != nil {
		l.item(r.line, "real", r.v, ""+err.Error())
		return nil
	}
	addrs := []netip.Addr{first}
	if m[2] != "" {
		last, err := netip.ParseAddr(strings.Trim(m[2], "[]"))
		if err != nil || !first.Is4() || !last.Is4() || last.Less(first) {
			l.item(r.line, "real", r.v, "a range is IPv4 FIRST->LAST")
			return nil
		}
		for a := first.Next(); a.Compare(last) <= 0; a = a.Next() {
			if len(addrs) == kaMaxExpand {
				l.item(r.line, "real", r.v, fmt.Sprintf("more than %d addresses", kaMaxExpand))
				return nil
			}
			addrs = append(addrs, a)
		}
	}
	w := 1
	if m[5] != "" {
		n, err := strconv.Atoi(m[5])
		if err != nil || n > fsm.MaxWeight {
			l.item(r.line, "real", r.v, fmt.Sprintf("weight above %d", fsm.MaxWeight))
			return nil
		}
		w = n
	}
	var own *fsm.HealthCheck
	if m[6] != "" || m[7] != "" {
		if check == nil || (check.Type != "http" && check.Type != "https" && check.Type != "dns") {
			l.item(r.line, "real", r.v, "request/receive not imported: the service has no http, https or dns check")
		} else {
			c := *check
			l.requestReceive(&c, m[6], m[7], r.line)
			own = &c
		}
	}
	var out []*fsm.RealServer
	for _, a := range addrs {
		out = append(out, &fsm.RealServer{Address: a, Port: port, Forward: ldForward(m[4]), Weight: w, State: fsm.Active, Check: own})
	}
	return out
}

func ldForward(s string) fsm.Forward {
	switch s {
	case "masq":
		return fsm.Masquerade
	case "ipip":
		return fsm.Tunnel
	}
	return fsm.DirectRoute
}

// ldServer reads a fallback: "IP[:PORT] [gate|masq|ipip]"; without a
// method it is gatewaying, ipvsadm's default.
func ldServer(s string, v6, fallback bool) (*fsm.RealServer, error) {
	f := strings.Fields(s)
	if len(f) == 0 || len(f) > 2 {
		return nil, fmt.Errorf("want IP[:PORT] [gate|masq|ipip]")
	}
	a, port, err := ldAddrPort(f[0])
	if err != nil {
		return nil, err
	}
	fwd := fsm.DirectRoute
	if len(f) == 2 {
		if f[1] != "gate" && f[1] != "masq" && f[1] != "ipip" {
			return nil, fmt.Errorf("method %q: want gate, masq or ipip", f[1])
		}
		fwd = ldForward(f[1])
	}
	return &fsm.RealServer{Address: a, Port: port, Forward: fwd, Weight: 1, State: fsm.Active}, nil
}

func stripComment(s string) string {
	q := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			q = !q
		case '#':
			if !q {
				return strings.TrimRight(s[:i], " \t")
			}
		}
	}
	return s
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' && !strings.Contains(s[1:len(s)-1], `"`) {
		return s[1 : len(s)-1]
	}
	return s
}
