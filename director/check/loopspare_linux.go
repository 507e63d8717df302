package check

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// A finished check's socket is not closed but disconnected, and the next
// check to the same family connects it again. connect with AF_UNSPEC
// takes a TCP socket back to CLOSED (tcp_disconnect): it sends the reset
// a close with SO_LINGER 0 would, drops the local port and clears the
// queues, and the socket stays in the loop's epoll set. A check then
// costs connect, write, read and that disconnect: in the lab VM socket,
// close, setsockopt and epoll_ctl were a quarter of the loop's CPU
// (close, which also frees the file, 18%). Sockets with source options
// (bound address or port, mark) are not kept: a pooled socket must be
// the same as a new one. The next connect clears the reset's pending
// error (tcp_connect_init), and epoll reports a socket's state when it is
// read, so an edge from the disconnect that is still queued says nothing
// stale about the connection that follows.
const maxSpare = 256 // disconnected sockets kept, per pool (spareIndex)

// takeSpare returns a kept socket for t, or false.
func (l *Loop) takeSpare(t *task) (int, bool) {
	if !t.opts.zero() {
		return -1, false
	}
	s := &l.spare[spareIndex(t)]
	if len(*s) == 0 {
		return -1, false
	}
	fd := (*s)[len(*s)-1]
	*s = (*s)[:len(*s)-1]
	return fd, true
}

// keep disconnects t's socket with a reset and keeps it for a later
// check; false when it is not to be kept, and the caller closes it.
func (l *Loop) keep(t *task) bool {
	s := &l.spare[spareIndex(t)]
	if !t.opts.zero() || len(*s) >= maxSpare {
		return false
	}
	if disconnect(t.fd) != nil {
		return false
	}
	*s = append(*s, t.fd)
	return true
}

// closeSpare closes the kept sockets.
func (l *Loop) closeSpare() {
	for i, s := range l.spare {
		for _, fd := range s {
			unix.Close(fd)
		}
		l.spare[i] = nil
	}
}

// spareIndex is t's pool: by family, and HTTP checks' sockets (see
// deferAck) apart from connect checks'.
func spareIndex(t *task) int {
	i := 0
	if t.family == unix.AF_INET6 {
		i = 2
	}
	if t.http != nil {
		i++
	}
	return i
}

// disconnect is connect(fd, AF_UNSPEC), which x/sys/unix has no
// Sockaddr for. It does not block: a raw system call.
func disconnect(fd int) error {
	sa := unix.RawSockaddr{Family: unix.AF_UNSPEC}
	_, _, e := unix.RawSyscall(unix.SYS_CONNECT, uintptr(fd), uintptr(unsafe.Pointer(&sa)), unsafe.Sizeof(sa))
	if e != 0 {
		return e
	}
	return nil
}

// deferAck makes an HTTP check's connect leave the handshake's last ACK
// to the request (tcp_rcv_synsent_state_process delays the ACK of a
// client socket with TCP_DEFER_ACCEPT set), which carries it: the server
// accepts the connection with the request in it, as before, and each
// check costs two TCP segments less (nstat on the host, loopback: 9 to 7
// per check). Every segment passes both ends' stacks, and the sender's
// system call carries the receiver's side of it. Connect checks keep the
// whole handshake: what they prove is that the server's application has
// a connection to accept, as keepalived's TCP_CHECK does. The setting
// lasts the socket's life, disconnects included, so HTTP checks' sockets
// are pooled apart. Without it the checks work as before, so a refusal
// is not an error.
func deferAck(fd int) {
	unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_DEFER_ACCEPT, 1)
}
