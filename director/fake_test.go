package director

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync/atomic"

	"github.com/ipvsman/ipvsman/fsm"
)

// fakeKernel is a recording fake of the kernel table for unit tests of the
// planner and the reconciler. It never stands in for a lab test.
type fakeKernel struct {
	table     Table
	applied   []string
	failOn    map[string]bool // op strings that fail
	readErr   error
	reads     int
	partReads int // ReadServices and ReadDests calls
	// The same counts for a test that reads them while Run runs, and a
	// hook told each part read's count.
	fullN, partN atomic.Int64
	onPart       func(n int64)
	timeouts     fsm.Timeouts
	// mangle, when set, changes what the kernel stores from what it was
	// told, as a client with a byte-order bug would.
	mangle func(Op) Op
}

func (f *fakeKernel) Timeouts() (fsm.Timeouts, error) { return f.timeouts, nil }
func (f *fakeKernel) SetTimeouts(t fsm.Timeouts) error {
	f.applied = append(f.applied, fmt.Sprintf("set-timeouts %d %d %d", t.TCP, t.TCPFin, t.UDP))
	f.timeouts = t
	return nil
}

func newFake() *fakeKernel {
	return &fakeKernel{table: Table{}, failOn: map[string]bool{}, timeouts: fsm.Timeouts{TCP: 900, TCPFin: 120, UDP: 300}}
}

func (f *fakeKernel) Read() (Table, error) {
	f.reads++
	f.fullN.Add(1)
	if f.readErr != nil {
		return nil, f.readErr
	}
	out := Table{}
	for k, s := range f.table {
		s.Dests = maps.Clone(s.Dests)
		s.Order = slices.Clone(s.Order)
		out[k] = s
	}
	return out, nil
}

func (f *fakeKernel) Apply(op Op) error {
	f.applied = append(f.applied, op.String())
	if f.failOn[op.String()] {
		return errors.New("injected failure: " + op.String())
	}
	if f.mangle != nil {
		op = f.mangle(op)
	}
	k := op.Service.Key.String()
	switch op.Kind {
	case CreateService:
		if _, ok := f.table[k]; ok {
			return errors.New("file exists")
		}
		s := op.Service
		s.Dests = map[string]Dest{}
		s.Order = []string{}
		f.table[k] = s
	case UpdateService:
		s := f.table[k]
		s.Scheduler, s.Flags, s.Timeout, s.Netmask = op.Service.Scheduler, op.Service.Flags, op.Service.Timeout, op.Service.Netmask
		f.table[k] = s
	case DeleteService:
		delete(f.table, k)
	case CreateDest, UpdateDest:
		s, ok := f.table[k]
		if !ok {
			return errors.New("no such service")
		}
		_, had := s.Dests[op.Dest.Key()]
		if op.Kind == CreateDest && had {
			return errors.New("file exists")
		}
		if op.Kind == UpdateDest && !had {
			return errors.New("no such destination")
		}
		if op.Kind == CreateDest {
			// As the kernel does: a new destination goes to the head of
			// the list (list_add_rcu in __ip_vs_update_dest).
			s.Order = append([]string{op.Dest.Key()}, s.DestOrder()...)
			f.table[k] = s
		}
		s.Dests[op.Dest.Key()] = op.Dest
	case DeleteDest:
		s := f.table[k]
		if _, ok := s.Dests[op.Dest.Key()]; !ok {
			return errors.New("no such destination")
		}
		s.Order = slices.DeleteFunc(slices.Clone(s.DestOrder()), func(x string) bool { return x == op.Dest.Key() })
		delete(s.Dests, op.Dest.Key())
		f.table[k] = s
	}
	return nil
}

// ReadServices and ReadDests make the fake a PartReader, counting reads.
func (f *fakeKernel) ReadServices() (Table, error) {
	f.partReads++
	if n := f.partN.Add(1); f.onPart != nil {
		f.onPart(n)
	}
	if f.readErr != nil {
		return nil, f.readErr
	}
	out := Table{}
	for k, s := range f.table {
		s.Dests, s.Order = map[string]Dest{}, nil
		out[k] = s
	}
	return out, nil
}

func (f *fakeKernel) ReadDests(s Service) (Service, error) {
	f.partReads++
	if n := f.partN.Add(1); f.onPart != nil {
		f.onPart(n)
	}
	if f.readErr != nil {
		return s, f.readErr
	}
	k := f.table[s.Key.String()]
	s.Dests, s.Order = maps.Clone(k.Dests), slices.Clone(k.Order)
	if s.Dests == nil {
		s.Dests = map[string]Dest{}
	}
	return s, nil
}
