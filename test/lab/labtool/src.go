package main

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// sources is what --src and --src-ports choose: the client's source
// address (round robin over the list, one per connection) and, with a port
// range, a fixed source port. Behind an ECMP router that hashes on layer 4
// and an mh scheduler with mh-port, the source tuple decides the director
// and the real server, so a benchmark needs many of them, and the same ones
// again to compare before and after a change.
type sources struct {
	addrs    []netip.Addr
	from, to uint16 // 0: the kernel picks the port
}

// addSourceFlags registers --src and --src-ports on fs; the returned
// function parses them after fs.Parse.
func addSourceFlags(fs *flag.FlagSet) func() (sources, error) {
	src := fs.String("src", "", "source addresses A,B,... used round robin, one per connection (default: the kernel's choice)")
	ports := fs.String("src-ports", "", "fixed source ports FROM-TO (needs --src): connection i uses address i mod len(src) and port FROM + (i div len(src)) mod the range's size")
	return func() (sources, error) {
		var s sources
		for _, a := range strings.Split(*src, ",") {
			if a = strings.TrimSpace(a); a == "" {
				continue
			}
			ip, err := netip.ParseAddr(a)
			if err != nil {
				return s, fmt.Errorf("%w: %s: --src %q: %q is not an IP address", errUsage, fs.Name(), *src, a)
			}
			s.addrs = append(s.addrs, ip)
		}
		if *ports != "" {
			if len(s.addrs) == 0 {
				return s, fmt.Errorf("%w: %s: --src-ports %q needs --src", errUsage, fs.Name(), *ports)
			}
			from, to, err := parsePortRange(*ports)
			if err != nil {
				return s, fmt.Errorf("%w: %s: --src-ports: %w", errUsage, fs.Name(), err)
			}
			s.from, s.to = from, to
		}
		return s, nil
	}
}

// local is connection i's source address and port (port 0: any); ok is
// false when no source was chosen.
func (s sources) local(i int) (addr netip.AddrPort, ok bool) {
	if len(s.addrs) == 0 {
		return netip.AddrPort{}, false
	}
	var port uint16
	if s.from != 0 {
		span := int(s.to-s.from) + 1
		port = s.from + uint16((i/len(s.addrs))%span)
	}
	return netip.AddrPortFrom(s.addrs[i%len(s.addrs)], port), true
}

// dialer is the dialer of connection i. With a fixed port it sets
// SO_REUSEADDR, so that the port binds while another socket of ours
// to another destination holds it.
func (s sources) dialer(i int, timeout time.Duration) *net.Dialer {
	d := &net.Dialer{Timeout: timeout}
	la, ok := s.local(i)
	if !ok {
		return d
	}
	d.LocalAddr = net.TCPAddrFromAddrPort(la)
	if la.Port() != 0 {
		d.Control = func(_, _ string, c syscall.RawConn) error {
			var serr error
			if err := c.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_REUSEADDR, 1)
			}); err != nil {
				return err
			}
			return serr
		}
	}
	return d
}

// dialContext is connection i's DialContext for an http.Transport. A
// connection from a fixed port closes with a reset (SO_LINGER 0): the same
// tuple is dialed again soon, and a socket left in TIME_WAIT would make
// that connect fail (EADDRNOTAVAIL).
func (s sources) dialContext(i int, timeout time.Duration) func(ctx context.Context, network, addr string) (net.Conn, error) {
	d := s.dialer(i, timeout)
	la, _ := s.local(i)
	if la.Port() == 0 {
		return d.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		if tc, ok := c.(*net.TCPConn); ok {
			if err := tc.SetLinger(0); err != nil {
				c.Close()
				return nil, fmt.Errorf("source %s: SO_LINGER: %w", la, err)
			}
		}
		return c, nil
	}
}
