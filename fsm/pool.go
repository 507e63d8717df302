package fsm

import (
	"fmt"
	"maps"
	"net/netip"
)

// A service's pool holds real servers that are defined for it (address,
// port, forwarding, weight, thresholds, tunnel, name, state, check) but not
// assigned: they are in no kernel table and are not checked, and the
// verdict of a server leaves with it when it is unassigned. This is the
// 2007 ipvsman's "defined for this service, not assigned now": an operator
// takes a server out of rotation and back without retyping it, and
// forgetting it is a separate, explicit step.
//
// The pool is a map of its own (Service.Pool), not a state beside active,
// suspended and draining, so that everything that reads Servers (the
// desired kernel table, health checks, -L and -S, metrics, the sorry
// server's "no usable server") never sees a pool server by construction.
// A key is in Servers or in Pool, never both.

// PoolProtocol is the protocol that knows service pools. An older build
// would drop the pool when it decodes a configuration and refuse the pool
// ops, so a configuration with a pool is refused until every member
// speaks it (Config.Needs).
const PoolProtocol = PooledProtocol + 1

// Pool ops: ipvsadm has no pool, so these are ipvsman's own (`ipvsman
// pool add|assign|unassign|forget`). They name their real server by
// address and port (port 0: the service's), as set-state does, except
// pool-server, which carries the whole definition, as add-server does.
const (
	OpPoolServer     OpKind = "pool-server"     // define a real server in the pool
	OpAssignServer   OpKind = "assign-server"   // pool -> the service's real servers
	OpUnassignServer OpKind = "unassign-server" // the service's real servers -> pool
	OpForgetServer   OpKind = "forget-server"   // drop a pool server's definition
)

// poolHandlers are the pool ops' entries of opHandlers.
var poolHandlers = map[OpKind]func(b *batch, op Op) error{
	OpPoolServer:     onServer((*batch).poolServer),
	OpAssignServer:   onService((*batch).assignServer),
	OpUnassignServer: onService((*batch).unassignServer),
	OpForgetServer:   onService((*batch).forgetServer),
}

// SortedPoolKeys lists a service's pool servers in canonical order.
func (s *Service) SortedPoolKeys() []string {
	keys := make([]string, 0, len(s.Pool))
	for k := range s.Pool {
		keys = append(keys, k)
	}
	return sortStrings(keys)
}

// poolServer puts a new definition into the pool: like -a, it refuses a
// server the service already has, assigned or pooled.
func (b *batch) poolServer(key string, old *Service, _ Op, rs RealServer) error {
	if err := serverCheck(old, &rs); err != nil {
		return err
	}
	rkey := rs.Key()
	if _, exists := old.Servers[rkey]; exists {
		return fmt.Errorf("real server %s of service %s: assigned to the service (ipvsman pool unassign moves it to the pool)", rkey, key)
	}
	if _, exists := old.Pool[rkey]; exists {
		return fmt.Errorf("real server %s of service %s: already in the pool", rkey, key)
	}
	if err := ValidateServer(old, &rs); err != nil {
		return err
	}
	w := b.writable(key, old)
	if w.Pool == nil {
		w.Pool = map[string]*RealServer{}
	}
	w.Pool[rkey] = &rs
	return nil
}

// assignServer moves a pool server, as it is, into the service's real
// servers, hence into every kernel table.
func (b *batch) assignServer(key string, old *Service, op Op) error {
	rkey, prev, err := pooledNamed(old, op)
	if err != nil {
		return err
	}
	w := b.writable(key, old)
	delete(w.Pool, rkey)
	if len(w.Pool) == 0 {
		w.Pool = nil // one spelling of "no pool"
	}
	w.Servers[rkey] = prev
	return checkSorry(w)
}

// unassignServer moves a real server, as it is, into the pool: out of the
// kernel tables and the health checks, kept for a later assign.
func (b *batch) unassignServer(key string, old *Service, op Op) error {
	if op.Server == nil {
		return fmt.Errorf("%s on service %s: server: missing", op.Kind, key)
	}
	rkey, prev, err := namedServer(old, op.Server)
	if err != nil {
		return err
	}
	w := b.writable(key, old)
	delete(w.Servers, rkey)
	if w.Pool == nil {
		w.Pool = map[string]*RealServer{}
	}
	w.Pool[rkey] = prev
	return nil
}

// forgetServer drops a pool server's definition. An assigned server is
// refused: -d deletes it, and an operator who meant to keep it unassigns.
func (b *batch) forgetServer(key string, old *Service, op Op) error {
	rkey, _, err := pooledNamed(old, op)
	if err != nil {
		return err
	}
	w := b.writable(key, old)
	delete(w.Pool, rkey)
	if len(w.Pool) == 0 {
		w.Pool = nil
	}
	return nil
}

// pooledNamed finds the pool server op names by address and port (port 0:
// the service's), saying so when the server is assigned instead.
func pooledNamed(svc *Service, op Op) (string, *RealServer, error) {
	if op.Server == nil {
		return "", nil, fmt.Errorf("%s on service %s: server: missing", op.Kind, svc.Key)
	}
	port := op.Server.Port
	if port == 0 && svc.Key.Protocol != FWMark {
		port = svc.Key.Port
	}
	rkey := netip.AddrPortFrom(op.Server.Address.Unmap(), port).String()
	if r, ok := svc.Pool[rkey]; ok {
		return rkey, r, nil
	}
	if _, ok := svc.Servers[rkey]; ok {
		if op.Kind == OpForgetServer {
			return "", nil, fmt.Errorf("real server %s of service %s: assigned, not in the pool (ipvsman -d deletes it; ipvsman pool unassign keeps it in the pool)", rkey, svc.Key)
		}
		return "", nil, fmt.Errorf("real server %s of service %s: already assigned", rkey, svc.Key)
	}
	return "", nil, fmt.Errorf("real server %s of service %s: not in the pool", rkey, svc.Key)
}

// keptPool is the pool an edited service keeps: its own map when the
// batch made old (nothing else holds it), else a copy, since the batch may
// change the new service's pool in place.
func (b *batch) keptPool(old *Service) map[string]*RealServer {
	if len(old.Pool) == 0 {
		return nil
	}
	if b.owned[old] {
		return old.Pool
	}
	return maps.Clone(old.Pool)
}

// validatePool normalizes and checks the pool of a service whose real
// servers ValidateConfig has checked already.
func validatePool(svc *Service) error {
	if len(svc.Pool) == 0 {
		svc.Pool = nil
		return nil
	}
	pool := make(map[string]*RealServer, len(svc.Pool))
	for _, rk := range svc.SortedPoolKeys() {
		r := svc.Pool[rk]
		if r == nil {
			return fmt.Errorf("pool server %q of service %s: empty", rk, svc.Key)
		}
		NormalizeServer(svc, r)
		if err := ValidateServer(svc, r); err != nil {
			return fmt.Errorf("pool: %w", err)
		}
		if _, dup := pool[r.Key()]; dup {
			return fmt.Errorf("pool server %s of service %s: listed twice", r.Key(), svc.Key)
		}
		if _, dup := svc.Servers[r.Key()]; dup {
			return fmt.Errorf("pool server %s of service %s: also an assigned real server of the service", r.Key(), svc.Key)
		}
		pool[r.Key()] = r
	}
	svc.Pool = pool
	return nil
}

// needsPool is the protocol a configuration's pools need, and what needs it.
func (c *Config) needsPool() (int, string) {
	for k, svc := range c.Services {
		if len(svc.Pool) > 0 {
			return PoolProtocol, "service " + k + " pool"
		}
	}
	return BaseCommandProtocol, ""
}
