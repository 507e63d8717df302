package director

import (
	"strings"
	"testing"
)

// batchingFake is fakeKernel taking a pass's operations in one call, as
// Netlink does, so that the reconciler's use of it can be seen.
type batchingFake struct {
	*fakeKernel
	calls [][]string
}

func (b *batchingFake) ApplyAll(ops []Op) []error {
	var names []string
	errs := make([]error, len(ops))
	for i, op := range ops {
		names = append(names, op.String())
		errs[i] = b.fakeKernel.Apply(op)
	}
	b.calls = append(b.calls, names)
	return errs
}

func TestAPassIsOneBatchAndFailuresStayWithTheirOperation(t *testing.T) {
	st := sample(t)
	k := &batchingFake{fakeKernel: newFake()}
	bad := "create-dest tcp:10.0.0.10:80 -> 10.1.0.22:8080"
	k.failOn[bad] = true
	r := rec(k)
	rep := r.Step(target(st))
	if len(k.calls) != 1 || len(k.calls[0]) != rep.Ops {
		t.Fatalf("%d batches for %d operations: %v", len(k.calls), rep.Ops, k.calls)
	}
	if rep.Failed != 1 || !strings.Contains(rep.Errors[0], bad) {
		t.Fatalf("report %+v", rep)
	}
	delete(k.failOn, bad)
	k.calls = nil
	if rep = r.Step(target(st)); rep.Failed != 0 || len(k.calls) != 1 || strings.Join(k.calls[0], ",") != bad {
		t.Fatalf("retry pass: %+v %v", rep, k.calls)
	}
}
