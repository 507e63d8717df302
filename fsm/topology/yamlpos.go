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
		"yamlVIP":         "vip key (want address, interface)",
		"yamlService":     "service key",
		"yamlServer":      "real server key",
		"yamlPersistence": "persistence key (want timeout, netmask)",
		"yamlCheck": "check key (want type, interval, timeout, rise, fall, address, port, method, path, host, sni, " +
			"status, body, insecure, query, qtype, proto, rcode, answer, send, expect, command)",
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
	)
)

func yamlError(root *yaml.Node, err error) error {
	var te *yaml.TypeError
	if !errors.As(err, &te) {
		return errors.New(strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var errs errList
	for _, msg := range te.Errors {
		if len(errs.errs) >= maxErrors {
			errs.more++ // and skip the tree walks below
			continue
		}
		if m := unknownFieldRe.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			where := ""
			if p, _ := pathWhere(root, line, isKey(m[2]), nil); len(p) > 0 {
				where = p.String() + ": "
			}
			errs.addf("line %s: %sfield %q is not a %s", m[1], where, m[2], schemaItems[m[3]])
			continue
		}
		msg = typeNames.Replace(msg)
		if m := badValueRe.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			if p, _ := pathWhere(root, line, isValue(m[2]), nil); len(p) > 0 {
				msg = "line " + m[1] + ": " + p.String() + ": " + strings.TrimPrefix(msg, "line "+m[1]+": ")
			}
		}
		errs.add(errors.New(msg))
	}
	return errs.err()
}

// pathWhere finds the first mapping entry at line that match accepts and
// returns the path of the mapping (for an unknown key) or of the entry (for
// a bad value), so that decoding errors name the item as ours do. The
// decoder reports lines only, so on a line with several candidates the first
// one wins.
func pathWhere(n *yaml.Node, line int, match func(k, v *yaml.Node) (ypath, bool), at ypath) (ypath, bool) {
	switch n.Kind {
	case yaml.DocumentNode, yaml.SequenceNode:
		for i, c := range n.Content {
			sub := at
			if n.Kind == yaml.SequenceNode {
				sub = at.with(i)
			}
			if p, ok := pathWhere(c, line, match, sub); ok {
				return p, true
			}
		}
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Line == line {
				if rel, ok := match(k, v); ok {
					return append(slices.Clip(at), rel...), true
				}
			}
			if p, ok := pathWhere(v, line, match, at.with(k.Value)); ok {
				return p, true
			}
		}
	}
	return nil, false
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
