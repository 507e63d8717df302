package migrate

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ipvsman/ipvsman/fsm"
)

// ldPortService is ldirectord's default service= by virtual port
// (ld_port_to_service).
var ldPortService = map[uint16]string{21: "ftp", 25: "smtp", 53: "dns", 80: "http", 110: "pop", 119: "nntp", 143: "imap",
	389: "ldap", 443: "https", 587: "submission", 993: "imaps", 995: "pops", 1521: "oracle", 1812: "radius",
	3128: "http_proxy", 3306: "mysql", 5060: "sip", 5432: "pgsql"}

// ldCheck is the check of one virtual section being built.
type ldCheck struct {
	v       *ldVirtual
	key     fsm.ServiceKey
	ct      ldVal  // checktype as written, or its default
	service string // service= or the default for the virtual port
	svcLine int
	hc      *fsm.HealthCheck
	off     bool
}

// ldCheckTypes build the check of each checktype ldirectord has; false:
// the service is not checked.
var ldCheckTypes = map[string]func(l *ldMapper, c *ldCheck) bool{
	"on":            func(*ldMapper, *ldCheck) bool { return false },
	"off":           func(_ *ldMapper, c *ldCheck) bool { c.off = true; return false },
	"connect":       func(_ *ldMapper, c *ldCheck) bool { c.connect(); return true },
	"ping":          func(_ *ldMapper, c *ldCheck) bool { c.hc.Type = "icmp"; return true },
	"external":      ldExternal,
	"external-perl": ldExternal,
	"negotiate":     ldNegotiate,
}

// connect is ldirectord's connect check: it pings a UDP service.
func (c *ldCheck) connect() {
	c.hc.Type = "tcp"
	if c.key.Protocol == fsm.UDP {
		c.hc.Type = "icmp"
	}
}

func ldExternal(l *ldMapper, c *ldCheck) bool {
	cmd := "/bin/true"
	if x, ok := c.v.kv["checkcommand"]; ok {
		cmd = x.v
	}
	c.hc.Type, c.hc.Command = "exec", strings.Fields(cmd)
	l.item(c.ct.line, "checktype", c.ct.v, fmt.Sprintf("imported as an exec check of %q: ipvsman passes the target in $IPVSMAN_CHECK_ADDR and $IPVSMAN_CHECK_PORT, not as the four arguments ldirectord gives; adapt the script", cmd))
	return true
}

// ldNegotiate maps the services ipvsman has a check for; any other is
// checked by connecting.
func ldNegotiate(l *ldMapper, c *ldCheck) bool {
	hc := c.hc
	switch c.service {
	case "none":
		return false
	case "http", "https":
		hc.Type = c.service
		hc.Path = "/"
		if c.service == "https" {
			hc.Insecure = true // ldirectord does not verify the certificate
		}
		if x, ok := c.v.kv["httpmethod"]; ok {
			hc.Method = strings.ToUpper(x.v)
		}
		if x, ok := c.v.kv["virtualhost"]; ok {
			hc.Host = x.v
		}
	case "dns":
		hc.Type = "dns"
	case "smtp", "submission":
		hc.Type = "smtp"
		l.item(c.svcLine, "service", c.service, "imported as an smtp check (greeting, EHLO, QUIT), as ldirectord's")
	default:
		m, ok := ldNegotiateBanners[c.service]
		if !ok || (c.key.Protocol == fsm.UDP) != (m.typ == "udp") {
			c.connect()
			l.item(c.svcLine, "service", c.service, "ipvsman has no "+c.service+" negotiate check: imported as a "+hc.Type+" check (the request and receive strings are not used)")
			return true
		}
		hc.Type, hc.Send, hc.Expect = m.typ, m.send, m.expect
		if m.typ == "tls" {
			hc.Insecure = true // ldirectord does not verify the certificate
		}
		l.item(c.svcLine, "service", c.service, m.note)
	}
	return true
}

// ldNegotiateBanners map ldirectord's negotiate checks of the protocols
// ipvsman has no checker for onto the nearest real exchange: the
// server's greeting (or the answer to a request), which a live server
// of that protocol sends before any login.
var ldNegotiateBanners = map[string]struct{ typ, send, expect, note string }{
	"ftp":   {"tcp", "", `^220[ -]`, "imported as a tcp check of the 220 greeting: ldirectord also logs in and retrieves the request file (login, passwd, request and receive are not used)"},
	"pop":   {"tcp", "", `^\+OK`, "imported as a tcp check of the +OK greeting: ldirectord also logs in (login and passwd are not used)"},
	"pops":  {"tls", "", `^\+OK`, "imported as a tls check (certificate not verified, as ldirectord) of the +OK greeting: ldirectord also logs in (login and passwd are not used)"},
	"imap":  {"tcp", "", `^\* OK`, "imported as a tcp check of the * OK greeting: ldirectord also logs in (login and passwd are not used)"},
	"imaps": {"tls", "", `^\* OK`, "imported as a tls check (certificate not verified, as ldirectord) of the * OK greeting: ldirectord also logs in (login and passwd are not used)"},
	"nntp":  {"tcp", "", `^20[01][ -]`, "imported as a tcp check of the 200/201 greeting, as ldirectord's"},
	// A MySQL server greets every client with its handshake, protocol 10.
	"mysql": {"tcp", "", `(?s)^.{3}\x00\x0a`, "imported as a tcp check of the server's handshake (protocol 10): ldirectord also logs in and runs the request query (login, passwd, database, request and receive are not used)"},
	// A SIP server answers OPTIONS with a status line.
	"sip": {"udp", "OPTIONS sip:ipvsman@invalid SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:5060;rport;branch=z9hG4bK-ipvsman\r\nMax-Forwards: 70\r\n" +
		"From: <sip:ipvsman@invalid>;tag=ipvsman\r\nTo: <sip:ipvsman@invalid>\r\nCall-ID: ipvsman-check\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n",
		`^SIP/2\.0 [1-6][0-9][0-9] `, "imported as a udp check: OPTIONS, any SIP status line back (ldirectord's sends its request as OPTIONS too; the receive string is not used)"},
}

// check builds the service's check from checktype and service. off reports
// checktype=off, under which ldirectord activates no real server.
func (l *ldMapper) check(v *ldVirtual, key fsm.ServiceKey) (*fsm.HealthCheck, bool) {
	c := newLdCheck(v, key)
	typ := c.ct.v
	if _, err := strconv.Atoi(typ); err == nil {
		l.item(c.ct.line, "checktype", c.ct.v, "ipvsman does not alternate connect and negotiate checks: imported as the negotiate check")
		typ = "negotiate"
	}
	build, ok := ldCheckTypes[typ]
	if !ok {
		l.item(c.ct.line, "checktype", c.ct.v, "unknown checktype: the service is not checked")
		return nil, false
	}
	if !build(l, c) {
		return nil, c.off
	}
	hc := c.hc
	req, recv := "/", ""
	if x, ok := v.kv["request"]; ok {
		req = x.v
	}
	if x, ok := v.kv["receive"]; ok {
		recv = x.v
	}
	if hc.Type == "http" || hc.Type == "https" || hc.Type == "dns" {
		l.requestReceive(hc, req, recv, v.at.line)
	}
	l.timing(v, hc, typ)
	if x, ok := v.kv["checkport"]; ok {
		if p, err := strconv.ParseUint(x.v, 10, 16); err == nil && p > 0 {
			hc.Port = uint16(p)
		} else {
			l.item(x.line, "checkport", x.v, "want 1-65535")
		}
	}
	if err := fsm.ValidateHealthCheck("check", hc); err != nil {
		l.item(c.ct.line, "checktype", c.ct.v, "check not imported ("+strings.TrimPrefix(err.Error(), "check ")+"): the service is not checked")
		return nil, false
	}
	return hc, false
}

// newLdCheck reads checktype and service, with ldirectord's defaults:
// negotiate, and the service its port usually carries.
func newLdCheck(v *ldVirtual, key fsm.ServiceKey) *ldCheck {
	c := &ldCheck{v: v, key: key, ct: ldVal{v: "negotiate", line: v.at.line}, service: "none", svcLine: v.at.line, hc: &fsm.HealthCheck{Rise: 1}}
	if x, ok := v.kv["checktype"]; ok {
		c.ct = x
	}
	if key.Protocol != fsm.FWMark {
		if s, ok := ldPortService[key.Port]; ok {
			c.service = s
		}
	}
	if x, ok := v.kv["service"]; ok {
		c.service, c.svcLine = x.v, x.line
	}
	return c
}

// requestReceive puts ldirectord's request and receive strings into an
// http(s) check (path, body regular expression) or a dns check (name to
// ask, an answer to expect).
func (l *ldMapper) requestReceive(hc *fsm.HealthCheck, req, recv string, line int) {
	switch hc.Type {
	case "http", "https":
		if rest, ok := cutScheme(req); ok {
			host, path, _ := strings.Cut(rest, "/")
			l.item(line, "request", req, "ipvsman requests the path from the real server itself: the host "+host+" of the URL is not used")
			req = "/" + path
		}
		if !strings.HasPrefix(req, "/") {
			req = "/" + req // as ldirectord does
		}
		hc.Path, hc.Body = req, recv
	case "dns":
		q := strings.TrimPrefix(req, "/")
		hc.QType = "A"
		if a, err := netip.ParseAddr(q); err == nil {
			hc.QType, q = "PTR", reverseName(a)
		}
		hc.Query, hc.Answer = q, recv
	}
}

func cutScheme(s string) (string, bool) {
	for _, p := range []string{"http://", "https://"} {
		if rest, ok := strings.CutPrefix(s, p); ok {
			return rest, true
		}
	}
	return "", false
}

// reverseName is the in-addr.arpa / ip6.arpa name of a, for a PTR query.
func reverseName(a netip.Addr) string {
	b := a.Unmap().AsSlice()
	var parts []string
	if len(b) == 4 {
		for i := 3; i >= 0; i-- {
			parts = append(parts, strconv.Itoa(int(b[i])))
		}
		return strings.Join(parts, ".") + ".in-addr.arpa."
	}
	const hex = "0123456789abcdef"
	for i := 15; i >= 0; i-- {
		parts = append(parts, string(hex[b[i]&15]), string(hex[b[i]>>4]))
	}
	return strings.Join(parts, ".") + ".ip6.arpa."
}

// timing: interval checkinterval (a section's own only counts with
// fork=yes, as in ldirectord); timeout negotiatetimeout for negotiate
// checks, checktimeout (else negotiatetimeout) for the others; fall
// failurecount. ldirectord takes a server down after failurecount
// failures and back up after one success. Its deprecated checkcount
// retries a ping check's ping that many times within one check, so a
// server is down after failurecount x checkcount failed pings: ipvsman's
// icmp check sends one a check, and that product is its fall. ldirectord
// ignores checkcount for the other checks, and so does the import.
func (l *ldMapper) timing(v *ldVirtual, hc *fsm.HealthCheck, typ string) {
	interval := l.interval(v)
	nt, nx := l.seconds(v, "negotiatetimeout")
	ct, cx := l.seconds(v, "checktimeout")
	timeout, from := uint64(ldCheckTimeout), cx
	switch {
	case typ == "negotiate":
		timeout, from = ldNegotiateTimeout, nx
		if nx != nil {
			timeout = nt
		}
	case cx != nil:
		timeout = ct
	case nx != nil:
		timeout, from = nt, nx
	}
	hc.IntervalMS = uint32(min(interval, 3600) * 1000)
	hc.TimeoutMS = uint32(min(timeout, 3600) * 1000)
	if hc.TimeoutMS > hc.IntervalMS {
		line, key := v.at.line, "negotiatetimeout"
		if typ != "negotiate" {
			key = "checktimeout"
		}
		val := strconv.FormatUint(timeout, 10)
		if from != nil {
			line = from.line
		} else {
			val += " (default)"
		}
		l.item(line, key, val, fmt.Sprintf("ipvsman needs a check timeout no longer than the interval (checkinterval %ds): imported as %ds", interval, interval))
		hc.TimeoutMS = hc.IntervalMS
	}
	hc.Fall = ldFailureCount
	if f, x := l.count(v, "failurecount"); x != nil {
		hc.Fall = int(min(f, 100))
		if f > 100 {
			l.item(x.line, "failurecount", x.v, "ipvsman counts at most 100 failures: imported as 100")
		}
	}
	if c, x := l.count(v, "checkcount"); x != nil {
		switch {
		case typ != "ping":
			l.item(x.line, "checkcount", x.v, "ldirectord retries ping checks only: ignored for checktype "+typ+", as ldirectord does (failurecount counts failures of any check)")
		case uint64(hc.Fall)*c > 100:
			l.item(x.line, "checkcount", x.v, fmt.Sprintf("a server is down after failurecount %d x checkcount %d failed pings; ipvsman counts at most 100: imported as fall 100", hc.Fall, c))
			hc.Fall = 100
		default:
			hc.Fall *= int(c)
		}
	}
}

// seconds reads a whole number of seconds, 1 or more, of the section's,
// else the global, key; nil when the key is absent or refused.
func (l *ldMapper) seconds(v *ldVirtual, key string) (uint64, *ldVal) {
	return l.positive(v, key, "a whole number of seconds")
}

// count is a setting's positive whole number of times (failurecount,
// checkcount), as seconds is of seconds.
func (l *ldMapper) count(v *ldVirtual, key string) (uint64, *ldVal) {
	return l.positive(v, key, "a whole number")
}

func (l *ldMapper) positive(v *ldVirtual, key, want string) (uint64, *ldVal) {
	x, ok := l.get(v, key)
	if !ok {
		return 0, nil
	}
	n, err := strconv.ParseUint(x.v, 10, 32)
	if err != nil || n == 0 {
		l.item(x.line, key, x.v, "want "+want+", 1 or more")
		return 0, nil
	}
	return n, &x
}

// interval is checkinterval: the global one, and a section's own only
// under fork = yes, as ldirectord reads it.
func (l *ldMapper) interval(v *ldVirtual) uint64 {
	interval := uint64(ldCheckInterval)
	if x, ok := l.global["checkinterval"]; ok {
		if n, err := strconv.ParseUint(x.v, 10, 32); err == nil && n > 0 {
			interval = n
		} else {
			l.item(x.line, "checkinterval", x.v, "want a whole number of seconds, 1 or more")
		}
	}
	if x, ok := v.kv["checkinterval"]; ok {
		if f, ok := l.global["fork"]; ok && f.v == "yes" {
			if n, err := strconv.ParseUint(x.v, 10, 32); err == nil && n > 0 {
				interval = n
			}
		} else {
			l.item(x.line, "checkinterval", x.v, "ldirectord ignores a section's checkinterval unless fork = yes")
		}
	}
	return interval
}
