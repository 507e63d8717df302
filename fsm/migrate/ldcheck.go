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

// check builds the service's check from checktype and service. off reports
// checktype=off, under which ldirectord activates no real server.
func (l *ldMapper) check(v *ldVirtual, key fsm.ServiceKey) (*fsm.HealthCheck, bool) {
	ct := ldVal{v: "negotiate", line: v.at.line}
	if x, ok := v.kv["checktype"]; ok {
		ct = x
	}
	service := "none"
	if key.Protocol != fsm.FWMark {
		if s, ok := ldPortService[key.Port]; ok {
			service = s
		}
	}
	svcLine := v.at.line
	if x, ok := v.kv["service"]; ok {
		service, svcLine = x.v, x.line
	}
	hc := &fsm.HealthCheck{Rise: 1}
	typ := ct.v
	if _, err := strconv.Atoi(typ); err == nil {
		l.item(ct.line, "checktype", ct.v, "ipvsman does not alternate connect and negotiate checks: imported as the negotiate check")
		typ = "negotiate"
	}
	connect := func() {
		hc.Type = "tcp"
		if key.Protocol == fsm.UDP {
			hc.Type = "icmp" // ldirectord pings for a UDP service's connect check
		}
	}
	switch typ {
	case "on":
		return nil, false
	case "off":
		return nil, true
	case "connect":
		connect()
	case "ping":
		hc.Type = "icmp"
	case "external", "external-perl":
		cmd := "/bin/true"
		if x, ok := v.kv["checkcommand"]; ok {
			cmd = x.v
		}
		hc.Type, hc.Command = "exec", strings.Fields(cmd)
		l.item(ct.line, "checktype", ct.v, fmt.Sprintf("imported as an exec check of %q: ipvsman passes the target in $IPVSMAN_CHECK_ADDR and $IPVSMAN_CHECK_PORT, not as the four arguments ldirectord gives; adapt the script", cmd))
	case "negotiate":
		switch service {
		case "none":
			return nil, false
		case "http", "https":
			hc.Type = service
			hc.Path = "/"
			if service == "https" {
				hc.Insecure = true // ldirectord does not verify the certificate
			}
			if x, ok := v.kv["httpmethod"]; ok {
				hc.Method = strings.ToUpper(x.v)
			}
			if x, ok := v.kv["virtualhost"]; ok {
				hc.Host = x.v
			}
		case "dns":
			hc.Type = "dns"
		default:
			connect()
			l.item(svcLine, "service", service, "ipvsman has no "+service+" negotiate check: imported as a "+hc.Type+" check (the request and receive strings are not used)")
		}
	default:
		l.item(ct.line, "checktype", ct.v, "unknown checktype: the service is not checked")
		return nil, false
	}
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
		l.item(ct.line, "checktype", ct.v, "check not imported ("+strings.TrimPrefix(err.Error(), "check ")+"): the service is not checked")
		return nil, false
	}
	return hc, false
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
// failures and back up after one success.
func (l *ldMapper) timing(v *ldVirtual, hc *fsm.HealthCheck, typ string) {
	secs := func(key string) (uint64, *ldVal) {
		x, ok := l.get(v, key)
		if !ok {
			return 0, nil
		}
		n, err := strconv.ParseUint(x.v, 10, 32)
		if err != nil || n == 0 {
			l.item(x.line, key, x.v, "want a whole number of seconds, 1 or more")
			return 0, nil
		}
		return n, &x
	}
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
	nt, nx := secs("negotiatetimeout")
	ct, cx := secs("checktimeout")
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
	if f, x := secs("failurecount"); x != nil {
		hc.Fall = int(min(f, 100))
		if f > 100 {
			l.item(x.line, "failurecount", x.v, "ipvsman counts at most 100 failures: imported as 100")
		}
	}
}
