package director

import (
	"cmp"
	"fmt"
	"slices"
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
	for k, d := range desired {
		a, exists := actual[k]
		switch {
		case !exists:
			ops = append(ops, Op{Kind: CreateService, Service: d})
		case !sameService(d, a):
			ops = append(ops, Op{Kind: UpdateService, Service: d})
		}
		for dk, want := range d.Dests {
			have, ok := a.Dests[dk]
			switch {
			case !exists || !ok:
				ops = append(ops, Op{Kind: CreateDest, Service: d, Dest: want})
			case have != want:
				ops = append(ops, Op{Kind: UpdateDest, Service: d, Dest: want})
			}
		}
	}
	// Keys are rendered once, not in every comparison: a full apply sorts
	// tens of thousands of operations.
	type keyed struct {
		op       Op
		svc, dst string
	}
	ks := make([]keyed, len(ops))
	for i, op := range ops {
		ks[i] = keyed{op, op.Service.Key.String(), op.Dest.Key()}
	}
	slices.SortFunc(ks, func(x, y keyed) int {
		return cmp.Or(cmp.Compare(x.op.Kind, y.op.Kind), cmp.Compare(x.svc, y.svc), cmp.Compare(x.dst, y.dst))
	})
	for i := range ks {
		ops[i] = ks[i].op
	}
	return ops
}
