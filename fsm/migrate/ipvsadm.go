package migrate

import (
	"bytes"
	"strings"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

// FromIpvsadm imports `ipvsadm -S` (ipvsadm-save) output with ipvsadm's own
// parser (fsm/ipvsadm.ParseRestore), one line at a time, so that a line the
// model refuses (a host name from -S without -n, a bad value) is listed
// and the rest still imported. The kernel table has no health checks,
// names or sorry servers, so neither has the result.
//
// The lines that parse are applied in one batch, which costs the size of
// the table; only when the model refuses one is each applied on its own,
// to name it.
func FromIpvsadm(name string, data []byte) (*Result, error) {
	b := newBuilder()
	type parsed struct {
		n    int
		line string
		ops  []fsm.Op
		err  error
	}
	var lines []parsed
	var all []fsm.Op
	n := 0
	for raw := range bytes.Lines(data) {
		n++
		line := strings.TrimRight(string(raw), "\r\n")
		ops, err := ipvsadm.ParseRestore(strings.NewReader(line))
		lines = append(lines, parsed{n, line, ops, err})
		all = append(all, ops...)
	}
	batch, batchErr := fsm.ApplyOps(b.cfg, all)
	cfg := b.cfg
	for _, l := range lines {
		err := l.err
		if err == nil && batchErr != nil {
			var next *fsm.Config
			if next, err = fsm.ApplyOps(cfg, l.ops); err == nil {
				cfg = next
			}
		}
		if err != nil {
			refused(b, name, l.n, l.line, err)
		}
	}
	if batchErr == nil {
		cfg = batch
	}
	b.cfg = cfg
	return b.finish()
}

// refused lists line n as not imported, with the reason.
func refused(b *builder, name string, n int, line string, err error) {
	kw, val := splitCommand(line)
	b.item(name, n, kw, val, strings.TrimPrefix(err.Error(), "line 1: "))
}

// splitCommand names an ipvsadm line by its command switch.
func splitCommand(line string) (string, string) {
	f := strings.Fields(line)
	if len(f) > 0 && f[0] == "ipvsadm" {
		f = f[1:]
	}
	if len(f) == 0 {
		return "", ""
	}
	return f[0], strings.Join(f[1:], " ")
}
