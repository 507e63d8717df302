package topology

import (
	"errors"
	"fmt"
	"math"

	"github.com/ipvsman/ipvsman/fsm"
)

// Real servers of the structured form: a service's lists (servers, pool)
// and each entry on the service's defaults.

// serverList builds a service's list of real servers (list is "servers"
// or "pool") with the service's defaults. serverAt, shared by both lists,
// finds a server listed twice, in one list or in both. ok is false when any
// entry failed.
func (b *yamlBuilder) serverList(at ypath, list string, entries []yamlServer, svc *fsm.Service, def fsm.RealServer, keyOK bool, serverAt map[string]ypath) (map[string]*fsm.RealServer, bool) {
	out := map[string]*fsm.RealServer{}
	ok := true
	for j := range entries {
		sat := at.with(list, j)
		ysrv := &entries[j]
		if b.suspect(sat) {
			ok = false
			continue
		}
		sitem := ""
		if ysrv.Name != "" {
			sitem = fmt.Sprintf("real server %q", ysrv.Name)
		}
		r, errs := buildServer(ysrv, def)
		if len(errs) == 0 && keyOK {
			if err := checkServer(svc, r); err != nil {
				errs = append(errs, fieldError{"", err})
			}
		}
		for _, e := range errs {
			b.fail(sat, e.field, sitem, e.err)
		}
		if len(errs) > 0 || !keyOK {
			ok = false
			continue
		}
		if yc := ysrv.Check; yc != nil {
			c, errs := buildCheck(yc, fmt.Sprintf("real server %s of service %s check", r.Key(), svc.Key))
			for _, e := range errs {
				b.fail(sat.with("check"), e.field, sitem, e.err)
			}
			if len(errs) > 0 {
				ok = false
				continue
			}
			r.Check = c
		}
		rkey := r.Key()
		if prev, dup := serverAt[rkey]; dup {
			b.fail(sat, "", sitem, fmt.Errorf("%s: listed twice (also %s on line %d)", rkey, prev, lineOf(b.root, prev)))
			ok = false
			continue
		}
		serverAt[rkey] = sat
		out[rkey] = r
	}
	return out, ok
}

// buildServer builds a real server on the service's defaults, or returns
// each problem of its values with the key to blame. What depends on the
// service (checkServer) is the caller's.
func buildServer(s *yamlServer, def fsm.RealServer) (*fsm.RealServer, []fieldError) {
	r := def
	r.Name, r.State = s.Name, fsm.ServerState(s.State)
	var errs []fieldError
	bad := func(field string, err error) { errs = append(errs, fieldError{field, err}) }
	var err error
	if s.Address == "" {
		bad("", errors.New("address: missing"))
	} else if r.Address, err = parseAddr(s.Address); err != nil {
		bad("address", err)
	}
	if s.Port < 0 || s.Port > math.MaxUint16 {
		bad("port", fmt.Errorf("port %d: want 0-65535", s.Port))
	}
	r.Port = uint16(s.Port)
	if s.Forward != "" {
		if r.Forward, err = parseForward(s.Forward); err != nil {
			bad("forward", err)
		}
	}
	// Values are checked by fsm.ValidateServer, with the forwarding method.
	r.TunnelType, r.TunnelCsum = fsm.TunnelType(s.TunnelType), fsm.TunnelCsum(s.TunnelCsum)
	if s.TunnelPort < 0 || s.TunnelPort > math.MaxUint16 {
		bad("tunnel_port", fmt.Errorf("tunnel_port %d: want 1-65535", s.TunnelPort))
	}
	r.TunnelPort = uint16(s.TunnelPort)
	if s.Weight != nil {
		// The range is fsm.ValidateServer's; this only keeps a 32-bit int
		// from wrapping around on the way there.
		if r.Weight, err = toInt("weight", *s.Weight); err != nil {
			bad("weight", err)
		}
	}
	if s.Upper != nil {
		if r.Upper, err = threshold("upper_threshold", *s.Upper); err != nil {
			bad("upper_threshold", err)
		}
	}
	if s.Lower != nil {
		if r.Lower, err = threshold("lower_threshold", *s.Lower); err != nil {
			bad("lower_threshold", err)
		}
	}
	if s.State == "" {
		r.State = fsm.Active
	}
	if len(errs) > 0 {
		return nil, errs
	}
	r.LocalIfLoopback() // as ipvsadm's -g to the director itself
	return &r, nil
}

func parseForward(s string) (fsm.Forward, error) {
	switch f := fsm.Forward(s); f {
	case fsm.DirectRoute, fsm.Tunnel, fsm.Masquerade, fsm.LocalNode:
		return f, nil
	}
	return "", fmt.Errorf("forward %q: want droute, tunnel, masq or local", s)
}

func threshold(field string, v yamlInt) (uint32, error) {
	if v < 0 || v > math.MaxUint32 {
		return 0, fmt.Errorf("%s %d: want 0-4294967295 connections (0 = none)", field, v)
	}
	return uint32(v), nil
}
