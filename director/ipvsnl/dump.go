package ipvsnl

import (
	"errors"
	"fmt"

	"github.com/mdlayher/netlink"
)

// dump sends a dump request and returns each reply's attributes (the
// payload after the generic-netlink header), in order. A dump of one
// service's destinations is a send and two reads: its entries, then DONE.
func (c *Conn) dump(cmd uint8, build func(*netlink.AttributeEncoder) error) ([][]byte, error) {
	attrs, err := encodeAttrs(build)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.arm(); err != nil {
		return nil, err
	}
	c.seq++
	seq := c.seq
	if err := c.sendRaw(putRequest(nil, c.family, uint16(netlink.Request|netlink.Dump), seq, cmd, attrs)); err != nil {
		return nil, err
	}
	var out [][]byte
	for {
		dg, err := c.recvRaw()
		if err != nil {
			return nil, err
		}
		// One copy per datagram: the replies are slices of it.
		done, err := dumpReplies(append([]byte(nil), dg...), seq, &out)
		if err != nil || done {
			return out, err
		}
	}
}

// dumpReplies appends the payloads of one datagram's messages answering
// request seq to out, and says whether the dump ended in it. Messages
// with another sequence number are answers to an earlier request a failure
// abandoned: skipped.
func dumpReplies(dg []byte, seq uint32, out *[][]byte) (done bool, err error) {
	err = messages(dg, func(m message) (bool, error) {
		if m.seq != seq {
			return false, nil
		}
		switch m.typ {
		case nlmsgDone, nlmsgError:
			e, ok := m.errno()
			if !ok {
				return true, errors.New("receive: a short DONE or ERROR message")
			}
			done = m.typ == nlmsgDone
			return done || e != nil, e
		}
		if len(m.payload) < genlHdrLen {
			return true, fmt.Errorf("receive: a %d-byte reply", nlmsgHdrLen+len(m.payload))
		}
		*out = append(*out, m.payload[genlHdrLen:])
		return false, nil
	})
	return done && err == nil, err
}
