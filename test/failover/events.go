package failover

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// addrEvents is a namespace's IPv4 address notifications, read without
// blocking by the sampler itself before each of its dumps. Every address
// change is made under the kernel's routing lock and queued to this socket
// as it is made, whatever the sampler is doing, so the events drained at a
// sample are every change since the previous drain: a gap between samples
// in which none of them concerns the address cannot have hidden a holder
// coming or going, however long it was.
type addrEvents struct {
	s   *nl.NetlinkSocket
	ip  net.IP
	buf []byte
}

func subscribeAddrs(ns netns.NsHandle, ip net.IP) (*addrEvents, error) {
	s, err := nl.SubscribeAt(ns, netns.None(), unix.NETLINK_ROUTE, unix.RTNLGRP_IPV4_IFADDR)
	if err != nil {
		return nil, fmt.Errorf("subscribe to address events: %w", err)
	}
	return &addrEvents{s: s, ip: ip.To4(), buf: make([]byte, 1<<16)}, nil
}

func (e *addrEvents) Close() { e.s.Close() }

// moves counts the address's adds and deletes drained from the events.
type moves struct{ adds, dels int }

func (m moves) plus(o moves) moves { return moves{m.adds + o.adds, m.dels + o.dels} }

// unknownMove is what a lost or unreadable notification counts as: it may
// have been either.
var unknownMove = moves{1, 1}

// drain reads every queued notification and returns the adds and deletes
// of the address among them. A lost notification (the socket overran)
// counts as both.
func (e *addrEvents) drain() (moves, error) {
	var n moves
	for {
		size, _, err := unix.Recvfrom(e.s.GetFd(), e.buf, unix.MSG_DONTWAIT)
		switch {
		case errors.Is(err, unix.EAGAIN):
			return n, nil
		case errors.Is(err, unix.ENOBUFS):
			n = n.plus(unknownMove)
			continue
		case err != nil:
			return n, fmt.Errorf("address events: %w", err)
		}
		msgs, err := syscall.ParseNetlinkMessage(e.buf[:size])
		if err != nil {
			return n.plus(unknownMove), fmt.Errorf("address events: %w", err)
		}
		for _, m := range msgs {
			if concerns(m, e.ip) {
				if m.Header.Type == unix.RTM_NEWADDR {
					n.adds++
				} else {
					n.dels++
				}
			}
		}
	}
}

// concerns reports whether m adds or deletes ip.
func concerns(m syscall.NetlinkMessage, ip net.IP) bool {
	if m.Header.Type != unix.RTM_NEWADDR && m.Header.Type != unix.RTM_DELADDR || len(m.Data) < unix.SizeofIfAddrmsg {
		return false
	}
	attrs, err := nl.ParseRouteAttr(m.Data[unix.SizeofIfAddrmsg:])
	if err != nil {
		return true // unreadable: count it rather than miss a change
	}
	for _, a := range attrs {
		if (a.Attr.Type == unix.IFA_LOCAL || a.Attr.Type == unix.IFA_ADDRESS) && bytes.Equal(a.Value, ip) {
			return true
		}
	}
	return false
}
