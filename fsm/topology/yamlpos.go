package topology

import (
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ypath is a position in the document: keys and sequence indexes.
type ypath []any

func (p ypath) with(elems ...any) ypath {
	out := slices.Clip(p)
	for _, e := range elems {
		if e != "" {
			out = append(out, e)
		}
	}
	return out
}

func (p ypath) String() string {
	var sb strings.Builder
	for _, e := range p {
		switch e := e.(type) {
		case int:
			sb.WriteString("[" + strconv.Itoa(e) + "]")
		case string:
			if sb.Len() > 0 {
				sb.WriteByte('.')
			}
			sb.WriteString(e)
		}
	}
	return sb.String()
}

// lineOf finds the line of path in the tree, or of the deepest part of it
// the file has, so that "missing" errors still point near the problem.
func lineOf(root *yaml.Node, path ypath) int {
	n := root
	if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
		n = n.Content[0]
	}
	line := n.Line
	for _, e := range path {
		for n.Kind == yaml.AliasNode && n.Alias != nil {
			n = n.Alias
		}
		next := (*yaml.Node)(nil)
		switch e := e.(type) {
		case int:
			if n.Kind == yaml.SequenceNode && e < len(n.Content) {
				next = n.Content[e]
				line = next.Line
			}
		case string:
			if n.Kind == yaml.MappingNode {
				for i := 0; i+1 < len(n.Content); i += 2 {
					if n.Content[i].Value == e {
						next, line = n.Content[i+1], n.Content[i].Line
						break
					}
				}
			}
		}
		if next == nil {
			break
		}
		n = next
	}
	return line
}

// Strict decoding names Go types; operators know the schema's words.
var (
	unknownFieldRe = regexp.MustCompile(`^line (\d+): field (.*) not found in type topology\.(\w+)$`)
	badValueRe     = regexp.MustCompile("^line (\\d+): cannot unmarshal !!\\w+ `(.*)` into ")
	schemaItems    = map[string]string{
		"yamlFile":        "top-level key (want version, vips, services, timeouts, sync)",
		"yamlSync":        "sync key (want off, id, group, port, ttl, max_len)",
		"yamlVIP":         "vip key (want address, interface, interfaces, mode)",
		"yamlService":     "service key",
		"yamlServer":      "real server key",
		"yamlPersistence": "persistence key (want timeout, netmask)",
		"yamlTimeouts":    "timeouts key (want tcp, tcp_fin, udp)",
		"yamlCheck": "check key (want type, interval, timeout, rise, fall, address, port, method, path, host, sni, " +
			"status, body, insecure, query, qtype, proto, rcode, answer, send, expect, command, alpha, digest, ca_file, " +
			"expiry_margin, helo, retry_delay, source, source_port, fwmark)",
	}
	typeNames = strings.NewReplacer(
		"[]topology.yamlVIP", "a list of vips",
		"[]topology.yamlService", "a list of services",
		"[]topology.yamlServer", "a list of real servers",
		"topology.yamlFile", "a topology (a mapping)",
		"topology.yamlVIP", "a vip (a mapping)",
		"topology.yamlService", "a service (a mapping)",
		"topology.yamlServer", "a real server (a mapping)",
		"*topology.yamlSync", "sync settings (a mapping)",
		"topology.yamlSync", "sync settings (a mapping)",
		"topology.yamlPersistence", "persistence (a mapping, {} for the defaults)",
		"topology.yamlCheck", "a check (a mapping)",
		"*topology.yamlTimeouts", "timeouts (a mapping)",
		"topology.yamlTimeouts", "timeouts (a mapping)",
		"[]topology.yamlInt", "a list of integers",
	)
)

// yamlError words an error that stopped decoding: YAML syntax, an alias
// loop. There is one; the file could not be read past it.
func yamlError(err error) error {
	return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
}

var (
	lineRe = regexp.MustCompile(`^line (\d+): `)
	// yamlInt's errors: "line L: column C: problem".
	intErrorRe = regexp.MustCompile(`^line (\d+): column (\d+): (.*)$`)
	// Errors that leave every value as the file wrote it.
	harmlessRe = regexp.MustCompile(`^line \d+: (mapping key .* already defined at line \d+|field .* already set in type .*)$`)
	// A list or mapping where a scalar belongs: no value to look for.
	badKindRe = regexp.MustCompile(`^line (\d+): cannot unmarshal !!(seq|map) into `)
)

// decodeErrors reports the strict decoder's type errors, each with the path
// of the key it concerns, and marks what they make unreliable. yaml.v3
// decodes on past a bad value, leaving its field unset (or a pointer to
// zero), so the builder would report echoes of it there: "port: missing"
// for a port that did not decode. Each bad value makes its item suspect
// (see owner), and the builder leaves suspect items out. When a value
// cannot be placed, or sits under an anchor (an alias reuses it, and the
// builder cannot tell which items did), nothing is built and the decoding
// errors are the whole report, as they are for unknown keys alone.
func (b *yamlBuilder) decodeErrors(te *yaml.TypeError) {
	idx := indexPositions(b.root)
	seen := map[string]bool{}
	for _, msg := range te.Errors {
		if seen[msg] { // one anchored value, decoded once per alias
			continue
		}
		seen[msg] = true
		line := 0
		if m := lineRe.FindStringSubmatch(msg); m != nil {
			line, _ = strconv.Atoi(m[1])
		}
		var e *posEntry
		switch m := (match{}); {
		case m.find(intErrorRe, msg):
			col, _ := strconv.Atoi(m[2])
			e = idx.values[[2]int{line, col}]
			msg = "line " + m[1] + ": " + m[3]
			if e != nil {
				msg = "line " + m[1] + ": " + e.path.String() + ": " + m[3]
			}
		case m.find(unknownFieldRe, msg):
			where := ""
			if p, _, ok := idx.find(line, isKey(m[2])); ok && len(p) > 0 {
				where = p.String() + ": "
			}
			b.errs.addf(line, "%sfield %q is not a %s", where, m[2], schemaItems[m[3]])
			continue // the field is ignored, nothing else changes
		case harmlessRe.MatchString(msg):
			b.errs.add(line, errors.New(msg))
			continue
		default:
			msg = typeNames.Replace(msg)
			switch {
			case m.find(badValueRe, msg):
				if p, entry, ok := idx.find(line, isValue(m[2])); ok {
					e = &posEntry{path: p, shared: entry.shared}
				}
			case m.find(badKindRe, msg):
				e = idx.onlyOfKind(line, m[2])
			}
			if e != nil {
				msg = "line " + m[1] + ": " + e.path.String() + ": " + strings.TrimPrefix(msg, "line "+m[1]+": ")
			}
		}
		b.errs.add(line, errors.New(msg))
		if e == nil || e.shared {
			b.blind = true
			continue
		}
		if b.suspects == nil {
			b.suspects = map[string]bool{}
		}
		b.suspects[owner(e.path).String()] = true
	}
}

// match holds a regexp's submatches, so that a switch can test and bind.
type match []string

func (m *match) find(re *regexp.Regexp, s string) bool {
	*m = re.FindStringSubmatch(s)
	return *m != nil
}

// owner is the item a bad value at p belongs to: the innermost list entry
// (a vip, a service, a real server) or part the builder checks on its own
// (persistence, a check, the sorry server, sync, timeouts) that holds it;
// empty for a top-level key.
func owner(p ypath) ypath {
	own := ypath{}
	for i, e := range p {
		switch e := e.(type) {
		case int:
			if i > 0 && (p[i-1] == "vips" || p[i-1] == "services" || p[i-1] == "servers" || p[i-1] == "pool") {
				own = p[:i+1]
			}
		case string:
			switch e {
			case "persistence", "check", "sorry_server", "sync", "timeouts":
				own = p[:i+1]
			}
		}
	}
	return slices.Clip(own)
}

// suspect tells whether at is, or is inside, an item whose decoding failed.
// A failed top-level key makes only the top-level checks suspect: the
// items do not read those keys.
func (b *yamlBuilder) suspect(at ypath) bool {
	if len(at) == 0 {
		return b.suspects[""]
	}
	for i := 1; i <= len(at); i++ {
		if b.suspects[at[:i].String()] {
			return true
		}
	}
	return false
}

// posIndex places the decoder's errors, which give a line (and, for
// yamlInt's, a column) but no path. It is built in one walk of the tree, so
// that a file with thousands of bad values costs no more than its size.
type posIndex struct {
	values     map[[2]int]*posEntry // by the value node's line and column
	valueLines map[int][]*posEntry  // by the value node's line, in document order
	byLine     map[int][]*posEntry  // mapping entries by their key's line, in document order
}

// posEntry is a mapping entry (key set) or a sequence item (key nil).
type posEntry struct {
	at     ypath // of the mapping or sequence holding it
	key    *yaml.Node
	value  *yaml.Node
	path   ypath // of the value
	shared bool  // under an anchor: the decoder reads it once per alias
}

func indexPositions(root *yaml.Node) *posIndex {
	idx := &posIndex{values: map[[2]int]*posEntry{}, valueLines: map[int][]*posEntry{}, byLine: map[int][]*posEntry{}}
	var walk func(n *yaml.Node, at ypath, shared bool)
	walk = func(n *yaml.Node, at ypath, shared bool) {
		shared = shared || n.Anchor != ""
		add := func(e *posEntry) {
			e.shared = e.shared || e.value.Anchor != ""
			if pos := [2]int{e.value.Line, e.value.Column}; idx.values[pos] == nil {
				idx.values[pos] = e
			}
			idx.valueLines[e.value.Line] = append(idx.valueLines[e.value.Line], e)
		}
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(c, at, shared)
			}
		case yaml.SequenceNode:
			for i, c := range n.Content {
				add(&posEntry{at: at, value: c, path: at.with(i), shared: shared})
				walk(c, at.with(i), shared)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k, v := n.Content[i], n.Content[i+1]
				e := &posEntry{at: at, key: k, value: v, path: at.with(k.Value), shared: shared}
				add(e)
				idx.byLine[k.Line] = append(idx.byLine[k.Line], e)
				walk(v, e.path, shared)
			}
		}
	}
	walk(root, ypath{}, false)
	return idx
}

// find returns the path of the first mapping entry on line that match
// accepts: the mapping's (for an unknown key) or the entry's (for a bad
// value), so that decoding errors name the item as ours do. The decoder
// reports lines only, so on a line with several candidates the first one
// wins.
func (idx *posIndex) find(line int, match func(k, v *yaml.Node) (ypath, bool)) (ypath, *posEntry, bool) {
	for _, e := range idx.byLine[line] {
		if rel, ok := match(e.key, e.value); ok {
			return append(slices.Clip(e.at), rel...), e, true
		}
	}
	return nil, nil, false
}

func isKey(key string) func(k, v *yaml.Node) (ypath, bool) {
	return func(k, _ *yaml.Node) (ypath, bool) { return ypath{}, k.Value == key }
}

// isValue also finds an item of a flow list on the key's line
// (status: [200, x]), since the decoder blames the item.
func isValue(value string) func(k, v *yaml.Node) (ypath, bool) {
	return func(k, v *yaml.Node) (ypath, bool) {
		if v.Kind == yaml.SequenceNode {
			for i, e := range v.Content {
				if e.Kind == yaml.ScalarNode && e.Line == k.Line && e.Value == value {
					return ypath{k.Value, i}, true
				}
			}
		}
		return ypath{k.Value}, v.Kind == yaml.ScalarNode && v.Value == value
	}
}

// onlyOfKind returns the list ("seq") or mapping ("map") value that starts
// on line, if there is just one: in a flow line such as
// "servers: [{address: [1]}]" the decoder could mean either list.
func (idx *posIndex) onlyOfKind(line int, kind string) *posEntry {
	want := yaml.SequenceNode
	if kind == "map" {
		want = yaml.MappingNode
	}
	var found *posEntry
	for _, e := range idx.valueLines[line] {
		if e.value.Kind == want {
			if found != nil {
				return nil
			}
			found = e
		}
	}
	return found
}
