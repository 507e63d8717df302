package check

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipvsman/ipvsman/fsm"
)

func init() { Register("icmp", newICMP) }

// icmpChecker sends one ICMP (or ICMPv6) echo request and waits for the
// matching reply. Each check opens its own socket, connected to the target
// so that the kernel passes it only that host's packets:
//
//   - an unprivileged ping socket (SOCK_DGRAM, IPPROTO_ICMP) when
//     net.ipv4.ping_group_range lets us: the kernel owns the echo
//     identifier and hands each socket only its own replies;
//   - else a raw socket (needs CAP_NET_RAW), filtered to echo replies, and
//     the identifier, sequence and payload tell our reply from others'.
type icmpChecker struct {
	kind icmpKind // icmpAuto: probe once per address family
}

type icmpKind int

const (
	icmpAuto  icmpKind = iota
	icmpDgram          // unprivileged ping socket
	icmpRaw            // raw socket
)

func (k icmpKind) String() string {
	return [...]string{"auto", "ping socket", "raw socket"}[k]
}

func newICMP(fsm.HealthCheck, Options) (Checker, error) { return icmpChecker{}, nil }

// icmpKinds probes, once per family (IPv4, IPv6), which socket kind the
// process may open.
var icmpKinds = [2]func() (icmpKind, error){
	sync.OnceValues(func() (icmpKind, error) { return probeICMP(false) }),
	sync.OnceValues(func() (icmpKind, error) { return probeICMP(true) }),
}

func probeICMP(v6 bool) (icmpKind, error) {
	var errs []error
	for _, k := range []icmpKind{icmpDgram, icmpRaw} {
		fd, err := icmpSocket(v6, k)
		if err == nil {
			unix.Close(fd)
			return k, nil
		}
		errs = append(errs, fmt.Errorf("%s: %w", k, err))
	}
	return icmpAuto, errors.Join(errs...)
}

func icmpSocket(v6 bool, k icmpKind) (int, error) {
	family, proto := unix.AF_INET, unix.IPPROTO_ICMP
	if v6 {
		family, proto = unix.AF_INET6, unix.IPPROTO_ICMPV6
	}
	typ := unix.SOCK_DGRAM
	if k == icmpRaw {
		typ = unix.SOCK_RAW
	}
	return unix.Socket(family, typ|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, proto)
}

// icmpSeq numbers echo requests process-wide; each check takes one value,
// which gives its identifier, sequence and payload.
var icmpSeq atomic.Uint64

func init() { icmpSeq.Store(rand.Uint64()) }

const (
	icmpEchoRequest   = 8
	icmpEchoReply     = 0
	icmpv6EchoRequest = 128
	icmpv6EchoReply   = 129
	icmpLen           = 8 + 16 // header + payload (nonce, magic)
)

var icmpMagic = [8]byte{'i', 'p', 'v', 's', 'm', 'a', 'n', '!'}

// open returns a socket of kind k connected to addr, as a net.Conn that
// honours deadlines.
func (icmpChecker) open(addr netip.Addr, k icmpKind) (net.Conn, error) {
	v6 := addr.Is6()
	fd, err := icmpSocket(v6, k)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", k, err)
	}
	ok := false
	defer func() {
		if !ok {
			unix.Close(fd)
		}
	}()
	var sa unix.Sockaddr
	if v6 {
		sa6 := &unix.SockaddrInet6{Addr: addr.As16()}
		if z := addr.Zone(); z != "" {
			ifi, err := net.InterfaceByName(z)
			if err != nil {
				return nil, fmt.Errorf("zone %s: %w", z, err)
			}
			sa6.ZoneId = uint32(ifi.Index)
		}
		sa = sa6
	} else {
		sa = &unix.SockaddrInet4{Addr: addr.As4()}
	}
	if k == icmpRaw {
		// Pass only echo replies up: a raw socket otherwise gets every
		// ICMP packet from the target, our own requests too on loopback.
		if v6 {
			var f unix.ICMPv6Filter
			for i := range f.Data {
				f.Data[i] = ^uint32(0) // a set bit blocks the type
			}
			f.Data[icmpv6EchoReply>>5] &^= 1 << (icmpv6EchoReply & 31)
			err = unix.SetsockoptICMPv6Filter(fd, unix.SOL_ICMPV6, unix.ICMPV6_FILTER, &f)
		} else {
			mask := ^uint32(1 << icmpEchoReply) // a set bit blocks the type
			err = unix.SetsockoptInt(fd, unix.SOL_RAW, unix.ICMP_FILTER, int(int32(mask)))
		}
		if err != nil {
			return nil, fmt.Errorf("icmp filter: %w", err)
		}
	}
	if err := unix.Connect(fd, sa); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	f := os.NewFile(uintptr(fd), "icmp")
	ok = true // f owns fd now
	defer f.Close()
	return net.FileConn(f) // a dup, registered with the poller
}

func (ic icmpChecker) Check(ctx context.Context, target netip.AddrPort) Result {
	start := time.Now()
	fail := func(detail string) Result { return Result{Latency: time.Since(start), Detail: detail} }
	if err := ctx.Err(); err != nil {
		return fail(describe(ctx, err)) // watch would see it only after a fast reply
	}
	addr := target.Addr().Unmap()
	v6 := addr.Is6()
	k := ic.kind
	if k == icmpAuto {
		fam := 0
		if v6 {
			fam = 1
		}
		var err error
		if k, err = icmpKinds[fam](); err != nil {
			return fail(clip("no ICMP socket: " + err.Error()))
		}
	}
	conn, err := ic.open(addr, k)
	if err != nil {
		return fail(clip(err.Error()))
	}
	defer conn.Close()
	defer watch(ctx, conn)()

	n := icmpSeq.Add(1)
	id, seq := uint16(n>>16), uint16(n)
	var req [icmpLen]byte
	req[0] = icmpEchoRequest
	if v6 {
		req[0] = icmpv6EchoRequest
	}
	binary.BigEndian.PutUint16(req[4:], id) // a ping socket puts its own
	binary.BigEndian.PutUint16(req[6:], seq)
	binary.BigEndian.PutUint64(req[8:], n)
	copy(req[16:], icmpMagic[:])
	if !v6 {
		// The kernel sums ICMPv6 (it needs the pseudo-header) and ping
		// sockets' packets, not raw ICMPv4.
		binary.BigEndian.PutUint16(req[2:], inetChecksum(req[:]))
	}
	if _, err := conn.Write(req[:]); err != nil {
		return fail(describe(ctx, err))
	}
	var buf [576]byte
	for {
		m, err := conn.Read(buf[:])
		if err != nil {
			d := describe(ctx, err)
			if d == "timeout" {
				d = "timeout (no echo reply)"
			}
			return fail(d)
		}
		p := buf[:m]
		if k == icmpRaw && !v6 && len(p) >= 20 && p[0]>>4 == 4 {
			p = p[int(p[0]&0x0f)*4:] // raw IPv4 sockets get the IP header too
		}
		if len(p) < icmpLen {
			continue
		}
		want := byte(icmpEchoReply)
		if v6 {
			want = icmpv6EchoReply
		}
		if p[0] != want || p[1] != 0 ||
			(k == icmpRaw && binary.BigEndian.Uint16(p[4:]) != id) ||
			binary.BigEndian.Uint16(p[6:]) != seq || [icmpLen - 8]byte(p[8:icmpLen]) != [icmpLen - 8]byte(req[8:]) {
			continue // someone else's, or a late reply to an earlier check
		}
		return Result{OK: true, Latency: time.Since(start), Detail: "echo reply"}
	}
}

// inetChecksum is the Internet checksum (RFC 1071) of b.
func inetChecksum(b []byte) uint16 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	return ^uint16(s)
}
