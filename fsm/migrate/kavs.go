package migrate

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/ipvsman/ipvsman/fsm"
)

// quorumHookReason: keepalived's quorum_up and quorum_down scripts.
var quorumHookReason = "hooks are daemon flags, not configuration: run every ipvsmand with --notify-quorum-up / --notify-quorum-down (the leader runs them, the service in $IPVSMAN_SERVICE)"

// vsKeyword reads one statement of a virtual_server block.
func (k *kaMapper) vsKeyword(v *kaVS, n *node) {
	if k.timing(n, &v.timing) {
		return
	}
	kaVSKeywords.read(k, v, n, "unknown virtual_server keyword: ignored")
}

// kaVSKeywords are the statements of a virtual_server block.
var kaVSKeywords = kaKeywords[*kaVS]{
	"lvs_sched":               kaVSScheduler,
	"lb_algo":                 kaVSScheduler,
	"flag-1":                  kaVSFlag,
	"flag-2":                  kaVSFlag,
	"flag-3":                  kaVSFlag,
	"sh-port":                 kaVSFlag,
	"sh-fallback":             kaVSFlag,
	"mh-port":                 kaVSFlag,
	"mh-fallback":             kaVSFlag,
	"ops":                     func(_ *kaMapper, v *kaVS, _ *node) { v.svc.OnePacket = true },
	"hashed":                  kaVSHashed,
	"lvs_method":              kaVSMethod,
	"lb_kind":                 kaVSMethod,
	"persistence_timeout":     kaVSPersistence,
	"persistence_granularity": kaOne(kaVSGranularity),
	"persistence_engine":      kaNot[*kaVS]("ipvsman has no persistence engines (sip)"),
	"protocol":                kaVSProtocol,
	"ip_family":               kaVSFamily,
	"snmp_name":               func(k *kaMapper, v *kaVS, n *node) { k.name(n, &v.svc.Name) },
	"weight":                  kaUint(0, fsm.MaxWeight, func(v *kaVS, w uint64) { v.weight = int(w) }),
	"quorum":                  kaUint(1, fsm.MaxQuorum, func(v *kaVS, q uint64) { v.svc.Quorum = int(q) }),
	"hysteresis":              kaVSHysteresis,
	"quorum_up":               kaNot[*kaVS](quorumHookReason),
	"quorum_down":             kaNot[*kaVS](quorumHookReason),
	"omega":                   kaNot[*kaVS]("ipvsman runs no quorum or notify scripts on shutdown"),
	"ha_suspend":              kaNot[*kaVS]("ipvsman checks real servers whether or not this node holds the VIP"),
	"sorry_server":            kaVSSorry,
	"sorry_server_lvs_method": kaVSSorryMethod,
	"sorry_server_inhibit":    kaNot[*kaVS]("ipvsman does not check the sorry server; it is in the table only while no real server is usable or the quorum is lost"),
	"real_server":             func(k *kaMapper, v *kaVS, n *node) { k.realServer(v, n) },
}

func kaVSScheduler(k *kaMapper, v *kaVS, n *node) {
	s, ok := k.one(n)
	if !ok {
		return
	}
	if err := fsm.ValidateSchedulerName(s); err != nil {
		k.bad(n, fmt.Sprintf("%v: the service uses keepalived's default %s", err, kaScheduler))
		return
	}
	v.svc.Scheduler = s
}

// kaVSFlag keeps where each flag was set: whether it suits the scheduler
// is known only after the whole block.
func kaVSFlag(_ *kaMapper, v *kaVS, n *node) {
	v.svc.Flags = append(v.svc.Flags, n.key())
	v.flagAt = append(v.flagAt, n)
}

// kaVSHashed is listed without a value, as it takes none.
func kaVSHashed(k *kaMapper, _ *kaVS, n *node) {
	k.b.item(n.file, n.line, n.key(), "", "the kernel ignores this flag")
}

func kaVSMethod(k *kaMapper, v *kaVS, n *node) { k.method(n, &v.fwd, &v.tun) }

// kaVSPersistence takes an optional timeout: without one, keepalived's
// default.
func kaVSPersistence(k *kaMapper, v *kaVS, n *node) {
	t := uint64(kaPersistence)
	if len(n.args()) > 0 {
		var ok bool
		if t, ok = k.uint(n, 1, fsm.MaxPersistence); !ok {
			return
		}
	}
	v.svc.Persistence = &fsm.Persistence{Timeout: uint32(t), Netmask: maskOf(v.svc.Persistence)}
}

func kaVSGranularity(v *kaVS, s string) {
	if v.svc.Persistence == nil {
		v.svc.Persistence = &fsm.Persistence{Timeout: kaPersistence} // as keepalived's pgr_handler
	}
	v.svc.Persistence.Netmask = s
}

func kaVSProtocol(k *kaMapper, v *kaVS, n *node) {
	s, ok := k.one(n)
	if !ok {
		return
	}
	switch strings.ToUpper(s) {
	case "TCP", "UDP", "SCTP":
		v.proto = s
	default:
		k.bad(n, "want TCP, UDP or SCTP")
	}
}

func kaVSFamily(k *kaMapper, v *kaVS, n *node) {
	if s, ok := k.one(n); ok && (s == "inet" || s == "inet6") {
		v.family = s
	} else if ok {
		k.bad(n, "want inet or inet6")
	}
}

func kaVSSorry(k *kaMapper, v *kaVS, n *node) {
	if rs, ok := k.serverAddr(n); ok {
		rs.Forward = ""
		v.sorry = &kaServer{rs: rs, at: origin{n.file, n.line, n.key(), n.value()}}
	}
}

func kaVSSorryMethod(k *kaMapper, v *kaVS, n *node) {
	if v.sorry == nil {
		k.bad(n, "no sorry_server before it")
		return
	}
	var tun fsm.RealServer
	var f fsm.Forward
	if k.method(n, &f, &tun) {
		v.sorry.rs.Forward, v.sorry.fwdSet = f, true
		copyTunnel(v.sorry.rs, &tun)
	}
}

func maskOf(p *fsm.Persistence) string {
	if p == nil {
		return ""
	}
	return p.Netmask
}

// finishSorry gives the real servers the virtual server's weight and
// forwarding unless they set their own (keepalived fills these in after
// reading the whole configuration, so lvs_method may come after
// real_server), and the sorry server too unless sorry_server_lvs_method
// set its own.
// kaVSHysteresis keeps where the hysteresis was set: whether ipvsman can
// take it is known only with the quorum, after the whole block.
func kaVSHysteresis(k *kaMapper, v *kaVS, n *node) {
	if h, ok := k.uint(n, 0, fsm.MaxQuorum); ok {
		v.svc.Hysteresis, v.hystAt = int(h), n
	}
}

// finishQuorum completes quorum and hysteresis: keepalived's quorum is 1
// when not given. ipvsman needs the hysteresis below the quorum; at or
// above it keepalived loses the quorum only at live weight 0, which no
// hysteresis of ipvsman's says, so it is not imported.
func (k *kaMapper) finishQuorum(v *kaVS) {
	if v.svc.Hysteresis == 0 {
		return
	}
	q := max(v.svc.Quorum, 1)
	if v.svc.Hysteresis >= q {
		k.bad(v.hystAt, fmt.Sprintf("ipvsman needs the hysteresis below the quorum (%d): keepalived's would lose the quorum only at weight 0", q))
		v.svc.Hysteresis = 0
		return
	}
	v.svc.Quorum = q
}

func (k *kaMapper) finishDefaults(v *kaVS) {
	k.finishQuorum(v)
	for _, s := range v.servers {
		if !s.weightSet {
			s.rs.Weight = v.weight
		}
		if !s.fwdSet {
			s.rs.Forward = v.fwd
			copyTunnel(s.rs, &v.tun)
		}
	}
	if v.sorry != nil && !v.sorry.fwdSet {
		v.sorry.rs.Forward = v.fwd
		copyTunnel(v.sorry.rs, &v.tun)
		v.sorry.rs.Weight = 1
	}
}

func copyTunnel(dst, src *fsm.RealServer) {
	dst.TunnelType, dst.TunnelPort, dst.TunnelCsum = src.TunnelType, src.TunnelPort, src.TunnelCsum
}

func (k *kaMapper) name(n *node, dst *string) {
	s, ok := k.one(n)
	if !ok {
		return
	}
	*dst = s
	if err := fsm.ValidateNodeID(s); err != nil {
		*dst = ""
		k.bad(n, "not usable as an ipvsman name: use 1-64 letters, digits, '_', '.', '-'")
	}
}

// method reads "NAT|DR|TUN [type ipip|gue port N|gre] [nocsum|csum|remcsum]".
func (k *kaMapper) method(n *node, f *fsm.Forward, tun *fsm.RealServer) bool {
	a := n.args()
	if len(a) == 0 {
		k.bad(n, "want NAT, DR or TUN")
		return false
	}
	*tun = fsm.RealServer{}
	switch a[0] {
	case "NAT":
		*f = fsm.Masquerade
	case "DR":
		*f = fsm.DirectRoute
	case "TUN":
		*f = fsm.Tunnel
	default:
		k.bad(n, "want NAT, DR or TUN")
		return false
	}
	rest := a[1:]
	if len(rest) > 0 && *f != fsm.Tunnel {
		k.bad(n, "options after NAT or DR: ignored")
		return true
	}
	for i := 0; i < len(rest); i++ {
		switch w := rest[i]; {
		case w == "type" && i+1 < len(rest):
			i++
			switch rest[i] {
			case "ipip":
			case "gre":
				tun.TunnelType = fsm.TunnelGRE
			case "gue":
				tun.TunnelType = fsm.TunnelGUE
				if i+2 < len(rest) && rest[i+1] == "port" {
					p, err := strconv.ParseUint(rest[i+2], 10, 16)
					if err != nil || p == 0 {
						k.bad(n, "gue port: want 1-65535")
						return false
					}
					tun.TunnelPort = uint16(p)
					i += 2
				}
			default:
				k.bad(n, "tunnel type: want ipip, gue or gre")
				return false
			}
		case w == "nocsum":
		case w == "csum":
			tun.TunnelCsum = fsm.TunnelCsumOn
		case w == "remcsum":
			tun.TunnelCsum = fsm.TunnelRemCsum
		default:
			k.bad(n, fmt.Sprintf("tunnel option %q: want type ipip|gue port N|gre and nocsum|csum|remcsum", w))
			return false
		}
	}
	return true
}

// serverAddr reads "IP [PORT]" of real_server and sorry_server.
func (k *kaMapper) serverAddr(n *node) (*fsm.RealServer, bool) {
	a := n.args()
	if len(a) < 1 || len(a) > 2 {
		k.bad(n, "want IP [PORT]")
		return nil, false
	}
	addr, err := netip.ParseAddr(a[0])
	if err != nil || addr.Zone() != "" {
		k.bad(n, fmt.Sprintf("address %q: want a numeric IP address (names are not resolved)", a[0]))
		return nil, false
	}
	rs := &fsm.RealServer{Address: addr.Unmap(), Weight: 1, State: fsm.Active}
	if len(a) == 2 {
		p, err := strconv.ParseUint(a[1], 10, 16)
		if err != nil {
			k.bad(n, fmt.Sprintf("port %q: want 0-65535", a[1]))
			return nil, false
		}
		rs.Port = uint16(p)
	}
	return rs, true
}

func (k *kaMapper) realServer(v *kaVS, n *node) {
	rs, ok := k.serverAddr(n)
	if !ok {
		return
	}
	s := &kaServer{rs: rs, at: origin{n.file, n.line, n.key(), n.value()}}
	for _, c := range n.children {
		if k.timing(c, &s.timing) {
			continue
		}
		kaRSKeywords.read(k, s, c, "unknown real_server keyword: ignored")
	}
	v.servers = append(v.servers, s) // the virtual server's defaults are filled in after its whole block
}

// kaRSKeywords are the statements of a real_server block. Its checkers
// are kept as they are: they are read per service, once the virtual
// server's timing is known.
var kaRSKeywords = kaKeywords[*kaServer]{
	"weight":      kaRSWeight,
	"lvs_method":  kaRSMethod,
	"lb_kind":     kaRSMethod,
	"uthreshold":  kaUint(0, 1<<32-1, func(s *kaServer, u uint64) { s.rs.Upper = uint32(u) }),
	"lthreshold":  kaUint(0, 1<<32-1, func(s *kaServer, l uint64) { s.rs.Lower = uint32(l) }),
	"snmp_name":   func(k *kaMapper, s *kaServer, n *node) { k.name(n, &s.rs.Name) },
	"notify_up":   kaNot[*kaServer]("ipvsman's hooks are daemon flags, not configuration: run every ipvsmand with --notify-up (the leader runs it, for any real server; $IPVSMAN_SERVICE and $IPVSMAN_SERVER name it)"),
	"notify_down": kaNot[*kaServer]("ipvsman's hooks are daemon flags, not configuration: run every ipvsmand with --notify-down (the leader runs it, for any real server; $IPVSMAN_SERVICE and $IPVSMAN_SERVER name it)"),
	"HTTP_GET":    kaRSChecker,
	"SSL_GET":     kaRSChecker,
	"TCP_CHECK":   kaRSChecker,
	"DNS_CHECK":   kaRSChecker,
	"MISC_CHECK":  kaRSChecker,
	"PING_CHECK":  kaRSChecker,
	"SMTP_CHECK":  kaRSChecker,
	"UDP_CHECK":   kaRSChecker,
	"BFD_CHECK":   kaRSChecker,
	"FILE_CHECK":  kaRSChecker,
}

// kaRSWeight parses the weight itself rather than with k.uint: its note
// says which weight the real server keeps.
func kaRSWeight(k *kaMapper, s *kaServer, n *node) {
	w, err := strconv.ParseInt(n.value(), 10, 64)
	if err != nil || w < 0 || w > fsm.MaxWeight {
		k.bad(n, fmt.Sprintf("weight out of range 0-%d: the real server keeps weight %d", fsm.MaxWeight, s.rs.Weight))
		return
	}
	s.rs.Weight, s.weightSet = int(w), true
}

func kaRSMethod(k *kaMapper, s *kaServer, n *node) {
	var tun fsm.RealServer
	if k.method(n, &s.rs.Forward, &tun) {
		copyTunnel(s.rs, &tun)
		s.fwdSet = true
	}
}

func kaRSChecker(_ *kaMapper, s *kaServer, n *node) { s.checks = append(s.checks, n) }

// groupKeys expands a virtual_server_group into its keys, in file order:
// each address, range, prefix and fwmark is one; the first becomes the
// service and the others its group (groupService).
func (k *kaMapper) groupKeys(g *node) ([]fsm.ServiceKey, bool) {
	var keys []fsm.ServiceKey
	for _, c := range g.children {
		a := c.words
		if len(a) == 0 {
			k.b.item(c.file, c.line, g.key()+" "+g.value(), "{", "member not imported: a block is not an address")
			continue
		}
		if len(a) >= 2 && a[0] == "fwmark" {
			key, err := parseVSAddr(a[:2])
			if err == nil && len(a) == 3 {
				switch a[2] {
				case "inet6":
					key.IPv6 = true
				case "inet":
				default:
					err = fmt.Errorf("family %q: want inet or inet6", a[2])
				}
			} else if err == nil && len(a) > 3 {
				err = fmt.Errorf("want fwmark N [inet|inet6]")
			}
			if err != nil {
				k.b.item(c.file, c.line, g.key()+" "+g.value(), c.value(), "member not imported: "+err.Error())
				continue
			}
			keys = append(keys, key)
			continue
		}
		addrs, err := expandRange(a[0])
		if err == nil && len(a) > 2 {
			err = fmt.Errorf("want IP|RANGE [PORT]")
		}
		var port uint64
		if err == nil && len(a) == 2 {
			if port, err = strconv.ParseUint(a[1], 10, 16); err != nil {
				err = fmt.Errorf("port %q: want 0-65535", a[1])
			}
		}
		if err != nil {
			k.b.item(c.file, c.line, g.key()+" "+g.value(), strings.Join(a, " "), "member not imported: "+err.Error())
			continue
		}
		for _, ad := range addrs {
			keys = append(keys, fsm.ServiceKey{Protocol: fsm.TCP, Address: ad, Port: uint16(port)})
		}
	}
	if len(keys) == 0 {
		k.b.item(g.file, g.line, g.key(), g.value(), "no member could be imported")
		return nil, false
	}
	return keys, true
}

// expandRange reads keepalived's group address forms: an address,
// A.B.C.D-E (last octet; IPv6: last group, hex), A.B.C.D-E.F.G.H, and
// ADDRESS/PREFIX (every address of the prefix).
func expandRange(s string) ([]netip.Addr, error) {
	if pfx, err := netip.ParsePrefix(s); err == nil {
		pfx = pfx.Masked()
		if pfx.Addr().BitLen()-pfx.Bits() > 10 {
			return nil, fmt.Errorf("%s: more than %d addresses", s, kaMaxExpand)
		}
		var out []netip.Addr
		for a := pfx.Addr(); pfx.Contains(a); a = a.Next() {
			out = append(out, a.Unmap())
		}
		return out, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	first, err := netip.ParseAddr(lo)
	if err != nil || first.Zone() != "" {
		return nil, fmt.Errorf("address %q: want IP, IP-END or IP/PREFIX (names are not resolved)", s)
	}
	first = first.Unmap()
	if !isRange {
		return []netip.Addr{first}, nil
	}
	last, err := netip.ParseAddr(hi)
	if err != nil {
		base := 10
		if first.Is6() {
			base = 16
		}
		n, perr := strconv.ParseUint(hi, base, 16)
		if perr != nil {
			return nil, fmt.Errorf("range %q: want END as a number or an address", s)
		}
		b := first.AsSlice()
		if first.Is4() {
			if n > 255 {
				return nil, fmt.Errorf("range %q: end above 255", s)
			}
			b[3] = byte(n)
		} else {
			b[14], b[15] = byte(n>>8), byte(n)
		}
		last, _ = netip.AddrFromSlice(b)
	}
	last = last.Unmap()
	if last.BitLen() != first.BitLen() || last.Less(first) {
		return nil, fmt.Errorf("range %q: end before start or of another family", s)
	}
	var out []netip.Addr
	for a := first; ; a = a.Next() {
		if len(out) == kaMaxExpand {
			return nil, fmt.Errorf("range %q: more than %d addresses", s, kaMaxExpand)
		}
		out = append(out, a)
		if a == last {
			break
		}
	}
	return out, nil
}
