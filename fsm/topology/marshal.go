package topology

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"maps"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/escape"
)

// MarshalYAML writes cfg in the structured form, so that
// ParseYAML(MarshalYAML(cfg)) equals cfg for any config that passed
// fsm.ValidateConfig. cfg is not changed. The output omits what the reader
// would fill in anyway (a server's port when it is the service's, active
// state) and lifts a forwarding method or weight shared by all of a
// service's servers onto the service, so that exports read like files an
// operator would write.
func MarshalYAML(cfg *fsm.Config) ([]byte, error) {
	if cfg == nil {
		return nil, errors.New("marshal topology: no config")
	}
	f := yamlFile{Version: schemaVersion}
	if t := cfg.Timeouts; t != nil {
		f.Timeouts = &yamlTimeouts{TCP: yamlInt(t.TCP), TCPFin: yamlInt(t.TCPFin), UDP: yamlInt(t.UDP)}
	}
	if s := cfg.Sync; s != nil {
		f.Sync = &yamlSync{Off: s.Off, ID: yamlInt(s.ID), Port: yamlInt(s.Port), TTL: yamlInt(s.TTL), MaxLen: yamlInt(s.MaxLen)}
		if s.Group.IsValid() {
			f.Sync.Group = s.Group.String()
		}
	}
	for _, k := range slices.Sorted(maps.Keys(cfg.VIPs)) {
		v := cfg.VIPs[k]
		f.VIPs = append(f.VIPs, yamlVIP{Address: v.Prefix.String(), Interface: v.Interface, Interfaces: v.Interfaces, Mode: v.Mode})
	}
	svcs := make([]*fsm.Service, 0, len(cfg.Services))
	for k, svc := range cfg.Services {
		if svc == nil {
			return nil, fmt.Errorf("marshal topology: service %s: nil", k)
		}
		svcs = append(svcs, svc)
	}
	slices.SortFunc(svcs, func(a, b *fsm.Service) int { return compareKeys(a.Key, b.Key) })
	for _, svc := range svcs {
		ys, err := marshalService(svc)
		if err != nil {
			return nil, fmt.Errorf("marshal topology: %w", err)
		}
		f.Services = append(f.Services, ys)
	}
	var doc yaml.Node
	if err := doc.Encode(&f); err != nil {
		return nil, fmt.Errorf("marshal topology: %w", err)
	}
	flowServers(&doc)
	quoteEscaped(&doc)
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(&doc); err != nil {
		return nil, fmt.Errorf("marshal topology: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("marshal topology: %w", err)
	}
	return buf.Bytes(), nil
}

// compareKeys orders services as an operator scans them: by protocol, then
// numerically by address and port, or by mark.
func compareKeys(a, b fsm.ServiceKey) int {
	return cmp.Or(
		cmp.Compare(a.Protocol, b.Protocol),
		compareBool(a.IPv6, b.IPv6),
		cmp.Compare(a.Mark, b.Mark),
		a.Address.Compare(b.Address),
		cmp.Compare(a.Port, b.Port),
	)
}

func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

func marshalService(svc *fsm.Service) (yamlService, error) {
	ys := yamlService{
		Name: svc.Name, Scheduler: svc.Scheduler,
		Flags: svc.Flags, OnePacket: svc.OnePacket,
	}
	k := svc.Key
	if k.Protocol == fsm.FWMark {
		ys.Protocol, ys.FWMark, ys.IPv6 = string(k.Protocol), intPtr(k.Mark), k.IPv6
	} else {
		ys.Protocol, ys.Address, ys.Port = string(k.Protocol), k.Address.String(), intPtr(k.Port)
	}
	for _, m := range svc.Group {
		ys.Group = append(ys.Group, m.String())
	}
	if p := svc.Persistence; p != nil {
		ys.Persistence = &yamlPersistence{Timeout: yamlInt(p.Timeout), Netmask: p.Netmask, Engine: p.Engine}
	}
	ys.Check = marshalCheck(svc.Check)
	servers, err := sortedServers(k, "real server", svc.Servers)
	if err != nil {
		return ys, err
	}
	pool, err := sortedServers(k, "pool server", svc.Pool)
	if err != nil {
		return ys, err
	}
	// The reader gives the pool the service's defaults too, so they are
	// lifted from both lists.
	fwd, weight := sharedDefaults(append(slices.Clip(servers), pool...))
	if fwd != fsm.DirectRoute {
		ys.Forward = string(fwd)
	}
	if weight != fsm.DefaultWeight {
		ys.Weight = intPtr(weight)
	}
	ys.Servers = marshalServers(k, servers, fwd, weight)
	ys.Pool = marshalServers(k, pool, fwd, weight)
	ys.OnFailure = svc.OnFailure
	ys.Quorum, ys.Hysteresis = yamlInt(svc.Quorum), yamlInt(svc.Hysteresis)
	if r := svc.Sorry; r != nil {
		if r.Check != nil {
			return ys, fmt.Errorf("service %s: sorry server %s: %w", k, r.Key(), errSorryCheck)
		}
		s := yamlServer{Name: r.Name, Address: r.Address.String(), Forward: string(r.Forward),
			TunnelType: string(r.TunnelType), TunnelPort: yamlInt(r.TunnelPort), TunnelCsum: string(r.TunnelCsum)}
		if r.Port != k.Port {
			s.Port = yamlInt(r.Port)
		}
		s.Weight = intPtr(r.Weight)
		ys.SorryServer = &s
	}
	return ys, nil
}

// sortedServers lists m's servers by address and port.
func sortedServers(k fsm.ServiceKey, what string, m map[string]*fsm.RealServer) ([]*fsm.RealServer, error) {
	out := make([]*fsm.RealServer, 0, len(m))
	for rk, r := range m {
		if r == nil {
			return nil, fmt.Errorf("service %s: %s %s: nil", k, what, rk)
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(a, b *fsm.RealServer) int {
		return cmp.Or(a.Address.Compare(b.Address), cmp.Compare(a.Port, b.Port))
	})
	return out, nil
}

// marshalServers writes servers without what the service's defaults (fwd,
// weight) and the reader fill in.
func marshalServers(k fsm.ServiceKey, servers []*fsm.RealServer, fwd fsm.Forward, weight int) []yamlServer {
	var out []yamlServer
	for _, r := range servers {
		s := yamlServer{Name: r.Name, Address: r.Address.String()}
		// A fwmark service has no port of its own: a server's port 0 means
		// "the packet's port", so only a set port is written.
		if (k.Protocol == fsm.FWMark && r.Port != 0) || (k.Protocol != fsm.FWMark && r.Port != k.Port) {
			s.Port = yamlInt(r.Port)
		}
		if r.Forward != fwd {
			s.Forward = string(r.Forward)
		}
		s.TunnelType, s.TunnelPort, s.TunnelCsum = string(r.TunnelType), yamlInt(r.TunnelPort), string(r.TunnelCsum)
		if r.Weight != weight {
			s.Weight = intPtr(r.Weight)
		}
		if r.Upper != 0 {
			s.Upper = intPtr(r.Upper)
		}
		if r.Lower != 0 {
			s.Lower = intPtr(r.Lower)
		}
		if r.State != fsm.Active {
			s.State = string(r.State)
		}
		s.Check = marshalCheck(r.Check)
		out = append(out, s)
	}
	return out
}

// sharedDefaults returns the forwarding method and weight to write on the
// service: the servers' common value if they all agree, else the reader's
// default so that only the exceptions are written.
func sharedDefaults(servers []*fsm.RealServer) (fsm.Forward, int) {
	fwd, weight := fsm.DirectRoute, fsm.DefaultWeight
	if len(servers) == 0 {
		return fwd, weight
	}
	if f := servers[0].Forward; f != "" && !slices.ContainsFunc(servers, func(r *fsm.RealServer) bool { return r.Forward != f }) {
		fwd = f
	}
	if w := servers[0].Weight; !slices.ContainsFunc(servers, func(r *fsm.RealServer) bool { return r.Weight != w }) {
		weight = w
	}
	return fwd, weight
}

// flowServers puts each real server on one line, as in the line form; the
// services stay in block style because they carry lists of their own. A
// server with a check of its own stays in block style too, with the check
// on one line, so that the check does not make a line too long to read.
func flowServers(doc *yaml.Node) {
	root := doc
	if root.Kind == yaml.DocumentNode && len(root.Content) > 0 {
		root = root.Content[0]
	}
	for _, svcs := range mappingValues(root, "services") {
		for _, svc := range svcs.Content {
			for _, servers := range append(mappingValues(svc, "servers"), mappingValues(svc, "pool")...) {
				for _, s := range servers.Content {
					if checks := mappingValues(s, "check"); len(checks) > 0 {
						for _, c := range checks {
							c.Style = yaml.FlowStyle
						}
						continue
					}
					s.Style = yaml.FlowStyle
				}
			}
		}
	}
}

// quoteEscaped double-quotes every string the CLI's output escapes (a
// bidi override, say, which YAML would write bare): in double quotes the
// escape the CLI prints (\u202e) is YAML's own for the same rune, so an
// export read back gives the configuration it came from.
func quoteEscaped(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.Tag == "!!str" && escape.Needed(n.Value) {
		n.Style = yaml.DoubleQuotedStyle
	}
	for _, c := range n.Content {
		quoteEscaped(c)
	}
}

func mappingValues(n *yaml.Node, key string) []*yaml.Node {
	var out []*yaml.Node
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == key {
			out = append(out, n.Content[i+1])
		}
	}
	return out
}
