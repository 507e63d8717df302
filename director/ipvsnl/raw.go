package ipvsnl

import (
	"encoding/binary"
	"fmt"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The batches and the dumps, the calls made by the thousand, go over the
// socket directly rather than through the socket library's Send and
// Receive: the library peeks at every datagram to size its buffer (two
// system calls a datagram) and parks the goroutine in the scheduler's
// hand-off at every call. A table dump of 2,277 services in the lab VM
// spent a third of its CPU in those hand-offs and wake-ups.

const (
	nlmsgHdrLen  = 16
	genlHdrLen   = 4
	nlmsgError   = 2
	nlmsgDone    = 3
	nlmsgMinSize = nlmsgHdrLen + 4 // a DONE or ERROR carries an errno
)

// rawBufSize holds any datagram the kernel sends this socket: it sizes
// dump datagrams by the largest read it has seen, capped at 32 KiB
// (netlink_recvmsg), and acknowledgements are small, so a read of this
// size is never cut short.
const rawBufSize = 64 << 10

// putRequest appends one request to b: the netlink header, the
// generic-netlink header (cmd, version) and the attributes.
func putRequest(b []byte, family uint16, flags uint16, seq uint32, cmd uint8, attrs []byte) []byte {
	l := nlmsgHdrLen + genlHdrLen + len(attrs)
	var h [nlmsgHdrLen + genlHdrLen]byte
	binary.NativeEndian.PutUint32(h[0:], uint32(l))
	binary.NativeEndian.PutUint16(h[4:], family)
	binary.NativeEndian.PutUint16(h[6:], flags)
	binary.NativeEndian.PutUint32(h[8:], seq)
	h[16], h[17] = cmd, familyVersion
	b = append(b, h[:]...)
	b = append(b, attrs...)
	for len(b)%4 != 0 {
		b = append(b, 0)
	}
	return b
}

// sendRaw sends b in one system call. Under mu.
func (c *Conn) sendRaw(b []byte) error {
	rc, err := c.nl.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Write(func(fd uintptr) bool {
		_, _, e := unix.RawSyscall6(unix.SYS_SENDTO, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)), 0, 0, 0)
		serr = errnoErr(e)
		return serr != unix.EAGAIN
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("send: %w", serr)
	}
	return nil
}

// recvRaw reads one datagram, waiting for it within the socket's
// deadline. The bytes are valid until the next call. Under mu.
func (c *Conn) recvRaw() ([]byte, error) {
	rc, err := c.nl.SyscallConn()
	if err != nil {
		return nil, err
	}
	if c.buf == nil {
		c.buf = make([]byte, rawBufSize)
	}
	var n uintptr
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		var e syscall.Errno
		n, _, e = unix.RawSyscall6(unix.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&c.buf[0])), uintptr(len(c.buf)), unix.MSG_TRUNC, 0, 0)
		rerr = errnoErr(e)
		return rerr != unix.EAGAIN
	}); err != nil {
		return nil, err
	}
	if rerr != nil {
		return nil, fmt.Errorf("receive: %w", rerr)
	}
	if int(n) > len(c.buf) {
		return nil, fmt.Errorf("receive: a %d-byte datagram, larger than the %d-byte buffer", n, len(c.buf))
	}
	return c.buf[:n], nil
}

func errnoErr(e syscall.Errno) error {
	if e == 0 {
		return nil
	}
	return e
}

// message is one netlink message of a datagram.
type message struct {
	typ     uint16
	seq     uint32
	payload []byte // after the netlink header
}

// messages splits a datagram into its messages.
func messages(dg []byte, fn func(message) (stop bool, err error)) error {
	for len(dg) >= nlmsgHdrLen {
		l := int(binary.NativeEndian.Uint32(dg[0:4]))
		if l < nlmsgHdrLen || l > len(dg) {
			return fmt.Errorf("receive: a message of length %d in %d bytes", l, len(dg))
		}
		m := message{typ: binary.NativeEndian.Uint16(dg[4:6]), seq: binary.NativeEndian.Uint32(dg[8:12]), payload: dg[nlmsgHdrLen:l]}
		dg = dg[min((l+3)&^3, len(dg)):]
		if stop, err := fn(m); stop || err != nil {
			return err
		}
	}
	return nil
}

// errno is the error a DONE or ERROR message carries (nil for 0: an
// acknowledgement, or a dump's end).
func (m message) errno() (error, bool) {
	if len(m.payload) < 4 {
		return nil, false
	}
	if e := int32(binary.NativeEndian.Uint32(m.payload)); e != 0 {
		return syscall.Errno(-e), true
	}
	return nil, true
}
