package ipvsnl

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
)

func fromInetAddr(f uint16, b []byte) (netip.Addr, error) {
	switch {
	case f == AFInet && len(b) >= 4:
		return netip.AddrFrom4([4]byte(b[:4])), nil
	case f == AFInet6 && len(b) >= 16:
		return netip.AddrFrom16([16]byte(b[:16])), nil
	}
	return netip.Addr{}, fmt.Errorf("%d address bytes for family %s", len(b), famName(f))
}

// nested runs fn on the nested attributes of the first top-level attribute
// of type typ in a reply's payload.
func nested(data []byte, typ uint16, fn func(*netlink.AttributeDecoder) error) error {
	ad, err := netlink.NewAttributeDecoder(data)
	if err != nil {
		return err
	}
	for ad.Next() {
		if ad.Type() == typ {
			ad.Nested(fn)
			return ad.Err()
		}
	}
	if err := ad.Err(); err != nil {
		return err
	}
	return fmt.Errorf("no attribute %d in the reply", typ)
}

// fixed hands fn the current attribute's bytes after checking their length.
func fixed(ad *netlink.AttributeDecoder, n int, fn func([]byte)) {
	ad.Do(func(b []byte) error {
		if len(b) != n {
			return fmt.Errorf("attribute %d: %d bytes, want %d", ad.Type(), len(b), n)
		}
		fn(b)
		return nil
	})
}

func readBE16(ad *netlink.AttributeDecoder, v *uint16) {
	fixed(ad, 2, func(b []byte) { *v = binary.BigEndian.Uint16(b) })
}

// readStats decodes a nested stats attribute. Each counter is u32 or u64 by
// its length: the 32-bit attribute mixes both (bytes are u64), the 64-bit
// one is all u64.
func readStats(ad *netlink.AttributeDecoder, st *Stats) {
	fields := [statsAttrMax + 1]*uint64{nil, &st.Conns, &st.InPkts, &st.OutPkts, &st.InBytes, &st.OutBytes,
		&st.CPS, &st.InPPS, &st.OutPPS, &st.InBPS, &st.OutBPS}
	ad.Nested(func(n *netlink.AttributeDecoder) error {
		for n.Next() {
			t := n.Type()
			if t == 0 || t > statsAttrMax {
				continue // PAD, or a counter newer than this code
			}
			n.Do(func(b []byte) error {
				switch len(b) {
				case 4:
					*fields[t] = uint64(binary.NativeEndian.Uint32(b))
				case 8:
					*fields[t] = binary.NativeEndian.Uint64(b)
				default:
					return fmt.Errorf("stats attribute %d: %d bytes", t, len(b))
				}
				return nil
			})
		}
		return nil
	})
}

// decodeService decodes one GET_SERVICE dump message's payload. 64-bit
// counters win over 32-bit ones whatever their order.
func decodeService(data []byte) (Service, error) {
	var s Service
	var addr, mask []byte
	var st32, st64 Stats
	has64 := false
	err := nested(data, cmdAttrService, func(ad *netlink.AttributeDecoder) error {
		for ad.Next() {
			switch ad.Type() {
			case svcAttrAF:
				s.Family = ad.Uint16()
			case svcAttrProtocol:
				s.Protocol = ad.Uint16()
			case svcAttrAddr:
				addr = ad.Bytes()
			case svcAttrPort:
				readBE16(ad, &s.Port)
			case svcAttrFWMark:
				s.FWMark = ad.Uint32()
			case svcAttrSchedName:
				s.Sched = ad.String()
			case svcAttrPEName:
				s.PEName = ad.String()
			case svcAttrFlags:
				fixed(ad, 8, func(b []byte) { s.Flags = binary.NativeEndian.Uint32(b) }) // {flags, mask}
			case svcAttrTimeout:
				s.Timeout = ad.Uint32()
			case svcAttrNetmask:
				fixed(ad, 4, func(b []byte) { mask = b })
			case svcAttrStats:
				readStats(ad, &st32)
			case svcAttrStats64:
				readStats(ad, &st64)
				has64 = true
			}
		}
		return nil
	})
	if err != nil {
		return s, fmt.Errorf("decode service: %w", err)
	}
	if s.Family != AFInet && s.Family != AFInet6 {
		return s, fmt.Errorf("decode service: address family %d", s.Family)
	}
	if addr != nil && s.FWMark == 0 {
		if s.Addr, err = fromInetAddr(s.Family, addr); err != nil {
			return s, fmt.Errorf("decode service: %w", err)
		}
	}
	if mask != nil {
		if s.Family == AFInet {
			s.Netmask = binary.BigEndian.Uint32(mask)
		} else {
			s.Netmask = binary.NativeEndian.Uint32(mask)
		}
	}
	s.Stats = st32
	if has64 {
		s.Stats = st64
	}
	return s, nil
}

// decodeDest decodes one GET_DEST dump message's payload. svcFamily is the
// destination's family when the kernel predates ADDR_FAMILY (Linux 3.18).
func decodeDest(data []byte, svcFamily uint16) (Dest, error) {
	d := Dest{Family: svcFamily}
	var addr []byte
	var st32, st64 Stats
	has64 := false
	err := nested(data, cmdAttrDest, func(ad *netlink.AttributeDecoder) error {
		for ad.Next() {
			switch ad.Type() {
			case destAttrAddr:
				addr = ad.Bytes()
			case destAttrPort:
				readBE16(ad, &d.Port)
			case destAttrFwdMethod:
				d.FwdMethod = ad.Uint32() & FwdMask
			case destAttrWeight:
				d.Weight = ad.Uint32()
			case destAttrUThresh:
				d.Upper = ad.Uint32()
			case destAttrLThresh:
				d.Lower = ad.Uint32()
			case destAttrActiveConns:
				d.ActiveConns = ad.Uint32()
			case destAttrInactConns:
				d.InactConns = ad.Uint32()
			case destAttrPersistConns:
				d.PersistConns = ad.Uint32()
			case destAttrAddrFamily:
				d.Family = ad.Uint16()
			case destAttrTunType:
				d.TunType = ad.Uint8()
			case destAttrTunPort:
				readBE16(ad, &d.TunPort)
			case destAttrTunFlags:
				d.TunFlags = ad.Uint16()
			case destAttrStats:
				readStats(ad, &st32)
			case destAttrStats64:
				readStats(ad, &st64)
				has64 = true
			}
		}
		return nil
	})
	if err != nil {
		return d, fmt.Errorf("decode destination: %w", err)
	}
	// ADDR_FAMILY comes after ADDR in the kernel's messages: the address is
	// decoded once the loop has seen both.
	if d.Addr, err = fromInetAddr(d.Family, addr); err != nil {
		return d, fmt.Errorf("decode destination: %w", err)
	}
	d.Stats = st32
	if has64 {
		d.Stats = st64
	}
	return d, nil
}

// decodeDaemon decodes one GET_DAEMON dump message's payload.
func decodeDaemon(data []byte) (Daemon, error) {
	var d Daemon
	err := nested(data, cmdAttrDaemon, func(ad *netlink.AttributeDecoder) error {
		for ad.Next() {
			switch ad.Type() {
			case daemonAttrState:
				d.State = ad.Uint32()
			case daemonAttrMcastIfn:
				d.Iface = ad.String()
			case daemonAttrSyncID:
				d.SyncID = ad.Uint32()
			case daemonAttrSyncMaxLen:
				d.MaxLen = ad.Uint16()
			case daemonAttrMcastGroup:
				fixed(ad, 4, func(b []byte) { d.Group = netip.AddrFrom4([4]byte(b[:4])) })
			case daemonAttrMcastGroup6:
				fixed(ad, 16, func(b []byte) { d.Group = netip.AddrFrom16([16]byte(b[:16])) })
			case daemonAttrMcastPort:
				d.Port = ad.Uint16()
			case daemonAttrMcastTTL:
				d.TTL = ad.Uint8()
			}
		}
		return nil
	})
	if err != nil {
		return d, fmt.Errorf("decode sync daemon: %w", err)
	}
	return d, nil
}

// decodeTimeouts decodes GET_CONFIG's reply: top-level u32 attributes. A
// kernel without TCP or UDP support leaves the matching ones out (0).
func decodeTimeouts(data []byte) (tcp, tcpFin, udp uint32, err error) {
	ad, err := netlink.NewAttributeDecoder(data)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("decode timeouts: %w", err)
	}
	for ad.Next() {
		switch ad.Type() {
		case cmdAttrTimeoutTCP:
			tcp = ad.Uint32()
		case cmdAttrTimeoutTCPFin:
			tcpFin = ad.Uint32()
		case cmdAttrTimeoutUDP:
			udp = ad.Uint32()
		}
	}
	if err := ad.Err(); err != nil {
		return 0, 0, 0, fmt.Errorf("decode timeouts: %w", err)
	}
	return tcp, tcpFin, udp, nil
}
