package topology

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// yamlInt is every integer of the YAML schema (weights, ports, marks,
// thresholds, timeouts, check counts, sync settings).
//
// yaml.v3 decodes a !!float into a Go integer by truncating it when it fits:
// "weight: 0.5" became weight 0, a server taken out of rotation, "port: 80.9"
// port 80, "weight: 1e3" weight 1000, all without a word. So the node's tag
// is checked here, before yaml.v3 converts anything: only a !!int becomes a
// number, and its value is still yaml.v3's reading (0x1f, 0o17, 1_000 keep
// working as they did). Ranges are checked by the builder, which knows the
// field; here only "not an integer" and "not even an int64".
//
// The error carries the node's column as well as its line ("line L: column
// C: ..."), so that yamlError can name the exact key even when one line
// holds several (a flow mapping); yamlError removes it again.
type yamlInt int64

func (i *yamlInt) UnmarshalYAML(n *yaml.Node) error {
	var problem string
	switch tag := n.ShortTag(); {
	case tag == "!!int":
		var v int64
		if err := n.Decode(&v); err == nil {
			*i = yamlInt(v)
			return nil
		}
		problem = notInt(n.Value)
	case tag == "!!float":
		problem = notInt(n.Value)
	case n.Kind == yaml.ScalarNode:
		// yaml.v3's wording, which the file's authors have seen before,
		// but with the whole value and the position.
		v := clipValue(n.Value)
		if strconv.CanBackquote(v) {
			v = "`" + v + "`"
		} else {
			v = strconv.Quote(v)
		}
		problem = fmt.Sprintf("cannot unmarshal %s %s into int", tag, v)
	default:
		problem = fmt.Sprintf("cannot unmarshal %s into int", tag)
	}
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: column %d: %s", n.Line, n.Column, problem)}}
}

// wholeNumber is an integer as YAML writes one in decimal, which yaml.v3
// resolves to a !!float only when it does not fit an int64 or uint64.
var wholeNumber = regexp.MustCompile(`^[-+]?[0-9][0-9_]*$`)

func notInt(value string) string {
	if wholeNumber.MatchString(value) {
		return fmt.Sprintf("%q is out of range", clipValue(value))
	}
	return fmt.Sprintf("%q is not an integer", clipValue(value))
}

// clipValue keeps a message about a value one readable line long.
func clipValue(s string) string {
	const maxShown = 64
	if utf8.RuneCountInString(s) <= maxShown {
		return s
	}
	return string([]rune(s)[:maxShown-3]) + "..."
}

// intPtr is the schema's way of writing an optional integer.
func intPtr[T int | int64 | uint16 | uint32](v T) *yamlInt {
	i := yamlInt(v)
	return &i
}

// toInt converts to the model's int, where one would not wrap around (a
// 32-bit int); the model checks the range itself.
func toInt(key string, v yamlInt) (int, error) {
	if v < math.MinInt || v > math.MaxInt {
		return 0, fmt.Errorf("%s %d: out of range", key, v)
	}
	return int(v), nil
}
