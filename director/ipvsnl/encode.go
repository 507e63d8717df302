package ipvsnl

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"github.com/mdlayher/netlink"
)

// serviceFamily is the family to send: Family, else Addr's.
func serviceFamily(s Service) (uint16, error) {
	return family(s.Family, s.Addr, s.FWMark != 0)
}

func family(f uint16, a netip.Addr, addrOptional bool) (uint16, error) {
	switch {
	case f == AFInet || f == AFInet6:
		return f, nil
	case f != 0:
		return 0, fmt.Errorf("address family %d is neither AF_INET nor AF_INET6", f)
	case a.IsValid() && a.Unmap().Is4():
		return AFInet, nil
	case a.IsValid():
		return AFInet6, nil
	case addrOptional:
		return 0, errors.New("no address family: set Family for a fwmark service")
	}
	return 0, errors.New("no address")
}

// inetAddr is a union nf_inet_addr: 16 bytes, IPv4 in the first four.
func inetAddr(f uint16, a netip.Addr) ([]byte, error) {
	b := make([]byte, 16)
	switch {
	case f == AFInet && a.Unmap().Is4():
		v := a.Unmap().As4()
		copy(b, v[:])
	case f == AFInet6 && a.Is6():
		v := a.As16()
		copy(b, v[:])
	default:
		return nil, fmt.Errorf("address %q does not match family %s", a, famName(f))
	}
	return b, nil
}

func be16(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }

// serviceAttrs encodes the service attribute of a request. full adds what
// NEW_SERVICE and SET_SERVICE need; the other commands (and GET_DEST) only
// look the service up by its identity.
func serviceAttrs(ae *netlink.AttributeEncoder, s Service, full bool) error {
	f, err := serviceFamily(s)
	if err != nil {
		return err
	}
	var addr []byte
	if s.FWMark == 0 {
		if addr, err = inetAddr(f, s.Addr); err != nil {
			return err
		}
	}
	mask := s.Netmask
	var maskBytes []byte
	if f == AFInet {
		if mask == 0 {
			mask = 0xFFFFFFFF
		}
		maskBytes = binary.BigEndian.AppendUint32(nil, mask)
	} else {
		if mask == 0 {
			mask = 128
		}
		if mask > 128 {
			return fmt.Errorf("IPv6 netmask /%d: a prefix length is at most 128", mask)
		}
		maskBytes = binary.NativeEndian.AppendUint32(nil, mask)
	}
	ae.Nested(cmdAttrService, func(n *netlink.AttributeEncoder) error {
		n.Uint16(svcAttrAF, f)
		if s.FWMark != 0 {
			n.Uint32(svcAttrFWMark, s.FWMark)
		} else {
			n.Uint16(svcAttrProtocol, s.Protocol)
			n.Bytes(svcAttrAddr, addr)
			n.Bytes(svcAttrPort, be16(s.Port))
		}
		if !full {
			return nil
		}
		n.String(svcAttrSchedName, s.Sched)
		if s.PEName != "" {
			n.String(svcAttrPEName, s.PEName)
		}
		// Mask all ones: these flags replace the service's. Without
		// FlagHashed: a new service carrying it would not be hashed into
		// the kernel's table (ip_vs_svc_hash refuses an already-hashed one).
		fl := binary.NativeEndian.AppendUint32(nil, s.Flags&^FlagHashed)
		n.Bytes(svcAttrFlags, binary.NativeEndian.AppendUint32(fl, 0xFFFFFFFF))
		n.Uint32(svcAttrTimeout, s.Timeout)
		n.Bytes(svcAttrNetmask, maskBytes)
		return nil
	})
	return nil
}

// destAttrs encodes the destination attribute. ADDR_FAMILY is always sent:
// without it the kernel assumes the service's family, and a mixed-family
// (tunnelled) destination could not be added, changed or deleted.
func destAttrs(ae *netlink.AttributeEncoder, d Dest, full bool) error {
	f, err := family(d.Family, d.Addr, false)
	if err != nil {
		return err
	}
	addr, err := inetAddr(f, d.Addr)
	if err != nil {
		return err
	}
	ae.Nested(cmdAttrDest, func(n *netlink.AttributeEncoder) error {
		n.Uint16(destAttrAddrFamily, f)
		n.Bytes(destAttrAddr, addr)
		n.Bytes(destAttrPort, be16(d.Port))
		if !full {
			return nil
		}
		n.Uint32(destAttrFwdMethod, d.FwdMethod&FwdMask)
		n.Uint32(destAttrWeight, d.Weight)
		n.Uint32(destAttrUThresh, d.Upper)
		n.Uint32(destAttrLThresh, d.Lower)
		n.Uint8(destAttrTunType, d.TunType)
		n.Bytes(destAttrTunPort, be16(d.TunPort))
		n.Uint16(destAttrTunFlags, d.TunFlags)
		return nil
	})
	return nil
}

// daemonAttrs encodes NEW_DAEMON's attribute; zero optional fields are left
// out so that the kernel applies its defaults, as ipvsadm does.
func daemonAttrs(ae *netlink.AttributeEncoder, d Daemon) error {
	if d.Iface == "" || len(d.Iface) > ifNameMax {
		return fmt.Errorf("interface name %q: 1 to %d bytes", d.Iface, ifNameMax)
	}
	if d.Group.IsValid() && !d.Group.IsMulticast() {
		return fmt.Errorf("group %s is not a multicast address", d.Group)
	}
	ae.Nested(cmdAttrDaemon, func(n *netlink.AttributeEncoder) error {
		n.Uint32(daemonAttrState, d.State)
		n.String(daemonAttrMcastIfn, d.Iface)
		n.Uint32(daemonAttrSyncID, d.SyncID)
		if d.MaxLen != 0 {
			n.Uint16(daemonAttrSyncMaxLen, d.MaxLen)
		}
		switch g := d.Group.Unmap(); {
		case g.Is4():
			v := g.As4()
			n.Bytes(daemonAttrMcastGroup, v[:])
		case g.Is6():
			v := g.As16()
			n.Bytes(daemonAttrMcastGroup6, v[:])
		}
		if d.Port != 0 {
			n.Uint16(daemonAttrMcastPort, d.Port)
		}
		if d.TTL != 0 {
			n.Uint8(daemonAttrMcastTTL, d.TTL)
		}
		return nil
	})
	return nil
}

// timeoutAttrs encodes SET_CONFIG. The kernel leaves a timeout whose value
// is 0 unchanged; a zero is left out, as ipvsadm does.
func timeoutAttrs(ae *netlink.AttributeEncoder, tcp, tcpFin, udp uint32) {
	for _, t := range []struct {
		typ uint16
		v   uint32
	}{{cmdAttrTimeoutTCP, tcp}, {cmdAttrTimeoutTCPFin, tcpFin}, {cmdAttrTimeoutUDP, udp}} {
		if t.v != 0 {
			ae.Uint32(t.typ, t.v)
		}
	}
}
