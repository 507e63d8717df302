package bgp

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Config is one speaker: this node's BGP identity and the routers it
// announces the VIPs to.
type Config struct {
	// LocalAS is this node's autonomous system number (1 to 4294967295).
	LocalAS uint32
	// RouterID is the BGP identifier, an IPv4 address unique among the
	// router's peers (a director's own address is the usual choice).
	RouterID netip.Addr
	// Listen is the address and port to accept sessions on. The zero value
	// listens nowhere: the speaker only connects out, as directors facing
	// a router normally do. An unspecified address (0.0.0.0:179) listens
	// on every address.
	Listen netip.AddrPort
	// Peers are the routers; at least one, each address once.
	Peers []Peer
}

// Peer is one BGP neighbour, on a directly connected subnet (single-hop).
type Peer struct {
	// Address is the neighbour's address. Its family decides which VIPs
	// the session carries: IPv4 peers get the IPv4 prefixes, IPv6 peers the
	// IPv6 ones, each with this node's session address as next hop.
	Address netip.Addr
	// AS is the neighbour's AS: another AS is eBGP, LocalAS is iBGP.
	AS uint32
	// LocalAddress, if set, is the source of the session and so the next
	// hop the router installs: on a director with several addresses, the
	// one the router should send VIP traffic to.
	LocalAddress netip.Addr
	// Password, if set, protects the session with TCP MD5 (RFC 2385); the
	// router must have the same one.
	Password string
	// HoldTime is the BGP hold time offered (keepalives go at a third of
	// it); the session uses the smaller of both sides'. 0 means
	// DefaultHoldTime; otherwise at least 3 s (RFC 4271).
	HoldTime time.Duration
	// ConnectRetry is how long to wait between attempts to connect to a
	// neighbour that does not answer; 0 means DefaultConnectRetry.
	ConnectRetry time.Duration
	// BFD, if set, runs a BFD session beside the BGP one while that is
	// established (RFC 5880/5881, single hop): the router drops this node's
	// routes once it hears nothing for interval × multiplier, instead of
	// waiting out the hold time. The router must run BFD for this
	// neighbour too.
	BFD *BFD
}

// BFD sets a BFD session's timers. The detection time on each side is the
// other side's interval times its multiplier.
type BFD struct {
	// MinTx is the interval this node sends at; MinRx the interval it asks
	// the router to send at. 0 means DefaultBFDInterval.
	MinTx, MinRx time.Duration
	// Multiplier is how many packets may be missed; 0 means
	// DefaultBFDMultiplier.
	Multiplier uint8
}

// Defaults: a hold time short enough that a router without BFD drops a
// dead director in seconds, not BGP's usual 90 or 240; BFD timers that
// detect a cut link within a second (300 ms × 3).
const (
	DefaultHoldTime      = 9 * time.Second
	DefaultConnectRetry  = 5 * time.Second
	DefaultBFDInterval   = 300 * time.Millisecond
	DefaultBFDMultiplier = 3
	minHoldTime          = 3 * time.Second
	minBFDInterval       = 10 * time.Millisecond
)

// Community is a BGP community (RFC 1997), AS:value in 32 bits.
type Community uint32

// GracefulShutdown is GRACEFUL_SHUTDOWN (RFC 8326, 65535:0): a router whose
// policy honours it lowers the route's preference to the lowest, so that
// traffic moves to the other paths before this one is withdrawn.
const GracefulShutdown Community = 0xFFFF0000

// String gives the community as AS:value.
func (c Community) String() string { return fmt.Sprintf("%d:%d", uint32(c)>>16, uint32(c)&0xFFFF) }

// ParseCommunity reads a community written AS:value (each 0 to 65535).
func ParseCommunity(s string) (Community, error) {
	as, val, ok := strings.Cut(s, ":")
	if !ok {
		return 0, fmt.Errorf("community %q: want AS:value, such as 65535:0", s)
	}
	hi, err := strconv.ParseUint(as, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("community %q: AS %q is not 0 to 65535: %w", s, as, err)
	}
	lo, err := strconv.ParseUint(val, 10, 16)
	if err != nil {
		return 0, fmt.Errorf("community %q: value %q is not 0 to 65535: %w", s, val, err)
	}
	return Community(hi<<16 | lo), nil
}

// validate checks the configuration and fills in the defaults, naming the
// field and the value it refuses.
func (c *Config) validate() error {
	if c.LocalAS == 0 {
		return errors.New("bgp: local AS 0: want 1 to 4294967295")
	}
	if !c.RouterID.Is4() || c.RouterID.IsUnspecified() {
		return fmt.Errorf("bgp: router ID %q: want a non-zero IPv4 address", c.RouterID)
	}
	if c.Listen.IsValid() && c.Listen.Port() == 0 {
		return fmt.Errorf("bgp: listen address %s: no port (BGP's is 179)", c.Listen)
	}
	if len(c.Peers) == 0 {
		return errors.New("bgp: no peers: a speaker needs at least one router to announce to")
	}
	seen := map[netip.Addr]bool{}
	for i := range c.Peers {
		p := &c.Peers[i]
		if err := p.validate(); err != nil {
			return err
		}
		if seen[p.Address] {
			return fmt.Errorf("bgp: peer %s: configured twice", p.Address)
		}
		seen[p.Address] = true
	}
	return nil
}

func (p *Peer) validate() error {
	if !p.Address.IsValid() || p.Address.IsUnspecified() || p.Address.IsMulticast() {
		return fmt.Errorf("bgp: peer address %q: want a unicast address", p.Address)
	}
	p.Address = p.Address.Unmap()
	if p.AS == 0 {
		return fmt.Errorf("bgp: peer %s: AS 0: want 1 to 4294967295", p.Address)
	}
	if p.LocalAddress.IsValid() && p.LocalAddress.Unmap().Is4() != p.Address.Is4() {
		return fmt.Errorf("bgp: peer %s: local address %s is of the other family", p.Address, p.LocalAddress)
	}
	switch {
	case p.HoldTime == 0:
		p.HoldTime = DefaultHoldTime
	case p.HoldTime < minHoldTime || p.HoldTime%time.Second != 0 || p.HoldTime > 65535*time.Second:
		return fmt.Errorf("bgp: peer %s: hold time %s: want whole seconds from 3s to 65535s", p.Address, p.HoldTime)
	}
	switch {
	case p.ConnectRetry == 0:
		p.ConnectRetry = DefaultConnectRetry
	case p.ConnectRetry < time.Second || p.ConnectRetry%time.Second != 0:
		return fmt.Errorf("bgp: peer %s: connect retry %s: want whole seconds, at least 1s", p.Address, p.ConnectRetry)
	}
	if len(p.Password) > 80 { // TCP_MD5SIG_MAXKEYLEN
		return fmt.Errorf("bgp: peer %s: password of %d bytes: at most 80", p.Address, len(p.Password))
	}
	if b := p.BFD; b != nil {
		bfd := *b // the caller's value stays as given
		for _, iv := range []struct {
			name string
			d    *time.Duration
		}{{"min tx", &bfd.MinTx}, {"min rx", &bfd.MinRx}} {
			if *iv.d == 0 {
				*iv.d = DefaultBFDInterval
			}
			if *iv.d < minBFDInterval || *iv.d > time.Hour {
				return fmt.Errorf("bgp: peer %s: BFD %s interval %s: want 10ms to 1h", p.Address, iv.name, *iv.d)
			}
		}
		if bfd.Multiplier == 0 {
			bfd.Multiplier = DefaultBFDMultiplier
		}
		p.BFD = &bfd
	}
	return nil
}

// checkPrefix refuses what cannot be a route to announce.
func checkPrefix(p netip.Prefix) error {
	if !p.IsValid() {
		return fmt.Errorf("bgp: prefix %q: not a prefix", p)
	}
	if p.Addr().Is4In6() {
		return fmt.Errorf("bgp: prefix %s: an IPv4-mapped IPv6 prefix; give the IPv4 one", p)
	}
	if p.Masked() != p {
		return fmt.Errorf("bgp: prefix %s: host bits set (the network is %s)", p, p.Masked())
	}
	return nil
}
