package metrics

import (
	"fmt"
	"os"
	"strconv"
	"strings"
)

// Totals are the kernel's IPVS-wide counters of a network namespace: every
// connection and packet IPVS scheduled since the module loaded (or the last
// ipvsadm --zero of everything), including those of services deleted since.
// They are therefore not the sum of today's services' counters.
type Totals struct {
	Conns, InPkts, OutPkts, InBytes, OutBytes uint64
}

// TotalsPath is where the kernel shows them for the reader's namespace.
const TotalsPath = "/proc/net/ip_vs_stats"

// ReadTotals reads and parses path (TotalsPath).
func ReadTotals(path string) (Totals, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Totals{}, fmt.Errorf("read ipvs totals: %w", err)
	}
	t, err := ParseTotals(string(b))
	if err != nil {
		return Totals{}, fmt.Errorf("%s: %w", path, err)
	}
	return t, nil
}

// ParseTotals parses /proc/net/ip_vs_stats (ip_vs_stats_show): two header
// lines, then the five totals in hexadecimal, 64-bit since Linux 2.6.39:
//
//	Total Incoming Outgoing         Incoming         Outgoing
//	Conns  Packets  Packets            Bytes            Bytes
//	  16D      A6C        0            6F96C                0
//
// followed by the rate estimates, which are not read.
func ParseTotals(s string) (Totals, error) {
	lines := strings.Split(s, "\n")
	if len(lines) < 3 {
		return Totals{}, fmt.Errorf("ip_vs_stats: %d lines, want at least 3", len(lines))
	}
	f := strings.Fields(lines[2])
	if len(f) != 5 {
		return Totals{}, fmt.Errorf("ip_vs_stats: third line %q: %d fields, want 5", lines[2], len(f))
	}
	var v [5]uint64
	for i, x := range f {
		n, err := strconv.ParseUint(x, 16, 64)
		if err != nil {
			return Totals{}, fmt.Errorf("ip_vs_stats: field %d %q: want a hexadecimal number", i+1, x)
		}
		v[i] = n
	}
	return Totals{Conns: v[0], InPkts: v[1], OutPkts: v[2], InBytes: v[3], OutBytes: v[4]}, nil
}
