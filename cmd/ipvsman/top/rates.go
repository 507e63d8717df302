package top

import (
	"fmt"
	"time"

	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

// Rate is per-second activity of one service or real server between two
// reads of the kernel counters.
type Rate struct {
	Conns    float64 // new connections per second
	InBytes  float64 // bytes per second, client to real server
	OutBytes float64 // bytes per second, real server to client
}

// Bytes is in and out together, what the table's BYTES/S column shows.
func (r Rate) Bytes() float64 { return r.InBytes + r.OutBytes }

// Rates computes every key's rate from two reads of the counters taken
// elapsed apart. A key missing from either read has no rate (a server just
// added has no base yet). A counter lower than before was reset (ipvsman
// -Z, a destination re-added): as Prometheus's rate() does, the new value
// is then the increase since the reset, so a rate is never negative.
func Rates(prev, cur ipvsadm.Stats, elapsed time.Duration) map[string]Rate {
	if prev == nil || cur == nil || elapsed <= 0 {
		return nil
	}
	secs := elapsed.Seconds()
	out := make(map[string]Rate, len(cur))
	for k, c := range cur {
		p, ok := prev[k]
		if !ok {
			continue
		}
		out[k] = Rate{
			Conns:    float64(increase(p.Conns, c.Conns)) / secs,
			InBytes:  float64(increase(p.InBytes, c.InBytes)) / secs,
			OutBytes: float64(increase(p.OutBytes, c.OutBytes)) / secs,
		}
	}
	return out
}

func increase(prev, cur uint64) uint64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

// human prints a non-negative number in at most 6 characters with
// ipvsadm's decimal suffixes (K, M, G, T), so that every column keeps its
// width: 999, 12.3K, 456K, 7.8M.
func human(v float64) string {
	if v < 0 {
		v = 0
	}
	if v < 1000 {
		if v != float64(int64(v)) && v < 10 {
			return fmt.Sprintf("%.1f", v)
		}
		return fmt.Sprintf("%.0f", v)
	}
	for _, u := range []string{"K", "M", "G", "T", "P"} {
		v /= 1000
		if v < 10 {
			return fmt.Sprintf("%.1f%s", v, u)
		}
		if v < 1000 {
			return fmt.Sprintf("%.0f%s", v, u)
		}
	}
	return fmt.Sprintf("%.0fE", v/1000)
}

// count prints a counter in at most 5 characters: exact below 100000.
func count(v uint64) string {
	if v < 100000 {
		return fmt.Sprint(v)
	}
	return human(float64(v))
}
