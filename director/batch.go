package director

import (
	"fmt"

	"github.com/ipvsman/ipvsman/director/ipvsnl"
)

// Batcher is a Kernel that makes many operations in one go (Netlink: many
// requests to a system call, rather than one request and one wait each).
// ApplyAll returns one error per operation, in order, nil for each done.
type Batcher interface {
	ApplyAll(ops []Op) []error
}

// applyAll makes ops on k, in one go when k can.
func applyAll(k Kernel, ops []Op) []error {
	if b, ok := k.(Batcher); ok {
		return b.ApplyAll(ops)
	}
	errs := make([]error, len(ops))
	for i, op := range ops {
		errs[i] = k.Apply(op)
	}
	return errs
}

// ApplyAll performs ops in order, many to a system call; each error names
// its operation as Apply's do.
func (n *Netlink) ApplyAll(ops []Op) []error {
	var b ipvsnl.Batch
	errs := make([]error, len(ops))
	sent := make([]int, 0, len(ops)) // the batch's request k is ops[sent[k]]
	for i, op := range ops {
		s := toNetlinkService(op.Service)
		switch op.Kind {
		case CreateService:
			b.NewService(s)
		case UpdateService:
			b.UpdateService(s)
		case DeleteService:
			b.DelService(s)
		case CreateDest:
			b.NewDest(s, toNetlinkDest(op.Dest))
		case UpdateDest:
			b.UpdateDest(s, toNetlinkDest(op.Dest))
		case DeleteDest:
			b.DelDest(s, toNetlinkDest(op.Dest))
		default:
			errs[i] = fmt.Errorf("operation of unknown kind %d on %s", int(op.Kind), op.Service.Key)
			continue
		}
		sent = append(sent, i)
	}
	for k, err := range n.c.Run(&b) {
		if err != nil {
			errs[sent[k]] = fmt.Errorf("%s: %w", ops[sent[k]], err)
		}
	}
	return errs
}
