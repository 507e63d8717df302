// Package figures holds the pure part of figures the lab tests and the
// benchmarks print, so that each is computed by code with a unit test (the
// lab's own files build only with the lab tag, in the VM) and reads "n/a"
// when nothing measured it.
package figures

import "strconv"

// NA stands in for a figure that was not measured.
const NA = "n/a"

// Lookup is m[key] as printed: "n/a" when no run stored it (a subtest that
// failed or stopped before measuring), never the map's zero.
func Lookup(m map[string]int, key string) string {
	v, ok := m[key]
	if !ok {
		return NA
	}
	return strconv.Itoa(v)
}

// Stamp is the tick a log entry was proposed in, as the proposing runner
// stamped it: the runner's name (the command's actor, since each process
// numbers its own ticks) and the tick's number.
type Stamp struct {
	Runner string
	Tick   uint64
}

// MostPerTick is the most entries stamped with one tick of one runner. ok
// is false when there is no entry, or an entry without a stamp (tick 0:
// proposed by a build that did not stamp), since then the count would be
// a guess.
func MostPerTick(stamps []Stamp) (most int, ok bool) {
	if len(stamps) == 0 {
		return 0, false
	}
	per := map[Stamp]int{}
	for _, s := range stamps {
		if s.Tick == 0 {
			return 0, false
		}
		per[s]++
		most = max(most, per[s])
	}
	return most, true
}

// Int prints v, or "n/a" when ok is false.
func Int(v int, ok bool) string {
	if !ok {
		return NA
	}
	return strconv.Itoa(v)
}
