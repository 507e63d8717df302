package migrate

import (
	"fmt"
	"io/fs"
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/ipvsman/ipvsman/fsm"
)

// Keepalived's defaults, from keepalived.conf(5) and check/check_data.c
// (validate_check_config): they are what a keepalived.conf means when it
// leaves a keyword out, so the import fills them in explicitly.
const (
	kaDelayLoop      = 60.0 // delay_loop, seconds
	kaConnectTimeout = 5.0  // connect_timeout, seconds
	kaPersistence    = 360  // persistence_timeout without a value (IPVS_SVC_PERSISTENT_TIMEOUT)
	kaScheduler      = "wlc"
	kaDNSType        = "SOA" // DNS_CHECK type
	kaDNSName        = "."   // DNS_CHECK name
	kaMaxExpand      = 1024  // members of one virtual_server_group range
)

// notTopology are keepalived's top-level blocks that configure VRRP and the
// daemon rather than the IPVS table.
var notTopology = []string{"global_defs", "vrrp_script", "vrrp_sync_group", "vrrp_track_process", "vrrp_track_file",
	"track_file", "static_ipaddress", "static_routes", "static_rules", "static_track_group", "linkbeat_interfaces",
	"interface_up_down_delays", "bfd_instance", "garp_group", "net_namespace", "net_namespace_ipvs", "instance",
	"use_pid_dir", "linkbeat_use_polling", "child_wait_time", "namespace_with_ipsets"}

const vrrpReason = "ipvsman replaces VRRP with Raft (the leader holds the VIPs)"

// Options say where keepalived's include directives find their files.
type Options struct {
	// FS holds the included files; nil: includes are listed, not read.
	FS fs.FS
	// Path is the imported file's own path in FS (slash-separated, no
	// leading slash); relative includes are relative to its directory.
	// Empty: the name given to the import.
	Path string
}

// FromKeepalived imports keepalived.conf's LVS configuration
// (virtual_server, virtual_server_group) and the virtual_ipaddress of its
// vrrp_instances as VIPs. name labels the items; opts gives includes.
func FromKeepalived(name string, data []byte, opts Options) (*Result, error) {
	b := newBuilder()
	p := opts.Path
	if p == "" {
		p = strings.TrimPrefix(name, "/")
	}
	r := &kaReader{fsys: opts.FS, b: b, stack: []string{p}, total: len(data)}
	nodes := r.tree(r.lex(name, p, data, 0, nil))
	k := &kaMapper{b: b, groups: map[string]*node{}}
	for _, n := range nodes {
		if n.key() == "virtual_server_group" && len(n.args()) >= 1 {
			if _, dup := k.groups[n.args()[0]]; dup {
				b.item(n.file, n.line, n.key(), n.value(), "group defined twice: the first is used")
				continue
			}
			k.groups[n.args()[0]] = n
		}
	}
	for _, n := range nodes {
		switch key := n.key(); {
		case key == "virtual_server":
			k.virtualServer(n)
		case key == "virtual_server_group":
			// read through the virtual_servers that use it
		case key == "vrrp_instance":
			k.vrrpInstance(n)
		case slices.Contains(notTopology, key):
			b.item(n.file, n.line, key, n.value(), vrrpReason)
		case key == "SSL":
			b.item(n.file, n.line, key, "", "ipvsman's https check presents no client certificate and does not verify with a private CA (it is imported as insecure)")
		case key == "":
			b.item(n.file, n.line, "{", "", "block without a keyword: ignored")
		default:
			b.item(n.file, n.line, key, n.value(), "unknown keyword: ignored")
		}
	}
	return b.finish()
}

type kaMapper struct {
	b      *builder
	groups map[string]*node
}

// kaTiming are the checker settings a virtual server passes to its real
// servers and a real server to its checkers (keepalived's inheritance).
type kaTiming struct {
	delayLoop   *float64
	connTimeout *float64
	retry       *int
	retryDelay  *float64 // delay_before_retry, seconds
	vhost       *string
	inhibit     *bool
	alpha       *bool
}

func (t kaTiming) with(o kaTiming) kaTiming {
	if o.delayLoop != nil {
		t.delayLoop = o.delayLoop
	}
	if o.connTimeout != nil {
		t.connTimeout = o.connTimeout
	}
	if o.retry != nil {
		t.retry = o.retry
	}
	if o.retryDelay != nil {
		t.retryDelay = o.retryDelay
	}
	if o.vhost != nil {
		t.vhost = o.vhost
	}
	if o.inhibit != nil {
		t.inhibit = o.inhibit
	}
	if o.alpha != nil {
		t.alpha = o.alpha
	}
	return t
}

func parseBool(s string) (bool, bool) {
	switch strings.ToLower(s) {
	case "on", "true", "yes":
		return true, true
	case "off", "false", "no":
		return false, true
	}
	return false, false
}

func (k *kaMapper) bad(n *node, why string) {
	k.b.item(n.file, n.line, n.key(), n.value(), why)
}

func (k *kaMapper) one(n *node) (string, bool) {
	if len(n.args()) != 1 {
		k.bad(n, "want one value")
		return "", false
	}
	return n.args()[0], true
}

func (k *kaMapper) seconds(n *node) (float64, bool) {
	s, ok := k.one(n)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v > 86400*31 {
		k.bad(n, "want seconds (a number, fractions allowed)")
		return 0, false
	}
	return v, true
}

func (k *kaMapper) uint(n *node, lo, hi uint64) (uint64, bool) {
	s, ok := k.one(n)
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil || v < lo || v > hi {
		k.bad(n, fmt.Sprintf("want a whole number %d-%d", lo, hi))
		return 0, false
	}
	return v, true
}

// kaServer is a real server being read, with its origin and its checker
// (nil: unchecked).
type kaServer struct {
	rs        *fsm.RealServer
	at        origin
	timing    kaTiming
	checks    []*node
	fwdSet    bool
	weightSet bool
	inhibit   bool
}

// kaVS is a virtual_server body, before it is put under its keys.
type kaVS struct {
	svc     fsm.Service
	proto   string
	family  string
	fwd     fsm.Forward
	tun     fsm.RealServer // tunnel settings of lvs_method TUN
	weight  int
	timing  kaTiming
	servers []*kaServer
	sorry   *kaServer
	flagAt  []*node // where each of svc.Flags was set
	hystAt  *node   // where hysteresis was set (finishQuorum)
}

func (k *kaMapper) virtualServer(n *node) {
	at := origin{file: n.file, line: n.line, word: n.key(), val: n.value()}
	keys, ok := k.vsKeys(n, at)
	if !ok {
		return
	}
	v := &kaVS{svc: fsm.Service{Scheduler: ""}, fwd: fsm.Masquerade, weight: 1}
	for _, c := range n.children {
		k.vsKeyword(v, c)
	}
	k.finishDefaults(v)
	if len(v.servers) == 0 {
		k.b.itemAt(at, "no real_server (keepalived ignores such a virtual server too)")
		return
	}
	if v.svc.Scheduler == "" {
		v.svc.Scheduler = kaScheduler
	}
	var flags []string
	for i, f := range v.svc.Flags {
		if p, _, _ := strings.Cut(f, "-"); (p == "sh" || p == "mh") && p != v.svc.Scheduler {
			k.bad(v.flagAt[i], "only for the "+p+" scheduler, and this service uses "+v.svc.Scheduler+" (keepalived ignores it too)")
			continue
		}
		flags = append(flags, f)
	}
	v.svc.Flags = flags
	switch strings.ToUpper(v.proto) {
	case "":
		if slices.ContainsFunc(keys, func(k fsm.ServiceKey) bool { return k.Protocol != fsm.FWMark }) {
			k.b.itemAt(at, "no protocol: keepalived 2.x defaults an address service to UDP (\"no protocol set - defaulting to UDP\"), and so does this import; say protocol TCP if you meant TCP")
		}
	case "TCP", "UDP", "SCTP":
	}
	onFailure := k.onFailure(v)
	for i, key := range keys {
		if key.Protocol != fsm.FWMark {
			key.Protocol = fsm.UDP
			switch strings.ToUpper(v.proto) {
			case "TCP":
				key.Protocol = fsm.TCP
			case "SCTP":
				key.Protocol = fsm.SCTP
			}
		} else if v.family == "inet6" {
			key.IPv6 = true
		} else if v.family == "" {
			key.IPv6 = k.familyOf(v) == "inet6"
		}
		keys[i] = key
	}
	if n.args()[0] == "group" {
		k.groupService(v, keys, at, onFailure)
		return
	}
	for _, key := range keys {
		k.instantiate(v, key, at, onFailure)
	}
}

// groupService maps a virtual server of a virtual_server_group onto one
// service, keyed by the group's first member, whose group (fsm/group.go)
// holds the others: one check per real server, as keepalived runs them,
// and one verdict for every address. A member the service's attributes do
// not suit (another family, port 0 on a service without persistence) is a
// service of its own, as before groups, and listed.
func (k *kaMapper) groupService(v *kaVS, keys []fsm.ServiceKey, at origin, onFailure string) {
	svc := k.instantiate(v, keys[0], at, onFailure)
	if svc == nil {
		return
	}
	for _, key := range keys[1:] {
		if key == svc.Key || slices.Contains(svc.Group, key) {
			k.b.itemAt(at, fmt.Sprintf("group member %s: listed twice in the group: imported once", key))
			continue
		}
		if key.Port != svc.Key.Port && portFollows(v) {
			k.b.itemAt(at, fmt.Sprintf("group member %s: a service of its own, not in the group of %s: a masquerading real server without a port takes each virtual service's port, and a group's members share one destination list", key, svc.Key))
			k.instantiate(v, key, at, onFailure)
			continue
		}
		trial := *svc
		trial.Group = append(slices.Clone(svc.Group), key)
		if err := fsm.ValidateGroup(&trial); err != nil {
			k.b.itemAt(at, fmt.Sprintf("group member %s: a service of its own, not in the group of %s: %v", key, svc.Key, err))
			k.instantiate(v, key, at, onFailure)
			continue
		}
		svc.Group = trial.Group
	}
	if len(svc.Group) > 0 {
		k.b.noteAt(at, fmt.Sprintf("one service %s served on %d more virtual services (its group: %s), one check per real server", svc.Key, len(svc.Group), groupList(svc.Group)))
	}
}

// portFollows reports whether a masquerading real server (or the sorry
// server) of v has no port of its own, so that its port follows the
// virtual service's (a fwmark service's: the packet's).
func portFollows(v *kaVS) bool {
	all := v.servers
	if v.sorry != nil {
		all = append(slices.Clip(all), v.sorry)
	}
	return slices.ContainsFunc(all, func(s *kaServer) bool { return s.rs.Forward == fsm.Masquerade && s.rs.Port == 0 })
}

func groupList(keys []fsm.ServiceKey) string {
	s := make([]string, len(keys))
	for i, k := range keys {
		s[i] = k.String()
	}
	return strings.Join(s, ", ")
}

// familyOf is the address family of a fwmark service: its real servers'
// (keepalived does the same when no ip_family is given).
func (k *kaMapper) familyOf(v *kaVS) string {
	for _, s := range v.servers {
		if s.rs.Forward != fsm.Tunnel {
			if s.rs.Address.Is6() {
				return "inet6"
			}
			return "inet"
		}
	}
	if p := v.svc.Persistence; p != nil && p.Netmask != "" && !strings.Contains(p.Netmask, ".") {
		return "inet6"
	}
	return "inet"
}

// onFailure maps inhibit_on_failure. keepalived removes a failed real
// server from the table unless inhibit_on_failure is set (then its weight
// becomes 0): ipvsman's on_failure "remove" and quiescent (""). ipvsman
// decides per service, so a real server whose setting differs from the
// service's is listed.
func (k *kaMapper) onFailure(v *kaVS) string {
	inh := 0
	for _, s := range v.servers {
		eff := v.timing.with(s.timing).inhibit
		s.inhibit = eff != nil && *eff
		if s.inhibit {
			inh++
		}
	}
	quiescent := inh*2 > len(v.servers) || (v.timing.inhibit != nil && *v.timing.inhibit && inh*2 == len(v.servers))
	for _, s := range v.servers {
		if s.inhibit != quiescent {
			want := "remove (no inhibit_on_failure)"
			if quiescent {
				want = "quiescent (inhibit_on_failure)"
			}
			k.b.itemAt(s.at, "on-failure behaviour differs from most of the service's real servers: ipvsman decides per service, and uses "+want)
		}
	}
	if quiescent {
		return ""
	}
	return fsm.OnFailureRemove
}

// instantiate makes v a service under key; nil when key is taken.
func (k *kaMapper) instantiate(v *kaVS, key fsm.ServiceKey, at origin, onFailure string) *fsm.Service {
	svc := v.svc
	svc.Key = key
	svc.Flags = slices.Clone(v.svc.Flags)
	if v.svc.Persistence != nil {
		p := *v.svc.Persistence
		svc.Persistence = &p
	}
	svc.OnFailure = onFailure
	if key.Protocol != fsm.FWMark && key.Port == 0 && svc.Persistence == nil {
		// keepalived: "zero port only valid for persistent services - setting"
		svc.Persistence = &fsm.Persistence{Timeout: kaPersistence}
	}
	svc.Servers = map[string]*fsm.RealServer{}
	origins := map[string]origin{}
	for _, s := range v.servers {
		rs := *s.rs
		if key.Protocol == fsm.FWMark && rs.Forward != fsm.Masquerade {
			rs.Port = 0 // keepalived clears it: a fwmark service keeps the packet's port
		}
		rs.Check = k.check(v, s, &rs, key)
		if _, dup := svc.Servers[rs.Key()]; dup {
			k.b.itemAt(s.at, "real server listed twice in the virtual server: the second is not imported")
			continue
		}
		svc.Servers[rs.Key()] = &rs
		origins[rs.Key()] = s.at
	}
	hoistCheck(&svc)
	var sorryAt *origin
	if v.sorry != nil {
		r := *v.sorry.rs
		if key.Protocol == fsm.FWMark && r.Forward != fsm.Masquerade {
			r.Port = 0
		}
		svc.Sorry = &r
		sorryAt = &v.sorry.at
	}
	if !k.b.addService(&svc, at, origins, sorryAt) {
		return nil
	}
	return &svc
}

// hoistCheck moves a check every real server shares onto the service, so
// that the topology reads as an operator would write it.
func hoistCheck(svc *fsm.Service) {
	var first *fsm.HealthCheck
	for _, r := range svc.Servers {
		if r.Check == nil || (first != nil && !reflect.DeepEqual(first, r.Check)) {
			return
		}
		first = r.Check
	}
	if first == nil {
		return
	}
	svc.Check = first
	for _, r := range svc.Servers {
		r.Check = nil
	}
}

// vsKeys reads "IP [PORT]", "fwmark N" or "group NAME". Families and
// protocols are settled after the body.
func (k *kaMapper) vsKeys(n *node, at origin) ([]fsm.ServiceKey, bool) {
	a := n.args()
	if len(a) >= 1 && a[0] == "group" {
		if len(a) != 2 {
			k.b.itemAt(at, "want virtual_server group NAME")
			return nil, false
		}
		g := k.groups[a[1]]
		if g == nil {
			k.b.itemAt(at, "no virtual_server_group "+a[1])
			return nil, false
		}
		return k.groupKeys(g)
	}
	key, err := parseVSAddr(a)
	if err != nil {
		k.b.itemAt(at, ""+err.Error())
		return nil, false
	}
	return []fsm.ServiceKey{key}, true
}

func parseVSAddr(a []string) (fsm.ServiceKey, error) {
	if len(a) == 2 && a[0] == "fwmark" {
		m, err := strconv.ParseUint(a[1], 10, 32)
		if err != nil || m == 0 {
			return fsm.ServiceKey{}, fmt.Errorf("fwmark %q: want 1-4294967295", a[1])
		}
		return fsm.ServiceKey{Protocol: fsm.FWMark, Mark: uint32(m)}, nil
	}
	if len(a) < 1 || len(a) > 2 {
		return fsm.ServiceKey{}, fmt.Errorf("want IP [PORT], fwmark N or group NAME")
	}
	addr, err := netip.ParseAddr(a[0])
	if err != nil || addr.Zone() != "" {
		return fsm.ServiceKey{}, fmt.Errorf("address %q: want a numeric IP address (names are not resolved)", a[0])
	}
	k := fsm.ServiceKey{Protocol: fsm.TCP, Address: addr.Unmap()}
	if len(a) == 2 {
		p, err := strconv.ParseUint(a[1], 10, 16)
		if err != nil {
			return fsm.ServiceKey{}, fmt.Errorf("port %q: want 0-65535", a[1])
		}
		k.Port = uint16(p)
	}
	return k, nil
}
