package director

import (
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

var hashed = fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.20"), Port: 80}

func hashTarget(sched string, idx uint64, servers ...int) Target {
	s := Service{Key: hashed, Scheduler: sched, Netmask: 0xFFFFFFFF, Dests: map[string]Dest{}}
	for _, n := range servers {
		d := Dest{Address: netip.AddrFrom4([4]byte{10, 1, 0, byte(n)}), Port: 8080, Forward: fsm.DirectRoute, Weight: 1}
		s.Dests[d.Key()] = d
	}
	return Target{Table: Table{hashed.String(): s}, Index: idx}
}

// list is the fake kernel's destination list of the hashed service, head
// first, as a dump returns it.
func (f *fakeKernel) list() []string {
	return slices.Clone(f.table[hashed.String()].DestOrder())
}

func canonical(servers ...int) []string {
	var out []string
	for _, n := range servers {
		out = append(out, fmt.Sprintf("10.1.0.%d:8080", n))
	}
	slices.Reverse(out)
	return out
}

// The kernel puts each new destination at the head of its list, and mh and
// sh fill their lookup from that list: nodes that added the same servers in
// different orders, or rebuilt from empty, must still hold one order.
func TestHashingOrderIsCanonicalWhateverTheHistory(t *testing.T) {
	for _, sched := range []string{"mh", "sh"} {
		t.Run(sched, func(t *testing.T) {
			histories := map[string][][]int{
				"one by one ascending":  {{1}, {1, 2}, {1, 2, 3}, {1, 2, 3, 10}},
				"one by one descending": {{10}, {3, 10}, {2, 3, 10}, {1, 2, 3, 10}},
				"middle last":           {{1, 10}, {1, 3, 10}, {1, 2, 3, 10}},
				"with a removal":        {{1, 2, 3, 4, 10}, {1, 2, 3, 10}},
				"all at once":           {{1, 2, 3, 10}},
			}
			want := canonical(1, 2, 3, 10)
			for name, steps := range histories {
				k := newFake()
				r := rec(k)
				for i, servers := range steps {
					if rep := r.Step(hashTarget(sched, uint64(i+1), servers...)); rep.Failed != 0 {
						t.Fatalf("%s step %d: %+v", name, i, rep)
					}
				}
				if got := k.list(); !slices.Equal(got, want) {
					t.Errorf("%s: kernel list %v, want %v", name, got, want)
				}
			}
		})
	}
}

// Adding in ascending order lands every server at the head: one operation
// each. A server whose place is further down costs re-adding the ones
// before it, and no more.
func TestHashingOrderCostsOnlyWhatIsOutOfPlace(t *testing.T) {
	k := newFake()
	r := rec(k)
	r.Step(hashTarget("mh", 1, 1, 2))
	k.applied = nil
	r.Step(hashTarget("mh", 2, 1, 2, 3))
	if want := []string{"create-dest tcp:10.0.0.20:80 -> 10.1.0.3:8080"}; !slices.Equal(k.applied, want) {
		t.Fatalf("ascending add: %v, want %v", k.applied, want)
	}
	r.Step(hashTarget("mh", 3, 1, 2, 3, 10))
	k.applied = nil
	r.Step(hashTarget("mh", 4, 1, 2, 3, 10, 4))
	want := []string{
		"delete-dest tcp:10.0.0.20:80 -> 10.1.0.10:8080",
		"create-dest tcp:10.0.0.20:80 -> 10.1.0.4:8080",
		"create-dest tcp:10.0.0.20:80 -> 10.1.0.10:8080",
	}
	if !slices.Equal(k.applied, want) {
		t.Fatalf("add below the head: %v, want %v", k.applied, want)
	}
	// A scheduler that does not hash keeps whatever order: no re-adds.
	k2 := newFake()
	r2 := rec(k2)
	r2.Step(hashTarget("rr", 1, 1, 2))
	k2.applied = nil
	r2.Step(hashTarget("rr", 2, 1, 2, 10, 3))
	if len(k2.applied) != 2 {
		t.Fatalf("rr re-added destinations: %v", k2.applied)
	}
}

// A table whose order differs (built by another tool, an older version,
// or a restart over a kernel left in another order) reads back as another
// table, and the full resync puts it in order; a restart over a kernel in
// order changes nothing.
func TestHashingOrderRepairedAtFullResyncAndKeptOverRestarts(t *testing.T) {
	k := newFake()
	tg := hashTarget("sh", 5, 1, 2, 3)
	s := tg.Table[hashed.String()]
	s.Dests = maps.Clone(s.Dests)
	s.Order = []string{"10.1.0.1:8080", "10.1.0.3:8080", "10.1.0.2:8080"}
	k.table[hashed.String()] = s

	r := rec(k)
	first := r.StepFull(tg)
	if first.Fingerprint == first.TargetFingerprint {
		t.Fatalf("a list in another order read back as the target: %s", first.Fingerprint)
	}
	if got, want := k.list(), canonical(1, 2, 3); !slices.Equal(got, want) {
		t.Fatalf("after the resync: %v, want %v", got, want)
	}
	if again := r.StepFull(tg); again.Fingerprint != again.TargetFingerprint || again.Ops != 0 {
		t.Fatalf("resync after the repair: %+v", again)
	}

	// Out of order behind the reconciler's back: the next full resync names
	// the service and repairs it.
	s = k.table[hashed.String()]
	s.Order = []string{"10.1.0.1:8080", "10.1.0.2:8080", "10.1.0.3:8080"}
	k.table[hashed.String()] = s
	rep := r.StepFull(tg)
	if !slices.Equal(rep.Drift, []string{hashed.String()}) || rep.Fingerprint == rep.TargetFingerprint {
		t.Fatalf("reordered by hand: %+v", rep)
	}
	if got, want := k.list(), canonical(1, 2, 3); !slices.Equal(got, want) {
		t.Fatalf("after the second resync: %v, want %v", got, want)
	}

	k.applied = nil
	restarted := rec(k)
	if rep := restarted.Step(tg); rep.Ops != 0 || len(k.applied) != 0 {
		t.Fatalf("a restart over a kernel in order changed it: %v", k.applied)
	}
}
