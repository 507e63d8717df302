package vip

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
	"github.com/mdlayher/packet"
	"golang.org/x/net/ipv6"
)

// Prober asks a segment whether another node still answers for an address
// (Wire, or a fake). The kernel answers ARP for its addresses whether or
// not the daemon that put them there is running, so an answer is what a
// former leader's kernel holds now, even one whose daemon is stalled or
// dead.
type Prober interface {
	// Probe returns the hardware address of a node that answered for a on
	// iface within wait, or nil when none did (or a is not probed).
	Probe(iface string, a netip.Addr, wait time.Duration) (net.HardwareAddr, error)
}

// Probe sends an RFC 5227 ARP probe for addr on iface (sender address
// 0.0.0.0, so no neighbour updates its cache from it) and returns the
// hardware address of the first node that answers within wait. An IPv6
// address is probed with a neighbour solicitation (see solicit).
//
// Its socket is cached per interface and separate from the announcements'
// (see Wire), and it is built on a raw packet socket rather than
// arp.Client, which refuses interfaces without an IPv4 address of their
// own: a VIP-only interface has none until the VIP is on it.
func (w *Wire) Probe(iface string, addr netip.Addr, wait time.Duration) (net.HardwareAddr, error) {
	ifi, err := net.InterfaceByName(iface)
	if err != nil {
		return nil, fmt.Errorf("probe %s: interface %s: %w", addr, iface, err)
	}
	if len(ifi.HardwareAddr) != 6 {
		return nil, fmt.Errorf("probe %s: interface %s has no Ethernet address", addr, iface)
	}
	if !addr.Is4() {
		return solicit(ifi, addr, wait)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	c, ok := w.probes[ifi.Name]
	if !ok {
		c, err = packet.Listen(ifi, packet.Raw, int(ethernet.EtherTypeARP), nil)
		if err != nil {
			return nil, fmt.Errorf("probe %s on %s: %w", addr, ifi.Name, err)
		}
		if w.probes == nil {
			w.probes = map[string]*packet.Conn{}
		}
		w.probes[ifi.Name] = c
	}
	mac, err := probeOnce(c, ifi, addr, wait)
	if err != nil {
		// The interface may have been recreated under the cached socket;
		// the next probe opens a fresh one.
		delete(w.probes, ifi.Name)
		go c.Close() // slow (see Wire); nothing waits for it
	}
	return mac, err
}

// probeOnce drains what the socket queued since the last probe (every ARP
// frame on the segment), sends the probe and reads until wait is over or
// an answer comes.
func probeOnce(c *packet.Conn, ifi *net.Interface, addr netip.Addr, wait time.Duration) (net.HardwareAddr, error) {
	buf := make([]byte, 128)
	if err := c.SetReadDeadline(time.Now().Add(time.Millisecond)); err != nil {
		return nil, fmt.Errorf("probe %s on %s: %w", addr, ifi.Name, err)
	}
	for {
		if _, _, err := c.ReadFrom(buf); err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return nil, fmt.Errorf("probe %s on %s: drain: %w", addr, ifi.Name, err)
			}
			break
		}
	}
	frame, err := probeFrame(ifi.HardwareAddr, addr)
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", addr, err)
	}
	if _, err := c.WriteTo(frame, &packet.Addr{HardwareAddr: ethernet.Broadcast}); err != nil {
		return nil, fmt.Errorf("probe %s on %s: %w", addr, ifi.Name, err)
	}
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return nil, fmt.Errorf("probe %s on %s: %w", addr, ifi.Name, err)
	}
	for {
		n, _, err := c.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("probe %s on %s: %w", addr, ifi.Name, err)
		}
		if mac := probeAnswer(buf[:n], ifi.HardwareAddr, addr); mac != nil {
			return mac, nil
		}
	}
}

// probeFrame is an RFC 5227 ARP probe for addr from mac, as an Ethernet
// broadcast frame.
func probeFrame(mac net.HardwareAddr, addr netip.Addr) ([]byte, error) {
	p, err := arp.NewPacket(arp.OperationRequest, mac, netip.IPv4Unspecified(), net.HardwareAddr{0, 0, 0, 0, 0, 0}, addr)
	if err != nil {
		return nil, err
	}
	body, err := p.MarshalBinary()
	if err != nil {
		return nil, err
	}
	f := ethernet.Frame{Destination: ethernet.Broadcast, Source: mac, EtherType: ethernet.EtherTypeARP, Payload: body}
	return f.MarshalBinary()
}

// probeAnswer returns the sender's hardware address if frame is another
// node saying it holds addr: an ARP reply, or a request or announcement
// it sends from addr (two nodes probing at once see each other's requests
// only with sender 0.0.0.0, which does not count). Frames this node sent
// (a packet socket sees its own) never count.
func probeAnswer(frame []byte, mine net.HardwareAddr, addr netip.Addr) net.HardwareAddr {
	var f ethernet.Frame
	if err := f.UnmarshalBinary(frame); err != nil || f.EtherType != ethernet.EtherTypeARP {
		return nil
	}
	var p arp.Packet
	if err := p.UnmarshalBinary(f.Payload); err != nil {
		return nil
	}
	if p.SenderIP != addr || bytes.Equal(p.SenderHardwareAddr, mine) {
		return nil
	}
	return p.SenderHardwareAddr
}

// DefaultProbeWait is how long a probe listens for an answer: a kernel
// answers ARP from its softirq, within a millisecond on a segment even
// when its daemon is stalled; the rest is margin for a loaded machine.
// Every failover pays it once.
const DefaultProbeWait = 10 * time.Millisecond

// DefaultProbeLimit is how long a new leader leaves an address to a node
// that still answers for it: longer than the stalls of a busy former
// leader seen under load (up to four seconds), so that it lets go first;
// and bounded, because a crashed daemon outside systemd (no ExecStopPost
// cleanup) or a misconfigured host can answer for ever.
const DefaultProbeLimit = 5 * time.Second

// contest is a wanted address another node answered for.
type contest struct {
	since time.Time
	by    string // the hardware address that answered last
}

func (m *Manager) probeWait() time.Duration {
	if m.ProbeWait > 0 {
		return m.ProbeWait
	}
	return DefaultProbeWait
}

func (m *Manager) probeLimit() time.Duration {
	if m.ProbeLimit > 0 {
		return m.ProbeLimit
	}
	return DefaultProbeLimit
}

// forgetContests drops the contests of addresses no longer wanted (want
// is empty when this node does not lead). Under opMu.
func (m *Manager) forgetContests(want []Addr) {
	for a := range m.contested {
		if !slices.Contains(want, a) {
			delete(m.contested, a)
		}
	}
}

// free reports whether a may be added now: nobody else answers for it, it
// has been left to the node that does for ProbeLimit, or the probe itself
// failed (a probe must never keep a leader from serving). Each change of
// its answer is one log line. Under opMu.
func (m *Manager) free(a Addr) bool {
	if m.Prober == nil {
		return true
	}
	c := m.contested[a]
	mac, err := m.Prober.Probe(a.Interface, a.Prefix.Addr(), m.probeWait())
	switch {
	case err != nil:
		delete(m.contested, a)
		m.log().Warn("vip probe failed; adding the address without it", "node", m.Node, "vip", a.Prefix.String(), "interface", a.Interface, "err", err)
		return true
	case mac == nil:
		if c != nil {
			delete(m.contested, a)
			m.log().Info("vip let go by the other node", "node", m.Node, "vip", a.Prefix.String(), "interface", a.Interface, "by", c.by, "waited", time.Since(c.since).String())
		}
		return true
	case c == nil:
		if m.contested == nil {
			m.contested = map[Addr]*contest{}
		}
		m.contested[a] = &contest{since: time.Now(), by: mac.String()}
		m.log().Info("vip still answered by another node; leaving it until it lets go", "node", m.Node, "vip", a.Prefix.String(), "interface", a.Interface, "by", mac.String(), "limit", m.probeLimit().String())
		return false
	case time.Since(c.since) >= m.probeLimit():
		delete(m.contested, a)
		m.log().Warn("vip still answered by another node after the limit; taking it", "node", m.Node, "vip", a.Prefix.String(), "interface", a.Interface, "by", mac.String(), "waited", time.Since(c.since).String())
		return true
	default:
		c.by = mac.String()
		return false
	}
}

// solicit asks for addr with a neighbour solicitation to its
// solicited-node group and returns the hardware address in the first
// neighbour advertisement for it within wait: the holder's kernel answers
// one sent to a group with its link-layer address (RFC 4861 7.2.4). A
// fresh socket each time, like unsolicitedNA: VIP changes are rare.
func solicit(ifi *net.Interface, addr netip.Addr, wait time.Duration) (net.HardwareAddr, error) {
	c, err := ndSocket(ifi)
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", addr, err)
	}
	defer c.Close()
	var only ipv6.ICMPFilter
	only.SetAll(true)
	only.Accept(ipv6.ICMPTypeNeighborAdvertisement)
	if err := c.IPv6PacketConn().SetICMPFilter(&only); err != nil {
		return nil, fmt.Errorf("probe %s: filter: %w", addr, err)
	}
	b, err := ndMessage(ipv6.ICMPTypeNeighborSolicitation, 0, addr, 1, ifi.HardwareAddr) // option: source link-layer address
	if err != nil {
		return nil, fmt.Errorf("probe %s: %w", addr, err)
	}
	a16 := addr.As16()
	group := netip.AddrFrom16([16]byte{0: 0xff, 1: 0x02, 11: 0x01, 12: 0xff, 13: a16[13], 14: a16[14], 15: a16[15]})
	dst := &net.IPAddr{IP: group.AsSlice(), Zone: ifi.Name}
	if _, err := c.WriteTo(b, dst); err != nil {
		return nil, fmt.Errorf("probe %s on %s: neighbour solicitation: %w", addr, ifi.Name, err)
	}
	if err := c.SetReadDeadline(time.Now().Add(wait)); err != nil {
		return nil, fmt.Errorf("probe %s on %s: %w", addr, ifi.Name, err)
	}
	buf := make([]byte, 1500)
	for {
		n, _, err := c.ReadFrom(buf)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("probe %s on %s: %w", addr, ifi.Name, err)
		}
		if mac := advertised(buf[:n], addr); mac != nil {
			return mac, nil
		}
	}
}

// advertised returns the target link-layer address of msg if it is a
// neighbour advertisement for addr that carries one.
func advertised(msg []byte, addr netip.Addr) net.HardwareAddr {
	// Type, code, checksum, flags: 8 bytes; the target: 16.
	if len(msg) < 24 || msg[0] != byte(ipv6.ICMPTypeNeighborAdvertisement) {
		return nil
	}
	if t, _ := netip.AddrFromSlice(msg[8:24]); t != addr {
		return nil
	}
	for opts := msg[24:]; len(opts) >= 8; {
		kind, size := opts[0], int(opts[1])*8
		if size == 0 || size > len(opts) {
			return nil
		}
		if kind == 2 && size >= 8 {
			return slices.Clone(net.HardwareAddr(opts[2:8]))
		}
		opts = opts[size:]
	}
	return nil
}
