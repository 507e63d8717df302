// Package migrate turns the configuration of other IPVS managers (ipvsadm
// -S output, keepalived.conf, ldirectord.cf) into ipvsman's model. It is
// pure: it reads only the bytes it is given and, for keepalived's include,
// the files of an fs.FS the caller hands it; no network, no clock. It
// imports only fsm and fsm/ipvsadm and commits nothing: `ipvsman import`
// sends the config it returns like any topology.
//
// Nothing is dropped silently. Whatever cannot be carried over exactly (a
// keyword ipvsman has no equivalent for, a value the model refuses, a
// default that differs) is returned as an Item naming the file, the line,
// the keyword and the value, and why. The returned config always passes
// fsm.ValidateConfig: an item the model refuses is left out and listed
// with the validation error, instead of failing the whole import.
package migrate

import (
	"bytes"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/ipvsman/ipvsman/fsm"
)

// Format names a source configuration language.
type Format string

const (
	Ipvsadm    Format = "ipvsadm"
	Keepalived Format = "keepalived"
	Ldirectord Format = "ldirectord"
)

// Formats lists the formats Import reads.
var Formats = []Format{Ipvsadm, Keepalived, Ldirectord}

// maxInput bounds one source file (and all of keepalived's includes
// together): real configurations are kilobytes; a bigger input is a mistake.
const maxInput = 16 << 20

// Item is one thing of the source that was not imported, or not exactly.
type Item struct {
	File    string `json:"file"`
	Line    int    `json:"line"`
	Keyword string `json:"keyword"`
	Value   string `json:"value,omitempty"`
	Reason  string `json:"reason"`
}

// String is "FILE:LINE: KEYWORD VALUE: REASON".
func (i Item) String() string {
	kv := i.Keyword
	if i.Value != "" {
		kv += " " + i.Value
	}
	return fmt.Sprintf("%s:%d: %s: %s", i.File, i.Line, kv, i.Reason)
}

// Result is an imported configuration and what could not be imported, in
// source order.
type Result struct {
	Config   *fsm.Config
	Unmapped []Item
	// Notes say how something was carried over in another form (a
	// virtual_server_group as one grouped service): imported, so not
	// counted by --strict.
	Notes []Item
}

// Detect tells the format from the file name, then the content:
//   - a name containing "keepalived" or "ldirectord" decides;
//   - content whose first command line starts with -A, -a or -E (with or
//     without a leading "ipvsadm") is ipvsadm -S output;
//   - a line "virtual = …" / "virtual6 = …" or a global "checkinterval=",
//     "quiescent=" … line is ldirectord's;
//   - a "virtual_server", "vrrp_instance" or "global_defs" keyword followed
//     by a brace, or a brace block at all, is keepalived's.
func Detect(name string, data []byte) (Format, error) {
	base := strings.ToLower(path.Base(strings.ReplaceAll(name, "\\", "/")))
	switch {
	case strings.Contains(base, "keepalived"):
		return Keepalived, nil
	case strings.Contains(base, "ldirectord"):
		return Ldirectord, nil
	}
	hasBrace := false
	for line := range bytes.Lines(data) {
		s := strings.TrimSpace(string(line))
		if s == "" || s[0] == '#' || s[0] == '!' {
			continue
		}
		f := strings.Fields(s)
		w := f[0]
		if w == "ipvsadm" && len(f) > 1 {
			w = f[1]
		}
		switch {
		case w == "-A" || w == "-a" || w == "-E" || w == "-e" || w == "-C" || strings.HasPrefix(w, "--add-service"):
			return Ipvsadm, nil
		case ldirectordLine(s):
			return Ldirectord, nil
		case w == "virtual_server" || w == "virtual_server_group" || w == "vrrp_instance" || w == "global_defs" || w == "vrrp_script" || w == "include":
			return Keepalived, nil
		}
		if strings.ContainsAny(s, "{}") {
			hasBrace = true
		}
	}
	if hasBrace {
		return Keepalived, nil
	}
	return "", errors.New("cannot tell the format: no ipvsadm -A/-a line, no ldirectord virtual= line and no keepalived virtual_server block; give --from ipvsadm|keepalived|ldirectord")
}

func ldirectordLine(s string) bool {
	k, _, ok := strings.Cut(s, "=")
	if !ok {
		return false
	}
	k = strings.TrimSpace(k)
	return k == "virtual" || k == "virtual6" || slices.Contains(ldirectordGlobals, k)
}

// ParseFormat checks a --from value.
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(s))
	if !slices.Contains(Formats, f) {
		return "", fmt.Errorf("format %q: want ipvsadm, keepalived or ldirectord", s)
	}
	return f, nil
}

// Import reads data (the file called name) in format f. opts serve
// keepalived's include directives; the other formats have none.
func Import(f Format, name string, data []byte, opts Options) (*Result, error) {
	if len(data) > maxInput {
		return nil, fmt.Errorf("%s: %d bytes: larger than the %d bytes an import reads", name, len(data), maxInput)
	}
	switch f {
	case Ipvsadm:
		return FromIpvsadm(name, data)
	case Keepalived:
		return FromKeepalived(name, data, opts)
	case Ldirectord:
		return FromLdirectord(name, data)
	}
	return nil, fmt.Errorf("format %q: want ipvsadm, keepalived or ldirectord", f)
}

// origin is where a service or server was defined, for items about it.
type origin struct {
	file string
	line int
	word string // the keyword that defined it ("virtual_server", "real", "-a")
	val  string
}

// builder collects services in source order with their origins and the
// items, and validates at the end.
type builder struct {
	cfg     *fsm.Config
	items   []Item
	notes   []Item
	svcAt   map[string]origin
	srvAt   map[string]origin // by VerdictKey(service, server)
	sorryAt map[string]origin // by service
	vipAt   map[string]origin // by prefix
}

func newBuilder() *builder {
	return &builder{cfg: fsm.NewConfig(), svcAt: map[string]origin{}, srvAt: map[string]origin{}, sorryAt: map[string]origin{}, vipAt: map[string]origin{}}
}

func (b *builder) item(file string, line int, keyword, value, reason string) {
	b.items = append(b.items, Item{File: file, Line: line, Keyword: keyword, Value: value, Reason: reason})
}

func (b *builder) itemAt(o origin, reason string) { b.item(o.file, o.line, o.word, o.val, reason) }

// noteAt records how something at o was carried over (Result.Notes).
func (b *builder) noteAt(o origin, what string) {
	b.notes = append(b.notes, Item{File: o.file, Line: o.line, Keyword: o.word, Value: o.val, Reason: what})
}

// addService adds svc (with its servers and sorry server) unless its key is
// taken, which is listed, and reports whether it did.
func (b *builder) addService(svc *fsm.Service, at origin, servers map[string]origin, sorry *origin) bool {
	fsm.NormalizeService(svc)
	key := svc.Key.String()
	if prev, dup := b.svcAt[key]; dup {
		b.itemAt(at, fmt.Sprintf("service %s: defined twice (first at %s:%d): this one is not imported", key, prev.file, prev.line))
		return false
	}
	b.cfg.Services[key] = svc
	b.svcAt[key] = at
	for k, o := range servers {
		b.srvAt[fsm.VerdictKey(key, k)] = o
	}
	if sorry != nil {
		b.sorryAt[key] = *sorry
	}
	return true
}

// finish validates every service and server with the model's own rules,
// leaving out (and listing) what it refuses, then checks the whole config.
func (b *builder) finish() (*Result, error) {
	for _, key := range b.cfg.SortedServiceKeys() {
		svc := b.cfg.Services[key]
		at := b.svcAt[key]
		fsm.NormalizeService(svc)
		if svc.Sorry != nil {
			// ldirectord's fallback and keepalived's sorry_server are
			// often the director itself (127.0.0.1): the local node.
			svc.Sorry.LocalIfLoopback()
			if err := fsm.ValidateServer(svc, svc.Sorry); err != nil {
				b.itemAt(b.sorryAt[key], "sorry server not imported: "+err.Error())
				svc.Sorry = nil
			}
		}
		if err := fsm.ValidateService(svc); err != nil {
			b.itemAt(at, "service not imported: "+err.Error())
			delete(b.cfg.Services, key)
			continue
		}
		servers := make(map[string]*fsm.RealServer, len(svc.Servers))
		for _, rk := range svc.SortedServerKeys() {
			r := svc.Servers[rk]
			rat := b.srvAt[fsm.VerdictKey(key, rk)]
			fsm.NormalizeServer(svc, r)
			r.LocalIfLoopback()
			if err := fsm.ValidateServer(svc, r); err != nil {
				b.itemAt(rat, "real server not imported: "+err.Error())
				continue
			}
			if _, dup := servers[r.Key()]; dup {
				b.itemAt(rat, fmt.Sprintf("real server not imported: it is %s again (a direct-routed or tunnelled server takes the service's port)", r.Key()))
				continue
			}
			servers[r.Key()] = r
		}
		svc.Servers = servers
		if svc.Sorry != nil {
			if _, clash := servers[svc.Sorry.Key()]; clash {
				b.itemAt(b.sorryAt[key], "sorry server not imported: it is also a real server of the service")
				svc.Sorry = nil
			}
		}
	}
	b.dropClashingMembers()
	for k, v := range b.cfg.VIPs {
		if err := fsm.ValidateVIP(v); err != nil {
			b.itemAt(b.vipAt[k], "VIP not imported: "+err.Error())
			delete(b.cfg.VIPs, k)
		}
	}
	if err := fsm.ValidateConfig(b.cfg); err != nil {
		// The checks above are the model's; reaching this is a bug here.
		return nil, fmt.Errorf("imported config does not validate: %w", err)
	}
	return &Result{Config: b.cfg, Unmapped: b.items, Notes: b.notes}, nil
}

// dropClashingMembers takes out of their groups (and lists) the members
// that are services of their own or members of an earlier group.
func (b *builder) dropClashingMembers() {
	owner := map[string]string{}
	for _, key := range b.cfg.SortedServiceKeys() {
		svc := b.cfg.Services[key]
		kept := svc.Group[:0:0]
		for _, m := range svc.Group {
			ms := m.String()
			switch prev, dup := owner[ms]; {
			case b.cfg.Services[ms] != nil:
				o := b.svcAt[ms]
				b.itemAt(b.svcAt[key], fmt.Sprintf("group member %s not imported: also a service of its own (%s:%d)", ms, o.file, o.line))
			case dup:
				b.itemAt(b.svcAt[key], fmt.Sprintf("group member %s not imported: also in the group of service %s", ms, prev))
			default:
				owner[ms] = key
				kept = append(kept, m)
			}
		}
		if len(kept) != len(svc.Group) {
			svc.Group = kept
		}
	}
}

// ms converts seconds (keepalived's <TIMER> allows fractions) to
// milliseconds, saturating.
func ms(sec float64) uint32 {
	v := sec * 1000
	switch {
	case v != v || v < 0:
		return 0
	case v > 4e9:
		return 4e9
	}
	return uint32(v + 0.5)
}

// sortItems orders items by file and line, keeping the order of items on
// one line.
func sortItems(items []Item) {
	slices.SortStableFunc(items, func(a, b Item) int {
		if c := strings.Compare(a.File, b.File); c != 0 {
			return c
		}
		return a.Line - b.Line
	})
}
