package director

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/ipvsman/ipvsman/director/table"
)

// OpKind is one kernel change.
type OpKind int

const (
	DeleteDest OpKind = iota // first, so that a service update never sees a stale destination
	DeleteService
	CreateService
	UpdateService
	CreateDest
	UpdateDest
)

var opNames = [...]string{"delete-dest", "delete-service", "create-service", "update-service", "create-dest", "update-dest"}

func (k OpKind) String() string { return opNames[k] }

// Op is one change to apply to the kernel.
type Op struct {
	Kind    OpKind
	Service Service
	Dest    Dest // for the dest kinds
}

func (o Op) String() string {
	if o.Kind >= CreateDest || o.Kind == DeleteDest {
		return fmt.Sprintf("%s %s -> %s", o.Kind, o.Service.Key, o.Dest.Key())
	}
	return fmt.Sprintf("%s %s", o.Kind, o.Service.Key)
}

// Plan lists the operations that turn actual into desired, touching only
// what differs. Services in actual but not desired are deleted only if
// managed says they were ours (or exclusive is set). The order is fixed:
// deletions, then creations and updates, each by service and destination
// key, so that two nodes with the same tables make the same plan. Only the
// operations are sorted, not the tables: a pass that changes one weight in
// a table of 10,000 destinations must cost little more than that one change.
//
// For the hashing schedulers (mh, sh) the destination list order is part
// of the table: the kernel adds a destination at the head of the list, so
// one whose canonical place is not the head is reached by deleting the
// destinations that must come before it and adding them back after it, in
// order (ordered); a dump whose order differs is repaired the same way.
func Plan(desired, actual Table, managed map[string]bool, exclusive bool) []Op {
	var ops []Op
	for k, a := range actual {
		d, keep := desired[k]
		if !keep {
			if exclusive || managed[k] {
				ops = append(ops, Op{Kind: DeleteService, Service: a})
			}
			continue
		}
		for dk, ad := range a.Dests {
			if _, ok := d.Dests[dk]; !ok {
				ops = append(ops, Op{Kind: DeleteDest, Service: a, Dest: ad})
			}
		}
	}
	var order []int // per op: its place among its service's ordered adds; 0 = none
	for k, d := range desired {
		a, exists := actual[k]
		switch {
		case !exists:
			ops = append(ops, Op{Kind: CreateService, Service: d})
		case !sameService(d, a):
			ops = append(ops, Op{Kind: UpdateService, Service: d})
		}
		var readd map[string]int
		if table.Hashing(d.Scheduler) {
			var again []string
			again, readd = ordered(d, a, exists)
			for _, dk := range again {
				ops = append(ops, Op{Kind: DeleteDest, Service: a, Dest: a.Dests[dk]})
			}
		}
		for dk, want := range d.Dests {
			have, ok := a.Dests[dk]
			pos, inOrder := readd[dk]
			switch {
			case !exists || !ok || inOrder:
				ops = append(ops, Op{Kind: CreateDest, Service: d, Dest: want})
				if inOrder {
					order = append(order, make([]int, len(ops)-len(order))...)
					order[len(ops)-1] = pos
				}
			case have != want:
				ops = append(ops, Op{Kind: UpdateDest, Service: d, Dest: want})
			}
		}
	}
	order = append(order, make([]int, len(ops)-len(order))...)
	// Keys are rendered once, not in every comparison: a full apply sorts
	// tens of thousands of operations.
	type keyed struct {
		op       Op
		svc, dst string
		pos      int
	}
	ks := make([]keyed, len(ops))
	for i, op := range ops {
		ks[i] = keyed{op, op.Service.Key.String(), op.Dest.Key(), order[i]}
	}
	slices.SortFunc(ks, func(x, y keyed) int {
		return cmp.Or(cmp.Compare(x.op.Kind, y.op.Kind), cmp.Compare(x.svc, y.svc), cmp.Compare(x.pos, y.pos), cmp.Compare(x.dst, y.dst))
	})
	for i := range ks {
		ops[i] = ks[i].op
	}
	return ops
}

// PlanChanged is Plan over the services keys names only: what Plan
// returns when every other service is the same in desired and actual.
func PlanChanged(desired, actual Table, keys map[string]bool, managed map[string]bool, exclusive bool) []Op {
	d, a := make(Table, len(keys)), make(Table, len(keys))
	for k := range keys {
		if s, ok := desired[k]; ok {
			d[k] = s
		}
		if s, ok := actual[k]; ok {
			a[k] = s
		}
	}
	return Plan(d, a, managed, exclusive)
}

// ordered plans a hashing service's list order. The destinations that stay
// keep their relative order through deletions, so the longest tail of that
// list which already ends the canonical order stays put; every kept
// destination before it is deleted (again) and everything before that tail
// is added from the tail towards the head, each add landing at the head.
// It returns the kept destinations to delete first and, for every
// destination to add, its place in the sequence of adds (1 first).
func ordered(d, a Service, exists bool) (again []string, adds map[string]int) {
	if exists && a.Order == nil && len(a.Dests) == len(d.Dests) {
		// The table the last pass left is in canonical order: with the same
		// set it still is, and a weight change costs no sort.
		same := true
		for dk := range d.Dests {
			if _, ok := a.Dests[dk]; !ok {
				same = false
				break
			}
		}
		if same {
			return nil, nil
		}
	}
	var kept []string
	if exists {
		for _, dk := range a.DestOrder() {
			if _, ok := d.Dests[dk]; ok {
				kept = append(kept, dk)
			}
		}
	}
	want := table.CanonicalOrder(d.Dests)
	i, j := len(kept)-1, len(want)-1
	for i >= 0 && j >= 0 && kept[i] == want[j] {
		i, j = i-1, j-1
	}
	again = kept[:i+1]
	adds = make(map[string]int, j+1)
	for n := j; n >= 0; n-- {
		adds[want[n]] = j - n + 1
	}
	return again, adds
}
