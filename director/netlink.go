package director

import (
	"fmt"
	"net/netip"
	"syscall"

	"github.com/ipvsman/ipvsman/director/ipvsnl"
	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

// Netlink is the kernel IPVS table of the current network namespace,
// through our generic-netlink client. It replaced moby/ipvs as the one door
// to the kernel: moby sends the IPv4 persistence netmask in the wrong byte
// order (the lab showed -M 0.255.255.255), reads only 32-bit counters,
// cannot send a destination's own address family or tunnel type, and shells
// out to modprobe.
type Netlink struct {
	c *ipvsnl.Conn
}

// NewNetlink opens the kernel's IPVS table in this network namespace.
func NewNetlink() (*Netlink, error) {
	c, err := ipvsnl.Dial()
	if err != nil {
		return nil, fmt.Errorf("open ipvs: %w", err)
	}
	return &Netlink{c: c}, nil
}

// Close releases the socket.
func (n *Netlink) Close() { n.c.Close() }

// Read dumps the whole table.
func (n *Netlink) Read() (Table, error) {
	t, _, err := n.ReadStats()
	return t, err
}

// ReadStats dumps the whole table with the kernel's 64-bit counters, keyed
// as ipvsadm.Stats expects.
func (n *Netlink) ReadStats() (Table, ipvsadm.Stats, error) {
	svcs, err := n.c.Services()
	if err != nil {
		return nil, nil, err
	}
	t, st := Table{}, ipvsadm.Stats{}
	for _, s := range svcs {
		ks, ok := fromNetlinkService(s)
		if !ok {
			continue // AH/ESP: a protocol the model does not have, not ours to touch
		}
		dests, err := n.c.Dests(s)
		if err != nil {
			return nil, nil, err
		}
		key := ks.Key.String()
		total := counters(s.Stats)
		for _, d := range dests {
			kd := fromNetlinkDest(d)
			ks.Dests[kd.Key()] = kd
			ks.Order = append(ks.Order, kd.Key()) // the dump walks the kernel's list in order
			c := counters(d.Stats)
			c.ActiveConns, c.InactConns, c.PersistConns = uint64(d.ActiveConns), uint64(d.InactConns), uint64(d.PersistConns)
			total.ActiveConns += c.ActiveConns
			total.InactConns += c.InactConns
			total.PersistConns += c.PersistConns
			st[fsm.VerdictKey(key, kd.Key())] = c
		}
		st[key] = total
		t[key] = ks
	}
	return t, st, nil
}

// ReadServices lists the services without their destinations
// (PartReader).
func (n *Netlink) ReadServices() (Table, error) {
	svcs, err := n.c.Services()
	if err != nil {
		return nil, err
	}
	t := Table{}
	for _, s := range svcs {
		if ks, ok := fromNetlinkService(s); ok {
			t[ks.Key.String()] = ks
		}
	}
	return t, nil
}

// ReadDests returns s with the destinations the kernel lists for it, in
// its list order (PartReader).
func (n *Netlink) ReadDests(s Service) (Service, error) {
	dests, err := n.c.Dests(toNetlinkService(s))
	if err != nil {
		return s, err
	}
	s.Dests, s.Order = make(map[string]Dest, len(dests)), make([]string, 0, len(dests))
	for _, d := range dests {
		kd := fromNetlinkDest(d)
		s.Dests[kd.Key()] = kd
		s.Order = append(s.Order, kd.Key())
	}
	return s, nil
}

// Apply performs one operation.
func (n *Netlink) Apply(op Op) error {
	s := toNetlinkService(op.Service)
	var err error
	switch op.Kind {
	case CreateService:
		err = n.c.NewService(s)
	case UpdateService:
		err = n.c.UpdateService(s)
	case DeleteService:
		err = n.c.DelService(s)
	case CreateDest:
		err = n.c.NewDest(s, toNetlinkDest(op.Dest))
	case UpdateDest:
		err = n.c.UpdateDest(s, toNetlinkDest(op.Dest))
	case DeleteDest:
		err = n.c.DelDest(s, toNetlinkDest(op.Dest))
	}
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// Timeouts reads the kernel's tcp, tcpfin and udp timeouts.
func (n *Netlink) Timeouts() (fsm.Timeouts, error) {
	tcp, fin, udp, err := n.c.Timeouts()
	return fsm.Timeouts{TCP: tcp, TCPFin: fin, UDP: udp}, err
}

// SetTimeouts sets them; a zero leaves one unchanged.
func (n *Netlink) SetTimeouts(t fsm.Timeouts) error { return n.c.SetTimeouts(t.TCP, t.TCPFin, t.UDP) }

func counters(s ipvsnl.Stats) ipvsadm.Counters {
	return ipvsadm.Counters{
		Conns: s.Conns, InPkts: s.InPkts, OutPkts: s.OutPkts, InBytes: s.InBytes, OutBytes: s.OutBytes,
		CPS: s.CPS, InPPS: s.InPPS, OutPPS: s.OutPPS, InBPS: s.InBPS, OutBPS: s.OutBPS,
	}
}

func toNetlinkService(s Service) ipvsnl.Service {
	ns := ipvsnl.Service{Sched: s.Scheduler, PEName: s.Engine, Flags: s.Flags, Timeout: s.Timeout, Netmask: s.Netmask}
	k := s.Key
	if k.Protocol == fsm.FWMark {
		ns.FWMark, ns.Family = k.Mark, ipvsnl.AFInet
		if k.IPv6 {
			ns.Family = ipvsnl.AFInet6
		}
		return ns
	}
	ns.Addr, ns.Port, ns.Protocol = k.Address, k.Port, syscall.IPPROTO_TCP
	switch k.Protocol {
	case fsm.UDP:
		ns.Protocol = syscall.IPPROTO_UDP
	case fsm.SCTP:
		ns.Protocol = syscall.IPPROTO_SCTP
	}
	return ns
}

func fromNetlinkService(s ipvsnl.Service) (Service, bool) {
	ks := Service{Scheduler: s.Sched, Engine: s.PEName, Flags: s.Flags &^ FlagHashed, Timeout: s.Timeout, Netmask: s.Netmask, Dests: map[string]Dest{}}
	if s.FWMark != 0 {
		ks.Key = fsm.ServiceKey{Protocol: fsm.FWMark, Mark: s.FWMark, IPv6: s.Family == ipvsnl.AFInet6}
		return ks, true
	}
	switch s.Protocol {
	case syscall.IPPROTO_TCP:
		ks.Key.Protocol = fsm.TCP
	case syscall.IPPROTO_UDP:
		ks.Key.Protocol = fsm.UDP
	case syscall.IPPROTO_SCTP:
		ks.Key.Protocol = fsm.SCTP
	default:
		return ks, false
	}
	ks.Key.Address, ks.Key.Port = s.Addr.Unmap(), s.Port
	return ks, true
}

func toNetlinkDest(d Dest) ipvsnl.Dest {
	nd := ipvsnl.Dest{Addr: d.Address, Port: d.Port, Weight: uint32(d.Weight), Upper: d.Upper, Lower: d.Lower}
	switch d.Forward {
	case fsm.Masquerade:
		nd.FwdMethod = ipvsnl.FwdMasq
	case fsm.LocalNode:
		nd.FwdMethod = ipvsnl.FwdLocalNode
	case fsm.Tunnel:
		nd.FwdMethod = ipvsnl.FwdTunnel
		nd.TunType, nd.TunPort = tunTypes[d.TunnelType], d.TunnelPort
		nd.TunFlags = tunFlags[d.TunnelCsum]
	default:
		nd.FwdMethod = ipvsnl.FwdDirectRoute
	}
	return nd
}

var (
	tunTypes = map[fsm.TunnelType]uint8{"": ipvsnl.TunIPIP, fsm.TunnelGUE: ipvsnl.TunGUE, fsm.TunnelGRE: ipvsnl.TunGRE}
	tunFlags = map[fsm.TunnelCsum]uint16{"": ipvsnl.TunFlagNoCsum, fsm.TunnelCsumOn: ipvsnl.TunFlagCsum, fsm.TunnelRemCsum: ipvsnl.TunFlagRemCsum}
)

// fromTunnel maps the kernel's tunnel attributes back to the model's
// spelling; the defaults (ipip, nocsum) are "" as in the model.
func fromTunnel(kd *Dest, d ipvsnl.Dest) {
	for t, n := range tunTypes {
		if n == d.TunType {
			kd.TunnelType = t
		}
	}
	for c, n := range tunFlags {
		if n == d.TunFlags {
			kd.TunnelCsum = c
		}
	}
	kd.TunnelPort = d.TunPort
}

func fromNetlinkDest(d ipvsnl.Dest) Dest {
	kd := Dest{Address: unmapIf4(d.Addr, d.Family), Port: d.Port, Weight: int(d.Weight), Upper: d.Upper, Lower: d.Lower}
	switch d.FwdMethod & ipvsnl.FwdMask {
	case ipvsnl.FwdMasq:
		kd.Forward = fsm.Masquerade
	case ipvsnl.FwdLocalNode:
		kd.Forward = fsm.LocalNode
	case ipvsnl.FwdTunnel:
		kd.Forward = fsm.Tunnel
		fromTunnel(&kd, d)
	default:
		kd.Forward = fsm.DirectRoute
	}
	return kd
}

func unmapIf4(a netip.Addr, fam uint16) netip.Addr {
	if fam == ipvsnl.AFInet {
		return a.Unmap()
	}
	return a
}
