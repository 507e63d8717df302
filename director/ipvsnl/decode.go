package ipvsnl

import (
	"bytes"
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

// decodeService decodes one GET_SERVICE dump message's payload. 64-bit
// counters win over 32-bit ones whatever their order.
func decodeService(data []byte) (Service, error) {
	var s Service
	var addr, mask []byte
	var st32, st64 Stats
	has64 := false
	inner, err := findAttr(data, cmdAttrService)
	if err == nil {
		err = walkAttrs(inner, func(typ uint16, v []byte) error {
			var err error
			switch typ {
			case svcAttrAF:
				s.Family, err = getU16(typ, v)
			case svcAttrProtocol:
				s.Protocol, err = getU16(typ, v)
			case svcAttrAddr:
				addr = v
			case svcAttrPort:
				s.Port, err = getBE16(typ, v)
			case svcAttrFWMark:
				s.FWMark, err = getU32(typ, v)
			case svcAttrSchedName:
				s.Sched = cString(v)
			case svcAttrPEName:
				s.PEName = cString(v)
			case svcAttrFlags:
				if err = sized(typ, v, 8); err == nil { // {flags, mask}
					s.Flags = binary.NativeEndian.Uint32(v)
				}
			case svcAttrTimeout:
				s.Timeout, err = getU32(typ, v)
			case svcAttrNetmask:
				err, mask = sized(typ, v, 4), v
			case svcAttrStats:
				err = statsAttrs(v, &st32)
			case svcAttrStats64:
				err, has64 = statsAttrs(v, &st64), true
			}
			return err
		})
	}
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
//
// It walks the attributes in place, allocating nothing: drift repair
// decodes every destination of the table, tens of thousands per round, and
// the generic attribute decoder's allocations were a quarter of a table
// dump's CPU in the lab VM.
func decodeDest(data []byte, svcFamily uint16) (Dest, error) {
	d := Dest{Family: svcFamily}
	var addr []byte
	var st32, st64 Stats
	has64 := false
	inner, err := findAttr(data, cmdAttrDest)
	if err == nil {
		err = walkAttrs(inner, func(typ uint16, v []byte) error {
			var err error
			switch typ {
			case destAttrAddr:
				addr = v
			case destAttrPort:
				d.Port, err = getBE16(typ, v)
			case destAttrFwdMethod:
				d.FwdMethod, err = getU32(typ, v)
				d.FwdMethod &= FwdMask
			case destAttrWeight:
				d.Weight, err = getU32(typ, v)
			case destAttrUThresh:
				d.Upper, err = getU32(typ, v)
			case destAttrLThresh:
				d.Lower, err = getU32(typ, v)
			case destAttrActiveConns:
				d.ActiveConns, err = getU32(typ, v)
			case destAttrInactConns:
				d.InactConns, err = getU32(typ, v)
			case destAttrPersistConns:
				d.PersistConns, err = getU32(typ, v)
			case destAttrAddrFamily:
				d.Family, err = getU16(typ, v)
			case destAttrTunType:
				d.TunType, err = getU8(typ, v)
			case destAttrTunPort:
				d.TunPort, err = getBE16(typ, v)
			case destAttrTunFlags:
				d.TunFlags, err = getU16(typ, v)
			case destAttrStats:
				err = statsAttrs(v, &st32)
			case destAttrStats64:
				err, has64 = statsAttrs(v, &st64), true
			}
			return err
		})
	}
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

// walkAttrs calls fn with each attribute of b: its type (without the
// nested and byte-order flags) and its value.
func walkAttrs(b []byte, fn func(typ uint16, v []byte) error) error {
	for len(b) >= 4 {
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		if l < 4 || l > len(b) {
			return fmt.Errorf("an attribute of length %d in %d bytes", l, len(b))
		}
		if err := fn(binary.NativeEndian.Uint16(b[2:4])&nlaTypeMask, b[4:l]); err != nil {
			return err
		}
		b = b[min((l+3)&^3, len(b)):]
	}
	return nil
}

// nlaTypeMask drops NLA_F_NESTED and NLA_F_NET_BYTEORDER from a type.
const nlaTypeMask = 0x3fff

// findAttr is the value of the first attribute of type typ in b.
func findAttr(b []byte, typ uint16) ([]byte, error) {
	var found []byte
	err := walkAttrs(b, func(t uint16, v []byte) error {
		if t == typ && found == nil {
			found = v
		}
		return nil
	})
	if err == nil && found == nil {
		err = fmt.Errorf("no attribute %d in the reply", typ)
	}
	return found, err
}

// statsAttrs decodes a nested stats attribute. Each counter is u32 or u64
// by its length: the 32-bit attribute mixes both (bytes are u64), the
// 64-bit one is all u64.
func statsAttrs(b []byte, st *Stats) error {
	fields := [statsAttrMax + 1]*uint64{nil, &st.Conns, &st.InPkts, &st.OutPkts, &st.InBytes, &st.OutBytes,
		&st.CPS, &st.InPPS, &st.OutPPS, &st.InBPS, &st.OutBPS}
	return walkAttrs(b, func(t uint16, v []byte) error {
		if t == 0 || t > statsAttrMax {
			return nil // PAD, or a counter newer than this code
		}
		switch len(v) {
		case 4:
			*fields[t] = uint64(binary.NativeEndian.Uint32(v))
		case 8:
			*fields[t] = binary.NativeEndian.Uint64(v)
		default:
			return fmt.Errorf("stats attribute %d: %d bytes", t, len(v))
		}
		return nil
	})
}

func sized(typ uint16, v []byte, n int) error {
	if len(v) != n {
		return fmt.Errorf("attribute %d: %d bytes, want %d", typ, len(v), n)
	}
	return nil
}

// cString is a NUL-terminated string attribute's text.
func cString(v []byte) string {
	if i := bytes.IndexByte(v, 0); i >= 0 {
		v = v[:i]
	}
	return string(v)
}

func getU8(typ uint16, v []byte) (uint8, error) {
	if err := sized(typ, v, 1); err != nil {
		return 0, err
	}
	return v[0], nil
}

func getU16(typ uint16, v []byte) (uint16, error) {
	if err := sized(typ, v, 2); err != nil {
		return 0, err
	}
	return binary.NativeEndian.Uint16(v), nil
}

func getBE16(typ uint16, v []byte) (uint16, error) {
	if err := sized(typ, v, 2); err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint16(v), nil
}

func getU32(typ uint16, v []byte) (uint32, error) {
	if err := sized(typ, v, 4); err != nil {
		return 0, err
	}
	return binary.NativeEndian.Uint32(v), nil
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
