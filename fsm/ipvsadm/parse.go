// Package ipvsadm speaks ipvsadm's command language for ipvsman: it turns
// ipvsadm argument vectors into fsm ops and prints the model the way
// ipvsadm 1.31 prints the kernel table (-L in all its variants, -S), so that
// scripts and habits built on ipvsadm keep working against the cluster.
//
// The package is pure: no network, no clock, no goroutines. Port names are
// the one lookup it does, through the replaceable LookupPort. It imports
// only fsm and knows nothing of the kernel or the cluster: a node's kernel
// table is printed from what its caller read and handed over.
package ipvsadm

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/ipvsman/ipvsman/fsm"
)

// Action is what a parsed command asks for.
type Action int

const (
	ActionOps     Action = iota // -A -E -D -C -a -e -d: commit Command.Ops
	ActionList                  // -L / -l, or no arguments at all
	ActionSave                  // -S
	ActionRestore               // -R: the caller reads input and calls ParseRestore
	ActionZero                  // -Z
	ActionHelp                  // -h
	ActionVersion               // -v
)

func (a Action) String() string {
	switch a {
	case ActionOps:
		return "ops"
	case ActionList:
		return "list"
	case ActionSave:
		return "save"
	case ActionRestore:
		return "restore"
	case ActionZero:
		return "zero"
	case ActionHelp:
		return "help"
	case ActionVersion:
		return "version"
	}
	return "Action(" + strconv.Itoa(int(a)) + ")"
}

// ListOptions are the output switches of -L (and -n for -S).
type ListOptions struct {
	Numeric     bool // -n
	Stats       bool // --stats
	Rate        bool // --rate
	Exact       bool // --exact
	Thresholds  bool // --thresholds
	Persistent  bool // --persistent-conn
	TunInfo     bool // --tun-info
	Connections bool // -c
	Timeouts    bool // --timeout
	// Service limits the listing to one service (-L -t addr:port).
	Service *fsm.ServiceKey
}

// Command is one parsed ipvsadm command line.
type Command struct {
	Action Action
	Ops    []fsm.Op        // ActionOps: exactly what to commit
	List   ListOptions     // ActionList, ActionSave
	Zero   *fsm.ServiceKey // ActionZero: nil means every service
}

// MaxTimeout is ipvsadm's upper bound for -p, 31 days in seconds.
const MaxTimeout = fsm.MaxPersistence

// allowed lists, per command, the options ipvsadm's commands_v_options
// table lets it take. Options are named by slot (see slotOf).
var allowed = map[optID][]optID{
	cmdAdd:      {optTCP, optIPv6, optSched, optPersist, optNetmask, optSchedFlags, optOnePacket, optPE},
	cmdEdit:     {optTCP, optIPv6, optSched, optPersist, optNetmask, optSchedFlags, optOnePacket, optPE},
	cmdDel:      {optTCP, optIPv6},
	cmdList:     {optTCP, optIPv6, optNumeric, optConn, optStats, optRate, optThresholds, optPConn, optTunInfo, optExact, optNoSort, optTimeout},
	cmdSet:      {},
	cmdAddDest:  {optTCP, optIPv6, optReal, optGate, optWeight, optUpper, optLower, optTunType, optTunPort, optTunNoCsum},
	cmdEditDest: {optTCP, optIPv6, optReal, optGate, optWeight, optUpper, optLower, optTunType, optTunPort, optTunNoCsum},
	cmdDelDest:  {optTCP, optIPv6, optReal},
	cmdSave:     {optNumeric},
	cmdZero:     {optTCP, optIPv6},
}

// slotOf folds options that set the same thing, so that "-t ... -u ..." or
// "-g -m" is caught as given twice, as ipvsadm's set_option does.
func slotOf(id optID) optID {
	switch id {
	case optUDP, optFWMark, optSCTP:
		return optTCP
	case optIPIP, optMasq:
		return optGate
	case optTunCsum, optTunRemCsum:
		return optTunNoCsum // one checksum mode per server
	}
	return id
}

type parser struct {
	cmd  *token
	opts []token          // in command-line order, for stable errors
	seen map[optID]*token // by slot
}

// Parse parses one ipvsadm command line (without the program name). It
// rejects only what it cannot parse or what ipvsadm's grammar forbids; the
// model's rules (scheduler names, weight range, flags against scheduler)
// are checked by fsm when the ops apply.
func Parse(args []string) (Command, error) {
	if len(args) == 0 {
		return Command{Action: ActionList}, nil
	}
	toks, err := tokenize(args)
	if err != nil {
		return Command{}, err
	}
	p := parser{seen: map[optID]*token{}}
	for i := range toks {
		if err := p.take(&toks[i]); err != nil {
			return Command{}, err
		}
	}
	return p.build()
}

func (p *parser) take(t *token) error {
	id := t.spec.id
	switch {
	case id.isCommand():
		if p.cmd != nil {
			return fmt.Errorf("%s: more than one command (already %s)", t.name, p.cmd.name)
		}
		p.cmd = t
		return nil
	case id == optSort:
		return nil // ipvsadm always sorts; --sort is kept for old scripts
	}
	slot := slotOf(id)
	if prev := p.seen[slot]; prev != nil && slot != optIPv6 {
		return fmt.Errorf("%s: conflicts with %s given before (give it once)", t.label(), prev.label())
	}
	p.seen[slot] = t
	p.opts = append(p.opts, *t)
	return nil
}

func (p *parser) build() (Command, error) {
	if p.cmd == nil {
		return Command{}, fmt.Errorf("no command given (want one of -A -E -D -C -a -e -d -L -S -R -Z -h)")
	}
	id := p.cmd.spec.id
	switch id {
	case cmdHelp:
		return Command{Action: ActionHelp}, nil
	case cmdVersion:
		return Command{Action: ActionVersion}, nil
	}
	for _, t := range p.opts {
		ok := false
		for _, a := range allowed[id] {
			ok = ok || a == slotOf(t.spec.id)
		}
		if !ok {
			return Command{}, fmt.Errorf("%s: not valid with %s", t.label(), p.cmd.name)
		}
	}
	svc, err := p.service()
	if err != nil {
		return Command{}, err
	}
	needService := id == cmdAdd || id == cmdEdit || id == cmdDel || id == cmdAddDest || id == cmdEditDest || id == cmdDelDest
	if needService && svc == nil {
		return Command{}, fmt.Errorf("%s needs -t, -u or -f", p.cmd.name)
	}
	if (id == cmdAddDest || id == cmdEditDest || id == cmdDelDest) && p.seen[optReal] == nil {
		return Command{}, fmt.Errorf("%s needs -r", p.cmd.name)
	}
	switch id {
	case cmdAdd, cmdEdit:
		return p.serviceOp(*svc)
	case cmdDel:
		return ops(fsm.Op{Kind: fsm.OpDeleteService, ServiceKey: *svc}), nil
	case cmdClear:
		return ops(fsm.Op{Kind: fsm.OpClear}), nil
	case cmdAddDest, cmdEditDest, cmdDelDest:
		return p.serverOp(*svc)
	case cmdList:
		return p.list(svc)
	case cmdSave:
		return Command{Action: ActionSave, List: ListOptions{Numeric: p.seen[optNumeric] != nil}}, nil
	case cmdRestore:
		return Command{Action: ActionRestore}, nil
	case cmdZero:
		return Command{Action: ActionZero, Zero: svc}, nil
	case cmdSet:
		return setTimeouts(p.cmd)
	}
	return Command{}, fmt.Errorf("%s: command not handled", p.cmd.name)
}

// setTimeouts parses --set's three values; 0 keeps a timeout unchanged.
func setTimeouts(t *token) (Command, error) {
	var v [3]uint32
	fields := strings.Fields(t.value)
	if len(fields) != len(v) {
		// Whitespace inside one argument ("0\f0") splits into more.
		return Command{}, fmt.Errorf("--set %q: want 3 numbers of seconds (tcp tcpfin udp), got %d", t.value, len(fields))
	}
	for i, f := range fields {
		n, err := strconv.ParseUint(f, 10, 32)
		if err != nil {
			return Command{}, fmt.Errorf("--set %s: %q is not a number of seconds", []string{"tcp", "tcpfin", "udp"}[i], f)
		}
		v[i] = uint32(n)
	}
	return ops(fsm.Op{Kind: fsm.OpSetTimeouts, Timeouts: &fsm.Timeouts{TCP: v[0], TCPFin: v[1], UDP: v[2]}}), nil
}

func ops(op fsm.Op) Command { return Command{Action: ActionOps, Ops: []fsm.Op{op}} }

// service parses -t/-u/-f (and -6); nil when none was given.
func (p *parser) service() (*fsm.ServiceKey, error) {
	t := p.seen[optTCP]
	six := p.seen[optIPv6]
	if t == nil || t.spec.id != optFWMark {
		if six != nil {
			return nil, fmt.Errorf("%s: only valid with -f (a fwmark service)", six.name)
		}
		if t == nil {
			return nil, nil
		}
	}
	var k fsm.ServiceKey
	switch t.spec.id {
	case optFWMark:
		m, err := parseMark(*t)
		if err != nil {
			return nil, err
		}
		k = fsm.ServiceKey{Protocol: fsm.FWMark, Mark: m, IPv6: six != nil}
	default:
		proto := fsm.TCP
		switch t.spec.id {
		case optUDP:
			proto = fsm.UDP
		case optSCTP:
			proto = fsm.SCTP
		}
		var hasPort bool
		var err error
		if k, hasPort, err = parseServiceArg(*t, proto); err != nil {
			return nil, err
		}
		id := p.cmd.spec.id
		if !hasPort && (id == cmdAdd || id == cmdEdit) && p.seen[optPersist] == nil {
			return nil, fmt.Errorf("%s: want address:port (the port may be omitted only with -p)", t.label())
		}
	}
	return &k, nil
}

func (p *parser) serviceOp(key fsm.ServiceKey) (Command, error) {
	s := &fsm.Service{Key: key, Scheduler: "wlc"}
	if t := p.seen[optSched]; t != nil {
		if t.value == "" {
			return Command{}, fmt.Errorf("%s: want a scheduler name", t.label())
		}
		s.Scheduler = t.value
	}
	if t := p.seen[optPersist]; t != nil {
		s.Persistence = &fsm.Persistence{Timeout: fsm.DefaultPersistence}
		if t.hasValue {
			n, err := strconv.ParseUint(t.value, 10, 32)
			if err != nil || n < 1 || n > MaxTimeout {
				return Command{}, fmt.Errorf("%s: timeout must be a number of seconds from 1 to %d", t.label(), MaxTimeout)
			}
			s.Persistence.Timeout = uint32(n)
		}
	}
	if t := p.seen[optNetmask]; t != nil {
		if s.Persistence == nil {
			return Command{}, fmt.Errorf("%s: needs -p (the netmask is the granularity of persistence)", t.label())
		}
		mask, err := parseNetmask(*t, key.Family() == "inet6")
		if err != nil {
			return Command{}, err
		}
		s.Persistence.Netmask = mask
	}
	if t := p.seen[optPE]; t != nil {
		if s.Persistence == nil {
			return Command{}, fmt.Errorf("%s: needs -p (a persistence engine keys persistence)", t.label())
		}
		if t.value == "" {
			return Command{}, fmt.Errorf("%s: want a persistence engine name (sip)", t.label())
		}
		s.Persistence.Engine = t.value
	}
	if t := p.seen[optSchedFlags]; t != nil {
		// strtok semantics: empty items between commas are skipped.
		for f := range strings.SplitSeq(t.value, ",") {
			if f != "" {
				s.Flags = append(s.Flags, f)
			}
		}
		if len(s.Flags) == 0 {
			return Command{}, fmt.Errorf("%s: want a comma-separated list of scheduler flags", t.label())
		}
	}
	s.OnePacket = p.seen[optOnePacket] != nil
	kind := fsm.OpAddService
	if p.cmd.spec.id == cmdEdit {
		kind = fsm.OpEditService
	}
	return ops(fsm.Op{Kind: kind, ServiceKey: key, Service: s}), nil
}

func (p *parser) serverOp(key fsm.ServiceKey) (Command, error) {
	rt := p.seen[optReal]
	hp, err := splitAddr(rt.value)
	if err != nil {
		return Command{}, fmt.Errorf("%s: %w", rt.label(), err)
	}
	// Port 0 means "the service's port": fsm.NormalizeServer fills it in.
	rs := &fsm.RealServer{Address: hp.addr}
	if hp.hasPort {
		if rs.Port, err = resolvePort(hp.port, key.Protocol); err != nil {
			return Command{}, fmt.Errorf("%s: %w", rt.label(), err)
		}
	}
	op := fsm.Op{Kind: fsm.OpDeleteServer, ServiceKey: key, Server: rs}
	if p.cmd.spec.id == cmdDelDest {
		return ops(op), nil
	}
	op.Kind = fsm.OpAddServer
	if p.cmd.spec.id == cmdEditDest {
		op.Kind = fsm.OpEditServer
	}
	rs.Forward, rs.Weight = fsm.DirectRoute, fsm.DefaultWeight
	if t := p.seen[optGate]; t != nil {
		switch t.spec.id {
		case optIPIP:
			rs.Forward = fsm.Tunnel
		case optMasq:
			rs.Forward = fsm.Masquerade
		}
	}
	rs.LocalIfLoopback() // ipvsadm -S prints -g for "Local"
	if t := p.seen[optWeight]; t != nil {
		if rs.Weight, err = strconv.Atoi(t.value); err != nil {
			return Command{}, fmt.Errorf("%s: weight must be a number", t.label())
		}
	}
	for _, th := range []struct {
		id   optID
		dst  *uint32
		what string
	}{{optUpper, &rs.Upper, "upper"}, {optLower, &rs.Lower, "lower"}} {
		if t := p.seen[th.id]; t != nil {
			n, err := strconv.ParseUint(t.value, 10, 32)
			if err != nil {
				return Command{}, fmt.Errorf("%s: %s threshold must be a number from 0 to 4294967295", t.label(), th.what)
			}
			*th.dst = uint32(n)
		}
	}
	if err := p.tunnel(rs); err != nil {
		return Command{}, err
	}
	return ops(op), nil
}

// tunnel parses --tun-type, --tun-port and the checksum switches, which
// ipvsadm allows only with -i. Rules the model's fields can express (gue
// needs a port, gre and ipip take none) are left to fsm; a checksum switch
// with ipip is refused here, because --tun-nocsum is the model's default
// and fsm could not tell it was given.
func (p *parser) tunnel(rs *fsm.RealServer) error {
	for _, id := range []optID{optTunType, optTunPort, optTunNoCsum} {
		if t := p.seen[id]; t != nil && rs.Forward != fsm.Tunnel {
			return fmt.Errorf("%s: only valid with -i (tunnelling)", t.label())
		}
	}
	if t := p.seen[optTunType]; t != nil {
		switch fsm.TunnelType(t.value) {
		case fsm.TunnelIPIP:
			// The model's default: ipvsadm -S writes it for every ipip server.
		case fsm.TunnelGUE, fsm.TunnelGRE:
			rs.TunnelType = fsm.TunnelType(t.value)
		default:
			return fmt.Errorf("%s: want ipip, gue or gre", t.label())
		}
	}
	if t := p.seen[optTunPort]; t != nil {
		n, err := strconv.ParseUint(t.value, 10, 16)
		if err != nil || n == 0 {
			return fmt.Errorf("%s: want a tunnel port number from 1 to 65535", t.label())
		}
		rs.TunnelPort = uint16(n)
	}
	if t := p.seen[optTunNoCsum]; t != nil {
		if rs.TunnelType == "" {
			return fmt.Errorf("%s: not valid with tunnel type ipip (want --tun-type gue or gre)", t.label())
		}
		switch t.spec.id {
		case optTunCsum:
			rs.TunnelCsum = fsm.TunnelCsumOn
		case optTunRemCsum:
			rs.TunnelCsum = fsm.TunnelRemCsum
		}
	}
	return nil
}

func (p *parser) list(svc *fsm.ServiceKey) (Command, error) {
	has := func(id optID) bool { return p.seen[id] != nil }
	lo := ListOptions{
		Numeric:     has(optNumeric),
		Stats:       has(optStats),
		Rate:        has(optRate),
		Exact:       has(optExact),
		Thresholds:  has(optThresholds),
		Persistent:  has(optPConn),
		TunInfo:     has(optTunInfo),
		Connections: has(optConn),
		Timeouts:    has(optTimeout),
		Service:     svc,
	}
	if c := p.seen[optConn]; c != nil {
		if svc != nil {
			return Command{}, fmt.Errorf("%s: cannot be combined with %s", c.name, p.seen[optTCP].label())
		}
		if lo.Stats || lo.Rate || lo.Thresholds {
			return Command{}, fmt.Errorf("%s: cannot be combined with --stats, --rate or --thresholds", c.name)
		}
	}
	return Command{Action: ActionList, List: lo}, nil
}
