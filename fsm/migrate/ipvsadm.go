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
func FromIpvsadm(name string, data []byte) (*Result, error) {
	b := newBuilder()
	cfg := b.cfg
	n := 0
	for raw := range bytes.Lines(data) {
		n++
		line := strings.TrimRight(string(raw), "\r\n")
		ops, err := ipvsadm.ParseRestore(strings.NewReader(line))
		if err == nil {
			var next *fsm.Config
			if next, err = fsm.ApplyOps(cfg, ops); err == nil {
				cfg = next
				continue
			}
		}
		kw, val := splitCommand(line)
		msg := err.Error()
		msg = strings.TrimPrefix(msg, "line 1: ")
		b.item(name, n, kw, val, msg)
	}
	b.cfg = cfg
	return b.finish()
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
