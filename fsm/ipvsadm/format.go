package ipvsadm

import (
	"bytes"
	"fmt"
	"io"
	"net/netip"
	"strconv"

	"github.com/ipvsman/ipvsman/fsm"
)

// Counters are kernel statistics for one service or one real server; any
// may be zero when unknown.
type Counters struct {
	ActiveConns, InactConns, PersistConns     uint64
	Conns, InPkts, OutPkts, InBytes, OutBytes uint64 // totals (--stats)
	CPS, InPPS, OutPPS, InBPS, OutBPS         uint64 // rates (--rate)
}

// Stats holds counters by fsm.ServiceKey.String() for service totals and by
// fsm.VerdictKey(serviceKey, serverKey) for each real server.
type Stats map[string]Counters

// Header is the first line of a full listing:
// "IP Virtual Server version 1.2.1 (size=4096)".
type Header struct {
	Version string
	Size    int
}

// Resolver names addresses and ports for non-numeric output. An empty
// result means "no name": the number is printed, as ipvsadm does when
// gethostbyaddr or getservbyport fails.
type Resolver interface {
	Host(addr netip.Addr) string
	Port(port uint16, proto string) string
}

// FormatList writes what `ipvsadm -L` prints for cfg, with st's counters,
// in every variant: plain, -n, --stats, --rate, --exact, --thresholds,
// --persistent-conn, --tun-info, and -t/-u/-f for one service. As in
// ipvsadm, --stats wins over --rate, which wins over --thresholds, then
// --persistent-conn, then --tun-info.
func FormatList(w io.Writer, h Header, cfg *fsm.Config, st Stats, opts ListOptions, resolve Resolver) error {
	if opts.Connections {
		return fmt.Errorf("-c: the connection table is the kernel's; FormatList lists only services")
	}
	if cfg == nil {
		cfg = fsm.NewConfig()
	}
	cfg = withGroups(cfg) // a group's members are kernel services of their own
	if opts.Timeouts {
		tcp, fin, udp := timeoutsOf(cfg.Timeouts)
		_, err := fmt.Fprintf(w, "Timeout (tcp tcpfin udp): %d %d %d\n", tcp, fin, udp)
		return err
	}
	f := formatter{numeric: opts.Numeric || resolve == nil, resolve: resolve, exact: opts.Exact, st: st}
	switch {
	case opts.Stats:
		f.mode = modeStats
	case opts.Rate:
		f.mode = modeRate
	case opts.Thresholds:
		f.mode = modeThresholds
	case opts.Persistent:
		f.mode = modePersist
	case opts.TunInfo:
		f.mode = modeTunInfo
	}
	var b bytes.Buffer
	if opts.Service != nil {
		svc := cfg.Services[opts.Service.String()]
		if svc == nil {
			return fmt.Errorf("service %s: no such service", opts.Service)
		}
		// ipvsadm's list_service prints no version header.
		f.title(&b)
		f.service(&b, svc)
	} else {
		fmt.Fprintf(&b, "IP Virtual Server version %s (size=%d)\n", h.Version, h.Size)
		f.title(&b)
		for _, svc := range sortedServices(cfg) {
			f.service(&b, svc)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

// FormatSave writes what `ipvsadm -S` (with numeric, `ipvsadm -S -n`)
// prints for cfg. One addition: a real server's non-zero -x and -y are
// written after -w, because ipvsadm -S drops them and a save must restore
// what it saved; ipvsadm -R reads them back all the same. A tunnelling
// server's --tun-* options follow, as print_tunnel_rule writes them.
// A service group's members are written as the kernels hold them, each a
// service of its own, and the groups on marker lines after the table
// (group.go).
func FormatSave(w io.Writer, cfg *fsm.Config, numeric bool, resolve Resolver) error {
	if cfg == nil {
		cfg = fsm.NewConfig()
	}
	f := formatter{mode: modeRule, numeric: numeric || resolve == nil, resolve: resolve}
	var b bytes.Buffer
	for _, svc := range sortedServices(withGroups(cfg)) {
		f.service(&b, svc)
	}
	b.WriteString(groupLines(cfg))
	_, err := w.Write(b.Bytes())
	return err
}

type mode int

const (
	modePlain mode = iota
	modeStats
	modeRate
	modeThresholds
	modePersist
	modeTunInfo
	modeRule
)

type formatter struct {
	mode    mode
	numeric bool
	exact   bool
	resolve Resolver
	st      Stats
}

// title is print_title.
func (f *formatter) title(b *bytes.Buffer) {
	const prot, remote = "Prot LocalAddress:Port", "  -> RemoteAddress:Port\n"
	switch f.mode {
	case modeStats:
		fmt.Fprintf(b, "%-33s %8s %8s %8s %8s %8s\n%s", prot, "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes", remote)
	case modeRate:
		fmt.Fprintf(b, "%-33s %8s %8s %8s %8s %8s\n%s", prot, "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS", remote)
	case modeThresholds:
		fmt.Fprintf(b, "%-33s %-10s %-10s %-10s %-10s\n%s", prot, "Uthreshold", "Lthreshold", "ActiveConn", "InActConn", remote)
	case modePersist:
		fmt.Fprintf(b, "%-33s %-9s %-11s %-10s %-10s\n%s", prot, "Weight", "PersistConn", "ActiveConn", "InActConn", remote)
	case modeTunInfo:
		b.WriteString(prot + " Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n")
	case modePlain:
		b.WriteString(prot + " Scheduler Flags\n" +
			"  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n")
	}
}

// service is print_service_entry: the service line, then its servers.
func (f *formatter) service(b *bytes.Buffer, s *fsm.Service) {
	k := s.Key
	proto := portProto(k.Protocol)
	var name string
	switch {
	case k.Protocol == fsm.FWMark && f.mode == modeRule:
		name = "-f " + strconv.FormatUint(uint64(k.Mark), 10)
		if k.IPv6 {
			name += " -6"
		}
	case k.Protocol == fsm.FWMark:
		name = "FWM  " + strconv.FormatUint(uint64(k.Mark), 10)
		if k.IPv6 {
			name += " IPv6"
		}
	case f.mode == modeRule && k.Protocol == fsm.SCTP:
		name = "--sctp-service " + f.addrPort(k.Address, k.Port, proto)
	case f.mode == modeRule:
		name = "-" + proto[:1] + " " + f.addrPort(k.Address, k.Port, proto)
	default:
		name = fmt.Sprintf("%-4s %s", protoName(k.Protocol), f.addrPort(k.Address, k.Port, proto))
		if !k.Address.Is6() {
			name = truncate(name, 33)
		}
	}
	c := f.st[k.String()]
	switch f.mode {
	case modeRule:
		fmt.Fprintf(b, "-A %s -s %s", name, s.Scheduler)
		if p := s.Persistence; p != nil {
			fmt.Fprintf(b, " -p %d", p.Timeout)
			if m := shownMask(k, p.Netmask); m != "" {
				b.WriteString(" -M " + m)
			}
			if p.Engine != "" {
				b.WriteString(" --pe " + p.Engine)
			}
		}
		if s.OnePacket {
			b.WriteString(" -o")
		}
		if fl := schedFlags(s); fl != "" {
			b.WriteString(" -b " + fl)
		}
	case modeStats:
		fmt.Fprintf(b, "%-33s", name)
		f.largenums(b, c.Conns, c.InPkts, c.OutPkts, c.InBytes, c.OutBytes)
	case modeRate:
		fmt.Fprintf(b, "%-33s", name)
		f.largenums(b, c.CPS, c.InPPS, c.OutPPS, c.InBPS, c.OutBPS)
	default:
		b.WriteString(name + " " + s.Scheduler)
		if fl := schedFlags(s); fl != "" {
			b.WriteString(" (" + fl + ")")
		}
		if p := s.Persistence; p != nil {
			fmt.Fprintf(b, " persistent %d", p.Timeout)
			if m := shownMask(k, p.Netmask); m != "" {
				b.WriteString(" mask " + m)
			}
			if p.Engine != "" {
				b.WriteString(" pe " + p.Engine)
			}
		}
		if s.OnePacket {
			b.WriteString(" ops")
		}
	}
	b.WriteByte('\n')
	for _, r := range sortedServers(s) {
		f.server(b, name, k, proto, r)
	}
}

// server is the destination part of print_service_entry.
func (f *formatter) server(b *bytes.Buffer, svcName string, k fsm.ServiceKey, proto string, r *fsm.RealServer) {
	dname := f.addrPort(r.Address, r.Port, proto)
	if f.mode != modeRule && !r.Address.Is6() {
		dname = truncate(dname, 28)
	}
	c := f.st[fsm.VerdictKey(k.String(), r.Key())]
	switch f.mode {
	case modeRule:
		fmt.Fprintf(b, "-a %s -r %s %s -w %d", svcName, dname, fwdSwitch(r.Forward), r.Weight)
		if r.Upper != 0 {
			fmt.Fprintf(b, " -x %d", r.Upper)
		}
		if r.Lower != 0 {
			fmt.Fprintf(b, " -y %d", r.Lower)
		}
		if r.Forward == fsm.Tunnel {
			b.WriteString(tunnelRule(r))
		}
		b.WriteByte('\n')
	case modeStats:
		fmt.Fprintf(b, "  -> %-28s", dname)
		f.largenums(b, c.Conns, c.InPkts, c.OutPkts, c.InBytes, c.OutBytes)
		b.WriteByte('\n')
	case modeRate:
		// ipvsadm prints the packet rates unscaled, the byte rates scaled.
		fmt.Fprintf(b, "  -> %-28s %8d %8d %8d", dname, c.CPS, c.InPPS, c.OutPPS)
		f.largenums(b, c.InBPS, c.OutBPS)
		b.WriteByte('\n')
	case modeThresholds:
		fmt.Fprintf(b, "  -> %-28s %-10d %-10d %-10d %-10d\n", dname, r.Upper, r.Lower, c.ActiveConns, c.InactConns)
	case modePersist:
		fmt.Fprintf(b, "  -> %-28s %-9d %-11d %-10d %-10d\n", dname, r.Weight, c.PersistConns, c.ActiveConns, c.InactConns)
	case modeTunInfo:
		fmt.Fprintf(b, "  -> %-28s %-7s %-13s %-6d %-10d %-10d\n", dname, ForwardName(r.Forward), tunInfo(r), r.Weight, c.ActiveConns, c.InactConns)
	default:
		fmt.Fprintf(b, "  -> %-28s %-7s %-6d %-10d %-10d\n", dname, ForwardName(r.Forward), r.Weight, c.ActiveConns, c.InactConns)
	}
}

// tunnelRule is what ipvsadm 1.31's print_tunnel_rule writes after -w for a
// tunnelling server: the type always, gue's port, and for gue and gre the
// checksum switch even when it is the default --tun-nocsum.
func tunnelRule(r *fsm.RealServer) string {
	switch r.TunnelType {
	case "":
		return " --tun-type ipip"
	case fsm.TunnelGUE:
		return fmt.Sprintf(" --tun-type gue --tun-port %d %s", r.TunnelPort, csumSwitch(r.TunnelCsum))
	case fsm.TunnelGRE:
		return " --tun-type gre " + csumSwitch(r.TunnelCsum)
	}
	return "" // not a valid model; ipvsadm prints no tunnel options either
}

func csumSwitch(c fsm.TunnelCsum) string {
	switch c {
	case fsm.TunnelCsumOn:
		return "--tun-csum"
	case fsm.TunnelRemCsum:
		return "--tun-remcsum"
	}
	return "--tun-nocsum"
}

// tunInfo is fwd_tun_info, the TunnelInfo column of --tun-info: "ipip",
// "gue:PORT:FLAGS" or "gre:FLAGS", with FLAGS -c (no checksum), +c
// (checksum) or r+c (remote checksum); n/a for other forwarding methods.
func tunInfo(r *fsm.RealServer) string {
	if r.Forward != fsm.Tunnel {
		return "n/a"
	}
	flags := "-c"
	switch r.TunnelCsum {
	case fsm.TunnelCsumOn:
		flags = "+c"
	case fsm.TunnelRemCsum:
		flags = "r+c"
	}
	switch r.TunnelType {
	case "":
		return "ipip"
	case fsm.TunnelGUE:
		return fmt.Sprintf("gue:%d:%s", r.TunnelPort, flags)
	case fsm.TunnelGRE:
		return "gre:" + flags
	}
	return "n/a"
}

// largenums is print_largenum for each value: 9 columns, scaled with
// K/M/G/T unless --exact.
func (f *formatter) largenums(b *bytes.Buffer, vs ...uint64) {
	for _, i := range vs {
		switch {
		case f.exact:
			s := strconv.FormatUint(i, 10)
			fmt.Fprintf(b, "%*s", max(9, len(s)+1), s)
		case i < 100000000:
			fmt.Fprintf(b, "%9d", i)
		case i < 1000000000:
			fmt.Fprintf(b, "%8dK", i/1000)
		case i < 100000000000:
			fmt.Fprintf(b, "%8dM", i/1000000)
		case i < 100000000000000:
			fmt.Fprintf(b, "%8dG", i/1000000000)
		default:
			fmt.Fprintf(b, "%8dT", i/1000000000000)
		}
	}
}

// addrPort is addrport_to_anyname: brackets follow the address family
// even when a name is printed, and the result fits ipvsadm's 60-byte buffer.
func (f *formatter) addrPort(a netip.Addr, port uint16, proto string) string {
	host, p := ntop(a), strconv.Itoa(int(port))
	if !f.numeric {
		if n := f.resolve.Host(a); n != "" {
			host = n
		}
		if n := f.resolve.Port(port, proto); n != "" {
			p = n
		}
	}
	if a.Is6() {
		host = "[" + host + "]"
	}
	return truncate(host+":"+p, 59)
}

// ntop formats like glibc's inet_ntop, which differs from netip only for
// IPv4-compatible IPv6 addresses (::a.b.c.d).
func ntop(a netip.Addr) string {
	if a.Is6() && !a.Is4In6() {
		b := a.As16()
		if [12]byte(b[:12]) == [12]byte{} && (b[12] != 0 || b[13] != 0) {
			return "::" + netip.AddrFrom4([4]byte(b[12:])).String()
		}
	}
	return a.String()
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// shownMask is the persistence netmask ipvsadm prints: none for the host
// mask (/32, or /128 for IPv6).
func shownMask(k fsm.ServiceKey, mask string) string {
	if k.Family() == "inet6" {
		if n, err := strconv.Atoi(mask); err == nil {
			mask = strconv.Itoa(n)
		}
		if mask == "128" {
			return ""
		}
		return mask
	}
	if mask == "255.255.255.255" {
		return ""
	}
	return mask
}

// schedFlags is print_sched_flags. The kernel keeps three flag bits whose
// names depend on the scheduler, so a flag prints under the scheduler's
// name for its bit: flag-1 on sh prints sh-fallback, as in ipvsadm.
// flag-3 has no sh/mh name; ipvsadm would print nothing, which -R cannot
// read back, so it prints as flag-3.
func schedFlags(s *fsm.Service) string {
	var bits uint
	for _, fl := range s.Flags {
		switch fl {
		case "sh-fallback", "mh-fallback", "flag-1":
			bits |= 1
		case "sh-port", "mh-port", "flag-2":
			bits |= 2
		case "flag-3":
			bits |= 4
		}
	}
	names := [3]string{"flag-1", "flag-2", "flag-3"}
	switch s.Scheduler {
	case "sh", "mh":
		names[0], names[1] = s.Scheduler+"-fallback", s.Scheduler+"-port"
	}
	out := ""
	for i, n := range names {
		if bits&(1<<i) != 0 {
			if out != "" {
				out += ","
			}
			out += n
		}
	}
	return out
}

func portProto(p fsm.Protocol) string {
	if p == fsm.UDP || p == fsm.SCTP {
		return string(p)
	}
	return "tcp" // ipvsadm makes fwmark services TCP
}

func protoName(p fsm.Protocol) string {
	switch p {
	case fsm.UDP:
		return "UDP"
	case fsm.SCTP:
		return "SCTP"
	}
	return "TCP"
}

// ForwardName is ipvsadm -L's word for a forwarding method: Masq, Tunnel,
// Local or Route.
func ForwardName(f fsm.Forward) string {
	switch f {
	case fsm.Masquerade:
		return "Masq"
	case fsm.Tunnel:
		return "Tunnel"
	case fsm.LocalNode:
		return "Local"
	}
	return "Route"
}

// fwdSwitch is ipvsadm -S's option for a forwarding method; ipvsadm has
// none for the local node and prints -g, which a loopback address turns
// back into the local node (fsm.RealServer.LocalIfLoopback).
func fwdSwitch(f fsm.Forward) string {
	switch f {
	case fsm.Masquerade:
		return "-m"
	case fsm.Tunnel:
		return "-i"
	}
	return "-g"
}

// timeoutsOf gives the three timeouts as ipvsadm -L --timeout prints them;
// a timeout the model leaves to the kernel shows Linux's default.
func timeoutsOf(t *fsm.Timeouts) (tcp, fin, udp uint32) {
	tcp, fin, udp = fsm.KernelTCPTimeout, fsm.KernelTCPFinTimeout, fsm.KernelUDPTimeout
	if t == nil {
		return
	}
	pick := func(v, def uint32) uint32 {
		if v == 0 {
			return def
		}
		return v
	}
	return pick(t.TCP, tcp), pick(t.TCPFin, fin), pick(t.UDP, udp)
}
