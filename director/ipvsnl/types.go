// Package ipvsnl is a small generic-netlink client for the kernel's IPVS
// family, in the current network namespace. It covers what moby/ipvs lacks:
// destination tunnel type, port and flags (GUE, GRE), the destination's own
// address family (an IPv4 service tunnelling to IPv6 real servers), 64-bit
// counters, and the connection-sync daemons.
//
// Attribute numbers and encodings follow include/uapi/linux/ip_vs.h and
// net/netfilter/ipvs/ip_vs_ctl.c (policies, ip_vs_genl_fill_*,
// ip_vs_genl_parse_*). Integers are in host byte order, except where the
// kernel uses __be16/__be32: service and destination ports, the tunnel port,
// the IPv4 netmask and the IPv4 multicast group. Addresses are 16-byte
// union nf_inet_addr fields, IPv4 in the first four bytes.
//
// The pure encoding and decoding (encode.go, decode.go) is separate from the socket
// (conn.go), so that it is tested on hosts without IPVS.
//
// It knows nothing of the model and imports nothing of the module: it says
// what the kernel holds and sends what it is told; what to change is the
// reconciler's (package director). It never loads the ip_vs module.
package ipvsnl

import (
	"fmt"
	"net/netip"
	"syscall"
)

// Address families (linux/socket.h), as IPVS carries them in u16 attributes.
const (
	AFInet  = syscall.AF_INET  // 2
	AFInet6 = syscall.AF_INET6 // 10
)

// Service flags (IP_VS_SVC_F_* in ip_vs.h).
const (
	FlagPersistent = 0x1
	FlagHashed     = 0x2 // the kernel's own bookkeeping: reported on every service, never sent
	FlagOnePacket  = 0x4
	FlagSched1     = 0x8  // sh-fallback, mh-fallback
	FlagSched2     = 0x10 // sh-port, mh-port
	FlagSched3     = 0x20
)

// Forwarding methods (IP_VS_CONN_F_* & IP_VS_CONN_F_FWD_MASK in ip_vs.h).
const (
	FwdMasq        = 0
	FwdLocalNode   = 1
	FwdTunnel      = 2
	FwdDirectRoute = 3
	FwdMask        = 0x7
)

// Tunnel types (IP_VS_CONN_F_TUNNEL_TYPE_* in ip_vs.h), for FwdTunnel.
const (
	TunIPIP = 0
	TunGUE  = 1 // UDP encapsulation: needs TunPort
	TunGRE  = 2
)

// Tunnel encapsulation flags (IP_VS_TUNNEL_ENCAP_FLAG_* in ip_vs.h). NoCsum
// is the absence of the others, not a bit.
const (
	TunFlagNoCsum  = 0
	TunFlagCsum    = 1 << 0
	TunFlagRemCsum = 1 << 1
)

// Sync daemon states (IP_VS_STATE_* in ip_vs.h).
const (
	DaemonMaster = 1
	DaemonBackup = 2
)

// Stats are a service's or destination's counters and rate estimates, from
// the 64-bit nested attribute (IPVS_SVC_ATTR_STATS64, IPVS_DEST_ATTR_STATS64)
// when the kernel sends it (Linux 4.1 and later), else from the 32-bit one.
type Stats struct {
	Conns, InPkts, OutPkts, InBytes, OutBytes uint64
	CPS, InPPS, OutPPS, InBPS, OutBPS         uint64
}

// Service is a virtual service. It is identified by Family with either
// FWMark (non-zero) or Protocol, Addr and Port.
type Service struct {
	Family   uint16 // AFInet or AFInet6; 0: taken from Addr
	Protocol uint16 // IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP; unused with FWMark
	Addr     netip.Addr
	Port     uint16
	FWMark   uint32
	Sched    string // scheduler name ("wlc", "mh", ...); the kernel requires one
	PEName   string // persistence engine ("sip"), empty for none
	// Flags are IP_VS_SVC_F_* bits. FlagHashed comes back on every service
	// read from the kernel and is never sent: the kernel sets it itself.
	Flags   uint32
	Timeout uint32 // persistence timeout, seconds
	// Netmask is the persistence granularity. IPv4: the mask as a number
	// (255.255.255.0 is 0xFFFFFF00), sent in network byte order as the kernel
	// reads it (__be32). IPv6: the prefix length (1-128), sent as a host-order
	// u32, which is how the kernel compares it. 0 sends a host mask
	// (0xFFFFFFFF or 128), ipvsadm's default; the kernel then reports that.
	Netmask uint32
	Stats   Stats // read only
}

// Dest is a real server of a service.
type Dest struct {
	// Family is the destination's own address family (0: taken from Addr). It
	// may differ from the service's only for FwdTunnel.
	Family uint16
	Addr   netip.Addr
	// Port: with FwdDirectRoute and FwdTunnel the kernel does not rewrite the
	// port, and ipvsadm always sets the service's; callers should do the same.
	Port      uint16
	FwdMethod uint32 // FwdMasq, FwdTunnel, FwdDirectRoute, FwdLocalNode
	Weight    uint32
	Upper     uint32 // connection thresholds, 0: none
	Lower     uint32
	TunType   uint8  // TunIPIP, TunGUE, TunGRE; used with FwdTunnel
	TunPort   uint16 // GUE's UDP port (the kernel refuses GUE without one)
	TunFlags  uint16 // TunFlagCsum, TunFlagRemCsum (GUE and GRE)
	// Read only.
	ActiveConns, InactConns, PersistConns uint32
	Stats                                 Stats
}

// Daemon is a connection-sync daemon (one master and one backup at most).
type Daemon struct {
	State  uint32 // DaemonMaster or DaemonBackup
	Iface  string // multicast interface; the kernel requires one
	SyncID uint32
	// The rest are optional when starting (0 or invalid: the kernel's
	// defaults, maxlen from the interface MTU, 224.0.0.81, 8848, TTL 1) and
	// always reported.
	MaxLen uint16
	Group  netip.Addr // IPv4 or IPv6 multicast group
	Port   uint16
	TTL    uint8
}

func protoName(p uint16) string {
	switch p {
	case syscall.IPPROTO_TCP:
		return "tcp"
	case syscall.IPPROTO_UDP:
		return "udp"
	case syscall.IPPROTO_SCTP:
		return "sctp"
	}
	return fmt.Sprintf("proto-%d", p)
}

func famName(f uint16) string {
	switch f {
	case AFInet:
		return "inet"
	case AFInet6:
		return "inet6"
	}
	return fmt.Sprintf("af-%d", f)
}

// String names the service as ipvsadm would ("tcp 10.0.0.10:80", "fwmark
// 7 inet6"), for error messages.
func (s Service) String() string {
	if s.FWMark != 0 {
		f, _ := serviceFamily(s)
		return fmt.Sprintf("fwmark %d %s", s.FWMark, famName(f))
	}
	return protoName(s.Protocol) + " " + netip.AddrPortFrom(s.Addr, s.Port).String()
}

// String names the destination by address and port.
func (d Dest) String() string { return netip.AddrPortFrom(d.Addr, d.Port).String() }

// String names the daemon by state and sync ID.
func (d Daemon) String() string {
	return fmt.Sprintf("%s sync daemon (syncid %d)", stateName(d.State), d.SyncID)
}

func stateName(s uint32) string {
	switch s {
	case DaemonMaster:
		return "master"
	case DaemonBackup:
		return "backup"
	}
	return fmt.Sprintf("state-%d", s)
}
