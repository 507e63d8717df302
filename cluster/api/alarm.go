package api

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// TableAlarm compares the kernel tables the nodes read back: nodes whose
// kernels should hold the table of the same applied index must read back
// the same fingerprint, and a node whose kernel held something else than
// the reconciler had left in it is named with the services. It compares by
// applied index, not configuration version: health verdicts change the
// table without a new version. "" when nothing is wrong.
func TableAlarm(st ClusterStatus) string {
	type reading struct {
		nodes    []string
		services map[string]bool
	}
	byIndex := map[uint64]map[string]*reading{}
	var alarms []string
	for _, n := range st.Nodes {
		if n.Status == nil || n.Status.Director == nil {
			continue
		}
		d := n.Status.Director
		if d.KernelIndex == 0 || d.Fingerprint == "" {
			continue // never read back against a known table: nothing to compare
		}
		if byIndex[d.KernelIndex] == nil {
			byIndex[d.KernelIndex] = map[string]*reading{}
		}
		r := byIndex[d.KernelIndex][d.Fingerprint]
		if r == nil {
			r = &reading{services: map[string]bool{}}
			byIndex[d.KernelIndex][d.Fingerprint] = r
		}
		r.nodes = append(r.nodes, n.ID)
		for _, s := range d.Drift {
			r.services[s] = true
		}
		if d.Drifted > 0 {
			alarms = append(alarms, fmt.Sprintf("%s's kernel held something else than it had programmed at applied index %d, in %d service(s): %s",
				n.ID, d.KernelIndex, d.Drifted, strings.Join(d.Drift, ", ")))
		}
	}
	for _, idx := range slices.Sorted(maps.Keys(byIndex)) {
		fps := byIndex[idx]
		if len(fps) < 2 {
			continue
		}
		var parts []string
		services := map[string]bool{}
		for _, fp := range slices.Sorted(maps.Keys(fps)) {
			parts = append(parts, fmt.Sprintf("%s on %s", fp, strings.Join(fps[fp].nodes, ",")))
			maps.Copy(services, fps[fp].services)
		}
		named := "services: " + strings.Join(slices.Sorted(maps.Keys(services)), ", ")
		if len(services) == 0 {
			// Every kernel holds what its node meant: the nodes meant
			// different tables for one index, so the models diverged.
			named = "each kernel matches its own target: the models differ"
		}
		alarms = append(alarms, fmt.Sprintf("kernel tables differ at applied index %d: %s; %s", idx, strings.Join(parts, "; "), named))
	}
	if len(alarms) == 0 {
		return ""
	}
	return "ALARM: " + strings.Join(alarms, "; ")
}
