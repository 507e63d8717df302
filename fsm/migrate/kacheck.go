package migrate

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ipvsman/ipvsman/fsm"
)

// kaCheckTypes maps keepalived's checkers to ipvsman's check types, with
// each checker's default retry count (keepalived.conf(5)).
var kaCheckTypes = map[string]struct {
	typ   string
	retry int
}{
	"HTTP_GET":   {"http", 1},
	"SSL_GET":    {"https", 1},
	"TCP_CHECK":  {"tcp", 1},
	"PING_CHECK": {"icmp", 1},
	"SMTP_CHECK": {"smtp", 1},
	"DNS_CHECK":  {"dns", 3},
	"MISC_CHECK": {"exec", 0},
}

// kaCheck is a checker block being read.
type kaCheck struct {
	hc          *fsm.HealthCheck
	miscTimeout *float64 // nil: keepalived's default, the delay_loop
	urls        int
	hosts       int // SMTP_CHECK's host blocks
}

// kaRetryDelay is keepalived's delay_before_retry by default, seconds.
const kaRetryDelay = 1.0

// check builds a real server's check from its first checker. keepalived
// marks a server down after retry+1 consecutive failures and up again
// after one success: fall = retry+1, rise = 1. A check runs every
// delay_loop seconds, and a failed one is retried after
// delay_before_retry (default 1 s): retry_delay.
func (k *kaMapper) check(v *kaVS, s *kaServer, rs *fsm.RealServer, key fsm.ServiceKey) *fsm.HealthCheck {
	chosen := k.firstChecker(s.checks)
	if chosen == nil {
		return nil
	}
	def := kaCheckTypes[chosen.key()]
	c := &kaCheck{hc: &fsm.HealthCheck{Type: def.typ, Rise: 1}}
	t := v.timing.with(s.timing)
	for _, n := range chosen.children {
		if k.timing(n, &t) {
			continue
		}
		kaCheckKeywords.read(k, c, n, "unknown "+chosen.key()+" keyword: ignored")
	}
	k.checkTimes(chosen, c, t)
	retry := def.retry
	if t.retry != nil {
		retry = *t.retry
	}
	c.hc.Fall = retry + 1
	if c.hc.Fall > 100 {
		k.b.item(chosen.file, chosen.line, "retry", strconv.Itoa(retry), "ipvsman counts at most 100 failures: imported as fall 100")
		c.hc.Fall = 100
	}
	if retry > 0 {
		delay := kaRetryDelay
		if t.retryDelay != nil {
			delay = *t.retryDelay
		}
		c.hc.RetryDelayMS = min(max(ms(delay), 10), 3_600_000)
	}
	kaCheckDefaults(c.hc, t)
	c.hc.Alpha = t.alpha != nil && *t.alpha
	if err := fsm.ValidateHealthCheck("check", c.hc); err != nil {
		k.b.item(chosen.file, chosen.line, chosen.key(), "", "check refused ("+strings.TrimPrefix(err.Error(), "check ")+"): the real server is not checked")
		return nil
	}
	return c.hc
}

// firstChecker is the checker ipvsman runs: the first it has an
// equivalent for. The others are listed.
func (k *kaMapper) firstChecker(checks []*node) *node {
	var chosen *node
	for _, c := range checks {
		if _, ok := kaCheckTypes[c.key()]; !ok {
			k.b.item(c.file, c.line, c.key(), "", "ipvsman has no equivalent checker")
			continue
		}
		if chosen != nil {
			k.b.item(c.file, c.line, c.key(), "", "ipvsman runs one check per real server; the first checker is used")
			continue
		}
		chosen = c
	}
	return chosen
}

// checkTimes sets the interval and the timeout. ipvsman needs a timeout
// no longer than the interval, where keepalived allows any.
func (k *kaMapper) checkTimes(chosen *node, c *kaCheck, t kaTiming) {
	hc := c.hc
	interval := kaDelayLoop
	if t.delayLoop != nil {
		interval = *t.delayLoop
	}
	hc.IntervalMS = max(ms(interval), 100)
	timeout := kaConnectTimeout
	what, dflt := "connect_timeout", " (default)"
	switch {
	case hc.Type == "exec":
		// keepalived: misc_timeout, else the virtual server's delay_loop
		timeout, what = interval, "misc_timeout"
		if c.miscTimeout != nil {
			timeout, dflt = *c.miscTimeout, ""
		}
	case t.connTimeout != nil:
		timeout, dflt = *t.connTimeout, ""
	}
	hc.TimeoutMS = max(ms(timeout), 10)
	if hc.TimeoutMS > hc.IntervalMS {
		k.b.item(chosen.file, chosen.line, what, strconv.FormatFloat(timeout, 'f', -1, 64)+dflt,
			fmt.Sprintf("ipvsman needs a check timeout no longer than the interval (delay_loop %gs): imported as %gs", interval, float64(hc.IntervalMS)/1000))
		hc.TimeoutMS = hc.IntervalMS
	}
}

// kaCheckDefaults fills in what keepalived's checkers take from the
// virtual host or their own defaults.
func kaCheckDefaults(hc *fsm.HealthCheck, t kaTiming) {
	switch hc.Type {
	case "http", "https":
		if hc.Host == "" && t.vhost != nil {
			hc.Host = *t.vhost
		}
		if hc.SNI == "\x00" {
			hc.SNI = hc.Host
		}
		if hc.Type == "https" {
			hc.Insecure = true // SSL_GET does not verify the server's certificate
		}
	case "dns":
		if hc.QType == "" {
			hc.QType = kaDNSType
		}
		if hc.Query == "" {
			hc.Query = kaDNSName
		}
	}
}

// kaCheckKeywords are the statements of a checker block, one table for
// every checker type: a keyword is read the same wherever it appears.
var kaCheckKeywords = kaKeywords[*kaCheck]{
	"connect_ip":    kaCheckConnectIP,
	"connect_port":  kaUint(1, 65535, func(c *kaCheck, p uint64) { c.hc.Port = uint16(p) }),
	"bindto":        kaCheckBindTo,
	"bind_port":     kaUint(1, 65535, func(c *kaCheck, p uint64) { c.hc.SourcePort = uint16(p) }),
	"bind_if":       kaNot[*kaCheck]("ipvsman binds a check to a source address (bindto), not to an interface"),
	"fwmark":        kaUint(1, 1<<32-1, func(c *kaCheck, m uint64) { c.hc.FWMark = uint32(m) }),
	"helo_name":     kaOne(func(c *kaCheck, s string) { c.hc.Helo = s }),
	"url":           kaCheckURL,
	"http_protocol": kaNot[*kaCheck](kaNoHTTPOption),
	"fast_recovery": kaNot[*kaCheck](kaNoHTTPOption),
	"tls_compliant": kaNot[*kaCheck](kaNoHTTPOption),
	"enable_sni":    func(_ *kaMapper, c *kaCheck, _ *node) { c.hc.SNI = "\x00" }, // filled from the virtual host
	"sni_name":      kaOne(func(c *kaCheck, s string) { c.hc.SNI = s }),
	"type":          kaOne(func(c *kaCheck, s string) { c.hc.QType = strings.ToUpper(s) }),
	"name":          kaOne(func(c *kaCheck, s string) { c.hc.Query = s }),
	"misc_path":     kaCheckMiscPath,
	"misc_timeout":  kaSeconds(func(c *kaCheck, sec float64) { c.miscTimeout = &sec }),
	"misc_dynamic":  kaNot[*kaCheck](`ipvsman's exec check takes a weight from a last output line "weight N", not from the exit status: wrap the script (exit 2-255 -> print "weight $((status-2))", exit 0)`),
	"user":          kaNot[*kaCheck]("ipvsman runs every exec check as one user, ipvsmand's --check-user (default: the daemon's)"),
}

const kaNoHTTPOption = "ipvsman's http check has no such option"

func kaCheckBindTo(k *kaMapper, c *kaCheck, n *node) {
	if a, err := netip.ParseAddr(n.value()); err == nil && a.Zone() == "" {
		c.hc.Source = a.Unmap()
	} else {
		k.bad(n, "want a numeric IP address")
	}
}

// host reads the checker's own keywords: set here, as the table refers
// to itself through it.
func init() { kaCheckKeywords["host"] = kaCheckHost }

// kaCheckHost reads SMTP_CHECK's host block (keepalived's older form):
// its connect_ip, connect_port, bindto, ... as if given in the checker.
// keepalived checks every host in turn; ipvsman checks one target per
// real server, the first host's.
func kaCheckHost(k *kaMapper, c *kaCheck, n *node) {
	c.hosts++
	if c.hosts > 1 {
		k.bad(n, "ipvsman checks one target per real server; the first host is used")
		return
	}
	for _, h := range n.children {
		kaCheckKeywords.read(k, c, h, "unknown host keyword: ignored")
	}
}

func kaCheckConnectIP(k *kaMapper, c *kaCheck, n *node) {
	if a, err := netip.ParseAddr(n.value()); err == nil && a.Zone() == "" {
		c.hc.Address = a.Unmap()
	} else {
		k.bad(n, "want a numeric IP address")
	}
}

// kaCheckURL reads the first url block: ipvsman's http check requests one
// path.
func kaCheckURL(k *kaMapper, c *kaCheck, n *node) {
	c.urls++
	if c.urls > 1 {
		k.bad(n, "ipvsman's http check requests one path; the first url is used")
		return
	}
	for _, u := range n.children {
		kaURLKeywords.read(k, c.hc, u, kaNoHTTPOption)
	}
}

func kaCheckMiscPath(k *kaMapper, c *kaCheck, n *node) {
	argv, err := splitCommand2(n.args())
	if err != nil {
		k.bad(n, err.Error())
		return
	}
	c.hc.Command = argv
}

// kaURLKeywords are the statements of HTTP_GET's url block.
var kaURLKeywords = kaKeywords[*fsm.HealthCheck]{
	"path": kaOne(func(hc *fsm.HealthCheck, p string) { hc.Path = p }),
	"status_code": func(k *kaMapper, hc *fsm.HealthCheck, n *node) {
		codes, err := statusCodes(n.args())
		if err != nil {
			k.bad(n, err.Error())
			return
		}
		hc.Status = codes
	},
	"digest":      kaOne(func(hc *fsm.HealthCheck, d string) { hc.Digest = d }),
	"virtualhost": kaOne(func(hc *fsm.HealthCheck, h string) { hc.Host = h }),
	"regex":       kaOne(func(hc *fsm.HealthCheck, re string) { hc.Body = re }),
}

// statusCodes reads "200 204 300-302".
func statusCodes(args []string) ([]int, error) {
	var out []int
	for _, a := range args {
		lo, hi, isRange := strings.Cut(a, "-")
		l, err1 := strconv.Atoi(lo)
		h := l
		var err2 error
		if isRange {
			h, err2 = strconv.Atoi(hi)
		}
		if err1 != nil || err2 != nil || l < 100 || h > 599 || h < l {
			return nil, fmt.Errorf("status code %q: want codes or ranges within 100-599", a)
		}
		for c := l; c <= h; c++ {
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no status code given")
	}
	return out, nil
}

// splitCommand2 splits misc_path as keepalived does: the (already
// unquoted) value splits on spaces; a single-quoted part of a word keeps
// its spaces.
func splitCommand2(args []string) ([]string, error) {
	s := strings.Join(args, " ")
	var out []string
	var cur strings.Builder
	in, q := false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\'':
			q, in = !q, true
		case (c == ' ' || c == '\t') && !q:
			if in {
				out = append(out, cur.String())
			}
			cur.Reset()
			in = false
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if q {
		return nil, fmt.Errorf("unbalanced single quote")
	}
	if in {
		out = append(out, cur.String())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("empty command")
	}
	return out, nil
}

// vrrpInstance maps virtual_ipaddress (and virtual_ipaddress_excluded) to
// VIPs on the instance's interface; the rest of the instance is VRRP.
func (k *kaMapper) vrrpInstance(n *node) {
	k.b.item(n.file, n.line, n.key(), n.value(), vrrpReason+"; its virtual_ipaddress entries are imported as VIPs")
	iface := ""
	for _, c := range n.children {
		if c.key() == "interface" && len(c.args()) == 1 {
			iface = c.args()[0]
		}
	}
	for _, c := range n.children {
		if c.key() != "virtual_ipaddress" && c.key() != "virtual_ipaddress_excluded" {
			continue
		}
		for _, a := range c.children {
			k.vip(a, iface)
		}
	}
}

// vip reads "ADDRESS[/PREFIX] [dev IFACE] [brd X] [scope S] [label L] ...".
func (k *kaMapper) vip(n *node, iface string) {
	w := n.words
	if len(w) == 0 {
		k.b.item(n.file, n.line, "virtual_ipaddress", "{", "VIP not imported: a block is not an address")
		return
	}
	var pfx netip.Prefix
	var err error
	if strings.Contains(w[0], "/") {
		pfx, err = netip.ParsePrefix(w[0])
	} else {
		var a netip.Addr
		if a, err = netip.ParseAddr(w[0]); err == nil {
			pfx = netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()) // keepalived's default: a host address
		}
	}
	if err != nil || pfx.Addr().Zone() != "" {
		k.b.item(n.file, n.line, "virtual_ipaddress", strings.Join(w, " "), "VIP not imported: want ADDRESS[/PREFIX]")
		return
	}
	var ignored []string
	for i := 1; i < len(w); i++ {
		if w[i] == "dev" && i+1 < len(w) {
			iface = w[i+1]
			i++
			continue
		}
		ignored = append(ignored, w[i])
	}
	if iface == "" {
		k.b.item(n.file, n.line, "virtual_ipaddress", strings.Join(w, " "), "VIP not imported: no interface (no dev and no interface in the vrrp_instance)")
		return
	}
	if len(ignored) > 0 {
		k.b.item(n.file, n.line, "virtual_ipaddress", strings.Join(w, " "), "imported without "+strings.Join(ignored, " ")+": ipvsman adds a VIP as ADDRESS/PREFIX on its interface only")
	}
	key := pfx.String()
	if _, dup := k.b.cfg.VIPs[key]; dup {
		k.b.item(n.file, n.line, "virtual_ipaddress", strings.Join(w, " "), "VIP listed twice: the first is used")
		return
	}
	k.b.cfg.VIPs[key] = fsm.VIP{Prefix: pfx, Interface: iface}
	k.b.vipAt[key] = origin{n.file, n.line, "virtual_ipaddress", strings.Join(w, " ")}
}
