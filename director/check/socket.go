package check

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/ipvsman/ipvsman/fsm"
)

// sockOpts are a check's own socket settings (keepalived's bindto,
// bind_port and fwmark): the source address and port of its connections
// and their SO_MARK, which policy routing (ip rule fwmark) and the
// firewall see. The zero value is the kernel's choice and no mark.
type sockOpts struct {
	source netip.Addr
	port   uint16
	mark   uint32
}

func newSockOpts(c fsm.HealthCheck) sockOpts {
	return sockOpts{source: c.Source, port: c.SourcePort, mark: c.FWMark}
}

func (o sockOpts) zero() bool { return o == sockOpts{} }

// family reports a source address of the other family than the target's:
// the bind would fail with a less telling error.
func (o sockOpts) family(target netip.AddrPort) error {
	if !o.source.IsValid() || o.source.Unmap().Is4() == target.Addr().Unmap().Is4() {
		return nil
	}
	return fmt.Errorf("source %s and target %s: not one address family", o.source, target.Addr())
}

// control sets the mark, and SO_REUSEADDR for a fixed source port: its
// connections end in a reset (see reset), but one whose server closed
// first may linger in TIME_WAIT on the server's side only, and a fixed
// port must not wait for it here either.
func (o sockOpts) control(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) { serr = o.apply(int(fd)) })
	if err != nil {
		return err
	}
	return serr
}

// apply sets the options on a socket before bind and connect.
func (o sockOpts) apply(fd int) error {
	if o.mark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(o.mark)); err != nil {
			return fmt.Errorf("fwmark %d: %w", o.mark, err)
		}
	}
	if o.port != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEADDR, 1); err != nil {
			return fmt.Errorf("source port %d: %w", o.port, err)
		}
	}
	return nil
}

// sockaddr is the local address to bind for a target of ipv4 or not; nil
// when nothing is to be bound.
func (o sockOpts) sockaddr(ipv4 bool) unix.Sockaddr {
	if !o.source.IsValid() && o.port == 0 {
		return nil
	}
	if ipv4 {
		sa := &unix.SockaddrInet4{Port: int(o.port)}
		if o.source.IsValid() {
			sa.Addr = o.source.Unmap().As4()
		}
		return sa
	}
	sa := &unix.SockaddrInet6{Port: int(o.port)}
	if o.source.IsValid() {
		sa.Addr = o.source.As16()
	}
	return sa
}

// dialer is the dialer for this check's connections: the shared one
// unless the check sets its socket.
func (o sockOpts) dialer(network string) *net.Dialer {
	if o.zero() {
		return dialer
	}
	d := &net.Dialer{KeepAlive: -1, Control: o.control}
	if o.source.IsValid() || o.port != 0 {
		ip := net.IP(nil)
		if o.source.IsValid() {
			ip = net.IP(o.source.Unmap().AsSlice())
		}
		switch network {
		case "udp":
			d.LocalAddr = &net.UDPAddr{IP: ip, Port: int(o.port)}
		default:
			d.LocalAddr = &net.TCPAddr{IP: ip, Port: int(o.port)}
		}
	}
	return d
}

// dial connects to target with the check's socket settings.
func (o sockOpts) dial(ctx context.Context, network string, target netip.AddrPort) (net.Conn, error) {
	if err := o.family(target); err != nil {
		return nil, err
	}
	return o.dialer(network).DialContext(ctx, network, target.String())
}

// describeSocket names the socket settings' own failures, which describe
// alone would report as a bare errno.
func describeSocket(ctx context.Context, o sockOpts, err error) string {
	switch {
	case errors.Is(err, syscall.EADDRNOTAVAIL) && o.source.IsValid():
		return clip("source " + o.source.String() + ": not an address of this node")
	case errors.Is(err, syscall.EADDRINUSE) && o.port != 0:
		return clip(fmt.Sprintf("source port %d: in use", o.port))
	case errors.Is(err, syscall.EPERM) && o.mark != 0:
		return clip(fmt.Sprintf("fwmark %d: not permitted (needs CAP_NET_ADMIN)", o.mark))
	}
	return describe(ctx, err)
}
