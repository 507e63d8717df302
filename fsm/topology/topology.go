package topology

import (
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"

	"github.com/ipvsman/ipvsman/fsm"
)

// maxErrors bounds the report: past a few dozen the rest are usually echoes
// of one mistake, and a hostile file should not make us build a huge string.
const maxErrors = 20

// Parse chooses the form by file name (.yaml or .yml, any case, is the
// structured form; anything else, including "-" for standard input, is the
// line form) and returns the validated config. A non-empty name prefixes
// every reported problem, as compilers do.
func Parse(name string, data []byte) (*fsm.Config, error) {
	var cfg *fsm.Config
	var err error
	switch strings.ToLower(filepath.Ext(name)) {
	case ".yaml", ".yml":
		cfg, err = parseYAML(data)
	default:
		cfg, err = parseLines(data)
	}
	if err != nil {
		if name != "" && name != "-" {
			err = &fileError{name: name, err: err}
		}
		return nil, err
	}
	return cfg, nil
}

// fileError prefixes each reported problem with the file name; the problems
// are newline-separated when there are several.
type fileError struct {
	name string
	err  error
}

func (e *fileError) Error() string {
	lines := strings.Split(e.err.Error(), "\n")
	for i, l := range lines {
		lines[i] = e.name + ": " + l
	}
	return strings.Join(lines, "\n")
}

func (e *fileError) Unwrap() error { return e.err }

// errList collects every problem of a file, so that one dry run shows them
// all instead of one per edit-and-retry cycle. Problems are reported in line
// order, whatever order they were found in (the YAML form checks the
// timeouts before the services above them, decoding before meaning), and
// it keeps only the first maxErrors of them by line, so that a hostile file
// cannot make it hold a huge list.
type errList struct {
	errs []lineError // sorted by line; equal lines in the order found
	more int
}

// lineError is a problem and the line it names, for sorting: the text
// already says "line N: ...".
type lineError struct {
	line int
	err  error
}

func (l *errList) add(line int, err error) {
	i := len(l.errs)
	for i > 0 && l.errs[i-1].line > line {
		i--
	}
	if i == maxErrors {
		l.more++
		return
	}
	l.errs = slices.Insert(l.errs, i, lineError{line, err})
	if len(l.errs) > maxErrors {
		l.errs = l.errs[:maxErrors]
		l.more++
	}
}

// addf adds a problem of line, the text prefixed with "line N: ".
func (l *errList) addf(line int, format string, args ...any) {
	l.add(line, fmt.Errorf("line %d: "+format, append([]any{line}, args...)...))
}

func (l *errList) err() error {
	if len(l.errs) == 0 {
		return nil
	}
	errs := make([]error, 0, len(l.errs)+1)
	for _, e := range l.errs {
		errs = append(errs, e.err)
	}
	if l.more > 0 {
		errs = append(errs, fmt.Errorf("and %d more problems", l.more))
	}
	return errors.Join(errs...)
}

// finish runs the model's own whole-config check last, so that nothing this
// package returns can be refused by the cluster for a reason found only
// later. The per-item checks before it ran the same rules with positions,
// so a failure here means the two have drifted apart.
func finish(cfg *fsm.Config, errs *errList) (*fsm.Config, error) {
	if err := errs.err(); err != nil {
		return nil, err
	}
	if err := fsm.ValidateConfig(cfg); err != nil {
		return nil, err
	}
	return cfg, nil
}

// checkService normalizes before validating because fsm validates
// normalized values only, and the key must be the normalized one.
func checkService(svc *fsm.Service) error {
	fsm.NormalizeService(svc)
	return fsm.ValidateService(svc)
}

func checkServer(svc *fsm.Service, r *fsm.RealServer) error {
	fsm.NormalizeServer(svc, r)
	return fsm.ValidateServer(svc, r)
}

// parseAddr rejects zones because a zoned address would make keys that the
// kernel cannot hold, and unmaps so that ::ffff:a.b.c.d counts as IPv4 (fsm
// unmaps later anyway; doing it now keeps range arithmetic consistent).
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("address %q: not an IP address", s)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("address %q: zones are not allowed", s)
	}
	return a.Unmap(), nil
}

// parseVIPAddr takes a prefix or a bare address; a bare address is a host
// prefix, which is what `ip addr add` does with one.
func parseVIPAddr(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := parseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("address %q: want ADDRESS/PREFIXLEN", s)
	}
	if p.Addr().Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("address %q: zones are not allowed", s)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("address %q: write the IPv4 address without ::ffff:", s)
	}
	return p, nil
}
