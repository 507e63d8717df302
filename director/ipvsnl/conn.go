package ipvsnl

import (
	"fmt"
	"sync"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

const (
	familyName    = "IPVS" // IPVS_GENL_NAME
	familyVersion = 1      // IPVS_GENL_VERSION

	// callTimeout bounds one request and its replies. moby/ipvs has been seen
	// to hang forever on a broken socket; here the call fails instead, and the
	// caller should Close and Dial again.
	callTimeout = 30 * time.Second
)

// Conn is a generic-netlink socket bound to the IPVS family of the network
// namespace it was opened in. It is safe for concurrent use: calls are
// serialised, so that one call's deadline never cuts another's.
type Conn struct {
	mu     sync.Mutex
	nl     *netlink.Conn // the socket; Run sends batches on it directly
	c      *genetlink.Conn
	family uint16
	buf    []byte    // dump's receive buffer, under mu
	until  time.Time // the socket's deadline, under mu
	seq    uint32    // dump's last sequence number, under mu
}

// arm makes sure the next call has at least half of callTimeout before the
// socket's deadline. Setting a deadline wakes the runtime's network poller
// (a futex wake and an epoll_wait on another thread): done for every
// request, that was a third of a table dump's CPU in the emulated lab, so
// it is moved only when half of it is used up. Under mu.
func (c *Conn) arm() error {
	now := time.Now()
	if c.until.Sub(now) > callTimeout/2 {
		return nil
	}
	until := now.Add(callTimeout)
	if err := c.nl.SetDeadline(until); err != nil {
		return err
	}
	c.until = until
	return nil
}

// Dial opens a socket and resolves the IPVS family. It does not load the
// ip_vs module (moby/ipvs shells out to modprobe): that is the host's job,
// and an error here says it was not done.
func Dial() (*Conn, error) {
	nl, err := netlink.Dial(unix.NETLINK_GENERIC, nil)
	if err != nil {
		return nil, fmt.Errorf("ipvsnl: open generic netlink socket: %w", err)
	}
	c := genetlink.NewConn(nl)
	f, err := c.GetFamily(familyName)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("ipvsnl: generic netlink family %q (is ip_vs loaded?): %w", familyName, err)
	}
	// Room for a window's refusals (see batchWindow), which need not echo
	// the request they refuse.
	_ = nl.SetOption(netlink.CapAcknowledge, true)
	readBuffer(nl, 1<<20)
	// The dump's sequence numbers start far from the socket library's own
	// (random) ones, so that an answer to one is never taken for the other.
	return &Conn{nl: nl, c: c, family: f.ID, seq: uint32(time.Now().UnixNano())}, nil
}

// readBuffer sizes the socket's receive buffer past net.core.rmem_max
// where the process may (CAP_NET_ADMIN, which programming IPVS needs
// anyway), and up to it otherwise.
func readBuffer(nl *netlink.Conn, size int) {
	if rc, err := nl.SyscallConn(); err == nil {
		var serr error
		if err := rc.Control(func(fd uintptr) {
			serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size)
		}); err == nil && serr == nil {
			return
		}
	}
	_ = nl.SetReadBuffer(size)
}

// Close releases the socket.
func (c *Conn) Close() error { return c.c.Close() }

// encodeAttrs is the attributes build writes (none for a nil build).
func encodeAttrs(build func(*netlink.AttributeEncoder) error) ([]byte, error) {
	ae := netlink.NewAttributeEncoder()
	if build != nil {
		if err := build(ae); err != nil {
			return nil, err
		}
	}
	return ae.Encode()
}

// exec sends one command whose attributes build writes, and returns the
// payloads of the replies.
func (c *Conn) exec(cmd uint8, flags netlink.HeaderFlags, build func(*netlink.AttributeEncoder) error) ([][]byte, error) {
	data, err := encodeAttrs(build)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.arm(); err != nil {
		return nil, err
	}
	msg := genetlink.Message{Header: genetlink.Header{Command: cmd, Version: familyVersion}, Data: data}
	replies, err := c.c.Execute(msg, c.family, flags)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, 0, len(replies))
	for _, r := range replies {
		out = append(out, r.Data)
	}
	return out, nil
}

// do sends a command that changes state and waits for the kernel's
// acknowledgement (or error, e.g. EEXIST, ESRCH, ENOENT, EINVAL; test them
// with errors.Is on syscall.Errno).
func (c *Conn) do(cmd uint8, build func(*netlink.AttributeEncoder) error) error {
	_, err := c.exec(cmd, netlink.Request|netlink.Acknowledge, build)
	return err
}

// Services lists every virtual service, with 64-bit counters.
func (c *Conn) Services() ([]Service, error) {
	replies, err := c.dump(cmdGetService, nil)
	if err != nil {
		return nil, fmt.Errorf("ipvsnl: list services: %w", err)
	}
	out := make([]Service, 0, len(replies))
	for _, r := range replies {
		s, err := decodeService(r)
		if err != nil {
			return nil, fmt.Errorf("ipvsnl: list services: %w", err)
		}
		out = append(out, s)
	}
	return out, nil
}

// Dests lists the destinations of a service, with 64-bit counters and
// tunnel settings. A service that does not exist has none (the kernel's
// dump is silently empty then).
func (c *Conn) Dests(s Service) ([]Dest, error) {
	replies, err := c.dump(cmdGetDest, func(ae *netlink.AttributeEncoder) error {
		return serviceAttrs(ae, s, false)
	})
	if err != nil {
		return nil, fmt.Errorf("ipvsnl: list destinations of service %s: %w", s, err)
	}
	fam, _ := serviceFamily(s)
	out := make([]Dest, 0, len(replies))
	for _, r := range replies {
		d, err := decodeDest(r, fam)
		if err != nil {
			return nil, fmt.Errorf("ipvsnl: list destinations of service %s: %w", s, err)
		}
		out = append(out, d)
	}
	return out, nil
}

func (c *Conn) service(cmd uint8, verb string, s Service, full bool) error {
	err := c.do(cmd, func(ae *netlink.AttributeEncoder) error { return serviceAttrs(ae, s, full) })
	if err != nil {
		return fmt.Errorf("ipvsnl: %s service %s: %w", verb, s, err)
	}
	return nil
}

// NewService adds a virtual service.
func (c *Conn) NewService(s Service) error { return c.service(cmdNewService, "add", s, true) }

// UpdateService changes a service's scheduler, flags, timeout, netmask and
// persistence engine.
func (c *Conn) UpdateService(s Service) error { return c.service(cmdSetService, "update", s, true) }

// DelService deletes a service and its destinations.
func (c *Conn) DelService(s Service) error { return c.service(cmdDelService, "delete", s, false) }

func (c *Conn) dest(cmd uint8, verb string, s Service, d Dest, full bool) error {
	err := c.do(cmd, func(ae *netlink.AttributeEncoder) error {
		if err := serviceAttrs(ae, s, false); err != nil {
			return err
		}
		return destAttrs(ae, d, full)
	})
	if err != nil {
		return fmt.Errorf("ipvsnl: %s destination %s of service %s: %w", verb, d, s, err)
	}
	return nil
}

// NewDest adds a destination to a service, with its address family and
// tunnel settings.
func (c *Conn) NewDest(s Service, d Dest) error { return c.dest(cmdNewDest, "add", s, d, true) }

// UpdateDest changes a destination's method, weight, thresholds and tunnel
// settings.
func (c *Conn) UpdateDest(s Service, d Dest) error { return c.dest(cmdSetDest, "update", s, d, true) }

// DelDest removes a destination from a service.
func (c *Conn) DelDest(s Service, d Dest) error { return c.dest(cmdDelDest, "delete", s, d, false) }

// Daemons lists the running sync daemons (none, a master, a backup or both).
func (c *Conn) Daemons() ([]Daemon, error) {
	replies, err := c.dump(cmdGetDaemon, nil)
	if err != nil {
		return nil, fmt.Errorf("ipvsnl: list sync daemons: %w", err)
	}
	out := make([]Daemon, 0, len(replies))
	for _, r := range replies {
		d, err := decodeDaemon(r)
		if err != nil {
			return nil, fmt.Errorf("ipvsnl: list sync daemons: %w", err)
		}
		out = append(out, d)
	}
	return out, nil
}

// StartDaemon starts a master or backup sync daemon. The kernel refuses
// (EINVAL) while any service has a destination of another address family:
// the sync protocol cannot carry mixed-family connections.
func (c *Conn) StartDaemon(d Daemon) error {
	err := c.do(cmdNewDaemon, func(ae *netlink.AttributeEncoder) error { return daemonAttrs(ae, d) })
	if err != nil {
		return fmt.Errorf("ipvsnl: start %s: %w", d, err)
	}
	return nil
}

// StopDaemon stops the sync daemon in state DaemonMaster or DaemonBackup.
func (c *Conn) StopDaemon(state uint32) error {
	err := c.do(cmdDelDaemon, func(ae *netlink.AttributeEncoder) error {
		ae.Nested(cmdAttrDaemon, func(n *netlink.AttributeEncoder) error {
			n.Uint32(daemonAttrState, state)
			return nil
		})
		return nil
	})
	if err != nil {
		return fmt.Errorf("ipvsnl: stop %s sync daemon: %w", stateName(state), err)
	}
	return nil
}

// Timeouts reads the connection timeouts in seconds: established TCP, TCP
// after FIN, and UDP.
func (c *Conn) Timeouts() (tcp, tcpFin, udp uint32, err error) {
	replies, err := c.exec(cmdGetConfig, netlink.Request, nil)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("ipvsnl: read timeouts: %w", err)
	}
	if len(replies) != 1 {
		return 0, 0, 0, fmt.Errorf("ipvsnl: read timeouts: %d replies", len(replies))
	}
	return decodeTimeouts(replies[0])
}

// SetTimeouts sets the connection timeouts in seconds; a 0 leaves that
// timeout unchanged (the kernel's rule, which ipvsadm --set follows too).
func (c *Conn) SetTimeouts(tcp, tcpFin, udp uint32) error {
	err := c.do(cmdSetConfig, func(ae *netlink.AttributeEncoder) error {
		timeoutAttrs(ae, tcp, tcpFin, udp)
		return nil
	})
	if err != nil {
		return fmt.Errorf("ipvsnl: set timeouts %d %d %d: %w", tcp, tcpFin, udp, err)
	}
	return nil
}
