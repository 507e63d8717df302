package topology

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/ipvsman/ipvsman/fsm"
)

// The schema. Defaults and omissions are documented in README.md. Names that
// later milestones will add (check templates) are not declared, so they
// stay errors until they mean something: a file that asks
// for a feature must not load on a version that would ignore it.
//
// Optional numbers are pointers where 0 is a meaningful value that differs
// from "not given" (port 0, weight 0, a server's threshold 0 overriding the
// service's).
type yamlFile struct {
	Version  yamlInt       `yaml:"version,omitempty"`
	VIPs     []yamlVIP     `yaml:"vips,omitempty"`
	Services []yamlService `yaml:"services,omitempty"`
	// Kernel connection timeouts in seconds, as ipvsadm --set; 0 or absent
	// leaves one to the kernel.
	Timeouts *yamlTimeouts `yaml:"timeouts,omitempty,flow"`
	// Connection sync between the directors; absent: on, sync ID 1,
	// 224.0.0.81:8848.
	Sync *yamlSync `yaml:"sync,omitempty"`
}

// yamlTimeouts is fsm.Timeouts with integers that refuse fractions.
type yamlTimeouts struct {
	TCP    yamlInt `yaml:"tcp,omitempty"`
	TCPFin yamlInt `yaml:"tcp_fin,omitempty"`
	UDP    yamlInt `yaml:"udp,omitempty"`
}

type yamlSync struct {
	Off    bool    `yaml:"off,omitempty"`
	ID     yamlInt `yaml:"id,omitempty"`
	Group  string  `yaml:"group,omitempty"`
	Port   yamlInt `yaml:"port,omitempty"`
	TTL    yamlInt `yaml:"ttl,omitempty"`
	MaxLen yamlInt `yaml:"max_len,omitempty"`
}

type yamlVIP struct {
	Address   string `yaml:"address"`
	Interface string `yaml:"interface"`
	// Per-node interface overrides: node ID -> interface.
	Interfaces map[string]string `yaml:"interfaces,omitempty"`
	// Mode is "ecmp" for a VIP every ready node holds and announces.
	Mode string `yaml:"mode,omitempty"`
}

type yamlService struct {
	Name        string           `yaml:"name,omitempty"`
	Protocol    string           `yaml:"protocol"`
	Address     string           `yaml:"address,omitempty"`
	Port        *yamlInt         `yaml:"port,omitempty"`
	FWMark      *yamlInt         `yaml:"fwmark,omitempty"`
	IPv6        bool             `yaml:"ipv6,omitempty"`
	Group       []string         `yaml:"group,omitempty,flow"` // more virtual services, as keys (fsm/group.go)
	Scheduler   string           `yaml:"scheduler,omitempty"`
	Flags       []string         `yaml:"flags,omitempty,flow"`
	Persistence *yamlPersistence `yaml:"persistence,omitempty,flow"`
	OnePacket   bool             `yaml:"one_packet,omitempty"`
	// Defaults for the servers below.
	Forward string       `yaml:"forward,omitempty"`
	Weight  *yamlInt     `yaml:"weight,omitempty"`
	Upper   yamlInt      `yaml:"upper_threshold,omitempty"`
	Lower   yamlInt      `yaml:"lower_threshold,omitempty"`
	Check   *yamlCheck   `yaml:"check,omitempty"` // of its servers; a server's own replaces it
	Servers []yamlServer `yaml:"servers,omitempty"`
	// Real servers defined for the service but not assigned: in no kernel
	// table until `ipvsman pool assign` (or the console's a) assigns one.
	Pool []yamlServer `yaml:"pool,omitempty"`
	// What the line form cannot say: quiescent (default) or remove, and the
	// server used while no real server is usable.
	OnFailure   string      `yaml:"on_failure,omitempty"`
	SorryServer *yamlServer `yaml:"sorry_server,omitempty,flow"`
	// The least total weight of usable servers the service runs on, and
	// its margin (keepalived's quorum and hysteresis; fsm/quorum.go).
	Quorum     yamlInt `yaml:"quorum,omitempty"`
	Hysteresis yamlInt `yaml:"hysteresis,omitempty"`
}

type yamlPersistence struct {
	Timeout yamlInt `yaml:"timeout,omitempty"`
	Netmask string  `yaml:"netmask,omitempty"`
	Engine  string  `yaml:"engine,omitempty"` // persistence engine (ipvsadm --pe): sip
}

type yamlServer struct {
	Name    string  `yaml:"name,omitempty"`
	Address string  `yaml:"address"`
	Port    yamlInt `yaml:"port,omitempty"`
	Forward string  `yaml:"forward,omitempty"`
	// Tunnel encapsulation, forward: tunnel only; server-level only, since a
	// service default would also land on its non-tunnel servers.
	TunnelType string   `yaml:"tunnel_type,omitempty"`
	TunnelPort yamlInt  `yaml:"tunnel_port,omitempty"`
	TunnelCsum string   `yaml:"tunnel_csum,omitempty"`
	Weight     *yamlInt `yaml:"weight,omitempty"`
	Upper      *yamlInt `yaml:"upper_threshold,omitempty"`
	Lower      *yamlInt `yaml:"lower_threshold,omitempty"`
	State      string   `yaml:"state,omitempty"`
	// Replaces the service's check for this server.
	Check *yamlCheck `yaml:"check,omitempty"`
}

// schemaVersion is what MarshalYAML writes and ParseYAML accepts; an absent
// version means this one.
const schemaVersion = 1

// ParseYAML parses the structured form.
func ParseYAML(r io.Reader) (*fsm.Config, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read topology: %w", err)
	}
	return parseYAML(data)
}

func parseYAML(data []byte) (*fsm.Config, error) {
	// Decode twice: once to a node tree, for the line numbers of semantic
	// errors, and once strictly into the schema. Node.Decode cannot be
	// strict, so the tree cannot serve for both.
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return finish(fsm.NewConfig(), &errList{})
		}
		return nil, yamlError(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, yamlError(err)
		}
		if len(extra.Content) > 0 && extra.Content[0].ShortTag() != "!!null" {
			return nil, fmt.Errorf("line %d: a topology is one YAML document, found a second", extra.Line)
		}
	}
	var f yamlFile
	strict := yaml.NewDecoder(bytes.NewReader(data))
	strict.KnownFields(true)
	b := yamlBuilder{root: &root, cfg: fsm.NewConfig()}
	if err := strict.Decode(&f); err != nil && !errors.Is(err, io.EOF) {
		var te *yaml.TypeError
		if !errors.As(err, &te) {
			return nil, yamlError(err)
		}
		// The decoder went on past each bad value: the rest of the file
		// is still checked, so that one run reports every problem.
		b.decodeErrors(te)
	}
	if !b.blind {
		b.build(&f)
	}
	return finish(b.cfg, &b.errs)
}

type yamlBuilder struct {
	root *yaml.Node
	cfg  *fsm.Config
	errs errList
	// From decodeErrors: the items whose values did not all decode (by
	// path, as ypath.String writes it), where checks would only echo the
	// decoding error, and whether nothing can be checked at all.
	suspects map[string]bool
	blind    bool
}

// fail reports err at item at; the line is field's when the file has it.
// A suspect item's problems are dropped: a decoding error already stands
// for them.
func (b *yamlBuilder) fail(at ypath, field, item string, err error) {
	if b.suspect(at) {
		return
	}
	if item != "" {
		err = fmt.Errorf("%s: %w", item, err)
	}
	line := lineOf(b.root, at.with(field))
	if len(at) == 0 {
		b.errs.addf(line, "%w", err)
		return
	}
	b.errs.addf(line, "%s: %w", at, err)
}

// fieldError is a problem and the key to blame for its line.
type fieldError struct {
	field string
	err   error
}

func (b *yamlBuilder) build(f *yamlFile) {
	if f.Version != 0 && f.Version != schemaVersion {
		b.fail(nil, "version", "", fmt.Errorf("version %d: this ipvsman reads version %d", f.Version, schemaVersion))
	}
	vipAt := map[string]ypath{}
	for i, yv := range f.VIPs {
		at := ypath{"vips", i}
		if b.suspect(at) {
			continue
		}
		if yv.Address == "" {
			b.fail(at, "address", "", errors.New("address: missing"))
			continue
		}
		p, err := parseVIPAddr(yv.Address)
		if err != nil {
			b.fail(at, "address", "", err)
			continue
		}
		v := fsm.VIP{Prefix: p, Interface: yv.Interface, Interfaces: yv.Interfaces, Mode: yv.Mode}
		if len(v.Interfaces) == 0 {
			v.Interfaces = nil
		}
		fsm.NormalizeVIP(&v)
		if err := fsm.ValidateVIP(v); err != nil {
			b.fail(at, "", "", err)
			continue
		}
		key := p.String()
		if prev, dup := vipAt[key]; dup {
			b.fail(at, "", "", fmt.Errorf("vip %s: defined twice (also %s on line %d)", key, prev, lineOf(b.root, prev)))
			continue
		}
		vipAt[key] = at
		b.cfg.VIPs[key] = v
	}
	if f.Timeouts != nil {
		b.timeouts(f.Timeouts)
	}
	if f.Sync != nil {
		s, errs := f.Sync.compile()
		for _, e := range errs {
			b.fail(ypath{"sync"}, e.field, "", e.err)
		}
		if len(errs) == 0 {
			b.cfg.Sync = &s
		}
	}
	svcAt := map[string]ypath{}
	for i := range f.Services {
		b.service(ypath{"services", i}, &f.Services[i], svcAt)
	}
	b.groupClashes(svcAt)
}

// groupClashes reports, at the member's line, a group member that is a
// service of the file or a member of another service's group.
func (b *yamlBuilder) groupClashes(svcAt map[string]ypath) {
	memberAt := map[string]ypath{}
	for _, sk := range b.cfg.SortedServiceKeys() {
		at := svcAt[sk]
		for _, m := range b.cfg.Services[sk].Group {
			ms := m.String()
			if prev, dup := memberAt[ms]; dup {
				b.fail(at, "group", "", fmt.Errorf("service %s group member %s: also in the group of %s on line %d", sk, ms, prev, lineOf(b.root, prev)))
			} else if other, dup := svcAt[ms]; dup {
				b.fail(at, "group", "", fmt.Errorf("service %s group member %s: also a service (%s on line %d)", sk, ms, other, lineOf(b.root, other)))
			}
			memberAt[ms] = at
		}
	}
}

// timeouts range-checks each before fsm sees them as uint32s, so that -1
// is an error and not 4294967295 seconds.
func (b *yamlBuilder) timeouts(yt *yamlTimeouts) {
	at := ypath{"timeouts"}
	var t fsm.Timeouts
	ok := true
	for _, f := range []struct {
		key string
		v   yamlInt
		dst *uint32
	}{{"tcp", yt.TCP, &t.TCP}, {"tcp_fin", yt.TCPFin, &t.TCPFin}, {"udp", yt.UDP, &t.UDP}} {
		if f.v < 0 || f.v > fsm.MaxTimeout {
			b.fail(at, f.key, "", fmt.Errorf("timeout %s %d: want 0-%d seconds (0 leaves it to the kernel)", f.key, f.v, fsm.MaxTimeout))
			ok = false
			continue
		}
		*f.dst = uint32(f.v)
	}
	if !ok {
		return
	}
	if err := fsm.ValidateTimeouts(&t); err != nil {
		b.fail(at, "", "", err)
		return
	}
	b.cfg.Timeouts = &t
}

// service checks one service and its servers. When its key (protocol,
// address, port or mark) is wrong, what needs the key (the model's checks
// of the service, of each server against it, the health checks) is left
// for the next run, but each value of the service and its servers is still
// checked on its own.
func (b *yamlBuilder) service(at ypath, ys *yamlService, seen map[string]ypath) {
	if b.suspect(at) {
		return
	}
	item := ""
	if ys.Name != "" {
		item = fmt.Sprintf("service %q", ys.Name)
	}
	key, field, err := yamlServiceKey(ys)
	keyOK := err == nil
	if !keyOK {
		b.fail(at, field, item, err)
	}
	svc := &fsm.Service{
		Key: key, Name: ys.Name, Scheduler: ys.Scheduler,
		Flags: slices.Clone(ys.Flags), OnePacket: ys.OnePacket, OnFailure: ys.OnFailure,
		Quorum: int(ys.Quorum), Hysteresis: int(ys.Hysteresis),
	}
	ok := keyOK
	if p := ys.Persistence; p != nil {
		if p.Timeout < 0 || p.Timeout > math.MaxUint32 {
			b.fail(at.with("persistence"), "timeout", item, fmt.Errorf("persistence timeout %d: want a number of seconds, 1 or more, or omit it for %d", p.Timeout, fsm.DefaultPersistence))
			ok = false
		}
		svc.Persistence = &fsm.Persistence{Timeout: uint32(p.Timeout), Netmask: p.Netmask, Engine: p.Engine}
	}
	for _, g := range ys.Group {
		k, err := fsm.ParseServiceKey(g)
		if err != nil {
			b.fail(at, "group", item, err)
			ok = false
			continue
		}
		svc.Group = append(svc.Group, k)
	}
	if keyOK {
		if err := checkService(svc); err != nil {
			b.fail(at, "", item, err)
			ok = false
		} else if err := fsm.ValidateGroup(svc); err != nil {
			b.fail(at, "group", item, err)
			ok = false
		}
	}
	def, defOK := b.serverDefaults(at, ys, item)
	ok = ok && defOK
	if ys.Check != nil && keyOK {
		c, errs := buildCheck(ys.Check, fmt.Sprintf("service %s check", svc.Key))
		for _, e := range errs {
			b.fail(at.with("check"), e.field, item, e.err)
			ok = false
		}
		svc.Check = c
	}
	serverAt := map[string]ypath{}
	var listOK, poolOK bool
	svc.Servers, listOK = b.serverList(at, "servers", ys.Servers, svc, def, keyOK, serverAt)
	if svc.Pool, poolOK = b.serverList(at, "pool", ys.Pool, svc, def, keyOK, serverAt); len(svc.Pool) == 0 {
		svc.Pool = nil
	}
	ok = ok && listOK && poolOK
	if ys.SorryServer != nil {
		r, sorryOK := b.sorryServer(at, ys.SorryServer, svc, def, keyOK)
		if sorryOK {
			svc.Sorry = r
		}
		ok = ok && sorryOK
	}
	if !keyOK {
		return
	}
	skey := key.String()
	if prev, dup := seen[skey]; dup {
		b.fail(at, "", item, fmt.Errorf("service %s: defined twice (also %s on line %d)", skey, prev, lineOf(b.root, prev)))
		return
	}
	seen[skey] = at
	if ok {
		b.cfg.Services[skey] = svc
	}
}

// serverDefaults is what the service gives its servers (forward, weight,
// thresholds), each value checked on its own.
func (b *yamlBuilder) serverDefaults(at ypath, ys *yamlService, item string) (fsm.RealServer, bool) {
	def := fsm.RealServer{Forward: fsm.DirectRoute, Weight: fsm.DefaultWeight}
	ok := true
	if ys.Forward != "" {
		var err error
		if def.Forward, err = parseForward(ys.Forward); err != nil {
			b.fail(at, "forward", item, err)
			ok = false
		}
	}
	if w := ys.Weight; w != nil {
		if *w < 0 || *w > fsm.MaxWeight {
			b.fail(at, "weight", item, fmt.Errorf("weight %d: want 0-%d", *w, fsm.MaxWeight))
			ok = false
		} else {
			def.Weight = int(*w)
		}
	}
	var err error
	if def.Upper, err = threshold("upper_threshold", ys.Upper); err != nil {
		b.fail(at, "upper_threshold", item, err)
		ok = false
	}
	if def.Lower, err = threshold("lower_threshold", ys.Lower); err != nil {
		b.fail(at, "lower_threshold", item, err)
		ok = false
	}
	return def, ok
}

// sorryServer checks the service's sorry server: its own values always,
// against the service (and its real servers) when the key is good.
func (b *yamlBuilder) sorryServer(at ypath, ys *yamlServer, svc *fsm.Service, def fsm.RealServer, keyOK bool) (*fsm.RealServer, bool) {
	r, errs := buildServer(ys, def)
	if len(errs) == 0 && keyOK {
		field, err := "", checkServer(svc, r)
		if err == nil && svc.Servers[r.Key()] != nil {
			err = fmt.Errorf("%s: also a real server of the service", r.Key())
		}
		if err == nil && ys.Check != nil {
			field, err = "check", errSorryCheck
		}
		if err != nil {
			errs = append(errs, fieldError{field, err})
		}
	}
	for _, e := range errs {
		b.fail(at.with("sorry_server"), e.field, "sorry server", e.err)
	}
	return r, len(errs) == 0
}

// yamlServiceKey also returns the field to blame, for the error's line.
func yamlServiceKey(ys *yamlService) (fsm.ServiceKey, string, error) {
	proto := ys.Protocol
	if proto == "" && ys.FWMark != nil {
		proto = string(fsm.FWMark)
	}
	switch fsm.Protocol(proto) {
	case fsm.TCP, fsm.UDP, fsm.SCTP:
		switch {
		case ys.FWMark != nil:
			return fsm.ServiceKey{}, "fwmark", fmt.Errorf("fwmark: only for protocol fwmark, not %s", proto)
		case ys.IPv6:
			return fsm.ServiceKey{}, "ipv6", fmt.Errorf("ipv6: only for fwmark services; %s takes the family from the address", proto)
		case ys.Address == "":
			return fsm.ServiceKey{}, "protocol", errors.New("address: missing")
		case ys.Port == nil:
			return fsm.ServiceKey{}, "protocol", errors.New("port: missing (port 0 is the all-ports service, with persistence)")
		case *ys.Port < 0 || *ys.Port > math.MaxUint16:
			return fsm.ServiceKey{}, "port", fmt.Errorf("port %d: want 0-65535", *ys.Port)
		}
		a, err := parseAddr(ys.Address)
		if err != nil {
			return fsm.ServiceKey{}, "address", err
		}
		return fsm.ServiceKey{Protocol: fsm.Protocol(proto), Address: a, Port: uint16(*ys.Port)}, "", nil
	case fsm.FWMark:
		switch {
		case ys.Address != "":
			return fsm.ServiceKey{}, "address", fmt.Errorf("address %q: a fwmark service matches by mark, not by address", ys.Address)
		case ys.Port != nil:
			return fsm.ServiceKey{}, "port", errors.New("port: a fwmark service matches by mark, not by port")
		case ys.FWMark == nil:
			return fsm.ServiceKey{}, "protocol", errors.New("fwmark: missing")
		case *ys.FWMark < 1 || *ys.FWMark > math.MaxUint32:
			return fsm.ServiceKey{}, "fwmark", fmt.Errorf("fwmark %d: want 1-4294967295", *ys.FWMark)
		}
		return fsm.ServiceKey{Protocol: fsm.FWMark, Mark: uint32(*ys.FWMark), IPv6: ys.IPv6}, "", nil
	case "":
		return fsm.ServiceKey{}, "", errors.New("protocol: missing (want tcp, udp, sctp or fwmark)")
	}
	return fsm.ServiceKey{}, "protocol", fmt.Errorf("protocol %q: want tcp, udp, sctp or fwmark", proto)
}

// compile checks the sync block: the settings, or each problem with the
// field at fault.
func (y *yamlSync) compile() (fsm.Sync, []fieldError) {
	s := fsm.Sync{Off: y.Off}
	var errs []fieldError
	for _, f := range []struct {
		name     string
		v, limit yamlInt
	}{{"id", y.ID, 255}, {"port", y.Port, 65535}, {"ttl", y.TTL, 255}, {"max_len", y.MaxLen, 65535}} {
		if f.v < 0 || f.v > f.limit {
			errs = append(errs, fieldError{f.name, fmt.Errorf("sync %s %d: want 1-%d, or omit it for the default", f.name, f.v, f.limit)})
		}
	}
	if y.Group != "" {
		if g, err := netip.ParseAddr(y.Group); err != nil {
			errs = append(errs, fieldError{"group", fmt.Errorf("sync group %q: not an address", y.Group)})
		} else {
			s.Group = g
		}
	}
	if len(errs) > 0 {
		return s, errs
	}
	s.ID, s.Port, s.TTL, s.MaxLen = uint8(y.ID), uint16(y.Port), uint8(y.TTL), uint16(y.MaxLen)
	if err := fsm.ValidateSync(&s); err != nil {
		field := "group"
		if s.MaxLen != 0 && s.MaxLen < fsm.MinSyncMaxLen {
			field = "max_len"
		}
		return s, []fieldError{{field, err}}
	}
	return s, nil
}
