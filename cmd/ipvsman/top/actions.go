package top

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/ipvsman/ipvsman/fsm"
)

// An intent is what a key asked for. It is turned into ops only when it is
// sent, against the newest model the console knows (the last snapshot plus
// its own committed changes), so that `+` pressed three times quickly
// raises the weight three times, not once three times over.
type intent struct {
	kind    intentKind
	service string // fsm.ServiceKey.String()
	server  string // fsm.RealServer.Key(); the template's key for assign
	delta   int    // weight
	state   fsm.ServerState
	tmpl    *fsm.RealServer // assign: the real server to copy
}

type intentKind int

const (
	intentWeight intentKind = iota
	intentState
	intentDelete     // an assigned server, for good: ipvsman -d
	intentAssign     // a copy of another service's server: ipvsman -a
	intentAssignPool // the service's own pool server: ipvsman pool assign
	intentUnassign   // into the service's pool: ipvsman pool unassign
	intentForget     // a pool server's definition: ipvsman pool forget
)

// ops builds the ops of in against cfg and says what they do. No ops and
// no error: nothing to send, and note says why.
//
// The ops are the CLI's own: a weight change is `ipvsman -e` with the
// server's forwarding, thresholds and tunnel (the leader keeps name, state
// and check, as for -e); suspend and resume are `ipvsman server
// suspend|resume`; delete is `ipvsman -d`; assign is `ipvsman -a` with the
// chosen server's attributes, or `ipvsman pool assign` for a server of the
// service's own pool; unassign and forget are `ipvsman pool unassign` and
// `ipvsman pool forget`.
func (in intent) ops(cfg *fsm.Config) (ops []fsm.Op, note string, err error) {
	svc := cfg.Services[in.service]
	if svc == nil {
		return nil, "", fmt.Errorf("service %s: no longer in the model", in.service)
	}
	switch in.kind {
	case intentAssign:
		rs := assigned(in.tmpl)
		op := fsm.Op{Kind: fsm.OpAddServer, ServiceKey: svc.Key, Server: &rs}
		return []fsm.Op{op}, fmt.Sprintf("add %s to %s", rs.Key(), in.service), nil
	case intentAssignPool, intentForget:
		p := svc.Pool[in.server]
		if p == nil {
			return nil, "", fmt.Errorf("real server %s of service %s: no longer in its pool", in.server, in.service)
		}
		if in.kind == intentForget {
			op := fsm.Op{Kind: fsm.OpForgetServer, ServiceKey: svc.Key, Server: named(p)}
			return []fsm.Op{op}, fmt.Sprintf("forget %s of %s", in.server, in.service), nil
		}
		op := fsm.Op{Kind: fsm.OpAssignServer, ServiceKey: svc.Key, Server: named(p)}
		return []fsm.Op{op}, fmt.Sprintf("assign %s to %s", in.server, in.service), nil
	}
	rs := svc.Servers[in.server]
	if rs == nil {
		return nil, "", fmt.Errorf("real server %s of service %s: no longer in the model", in.server, in.service)
	}
	where := fmt.Sprintf("%s of %s", in.server, in.service)
	switch in.kind {
	case intentWeight:
		w := rs.Weight + in.delta
		if w < 0 {
			// Never send a negative weight: 0 is ipvsadm's lowest, and
			// suspend is the way to take a server out.
			return nil, fmt.Sprintf("weight of %s is already %d, the lowest (s suspends it)", where, rs.Weight), nil
		}
		next := *rs
		next.Weight = w
		next.Name, next.State, next.Check = "", "", nil // kept by the leader, as for ipvsadm -e
		op := fsm.Op{Kind: fsm.OpEditServer, ServiceKey: svc.Key, Server: &next}
		return []fsm.Op{op}, fmt.Sprintf("weight %d -> %d: %s", rs.Weight, w, where), nil
	case intentState:
		if rs.State == in.state {
			return nil, fmt.Sprintf("%s is already %s", where, in.state), nil
		}
		op := fsm.Op{Kind: fsm.OpSetState, ServiceKey: svc.Key, Server: named(rs)}
		op.Server.State = in.state
		return []fsm.Op{op}, fmt.Sprintf("%s: %s", verb(in.state), where), nil
	case intentDelete:
		op := fsm.Op{Kind: fsm.OpDeleteServer, ServiceKey: svc.Key, Server: named(rs)}
		return []fsm.Op{op}, "delete " + where, nil
	case intentUnassign:
		op := fsm.Op{Kind: fsm.OpUnassignServer, ServiceKey: svc.Key, Server: named(rs)}
		return []fsm.Op{op}, "unassign " + where + " (kept in its pool)", nil
	}
	return nil, "", fmt.Errorf("intent %d: unknown", in.kind)
}

// named is a real server named by address and port, as -d and `server
// suspend` name it. The forwarding method goes along: the model
// normalizes a server without one as direct routing, whose port is the
// service's, which would miss a masquerading server on another port.
func named(rs *fsm.RealServer) *fsm.RealServer {
	return &fsm.RealServer{Address: rs.Address, Port: rs.Port, Forward: rs.Forward}
}

func verb(s fsm.ServerState) string {
	switch s {
	case fsm.Suspended:
		return "suspend"
	case fsm.Active:
		return "resume"
	}
	return string(s)
}

// assigned is the real server `a` adds to a service: the template's address,
// port, forwarding, weight, thresholds and tunnel, what `ipvsman -a` can
// say, plus its name; active, with no check of its own.
func assigned(t *fsm.RealServer) fsm.RealServer {
	return fsm.RealServer{
		Name: t.Name, Address: t.Address, Port: t.Port, Forward: t.Forward, Weight: t.Weight,
		Upper: t.Upper, Lower: t.Lower, TunnelType: t.TunnelType, TunnelPort: t.TunnelPort, TunnelCsum: t.TunnelCsum,
	}
}

// candidate is a real server the picker offers.
type candidate struct {
	server *fsm.RealServer
	from   string // a service that has it
	// own: in the pool of the service being assigned to, so assigned as
	// defined there; otherwise a template that `a` copies.
	own    bool
	pooled bool // from a service's pool, not its assigned servers
}

// candidates lists first the service's own pool servers, then every other
// real server of the topology (assigned, or in another service's pool),
// once per address:port, that the service does not have yet, assigned or
// pooled (by the key it would get there: direct routing and tunnelling
// take the service's port).
func candidates(cfg *fsm.Config, service string) []candidate {
	target := cfg.Services[service]
	if target == nil {
		return nil
	}
	var own []candidate
	seen := map[string]bool{}
	for _, rk := range target.SortedPoolKeys() {
		seen[rk] = true
		own = append(own, candidate{server: target.Pool[rk], from: service, own: true, pooled: true})
	}
	var out []candidate
	for _, sk := range cfg.SortedServiceKeys() {
		svc := cfg.Services[sk]
		for _, list := range []struct {
			m      map[string]*fsm.RealServer
			pooled bool
		}{{svc.Servers, false}, {svc.Pool, true}} {
			for _, rk := range slices.Sorted(maps.Keys(list.m)) {
				rs := list.m[rk]
				if seen[rk] {
					continue
				}
				seen[rk] = true
				n := assigned(rs)
				fsm.NormalizeServer(target, &n)
				if _, has := target.Servers[n.Key()]; has {
					continue
				}
				if _, has := target.Pool[n.Key()]; has {
					continue
				}
				out = append(out, candidate{server: rs, from: sk, pooled: list.pooled})
			}
		}
	}
	slices.SortStableFunc(out, func(a, b candidate) int {
		if c := a.server.Address.Compare(b.server.Address); c != 0 {
			return c
		}
		return cmp.Compare(a.server.Port, b.server.Port)
	})
	return append(own, out...)
}
