package director

import (
	"slices"

	"github.com/ipvsman/ipvsman/director/table"
)

// maxDrift bounds the services a report names: enough to point an operator
// at the problem, small enough for every status answer.
const maxDrift = 10

// ReadBack is what a dump of the kernel showed against the table the
// kernel should have held then.
type ReadBack struct {
	Fingerprint string   // of the dumped table, managed services only
	Services    int      // services in it
	Drift       []string // services that differ from what it should hold, sorted; at most maxDrift
	Drifted     int      // how many differ in all
}

// readBack digests a kernel dump with the same canonical digest as the
// target, over the services the reconciler answers for: those in want and
// those dumped that are managed (all of them when the table is exclusively
// ours), and names the services where the dump and want differ. wantSums
// may hold want's per-service digests already (nil: computed here).
func readBack(dump, want Table, wantSums map[string]uint64, managed map[string]bool, exclusive bool) ReadBack {
	var rb ReadBack
	var sum uint64
	got := map[string]uint64{}
	for k, s := range dump {
		if _, ok := want[k]; !ok && !exclusive && !managed[k] {
			continue // not ours: another tool's, left alone
		}
		d := table.ServiceDigest(k, s)
		got[k] = d
		sum += d
	}
	rb.Fingerprint, rb.Services = table.FormatFingerprint(sum, len(got)), len(got)
	var drift []string
	for k, s := range want {
		w, ok := wantSums[k]
		if !ok {
			w = table.ServiceDigest(k, s)
		}
		if g, ok := got[k]; !ok || g != w {
			drift = append(drift, k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			drift = append(drift, k)
		}
	}
	slices.Sort(drift)
	rb.Drifted = len(drift)
	rb.Drift = drift[:min(len(drift), maxDrift)]
	return rb
}
