package vip

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"
)

// Wire announces addresses on the wire: gratuitous ARP for IPv4 and
// unsolicited neighbour advertisements for IPv6, so that neighbours move
// their cache entry to this node's MAC without waiting for it to expire.
//
// It keeps one ARP socket per interface: closing a packet socket waits for
// the kernel's RCU grace period (12 ms measured), which would otherwise
// delay every VIP after the first on a new leader.
type Wire struct {
	mu     sync.Mutex
	arp    map[string]*arp.Client
	probes map[string]*packet.Conn
}

// Announce sends one round for addr on iface: for IPv4 a gratuitous ARP
// request and a gratuitous ARP reply, because some neighbours (and Linux
// with arp_accept=0 for replies) heed only one form; for IPv6 one
// unsolicited, overriding neighbour advertisement to all nodes.
func (w *Wire) Announce(iface string, addr netip.Addr) error {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return fmt.Errorf("announce %s: interface %s: %w", addr, iface, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return fmt.Errorf("announce %s: interface %s has no Ethernet address", addr, iface)
	}
	if addr.Is4() {
		return w.garp(ifi, addr)
	}
	return unsolicitedNA(ifi, addr)
}

// Close closes the cached sockets.
func (w *Wire) Close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for name, c := range w.arp {
		c.Close()
		delete(w.arp, name)
	}
	for name, c := range w.probes {
		c.Close()
		delete(w.probes, name)
	}
}

func (w *Wire) garp(ifi *net.Interface, addr netip.Addr) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	err := w.garpOnce(ifi, addr)
	if err != nil {
		// The interface may have been recreated under the cached socket:
		// one retry on a fresh one.
		w.drop(ifi.Name)
		err = w.garpOnce(ifi, addr)
	}
	if err != nil {
		w.drop(ifi.Name)
	}
	return err
}

func (w *Wire) drop(name string) {
	if c, ok := w.arp[name]; ok {
		delete(w.arp, name)
		go c.Close() // slow (see Wire); nothing waits for it
	}
}

func (w *Wire) garpOnce(ifi *net.Interface, addr netip.Addr) error {
	c, ok := w.arp[ifi.Name]
	if !ok {
		var err error
		if c, err = arp.Dial(ifi); err != nil {
			return fmt.Errorf("announce %s on %s: %w", addr, ifi.Name, err)
		}
		if w.arp == nil {
			w.arp = map[string]*arp.Client{}
		}
		w.arp[ifi.Name] = c
	}
	// Request: sender and target are the VIP (RFC 5227 announcement).
	// Reply: Linux takes an unsolicited reply as gratuitous only when the
	// target hardware address equals the sender's.
	zero := net.HardwareAddr{0, 0, 0, 0, 0, 0}
	for _, f := range []struct {
		op  arp.Operation
		tha net.HardwareAddr
	}{{arp.OperationRequest, zero}, {arp.OperationReply, ifi.HardwareAddr}} {
		p, err := arp.NewPacket(f.op, ifi.HardwareAddr, addr, f.tha, addr)
		if err != nil {
			return fmt.Errorf("announce %s: %w", addr, err)
		}
		if err := c.WriteTo(p, ethernet.Broadcast); err != nil {
			return fmt.Errorf("announce %s on %s: gratuitous ARP %s: %w", addr, ifi.Name, f.op, err)
		}
	}
	return nil
}

// naOverride is the O flag of a neighbour advertisement (RFC 4861 4.4):
// receivers replace the link-layer address they have cached.
const naOverride = 0x20000000

func unsolicitedNA(ifi *net.Interface, addr netip.Addr) error {
	c, err := ndSocket(ifi)
	if err != nil {
		return fmt.Errorf("announce %s: %w", addr, err)
	}
	defer c.Close()
	b, err := ndMessage(ipv6.ICMPTypeNeighborAdvertisement, naOverride, addr, 2, ifi.HardwareAddr) // option: target link-layer address
	if err != nil {
		return fmt.Errorf("announce %s: %w", addr, err)
	}
	dst := &net.IPAddr{IP: net.IPv6linklocalallnodes, Zone: ifi.Name}
	if _, err := c.WriteTo(b, dst); err != nil {
		return fmt.Errorf("announce %s on %s: neighbour advertisement: %w", addr, ifi.Name, err)
	}
	return nil
}

// ndSocket is a raw ICMPv6 socket for neighbour discovery out of ifi.
func ndSocket(ifi *net.Interface) (*icmp.PacketConn, error) {
	c, err := icmp.ListenPacket("ip6:ipv6-icmp", "::")
	if err != nil {
		return nil, fmt.Errorf("on %s: %w", ifi.Name, err)
	}
	pc := c.IPv6PacketConn()
	// Receivers drop neighbour discovery that did not come with hop limit
	// 255: proof it was not routed.
	if err := pc.SetMulticastHopLimit(255); err != nil {
		c.Close()
		return nil, fmt.Errorf("hop limit: %w", err)
	}
	if err := pc.SetMulticastInterface(ifi); err != nil {
		c.Close()
		return nil, fmt.Errorf("interface %s: %w", ifi.Name, err)
	}
	return c, nil
}

// ndMessage is a neighbour advertisement or solicitation (RFC 4861 4.3,
// 4.4) for target with flags and one link-layer address option of kind
// option (1: source, 2: target) carrying mac. The kernel fills in the
// checksum of ICMPv6 raw sockets.
func ndMessage(typ ipv6.ICMPType, flags uint32, target netip.Addr, option byte, mac net.HardwareAddr) ([]byte, error) {
	body := make([]byte, 4+16+8)
	binary.BigEndian.PutUint32(body, flags)
	a16 := target.As16()
	copy(body[4:], a16[:])
	body[20], body[21] = option, 1 // 8 bytes
	copy(body[22:], mac)
	msg := icmp.Message{Type: typ, Body: &icmp.RawBody{Data: body}}
	return msg.Marshal(nil)
}
