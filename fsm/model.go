// Package fsm holds the replicated model of the load balancer: the types,
// the versioned command encoding and the deterministic state machine that
// every node applies in Raft log order. It does no I/O, reads no clock and
// starts no goroutines: time and actor come from the command.
package fsm

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// Protocol is the kind of virtual service, as ipvsadm's -t, -u,
// --sctp-service and -f name it.
type Protocol string

const (
	TCP    Protocol = "tcp"
	UDP    Protocol = "udp"
	SCTP   Protocol = "sctp"
	FWMark Protocol = "fwmark"
)

// Forward is a real server's packet-forwarding method (ipvsadm -g, -i, -m).
type Forward string

const (
	DirectRoute Forward = "droute"
	Tunnel      Forward = "tunnel"
	Masquerade  Forward = "masq"
	// LocalNode is the director itself (ipvsadm's "Local"): the kernel
	// hands the packet to the director's own stack, to whatever listens
	// on the virtual address and port there, without rewriting it. Only
	// for a loopback real server (127.0.0.1, ::1), which names the same
	// thing on every director: whichever of them holds the VIP.
	LocalNode Forward = "local"
)

// ServerState is the operator's intent for a real server, independent of health.
type ServerState string

const (
	Active    ServerState = "active"
	Suspended ServerState = "suspended"
	Draining  ServerState = "draining"
)

// Health is the replicated verdict of a real server's health checks.
type Health string

const (
	HealthUnknown Health = "unknown"
	HealthUp      Health = "up"
	HealthDown    Health = "down"
)

// Limits that ipvsadm and the kernel enforce.
const (
	MaxWeight          = 65535
	DefaultPersistence = 300 // seconds, ipvsadm's default for -p without a value
	DefaultWeight      = 1
	MaxPersistence     = 86400 * 31 // seconds, as ipvsadm allows
)

// Schedulers Linux ships today, by ipvsadm name (twos from 6.7 on). The
// list is for help texts and completion only: the model takes any name a
// kernel module may provide (ValidateSchedulerName), and the leader checks
// its own kernel has it before a write commits.
var Schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}

// SchedulerFlags are ipvsadm's -b flag names. flag-1..3 are the generic names.
var SchedulerFlags = []string{"sh-fallback", "sh-port", "mh-fallback", "mh-port", "flag-1", "flag-2", "flag-3"}

// ServiceKey identifies a virtual service. For TCP and UDP it is address and
// port; for fwmark the mark and the address family.
type ServiceKey struct {
	Protocol Protocol   `json:"protocol"`
	Address  netip.Addr `json:"address,omitzero"`
	Port     uint16     `json:"port,omitempty"`
	Mark     uint32     `json:"mark,omitempty"`
	IPv6     bool       `json:"ipv6,omitempty"` // fwmark services only
}

// String is the canonical key: "tcp:10.0.0.1:80", "udp:[2001:db8::1]:53",
// "fwmark:1", "fwmark6:1". It is also the map key in Config.Services.
func (k ServiceKey) String() string {
	if k.Protocol == FWMark {
		if k.IPv6 {
			return "fwmark6:" + strconv.FormatUint(uint64(k.Mark), 10)
		}
		return "fwmark:" + strconv.FormatUint(uint64(k.Mark), 10)
	}
	return string(k.Protocol) + ":" + netip.AddrPortFrom(k.Address, k.Port).String()
}

// Family reports "inet" or "inet6".
func (k ServiceKey) Family() string {
	if k.Protocol == FWMark {
		if k.IPv6 {
			return "inet6"
		}
		return "inet"
	}
	if k.Address.Is4() {
		return "inet"
	}
	return "inet6"
}

// ParseServiceKey parses the canonical form produced by String.
func ParseServiceKey(s string) (ServiceKey, error) {
	proto, rest, ok := strings.Cut(s, ":")
	if !ok {
		return ServiceKey{}, fmt.Errorf("service %q: want protocol:address:port or fwmark:MARK", s)
	}
	switch Protocol(proto) {
	case TCP, UDP, SCTP:
		ap, err := netip.ParseAddrPort(rest)
		if err != nil {
			return ServiceKey{}, fmt.Errorf("service %q: %w", s, err)
		}
		return ServiceKey{Protocol: Protocol(proto), Address: ap.Addr().Unmap(), Port: ap.Port()}, nil
	case FWMark, "fwmark6":
		m, err := strconv.ParseUint(rest, 10, 32)
		if err != nil {
			return ServiceKey{}, fmt.Errorf("service %q: mark %q: %w", s, rest, err)
		}
		return ServiceKey{Protocol: FWMark, Mark: uint32(m), IPv6: proto == "fwmark6"}, nil
	}
	return ServiceKey{}, fmt.Errorf("service %q: protocol %q: want tcp, udp, sctp or fwmark", s, proto)
}

// Persistence is ipvsadm's -p [timeout], -M netmask and --pe engine.
type Persistence struct {
	Timeout uint32 `json:"timeout"`           // seconds
	Netmask string `json:"netmask,omitempty"` // dotted IPv4 mask or IPv6 prefix length; empty = host
	// Engine is the persistence engine (ipvsadm --pe): "sip" keys
	// persistence on a SIP message's Call-ID rather than the client
	// address; empty for none.
	Engine string `json:"engine,omitempty"`
}

// Service is a virtual service and its real servers. Values reachable from a
// committed Config are never mutated: a change clones the service, so that
// history entries can share unchanged services safely.
type Service struct {
	Key         ServiceKey             `json:"key"`
	Name        string                 `json:"name,omitempty"`
	Scheduler   string                 `json:"scheduler"`
	Flags       []string               `json:"flags,omitempty"` // sorted, from SchedulerFlags
	Persistence *Persistence           `json:"persistence,omitempty"`
	OnePacket   bool                   `json:"one_packet,omitempty"`
	Servers     map[string]*RealServer `json:"servers,omitempty"` // by RealServer.Key()
	// OnFailure is what happens to a real server that is suspended or
	// unhealthy: "" (quiescent: weight 0, established connections finish)
	// or "remove" (taken out of the kernel table). Draining is always quiescent.
	OnFailure string `json:"on_failure,omitempty"`
	// Sorry is put in the kernel table only while no real server is usable.
	Sorry *RealServer `json:"sorry_server,omitempty"`
	// Check is how the leader checks the real servers; nil: not checked.
	Check *HealthCheck `json:"check,omitempty"`
	// Pool holds real servers defined for the service but not assigned
	// (pool.go): in no kernel table, not checked. By RealServer.Key(),
	// never a key of Servers; nil when empty.
	Pool map[string]*RealServer `json:"pool,omitempty"`
	// Group lists further virtual services this service is served on
	// (group.go): every one is a kernel service of its own with this
	// service's attributes and destinations, and the same checks and
	// verdicts. Sorted, never the service's own key; nil when empty.
	Group []ServiceKey `json:"group,omitempty"`
	// Quorum is the least total weight of usable real servers the service
	// runs on, and Hysteresis the margin around it (keepalived's quorum
	// and hysteresis; quorum.go): below Quorum-Hysteresis the service
	// loses its quorum, at Quorum+Hysteresis it gains it again. 0: no
	// quorum, the sorry server stands in only when no server is usable.
	Quorum     int `json:"quorum,omitempty"`
	Hysteresis int `json:"hysteresis,omitempty"`
}

// OnFailureRemove takes unusable real servers out of the kernel table.
const OnFailureRemove = "remove"

// RealServer is a destination of a virtual service.
type RealServer struct {
	Name    string      `json:"name,omitempty"`
	Address netip.Addr  `json:"address"`
	Port    uint16      `json:"port"`
	Forward Forward     `json:"forward"`
	Weight  int         `json:"weight"`
	Upper   uint32      `json:"upper_threshold,omitempty"` // ipvsadm -x, 0 = none
	Lower   uint32      `json:"lower_threshold,omitempty"` // ipvsadm -y, 0 = none
	State   ServerState `json:"state"`
	// Tunnel encapsulation, for Forward == Tunnel only (ipvsadm --tun-type,
	// --tun-port, --tun-nocsum/--tun-csum/--tun-remcsum).
	TunnelType TunnelType `json:"tunnel_type,omitempty"` // "" = ipip
	TunnelPort uint16     `json:"tunnel_port,omitempty"` // gue only, required there
	TunnelCsum TunnelCsum `json:"tunnel_csum,omitempty"` // gue and gre; "" = nocsum
	// Check replaces the service's check for this server.
	Check *HealthCheck `json:"check,omitempty"`
}

// TunnelType is the encapsulation of a tunnelled real server.
type TunnelType string

const (
	TunnelIPIP TunnelType = "ipip"
	TunnelGUE  TunnelType = "gue"
	TunnelGRE  TunnelType = "gre"
)

// TunnelCsum is the checksum mode of GUE and GRE encapsulation.
type TunnelCsum string

const (
	TunnelNoCsum  TunnelCsum = "nocsum"
	TunnelCsumOn  TunnelCsum = "csum"
	TunnelRemCsum TunnelCsum = "remcsum"
)

// Key is "10.3.0.10:8080" or "[2001:db8::10]:80".
func (r *RealServer) Key() string { return netip.AddrPortFrom(r.Address, r.Port).String() }

// LocalIfLoopback makes a direct-routing real server at a loopback address
// the local node, as kernels once did for ipvsadm: it is what ipvsadm -S
// prints ("-g") for a "Local" server, so that -S | -R restores it. The
// parsers call it, so the log says "local" itself; Apply does not, so that
// logs written before local nodes existed replay as they were.
func (r *RealServer) LocalIfLoopback() {
	if (r.Forward == DirectRoute || r.Forward == "") && r.Address.IsLoopback() {
		r.Forward = LocalNode
	}
}

// VIP is a virtual IP the leader holds on an interface.
type VIP struct {
	Prefix    netip.Prefix `json:"prefix"`
	Interface string       `json:"interface"`
	// Interfaces overrides Interface on the named nodes (node ID ->
	// interface), for directors whose NICs are named differently.
	Interfaces map[string]string `json:"interfaces,omitempty"`
	// Mode is who serves the VIP: "" (the leader alone holds it and
	// announces it by ARP/NA) or VIPModeECMP (every ready node, announced
	// over BGP; ecmp.go).
	Mode string `json:"mode,omitempty"`
}

// InterfaceOn is the interface that node holds the VIP on.
func (v VIP) InterfaceOn(node string) string {
	if i, ok := v.Interfaces[node]; ok {
		return i
	}
	return v.Interface
}

// Equal reports whether two VIP definitions are the same.
func (v VIP) Equal(o VIP) bool {
	if v.Prefix != o.Prefix || v.Interface != o.Interface || v.Mode != o.Mode || len(v.Interfaces) != len(o.Interfaces) {
		return false
	}
	for n, i := range v.Interfaces {
		if oi, ok := o.Interfaces[n]; !ok || oi != i {
			return false
		}
	}
	return true
}

// Describe is "on eth0" or "on eth0 (d2: ens4)", with " mode ecmp" after
// it for an ecmp VIP.
func (v VIP) Describe() string {
	s := "on " + v.Interface
	if len(v.Interfaces) > 0 {
		var o []string
		for _, n := range slices.Sorted(maps.Keys(v.Interfaces)) {
			o = append(o, n+": "+v.Interfaces[n])
		}
		s += " (" + strings.Join(o, ", ") + ")"
	}
	if v.ECMP() {
		s += " mode ecmp"
	}
	return s
}

// Config is the operator-visible topology: what the history versions and
// what rollback restores.
type Config struct {
	Services map[string]*Service `json:"services"` // by ServiceKey.String()
	VIPs     map[string]VIP      `json:"vips"`     // by Prefix.String()
	Timeouts *Timeouts           `json:"timeouts,omitempty"`
	Sync     *Sync               `json:"sync,omitempty"` // nil: on, with the defaults (SyncOf)
}

// Timeouts are the kernel's connection timeouts in seconds (ipvsadm
// --set). Zero leaves the kernel's value alone; nil manages none of them.
type Timeouts struct {
	TCP    uint32 `json:"tcp,omitempty" yaml:"tcp,omitempty"`
	TCPFin uint32 `json:"tcp_fin,omitempty" yaml:"tcp_fin,omitempty"`
	UDP    uint32 `json:"udp,omitempty" yaml:"udp,omitempty"`
}

// Linux's defaults, shown where the model leaves a timeout to the kernel.
const (
	KernelTCPTimeout    = 900
	KernelTCPFinTimeout = 120
	KernelUDPTimeout    = 300
)

// NewConfig returns an empty config with its maps made.
func NewConfig() *Config {
	return &Config{Services: map[string]*Service{}, VIPs: map[string]VIP{}}
}

// Clone copies the maps but shares the (immutable) services.
func (c *Config) Clone() *Config {
	// maps.Clone copies the map's tables whole, several times faster
	// than inserting thousands of services one by one.
	n := &Config{Services: maps.Clone(c.Services), VIPs: maps.Clone(c.VIPs)}
	if n.Services == nil {
		n.Services = map[string]*Service{}
	}
	if n.VIPs == nil {
		n.VIPs = map[string]VIP{}
	}
	if c.Timeouts != nil {
		t := *c.Timeouts
		n.Timeouts = &t
	}
	if c.Sync != nil {
		s := *c.Sync
		n.Sync = &s
	}
	return n
}

// SortedServiceKeys lists the services in canonical order, for output.
func (c *Config) SortedServiceKeys() []string {
	keys := make([]string, 0, len(c.Services))
	for k := range c.Services {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// SortedServerKeys lists a service's real servers in canonical order.
func (s *Service) SortedServerKeys() []string {
	keys := make([]string, 0, len(s.Servers))
	for k := range s.Servers {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Clone deep-copies a service so that it can be changed.
func (s *Service) Clone() *Service {
	n := *s
	n.Flags = slices.Clone(s.Flags)
	if s.Persistence != nil {
		p := *s.Persistence
		n.Persistence = &p
	}
	if s.Sorry != nil {
		r := *s.Sorry
		n.Sorry = &r
	}
	n.Servers = make(map[string]*RealServer, len(s.Servers))
	for k, v := range s.Servers {
		r := *v
		n.Servers[k] = &r
	}
	n.Group = slices.Clone(s.Group)
	if s.Pool != nil {
		n.Pool = make(map[string]*RealServer, len(s.Pool))
		for k, v := range s.Pool {
			r := *v
			n.Pool[k] = &r
		}
	}
	return &n
}

// Verdict is the committed result of a real server's health checks.
type Verdict struct {
	Health Health `json:"health"`
	// Weight, when set, replaces the configured weight (an exec check's
	// "weight N").
	Weight *int   `json:"weight,omitempty"`
	Since  int64  `json:"since"` // unix nanoseconds, stamped by the leader
	Reason string `json:"reason,omitempty"`
}

// VerdictKey names a real server of a service: "tcp:10.0.0.1:80/10.3.0.10:8080".
func VerdictKey(service, server string) string { return service + "/" + server }

// HistoryEntry is one numbered configuration version.
type HistoryEntry struct {
	Version uint64  `json:"version"`
	Time    int64   `json:"time"` // unix nanoseconds
	Actor   string  `json:"actor"`
	Request string  `json:"request,omitempty"` // the client's request ID, when it gave one
	Summary string  `json:"summary"`
	Config  *Config `json:"config"`
}

// Member is a cluster node's addresses, recorded when it bootstraps or joins
// so that followers know where to forward writes and a restarted node knows
// whom to gossip with.
type Member struct {
	ID         string `json:"id"`
	RaftAddr   string `json:"raft_addr"`
	APIAddr    string `json:"api_addr"`
	GossipAddr string `json:"gossip_addr,omitempty"`
}
