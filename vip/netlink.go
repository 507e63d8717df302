package vip

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Netlink puts addresses on this namespace's interfaces with rtnetlink.
type Netlink struct{}

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func link(iface string) (netlink.Link, error) {
	l, err := netlink.LinkByName(iface)
	if err != nil {
		return nil, fmt.Errorf("interface %s: %w", iface, err)
	}
	return l, nil
}

// Add puts p on iface. IPv6 addresses skip duplicate address detection:
// the VIP must answer at once, and its previous holder has just dropped it.
func (Netlink) Add(iface string, p netip.Prefix) error {
	l, err := link(iface)
	if err != nil {
		return err
	}
	a := &netlink.Addr{IPNet: ipnet(p)}
	if p.Addr().Is6() {
		a.Flags = unix.IFA_F_NODAD
	}
	if err := netlink.AddrReplace(l, a); err != nil {
		return fmt.Errorf("add %s on %s: %w", p, iface, err)
	}
	return nil
}

// Del removes p from iface; an address that is not there is not an error.
func (Netlink) Del(iface string, p netip.Prefix) error {
	l, err := netlink.LinkByName(iface)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("interface %s: %w", iface, err)
	}
	if err := netlink.AddrDel(l, &netlink.Addr{IPNet: ipnet(p)}); err != nil && !errors.Is(err, syscall.EADDRNOTAVAIL) {
		return fmt.Errorf("delete %s from %s: %w", p, iface, err)
	}
	return nil
}

// Has reports whether iface holds p (same address and prefix length).
func (Netlink) Has(iface string, p netip.Prefix) (bool, error) {
	l, err := netlink.LinkByName(iface)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("interface %s: %w", iface, err)
	}
	fam := netlink.FAMILY_V4
	if p.Addr().Is6() {
		fam = netlink.FAMILY_V6
	}
	as, err := netlink.AddrList(l, fam)
	if err != nil {
		return false, fmt.Errorf("list addresses of %s: %w", iface, err)
	}
	for _, a := range as {
		ones, _ := a.Mask.Size()
		if ad, ok := netip.AddrFromSlice(a.IP); ok && ad.Unmap() == p.Addr() && ones == p.Bits() {
			return true, nil
		}
	}
	return false, nil
}
