package ipvsadm

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/ipvsman/ipvsman/fsm"
)

// maxRestoreLine bounds one line of -R input; ipvsadm's own limit is far
// smaller, so only garbage input reaches it.
const maxRestoreLine = 64 * 1024

// ParseRestore parses -R input, lines as `ipvsadm -S` prints them, into ops
// in input order. As in ipvsadm's config_stream, words are separated by
// spaces, tabs or carriage returns and a leading "ipvsadm" word is
// skipped; in addition a '#' starts a comment, and the group lines -S
// writes (group.go) make service groups. Only commands that change the
// table are allowed. Errors name the line and the offending item.
func ParseRestore(r io.Reader) ([]fsm.Op, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxRestoreLine)
	var ops []fsm.Op
	var lines []int // the input line of each op
	var groups []restoreGroup
	line := 0
	for sc.Scan() {
		line++
		text := sc.Text()
		if t := strings.TrimLeft(text, " \t"); strings.HasPrefix(t, groupMarker) {
			g, err := parseGroupLine(line, t)
			if err != nil {
				return nil, err
			}
			groups = append(groups, g)
			continue
		}
		if i := strings.IndexByte(text, '#'); i >= 0 {
			text = text[:i]
		}
		words := strings.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == '\t' || r == '\r' })
		if len(words) > 0 && words[0] == "ipvsadm" {
			words = words[1:]
		}
		if len(words) == 0 {
			continue
		}
		cmd, err := Parse(words)
		if err != nil {
			return nil, fmt.Errorf("line %d: %w", line, err)
		}
		if cmd.Action != ActionOps {
			return nil, fmt.Errorf("line %d: %q: only -A -E -D -C -a -e -d may appear in restore input", line, strings.Join(words, " "))
		}
		ops = append(ops, cmd.Ops...)
		for range cmd.Ops {
			lines = append(lines, line)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("line %d: %w", line+1, err)
	}
	return foldGroups(ops, lines, groups)
}
