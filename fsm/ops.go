package fsm

import (
	"fmt"
	"net/netip"
	"slices"
)

// OpKind names one change of the topology, as ipvsadm's commands do.
type OpKind string

const (
	OpAddService    OpKind = "add-service"    // ipvsadm -A
	OpEditService   OpKind = "edit-service"   // ipvsadm -E
	OpDeleteService OpKind = "delete-service" // ipvsadm -D
	OpAddServer     OpKind = "add-server"     // ipvsadm -a
	OpEditServer    OpKind = "edit-server"    // ipvsadm -e
	OpDeleteServer  OpKind = "delete-server"  // ipvsadm -d
	OpClear         OpKind = "clear"          // ipvsadm -C
	OpSetTimeouts   OpKind = "set-timeouts"   // ipvsadm --set tcp tcpfin udp
	OpSetState      OpKind = "set-state"      // ipvsman server suspend|resume|drain
	OpSetCheck      OpKind = "set-check"      // ipvsman check set
	OpClearCheck    OpKind = "clear-check"    // ipvsman check clear
	OpSetSync       OpKind = "set-sync"       // ipvsadm --start-daemon, --stop-daemon
)

// Op is one topology change. Service carries the attributes for add/edit of a
// service (its Servers, Pool and Group are ignored); ServiceKey names the service for every
// other kind; Server carries the real server for server ops (only its
// address and port matter for delete, set-state and the check ops).
//
// set-check and clear-check act on the service's check, or, when Server is
// given, on that real server's own check (which replaces the service's for
// it); Check is the check to set.
type Op struct {
	Kind       OpKind       `json:"kind"`
	ServiceKey ServiceKey   `json:"service_key"`
	Service    *Service     `json:"service,omitempty"`
	Server     *RealServer  `json:"server,omitempty"`
	Timeouts   *Timeouts    `json:"timeouts,omitempty"`
	Check      *HealthCheck `json:"check,omitempty"`
	Sync       *Sync        `json:"sync,omitempty"`
	// Group is the virtual services group-add adds to the service's
	// group, or group-remove takes out of it (group.go).
	Group []ServiceKey `json:"group,omitempty"`
	// Quorum is what set-quorum sets (quorum.go).
	Quorum *QuorumSetting `json:"quorum,omitempty"`
}

// ApplyOps applies ops in order to a copy of c and returns the copy. It
// fails, naming the op and the item, if any op cannot apply; c is never
// changed. ipvsadm's semantics: -E and -e replace every attribute the
// command can set, keeping what ipvsadm cannot express (names, state, the
// sorry server, health checks).
//
// It costs O(n + k) for k ops on services of n real servers in all: each
// service an op changes is cloned once per call, not once per op (see
// batch).
func ApplyOps(c *Config, ops []Op) (*Config, error) {
	b := batch{c: c.Clone(), owned: map[*Service]bool{}}
	for i, op := range ops {
		if err := b.apply(op); err != nil {
			if len(ops) > 1 {
				return nil, fmt.Errorf("command %d of %d: %w", i+1, len(ops), err)
			}
			return nil, err
		}
	}
	if err := b.checkECMP(); err != nil {
		return nil, err
	}
	return b.c, nil
}

// batch is the copy that one ApplyOps call changes, copy-on-write: its
// Services map is its own, but a service in it is shared with the caller's
// config, and never changed, until an op changes it. That op changes a clone
// instead and records it in owned; later ops of the call change the clone in
// place. Nothing ever changes a *RealServer in place, owned or not: an op
// replaces the pointer.
type batch struct {
	c     *Config
	owned map[*Service]bool // made by this call, so reachable from no committed config
	// members maps each group member key to its service's key (group.go),
	// made on first use; nil until then.
	members map[string]string
}

// writable returns service key (svc, as found in b.c), cloned unless this
// call made it, so that it can be changed.
func (b *batch) writable(key string, svc *Service) *Service {
	if b.owned[svc] {
		return svc
	}
	n := svc.Clone()
	b.owned[n] = true
	b.c.Services[key] = n
	return n
}

// opHandlers applies each op kind to a batch. A map lookup per op keeps
// ApplyOps linear in the number of ops.
var opHandlers = map[OpKind]func(b *batch, op Op) error{
	OpClear:         (*batch).clear,
	OpSetSync:       func(b *batch, op Op) error { return applySetSync(b.c, op) },
	OpSetTimeouts:   (*batch).setTimeouts,
	OpAddService:    (*batch).applyService,
	OpEditService:   (*batch).applyService,
	OpDeleteService: onService((*batch).deleteService),
	OpSetCheck:      onService((*batch).applyCheck),
	OpClearCheck:    onService((*batch).applyCheck),
	OpAddServer:     onServer((*batch).addServer),
	OpEditServer:    onServer((*batch).editServer),
	OpDeleteServer:  onServer((*batch).deleteServer),
	OpSetState:      onServer((*batch).setState),
	OpSetQuorum:     onService((*batch).setQuorum),
}

func (b *batch) apply(op Op) error {
	if h, ok := opHandlers[op.Kind]; ok {
		return h(b, op)
	}
	if h, ok := poolHandlers[op.Kind]; ok {
		return h(b, op)
	}
	if h, ok := groupHandlers[op.Kind]; ok {
		return h(b, op)
	}
	// A missing service is reported before an unknown kind: the error is
	// recorded in a rejected command's result, so every build must give
	// the same one.
	if _, _, err := b.service(op); err != nil {
		return err
	}
	return fmt.Errorf("op kind %q: unknown", op.Kind)
}

// service finds the service op names.
func (b *batch) service(op Op) (string, *Service, error) {
	k := op.ServiceKey
	k.Address = k.Address.Unmap()
	key := k.String()
	old, ok := b.c.Services[key]
	if !ok {
		return "", nil, b.notService(key)
	}
	return key, old, nil
}

// onService makes a handler of one that acts on the existing service the
// op names (key, and the service as found in b.c).
func onService(h func(b *batch, key string, old *Service, op Op) error) func(*batch, Op) error {
	return func(b *batch, op Op) error {
		key, old, err := b.service(op)
		if err != nil {
			return err
		}
		return h(b, key, old, op)
	}
}

// onServer makes a handler of one that acts on a real server of the
// service: rs is op's server normalized against the service. Everything is
// looked up and checked in old; only the change itself goes to the
// writable service. The sorry server is checked after the change: a map
// lookup, not a walk of the servers.
func onServer(h func(b *batch, key string, old *Service, op Op, rs RealServer) error) func(*batch, Op) error {
	return onService(func(b *batch, key string, old *Service, op Op) error {
		if op.Server == nil {
			return fmt.Errorf("%s on service %s: server: missing", op.Kind, key)
		}
		rs := *op.Server
		NormalizeServer(old, &rs)
		if err := h(b, key, old, op, rs); err != nil {
			return err
		}
		return checkSorry(b.c.Services[key])
	})
}

func (b *batch) clear(Op) error {
	b.c.Services = map[string]*Service{}
	b.members = map[string]string{}
	return nil
}

func (b *batch) setTimeouts(op Op) error {
	if op.Timeouts == nil {
		return fmt.Errorf("%s: timeouts: missing", op.Kind)
	}
	if err := ValidateTimeouts(op.Timeouts); err != nil {
		return err
	}
	t := Timeouts{}
	if b.c.Timeouts != nil {
		t = *b.c.Timeouts
	}
	// As ipvsadm --set: a zero keeps the value already set.
	for _, f := range []struct {
		dst *uint32
		v   uint32
	}{{&t.TCP, op.Timeouts.TCP}, {&t.TCPFin, op.Timeouts.TCPFin}, {&t.UDP, op.Timeouts.UDP}} {
		if f.v != 0 {
			*f.dst = f.v
		}
	}
	b.c.Timeouts = &t
	return nil
}

func (b *batch) deleteService(key string, old *Service, _ Op) error {
	b.forgetGroup(old) // the members' kernel services go with the service
	delete(b.c.Services, key)
	return nil
}

// serverCheck copies and validates the check an added or edited server
// brings. ValidateServer checks it too, but does not reach the check of a
// server that is not tunnelled.
func serverCheck(old *Service, rs *RealServer) error {
	if rs.Check == nil {
		return nil
	}
	rs.Check = cloneCheck(rs.Check)
	return ValidateHealthCheck(fmt.Sprintf("real server %s of service %s check", rs.Key(), old.Key), rs.Check)
}

func (b *batch) addServer(key string, old *Service, _ Op, rs RealServer) error {
	if err := serverCheck(old, &rs); err != nil {
		return err
	}
	rkey := rs.Key()
	if _, exists := old.Servers[rkey]; exists {
		return fmt.Errorf("real server %s of service %s: already exists", rkey, key)
	}
	if _, pooled := old.Pool[rkey]; pooled {
		return fmt.Errorf("real server %s of service %s: in the service's pool (ipvsman pool assign assigns it; ipvsman pool forget drops it)", rkey, key)
	}
	if err := ValidateServer(old, &rs); err != nil {
		return err
	}
	b.writable(key, old).Servers[rkey] = &rs
	return nil
}

// editServer replaces what ipvsadm -e can set and keeps what it cannot
// express: the name, the state and the server's own check.
func (b *batch) editServer(key string, old *Service, _ Op, rs RealServer) error {
	if err := serverCheck(old, &rs); err != nil {
		return err
	}
	rkey := rs.Key()
	prev, exists := old.Servers[rkey]
	if !exists {
		return fmt.Errorf("real server %s of service %s: no such real server", rkey, key)
	}
	if rs.Name == "" {
		rs.Name = prev.Name
	}
	if rs.State == "" {
		rs.State = prev.State
	}
	if rs.Check == nil {
		rs.Check = prev.Check
	}
	if err := ValidateServer(old, &rs); err != nil {
		return err
	}
	b.writable(key, old).Servers[rkey] = &rs
	return nil
}

func (b *batch) deleteServer(key string, old *Service, _ Op, rs RealServer) error {
	rkey := rs.Key()
	if _, exists := old.Servers[rkey]; !exists {
		return fmt.Errorf("real server %s of service %s: no such real server", rkey, key)
	}
	delete(b.writable(key, old).Servers, rkey)
	return nil
}

// setState names its server by address and port only, so that the other
// attributes stay as they are.
func (b *batch) setState(key string, old *Service, op Op, _ RealServer) error {
	rkey, prev, err := namedServer(old, op.Server)
	if err != nil {
		return err
	}
	next := *prev
	next.State = op.Server.State
	if err := ValidateServer(old, &next); err != nil {
		return err
	}
	b.writable(key, old).Servers[rkey] = &next
	return nil
}

// applyService adds or edits (replaces the attributes of) a service. An
// edited service keeps its real servers: the map moves to the new service
// when this call made the old one, and is copied, once, when not.
func (b *batch) applyService(op Op) error {
	if op.Service == nil {
		return fmt.Errorf("%s: service: missing", op.Kind)
	}
	svc := op.Service.Clone()
	if svc.Check != nil {
		svc.Check = cloneCheck(svc.Check) // Clone shares it; the config must not share op's memory
	}
	NormalizeService(svc)
	if err := ValidateService(svc); err != nil {
		return err
	}
	key := svc.Key.String()
	old, exists := b.c.Services[key]
	if op.Kind == OpAddService {
		if exists {
			return fmt.Errorf("service %s: already exists", key)
		}
		if owner, member := b.memberOf(key); member {
			return memberError(key, owner)
		}
		svc.Servers = map[string]*RealServer{}
		svc.Pool = nil  // pool-server fills it
		svc.Group = nil // group-add fills it
	} else {
		if !exists {
			return b.notService(key)
		}
		if svc.Name == "" {
			svc.Name = old.Name
		}
		if svc.Sorry == nil && svc.OnFailure == "" {
			if old.Sorry != nil {
				r := *old.Sorry
				svc.Sorry = &r
			}
			svc.OnFailure = old.OnFailure
		}
		if svc.Check == nil {
			svc.Check = old.Check // never mutated: set-check replaces the pointer
		}
		if svc.Quorum == 0 && svc.Hysteresis == 0 { // -E cannot say a quorum: set-quorum does
			svc.Quorum, svc.Hysteresis = old.Quorum, old.Hysteresis
		}
		if b.owned[old] {
			svc.Servers = old.Servers // old leaves the config here; nothing else holds it
		} else {
			svc.Servers = old.Clone().Servers
		}
		svc.Pool = b.keptPool(old) // -E cannot say a pool: it keeps it
		if err := keepGroup(svc, old); err != nil {
			return err
		}
	}
	b.owned[svc] = true
	b.c.Services[key] = svc
	return checkSorry(svc)
}

// applyCheck sets or clears the check of service key (old), or of one of its
// real servers when op.Server is given. A new check is validated before
// anything changes; it is copied, so the config shares no memory with op.
func (b *batch) applyCheck(key string, old *Service, op Op) error {
	var check *HealthCheck
	if op.Kind == OpSetCheck {
		if op.Check == nil {
			return fmt.Errorf("%s on service %s: check: missing", op.Kind, key)
		}
		check = cloneCheck(op.Check)
	}
	if op.Server == nil {
		if check != nil {
			if err := ValidateHealthCheck(fmt.Sprintf("service %s check", old.Key), check); err != nil {
				return err
			}
		} else if old.Check == nil {
			return fmt.Errorf("service %s: has no check to clear", key)
		}
		b.writable(key, old).Check = check
		return nil
	}
	rkey, prev, err := namedServer(old, op.Server)
	if err != nil {
		return err
	}
	where := fmt.Sprintf("real server %s of service %s", rkey, old.Key)
	if check != nil {
		if err := ValidateHealthCheck(where+" check", check); err != nil {
			return err
		}
	} else if prev.Check == nil {
		return fmt.Errorf("%s: has no check of its own to clear", where)
	}
	next := *prev
	next.Check = check
	b.writable(key, old).Servers[rkey] = &next
	return nil
}

// namedServer finds the real server that r names by address and port only,
// as set-state and the check ops name it: port 0 is the service's port.
func namedServer(svc *Service, r *RealServer) (string, *RealServer, error) {
	port := r.Port
	if port == 0 && svc.Key.Protocol != FWMark {
		port = svc.Key.Port
	}
	rkey := netip.AddrPortFrom(r.Address.Unmap(), port).String()
	prev, ok := svc.Servers[rkey]
	if !ok {
		return "", nil, fmt.Errorf("real server %s of service %s: no such real server", rkey, svc.Key)
	}
	return rkey, prev, nil
}

// cloneCheck deep-copies c, with empty lists as nil so that equal intent
// gives equal bytes.
func cloneCheck(c *HealthCheck) *HealthCheck {
	n := *c
	n.Status, n.Command = nil, nil
	if len(c.Status) > 0 {
		n.Status = slices.Clone(c.Status)
	}
	if len(c.Command) > 0 {
		n.Command = slices.Clone(c.Command)
	}
	return &n
}

// NormalizeService fills ipvsadm's defaults and sorts flags, so that equal
// intent gives equal bytes.
func NormalizeService(s *Service) {
	if s.Scheduler == "" {
		s.Scheduler = "wlc"
	}
	if s.Key.Protocol != FWMark {
		s.Key.Address = s.Key.Address.Unmap()
		s.Key.Mark, s.Key.IPv6 = 0, false
	} else {
		s.Key.Address, s.Key.Port = netipZero, 0
	}
	slices.Sort(s.Flags)
	s.Flags = slices.Compact(s.Flags)
	if len(s.Flags) == 0 {
		s.Flags = nil
	}
	if s.Persistence != nil && s.Persistence.Timeout == 0 {
		s.Persistence.Timeout = DefaultPersistence
	}
	if s.OnFailure == "quiescent" {
		s.OnFailure = ""
	}
	if s.Sorry != nil {
		NormalizeServer(s, s.Sorry)
	}
}

// NormalizeServer applies ipvsadm's rules: a real server without a port takes
// the service's; direct routing and tunnelling cannot change the port, so
// for them it is the service's port (ipvsadm does the same silently).
func NormalizeServer(svc *Service, r *RealServer) {
	r.Address = r.Address.Unmap()
	if r.Forward == "" {
		r.Forward = DirectRoute
	}
	if r.State == "" {
		r.State = Active
	}
	if svc.Key.Protocol != FWMark && (r.Port == 0 || r.Forward != Masquerade) {
		r.Port = svc.Key.Port
	}
	// One spelling for the defaults, so that equal intent gives equal bytes.
	if r.TunnelType == TunnelIPIP {
		r.TunnelType = ""
	}
	if r.TunnelCsum == TunnelNoCsum {
		r.TunnelCsum = ""
	}
}

// NameDeletedServers gives each delete-server op that names its real server
// without a forwarding method the method of the server at exactly that
// address and port, as ipvsadm -d finds a masquerading server on a port
// other than the service's. Without it the op would be read as direct
// routing, whose port is always the service's, and miss the server. The
// leader calls it before the op enters the log, so every node applies the
// same, complete op.
func NameDeletedServers(c *Config, ops []Op) []Op {
	out := slices.Clone(ops)
	for i, op := range out {
		if op.Kind != OpDeleteServer || op.Server == nil || op.Server.Forward != "" || op.Server.Port == 0 {
			continue
		}
		svc, ok := c.Services[op.ServiceKey.String()]
		if !ok {
			continue
		}
		if r, ok := svc.Servers[netip.AddrPortFrom(op.Server.Address.Unmap(), op.Server.Port).String()]; ok {
			rs := *op.Server
			rs.Forward = r.Forward
			out[i].Server = &rs
		}
	}
	return out
}

// KeepEditedStates gives each edit-server op that names no state the state
// the real server has, as ipvsadm -e keeps it: apply would otherwise read
// the missing state as active and resume a suspended or draining server.
// Like NameDeletedServers, the leader calls it before the op enters the
// log, so the logged op is complete and every build applies it alike.
func KeepEditedStates(c *Config, ops []Op) []Op {
	out := slices.Clone(ops)
	for i, op := range out {
		if op.Kind != OpEditServer || op.Server == nil || op.Server.State != "" {
			continue
		}
		svc, ok := c.Services[op.ServiceKey.String()]
		if !ok {
			continue
		}
		rs := *op.Server
		NormalizeServer(svc, &rs)
		if r, ok := svc.Servers[rs.Key()]; ok {
			named := *op.Server
			named.State = r.State
			out[i].Server = &named
		}
	}
	return out
}
