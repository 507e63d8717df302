package ipvsnl

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"

	"github.com/mdlayher/genetlink"
	"github.com/mdlayher/netlink"
)

// batchWindow is how many requests go out in one system call before their
// acknowledgements are read. The kernel handles every request of a send
// before the call returns and queues one acknowledgement each on this
// socket; a window keeps them well inside its receive buffer (an overrun
// would lose acknowledgements and with them which request failed).
const batchWindow = 64

// Batch collects changes for Conn.Run: the add, update and delete requests
// of services and destinations, in the order they are to be made.
type Batch struct {
	reqs []request
}

type request struct {
	cmd  uint8
	data []byte
	what string // for errors: "add destination D of service S"
	err  error  // the request could not be encoded
}

// Len is the number of requests in the batch.
func (b *Batch) Len() int { return len(b.reqs) }

func (b *Batch) add(cmd uint8, what string, build func(*netlink.AttributeEncoder) error) {
	ae := netlink.NewAttributeEncoder()
	r := request{cmd: cmd, what: what}
	if r.err = build(ae); r.err == nil {
		r.data, r.err = ae.Encode()
	}
	b.reqs = append(b.reqs, r)
}

func (b *Batch) service(cmd uint8, verb string, s Service, full bool) {
	b.add(cmd, verb+" service "+s.String(), func(ae *netlink.AttributeEncoder) error { return serviceAttrs(ae, s, full) })
}

func (b *Batch) dest(cmd uint8, verb string, s Service, d Dest, full bool) {
	b.add(cmd, fmt.Sprintf("%s destination %s of service %s", verb, d, s), func(ae *netlink.AttributeEncoder) error {
		if err := serviceAttrs(ae, s, false); err != nil {
			return err
		}
		return destAttrs(ae, d, full)
	})
}

// NewService adds a virtual service (see Conn.NewService).
func (b *Batch) NewService(s Service) { b.service(cmdNewService, "add", s, true) }

// UpdateService changes a service (see Conn.UpdateService).
func (b *Batch) UpdateService(s Service) { b.service(cmdSetService, "update", s, true) }

// DelService deletes a service and its destinations.
func (b *Batch) DelService(s Service) { b.service(cmdDelService, "delete", s, false) }

// NewDest adds a destination to a service (see Conn.NewDest).
func (b *Batch) NewDest(s Service, d Dest) { b.dest(cmdNewDest, "add", s, d, true) }

// UpdateDest changes a destination (see Conn.UpdateDest).
func (b *Batch) UpdateDest(s Service, d Dest) { b.dest(cmdSetDest, "update", s, d, true) }

// DelDest removes a destination from a service.
func (b *Batch) DelDest(s Service, d Dest) { b.dest(cmdDelDest, "delete", s, d, false) }

// Run makes the batch's changes in order and returns one error per
// request, nil for each the kernel acknowledged. Requests go out many to a
// system call: the kernel handles the messages of one send in order and
// answers each, so the answers map back to the requests by position (and
// the successes are checked by sequence number). A failed request does not
// stop the ones after it, exactly as one call each would not; a change
// that depends on a failed one fails in the kernel as it would alone. When
// the socket itself fails (a timeout), the requests not yet answered are
// reported as unknown, never as done.
func (c *Conn) Run(b *Batch) []error {
	errs := make([]error, len(b.reqs))
	c.mu.Lock()
	defer c.mu.Unlock()
	for start := 0; start < len(b.reqs); start += batchWindow {
		end := min(start+batchWindow, len(b.reqs))
		c.window(b.reqs[start:end], errs[start:end])
	}
	return errs
}

// window sends reqs in one system call and reads their answers into errs.
// Under c.mu.
func (c *Conn) window(reqs []request, errs []error) {
	msgs := make([]netlink.Message, 0, len(reqs))
	sentAs := make([]int, 0, len(reqs)) // msgs[k] is reqs[sentAs[k]]
	for i, r := range reqs {
		if r.err != nil {
			errs[i] = fmt.Errorf("ipvsnl: %s: %w", r.what, r.err)
			continue
		}
		body, err := (genetlink.Message{Header: genetlink.Header{Command: r.cmd, Version: familyVersion}, Data: r.data}).MarshalBinary()
		if err != nil {
			errs[i] = fmt.Errorf("ipvsnl: %s: %w", r.what, err)
			continue
		}
		msgs = append(msgs, netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(c.family), Flags: netlink.Request | netlink.Acknowledge}, Data: body})
		sentAs = append(sentAs, i)
	}
	if len(msgs) == 0 {
		return
	}
	unknown := func(from int, err error) {
		for k := from; k < len(sentAs); k++ {
			errs[sentAs[k]] = fmt.Errorf("ipvsnl: %s: outcome unknown: %w", reqs[sentAs[k]].what, err)
		}
	}
	if err := c.nl.SetDeadline(time.Now().Add(callTimeout)); err != nil {
		unknown(0, err)
		return
	}
	sent, err := c.nl.SendMessages(msgs)
	if err != nil {
		unknown(0, err)
		return
	}
	for k := 0; k < len(sent); {
		got, err := c.nl.Receive()
		if err != nil {
			var errno syscall.Errno
			if errors.As(err, &errno) && !errors.Is(err, os.ErrDeadlineExceeded) && errno != syscall.ENOBUFS {
				// The kernel's answer to request k: it failed.
				errs[sentAs[k]] = fmt.Errorf("ipvsnl: %s: %w", reqs[sentAs[k]].what, err)
				k++
				continue
			}
			// The socket failed (a timeout, or an overrun that lost
			// answers): what was not answered is unknown.
			unknown(k, err)
			return
		}
		for _, m := range got {
			if k == len(sent) {
				break
			}
			if m.Header.Type != netlink.Error || m.Header.Sequence != sent[k].Header.Sequence {
				unknown(k, fmt.Errorf("answer out of order: type %d sequence %d, want an acknowledgement of %d", m.Header.Type, m.Header.Sequence, sent[k].Header.Sequence))
				return
			}
			k++
		}
	}
}
