package director

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/moby/ipvs"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

// Moby is the kernel IPVS table of the current network namespace, through
// moby/ipvs. A moby handle is not safe for concurrent use, and a call can
// hang on a broken socket: one handle, behind a mutex, recreated after an
// error.
type Moby struct {
	mu sync.Mutex
	h  *ipvs.Handle
}

// NewMoby opens the kernel's IPVS table in this network namespace.
func NewMoby() (*Moby, error) {
	h, err := ipvs.New("")
	if err != nil {
		return nil, fmt.Errorf("open ipvs: %w", err)
	}
	return &Moby{h: h}, nil
}

// Close releases the handle.
func (m *Moby) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.h != nil {
		m.h.Close()
		m.h = nil
	}
}

func (m *Moby) handle() (*ipvs.Handle, error) {
	if m.h == nil {
		h, err := ipvs.New("")
		if err != nil {
			return nil, fmt.Errorf("reopen ipvs: %w", err)
		}
		m.h = h
	}
	return m.h, nil
}

// reset drops the handle after a failure so that the next call starts fresh.
func (m *Moby) reset() {
	if m.h != nil {
		m.h.Close()
		m.h = nil
	}
}

// Read dumps the whole table.
func (m *Moby) Read() (Table, error) {
	t, _, err := m.ReadStats()
	return t, err
}

// ReadStats dumps the whole table with the kernel's counters, keyed as
// ipvsadm.Stats expects. moby/ipvs reads the 32-bit counters.
func (m *Moby) ReadStats() (Table, ipvsadm.Stats, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, err := m.handle()
	if err != nil {
		return nil, nil, err
	}
	svcs, err := h.GetServices()
	if err != nil {
		m.reset()
		return nil, nil, fmt.Errorf("list services: %w", err)
	}
	t, st := Table{}, ipvsadm.Stats{}
	for _, s := range svcs {
		ks, ok := fromMobyService(s)
		if !ok {
			continue // a protocol we do not model (SCTP): not ours to touch
		}
		dests, err := h.GetDestinations(s)
		if err != nil {
			m.reset()
			return nil, nil, fmt.Errorf("list destinations of %s: %w", ks.Key, err)
		}
		key := ks.Key.String()
		total := counters(ipvs.DstStats(s.Stats))
		for _, d := range dests {
			kd := fromMobyDest(d)
			ks.Dests[kd.Key()] = kd
			c := counters(d.Stats)
			c.ActiveConns, c.InactConns = uint64(d.ActiveConnections), uint64(d.InactiveConnections)
			total.ActiveConns += c.ActiveConns
			total.InactConns += c.InactConns
			st[fsm.VerdictKey(key, kd.Key())] = c
		}
		st[key] = total
		t[key] = ks
	}
	return t, st, nil
}

func counters(s ipvs.DstStats) ipvsadm.Counters {
	return ipvsadm.Counters{
		Conns: uint64(s.Connections), InPkts: uint64(s.PacketsIn), OutPkts: uint64(s.PacketsOut),
		InBytes: s.BytesIn, OutBytes: s.BytesOut, CPS: uint64(s.CPS),
		InPPS: uint64(s.PPSIn), OutPPS: uint64(s.PPSOut), InBPS: uint64(s.BPSIn), OutBPS: uint64(s.BPSOut),
	}
}

// Apply performs one operation.
func (m *Moby) Apply(op Op) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, err := m.handle()
	if err != nil {
		return err
	}
	s := toMobyService(op.Service)
	switch op.Kind {
	case CreateService:
		err = h.NewService(s)
	case UpdateService:
		err = h.UpdateService(s)
	case DeleteService:
		err = h.DelService(s)
	case CreateDest:
		err = h.NewDestination(s, toMobyDest(op.Dest))
	case UpdateDest:
		err = h.UpdateDestination(s, toMobyDest(op.Dest))
	case DeleteDest:
		err = h.DelDestination(s, toMobyDest(op.Dest))
	}
	if err != nil {
		m.reset()
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

func family(a netip.Addr) uint16 {
	if a.Is4() {
		return syscall.AF_INET
	}
	return syscall.AF_INET6
}

// swapMask converts an IPv4 netmask between our numeric form (10.0.0.0/24
// is 0xFFFFFF00) and moby/ipvs's: the kernel wants network byte order, and
// moby writes and reads the u32 attribute in host byte order. The swap is
// its own inverse. IPv6 netmasks are prefix lengths and are not swapped.
func swapMask(m uint32, fam uint16) uint32 {
	if fam != syscall.AF_INET {
		return m
	}
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], m)
	return binary.NativeEndian.Uint32(b[:])
}

func toMobyService(s Service) *ipvs.Service {
	ms := &ipvs.Service{SchedName: s.Scheduler, Flags: s.Flags, Timeout: s.Timeout}
	defer func() { ms.Netmask = swapMask(s.Netmask, ms.AddressFamily) }()
	k := s.Key
	if k.Protocol == fsm.FWMark {
		ms.FWMark = k.Mark
		ms.AddressFamily = syscall.AF_INET
		if k.IPv6 {
			ms.AddressFamily = syscall.AF_INET6
		}
		return ms
	}
	ms.AddressFamily = family(k.Address)
	ms.Address = net.IP(k.Address.AsSlice())
	ms.Port = k.Port
	ms.Protocol = syscall.IPPROTO_TCP
	if k.Protocol == fsm.UDP {
		ms.Protocol = syscall.IPPROTO_UDP
	}
	return ms
}

func fromMobyService(s *ipvs.Service) (Service, bool) {
	ks := Service{Scheduler: s.SchedName, Flags: s.Flags &^ FlagHashed, Timeout: s.Timeout, Netmask: swapMask(s.Netmask, s.AddressFamily), Dests: map[string]Dest{}}
	if s.FWMark != 0 {
		ks.Key = fsm.ServiceKey{Protocol: fsm.FWMark, Mark: s.FWMark, IPv6: s.AddressFamily == syscall.AF_INET6}
		return ks, true
	}
	switch s.Protocol {
	case syscall.IPPROTO_TCP:
		ks.Key.Protocol = fsm.TCP
	case syscall.IPPROTO_UDP:
		ks.Key.Protocol = fsm.UDP
	default:
		return ks, false
	}
	ks.Key.Address = ipAddr(s.Address, s.AddressFamily)
	ks.Key.Port = s.Port
	return ks, true
}

func ipAddr(ip net.IP, fam uint16) netip.Addr {
	a, _ := netip.AddrFromSlice(ip)
	if fam == syscall.AF_INET {
		return a.Unmap()
	}
	return a
}

func toMobyDest(d Dest) *ipvs.Destination {
	md := &ipvs.Destination{
		Address: net.IP(d.Address.AsSlice()), Port: d.Port, Weight: d.Weight, AddressFamily: family(d.Address),
		UpperThreshold: d.Upper, LowerThreshold: d.Lower,
	}
	switch d.Forward {
	case fsm.Masquerade:
		md.ConnectionFlags = ipvs.ConnectionFlagMasq
	case fsm.Tunnel:
		md.ConnectionFlags = ipvs.ConnectionFlagTunnel
	default:
		md.ConnectionFlags = ipvs.ConnectionFlagDirectRoute
	}
	return md
}

func fromMobyDest(d *ipvs.Destination) Dest {
	kd := Dest{Address: ipAddr(d.Address, d.AddressFamily), Port: d.Port, Weight: d.Weight, Upper: d.UpperThreshold, Lower: d.LowerThreshold}
	switch d.ConnectionFlags & ipvs.ConnectionFlagFwdMask {
	case ipvs.ConnectionFlagMasq:
		kd.Forward = fsm.Masquerade
	case ipvs.ConnectionFlagTunnel:
		kd.Forward = fsm.Tunnel
	default:
		kd.Forward = fsm.DirectRoute
	}
	return kd
}

// Timeouts reads the kernel's tcp, tcpfin and udp timeouts.
func (m *Moby) Timeouts() (fsm.Timeouts, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, err := m.handle()
	if err != nil {
		return fsm.Timeouts{}, err
	}
	c, err := h.GetConfig()
	if err != nil {
		m.reset()
		return fsm.Timeouts{}, fmt.Errorf("read timeouts: %w", err)
	}
	return fsm.Timeouts{TCP: uint32(c.TimeoutTCP / time.Second), TCPFin: uint32(c.TimeoutTCPFin / time.Second), UDP: uint32(c.TimeoutUDP / time.Second)}, nil
}

// SetTimeouts sets all three timeouts.
func (m *Moby) SetTimeouts(t fsm.Timeouts) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	h, err := m.handle()
	if err != nil {
		return err
	}
	err = h.SetConfig(&ipvs.Config{TimeoutTCP: time.Duration(t.TCP) * time.Second, TimeoutTCPFin: time.Duration(t.TCPFin) * time.Second, TimeoutUDP: time.Duration(t.UDP) * time.Second})
	if err != nil {
		m.reset()
		return fmt.Errorf("set timeouts: %w", err)
	}
	return nil
}
