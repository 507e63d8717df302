package ipvsnl

import (
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
)

// batchWindow is how many requests go out in one system call. Only
// refusals and each window's last acknowledgement are queued on the socket
// (see window), and without the requests echoed back (CapAcknowledge): a
// window of refusals, every request of it refused, still fits the receive
// buffer Dial asks for, so an overrun never hides which request failed.
// Larger windows save little: the sends are already a few dozen per
// ten thousand requests.
const batchWindow = 256

// Batch collects changes for Conn.Run: the add, update and delete requests
// of services and destinations, in the order they are to be made.
type Batch struct {
	reqs []request
}

type request struct {
	cmd  uint8
	data []byte
	err  error // the request could not be encoded
	// For errors, formatted only then: "add destination D of service S".
	verb string
	svc  Service
	dest *Dest
}

func (r request) what() string {
	if r.dest == nil {
		return r.verb + " service " + r.svc.String()
	}
	return fmt.Sprintf("%s destination %s of service %s", r.verb, *r.dest, r.svc)
}

// Len is the number of requests in the batch.
func (b *Batch) Len() int { return len(b.reqs) }

func (b *Batch) add(r request, build func(*netlink.AttributeEncoder) error) {
	r.data, r.err = encodeAttrs(build)
	b.reqs = append(b.reqs, r)
}

func (b *Batch) service(cmd uint8, verb string, s Service, full bool) {
	b.add(request{cmd: cmd, verb: verb, svc: s}, func(ae *netlink.AttributeEncoder) error { return serviceAttrs(ae, s, full) })
}

func (b *Batch) dest(cmd uint8, verb string, s Service, d Dest, full bool) {
	b.add(request{cmd: cmd, verb: verb, svc: s, dest: &d}, func(ae *netlink.AttributeEncoder) error {
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

// window sends reqs in one system call and reads back what the kernel said
// into errs. Under c.mu.
//
// Only the last request asks for an acknowledgement. The kernel answers a
// request without that flag only when it fails (netlink_rcv_skb), and it
// handles the messages of one send in order, queueing its answers on this
// socket as it goes: so the last request's answer comes after every
// refusal of the window, and once it is read, each request with no
// refusal is known done. That is one system call to send and one or two
// to read per window, where an acknowledgement each costs a read per
// request. Refusals name their request by sequence number.
func (c *Conn) window(reqs []request, errs []error) {
	var wire []byte
	sentAs := make([]int, 0, len(reqs)) // the k-th message sent is reqs[sentAs[k]]
	for i, r := range reqs {
		if r.err != nil {
			errs[i] = fmt.Errorf("ipvsnl: %s: %w", r.what(), r.err)
			continue
		}
		sentAs = append(sentAs, i)
	}
	if len(sentAs) == 0 {
		return
	}
	first := c.seq + 1
	for k, i := range sentAs {
		flags := uint16(netlink.Request)
		if k == len(sentAs)-1 {
			flags |= uint16(netlink.Acknowledge)
		}
		wire = putRequest(wire, c.family, flags, first+uint32(k), reqs[i].cmd, reqs[i].data)
	}
	c.seq += uint32(len(sentAs))
	last := c.seq
	// Requests with no refusal read are unknown when the socket fails
	// before the last one's answer: they may or may not have been made.
	unknown := func(err error) {
		for _, i := range sentAs {
			if errs[i] == nil {
				errs[i] = fmt.Errorf("ipvsnl: %s: outcome unknown: %w", reqs[i].what(), err)
			}
		}
	}
	if err := c.arm(); err != nil {
		unknown(err)
		return
	}
	if err := c.sendRaw(wire); err != nil {
		unknown(err)
		return
	}
	for {
		dg, err := c.recvRaw()
		if err != nil {
			// A timeout, or an overrun (ENOBUFS) that lost answers.
			unknown(err)
			return
		}
		done := false
		err = messages(dg, func(m message) (bool, error) {
			k := m.seq - first // wraps for an answer from before this window
			if m.typ != nlmsgError || k >= uint32(len(sentAs)) {
				return false, nil // an answer a failure left from an earlier window
			}
			e, ok := m.errno()
			if !ok {
				return true, errors.New("receive: a short acknowledgement")
			}
			if e != nil {
				i := sentAs[k]
				errs[i] = fmt.Errorf("ipvsnl: %s: %w", reqs[i].what(), e)
			}
			done = m.seq == last
			return done, nil
		})
		if err != nil {
			unknown(err)
			return
		}
		if done {
			return
		}
	}
}
