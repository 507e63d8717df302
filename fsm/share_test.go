package fsm

import (
	"bytes"
	"fmt"
	"net/netip"
	"reflect"
	"testing"
	"unsafe"
)

// sharedTable is a small -R input: services of servers each.
func sharedTable(services, servers, weight int) []Op {
	ops := restoreTable(services, servers)
	if weight != 1 {
		// The last server of the first service gets another weight.
		ops[servers].Server = &RealServer{Address: ops[servers].Server.Address, Forward: DirectRoute, Weight: weight}
	}
	return ops
}

func applyOps(t *testing.T, s *State, ops ...Op) Result {
	t.Helper()
	c := mustCmd(t, CmdOps, OpsPayload{Ops: ops})
	c.Time = int64(s.Version + 1)
	r, err := s.Apply(c)
	if err != nil || r.Err != "" {
		t.Fatalf("%v: %+v %v", ops[0].Kind, r, err)
	}
	return r
}

func mapData[M ~map[K]V, K comparable, V any](m M) unsafe.Pointer {
	return reflect.ValueOf(m).UnsafePointer()
}

// -C then -R of the same table (one server's weight changed) must hold the
// unchanged services and servers once, not once per version; a third -R of
// the same table shares the whole services map and the summary.
func TestRestoreSharesUnchangedServices(t *testing.T) {
	const services, servers = 20, 5
	s := NewState()
	applyOps(t, s, sharedTable(services, servers, 1)...)
	applyOps(t, s, Op{Kind: OpClear})
	applyOps(t, s, sharedTable(services, servers, 7)...)
	v1, v3 := history(s, 1), history(s, 3)
	changed := v1.SortedServiceKeys()[0]
	if k := restoreTable(1, 1)[0].Service.Key.String(); k != changed {
		t.Fatalf("the changed service is %s, want the first in order, %s", k, changed)
	}
	twice := 0
	for _, k := range v1.SortedServiceKeys() {
		a, b := v1.Services[k], v3.Services[k]
		if k == changed {
			if a == b {
				t.Fatalf("service %s: changed, yet the same object in both versions", k)
			}
			same := 0
			for rk, r := range b.Servers {
				if a.Servers[rk] == r {
					same++
				}
			}
			if same != servers-1 {
				t.Errorf("service %s: %d of its %d unchanged real servers shared, want all", k, same, servers-1)
			}
			continue
		}
		if a != b {
			twice++
		}
	}
	if twice > 0 {
		t.Errorf("%d of %d services unchanged between versions 1 and 3 are held twice", twice, services-1)
	}
	if s.Config != v3 {
		t.Fatal("the current configuration is not the latest version's")
	}
	applyOps(t, s, Op{Kind: OpClear})
	applyOps(t, s, sharedTable(services, servers, 7)...)
	v5 := history(s, 5)
	if mapData(v5.Services) != mapData(v3.Services) {
		t.Error("version 5 repeats version 3 but holds its own services map")
	}
	if v5 == v3 {
		t.Error("version 5 is the very config of version 3: configs must stay distinct (consumers compare them by pointer)")
	}
	if sa, sb := s.entry(5).Summary, s.entry(3).Summary; sa != sb || unsafe.StringData(sa) != unsafe.StringData(sb) {
		t.Error("versions 3 and 5 have the same summary but hold it twice")
	}
	if got := len(v5.Services); got != services {
		t.Fatalf("version 5 has %d services, want %d", got, services)
	}
}

// A node restarted from a snapshot decodes one copy per version; the decode
// must share them again, and encode to the very same bytes.
func TestRestoreOfSnapshotShares(t *testing.T) {
	s := NewState()
	applyOps(t, s, sharedTable(10, 4, 1)...)
	applyOps(t, s, Op{Kind: OpClear})
	applyOps(t, s, sharedTable(10, 4, 3)...)
	snap, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	r, err := UnmarshalState(snap)
	if err != nil {
		t.Fatal(err)
	}
	again, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, snap) {
		t.Fatal("a decoded snapshot encodes differently")
	}
	v1, v3 := history(r, 1), history(r, 3)
	shared, own := 0, 0
	for k, svc := range v3.Services {
		if v1.Services[k] == svc {
			shared++
		}
		if r.Config.Services[k] != svc {
			own++
		}
	}
	if own > 0 {
		t.Errorf("the current configuration holds its own copy of %d of the latest version's %d services", own, len(v3.Services))
	}
	if shared != 9 {
		t.Errorf("%d of 9 unchanged services shared between decoded versions 1 and 3", shared)
	}
}

// versionBytes encodes every history version of s by number.
func versionBytes(t *testing.T, s *State) map[uint64]string {
	t.Helper()
	out := map[uint64]string{}
	for _, h := range s.History {
		out[h.Version] = mustJSON(t, h)
	}
	return out
}

// Shared values are committed values: no later command may change them
// through another version. Every kind of change is made to services that
// older versions share, on a state built by commands and on one decoded
// from its snapshot, and every older version must encode as before.
func TestSharedVersionsAreNotChangedByLaterCommands(t *testing.T) {
	const services, servers = 6, 3
	table := sharedTable(services, servers, 1)
	first := table[0].Service.Key
	second := table[servers+1].Service.Key
	srv := *table[1].Server
	check := HealthCheck{Type: "http", Status: []int{200}}
	later := [][]Op{
		{{Kind: OpEditServer, ServiceKey: first, Server: &RealServer{Address: srv.Address, Forward: DirectRoute, Weight: 9}}},
		{{Kind: OpSetState, ServiceKey: first, Server: &RealServer{Address: srv.Address, State: Suspended}}},
		{{Kind: OpSetCheck, ServiceKey: first, Check: &check}},
		{{Kind: OpSetCheck, ServiceKey: first, Server: &RealServer{Address: srv.Address}, Check: &check}},
		{{Kind: OpClearCheck, ServiceKey: first, Server: &RealServer{Address: srv.Address}}},
		{{Kind: OpDeleteServer, ServiceKey: first, Server: &RealServer{Address: srv.Address}}},
		{{Kind: OpAddServer, ServiceKey: first, Server: &RealServer{Address: srv.Address, Forward: DirectRoute, Weight: 4}}},
		{{Kind: OpEditService, Service: &Service{Key: second, Scheduler: "rr", Flags: []string{"flag-1"}, Persistence: &Persistence{Timeout: 60}}}},
		{{Kind: OpDeleteService, ServiceKey: second}},
		{{Kind: OpSetTimeouts, Timeouts: &Timeouts{TCP: 60}}},
		{{Kind: OpClear}},
	}
	build := func() *State {
		s := NewState()
		applyOps(t, s, table...)
		applyOps(t, s, Op{Kind: OpClear})
		applyOps(t, s, table...)
		return s
	}
	decoded := func() *State {
		b, err := build().Marshal()
		if err != nil {
			t.Fatal(err)
		}
		s, err := UnmarshalState(b)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for name, start := range map[string]func() *State{"applied": build, "decoded": decoded} {
		t.Run(name, func(t *testing.T) {
			s := start()
			if history(s, 1).Services[second.String()] != history(s, 3).Services[second.String()] {
				t.Fatal("versions 1 and 3 share nothing: the test proves nothing")
			}
			for i, ops := range later {
				before := versionBytes(t, s)
				applyOps(t, s, ops...)
				after := versionBytes(t, s)
				for v, b := range before {
					if after[v] != b {
						t.Fatalf("command %d (%s) changed version %d (%d bytes encoded, were %d)", i, ops[0].Kind, v, len(after[v]), len(b))
					}
				}
			}
			// replace-config of the first version again, then rollback.
			before := versionBytes(t, s)
			rc := mustCmd(t, CmdReplaceConfig, ReplaceConfigPayload{Config: history(s, 1)})
			if r, err := s.Apply(rc); err != nil || r.Err != "" {
				t.Fatalf("replace-config: %+v %v", r, err)
			}
			rb := mustCmd(t, CmdRollback, RollbackPayload{Version: 4})
			if r, err := s.Apply(rb); err != nil || r.Err != "" {
				t.Fatalf("rollback: %+v %v", r, err)
			}
			applyOps(t, s, later[0]...)
			after := versionBytes(t, s)
			for v, b := range before {
				if after[v] != b {
					t.Fatalf("replace-config, rollback and an edit changed version %d", v)
				}
			}
		})
	}
}

// Sharing changes memory, never values: every version a log makes encodes
// exactly as the configuration ApplyOps makes from the previous one, which
// shares nothing with the older versions.
func TestSharingKeepsEveryVersion(t *testing.T) {
	table := sharedTable(8, 3, 1)
	steps := [][]Op{
		table,
		{{Kind: OpClear}},
		sharedTable(8, 3, 5),
		{{Kind: OpEditServer, ServiceKey: table[0].Service.Key, Server: &RealServer{Address: table[1].Server.Address, Forward: DirectRoute, Weight: 2}}},
		{{Kind: OpClear}},
		table,
		{{Kind: OpDeleteService, ServiceKey: table[4].Service.Key}},
	}
	s := NewState()
	want := NewConfig()
	for i, ops := range steps {
		applyOps(t, s, ops...)
		if i == 5 {
			// The clear and -R of one command, which leaves version 6 as it is.
			c := mustCmd(t, CmdOps, OpsPayload{Ops: append([]Op{{Kind: OpClear}}, table...)})
			if r, err := s.Apply(c); err != nil || r.Err != "" || r.Changed {
				t.Fatalf("-C and -R of the same table in one command: %+v %v, want no change", r, err)
			}
		}
		next, err := ApplyOps(want, ops)
		if err != nil {
			t.Fatal(err)
		}
		want = next
		if got, w := mustJSON(t, s.Config), mustJSON(t, want); got != w {
			t.Fatalf("step %d: the state's configuration differs from ApplyOps':\n%s\n%s", i, got, w)
		}
		if d := DiffConfig(s.Config, want); len(d) != 0 {
			t.Fatalf("step %d: diff against ApplyOps': %v", i, d)
		}
	}
}

// filled returns a value of type T with every field set, differently for
// each seed, so that a field the equal function ignores shows.
func filled(t *testing.T, typ reflect.Type, seed int) reflect.Value {
	t.Helper()
	v := reflect.New(typ).Elem()
	for i := range typ.NumField() {
		set(t, v.Field(i), typ.Field(i).Name, seed)
	}
	return v
}

func set(t *testing.T, f reflect.Value, name string, seed int) {
	t.Helper()
	switch {
	case f.Type() == reflect.TypeFor[netip.Addr]():
		f.Set(reflect.ValueOf(netip.AddrFrom4([4]byte{10, 0, 0, byte(seed)})))
		return
	case f.Type() == reflect.TypeFor[ServiceKey]():
		f.Set(reflect.ValueOf(ServiceKey{Protocol: TCP, Address: netip.AddrFrom4([4]byte{10, 0, 0, 1}), Port: uint16(seed)}))
		return
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(fmt.Sprint(name, seed))
	case reflect.Bool:
		f.SetBool(seed%2 == 1)
	case reflect.Int, reflect.Int64:
		f.SetInt(int64(seed))
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		f.SetUint(uint64(seed))
	case reflect.Slice:
		s := reflect.MakeSlice(f.Type(), 1, 1)
		set(t, s.Index(0), name, seed)
		f.Set(s)
	case reflect.Pointer:
		f.Set(filled(t, f.Type().Elem(), seed).Addr())
	case reflect.Map:
		m := reflect.MakeMap(f.Type())
		m.SetMapIndex(reflect.ValueOf("k"), filled(t, f.Type().Elem().Elem(), seed).Addr())
		f.Set(m)
	default:
		t.Fatalf("field %s: kind %s: teach the test to fill it", name, f.Kind())
	}
}

// Each equal function must see every field of its type (a field it missed
// would let two versions share a value that encodes differently), and nil
// from empty. Two values filled alike are equal; changing any one field,
// or making it nil or empty, makes them differ.
func TestEqualSeesEveryField(t *testing.T) {
	for _, c := range []struct {
		typ   reflect.Type
		equal func(a, b any) bool
	}{
		{reflect.TypeFor[Service](), func(a, b any) bool { return equalService(a.(*Service), b.(*Service)) }},
		{reflect.TypeFor[RealServer](), func(a, b any) bool { return equalServer(a.(*RealServer), b.(*RealServer)) }},
		{reflect.TypeFor[HealthCheck](), func(a, b any) bool { return equalCheck(a.(*HealthCheck), b.(*HealthCheck)) }},
		{reflect.TypeFor[Persistence](), func(a, b any) bool { return equalPersistence(a.(*Persistence), b.(*Persistence)) }},
	} {
		a := filled(t, c.typ, 1).Addr().Interface()
		if !c.equal(a, filled(t, c.typ, 1).Addr().Interface()) {
			t.Fatalf("%s: two values filled alike are not equal", c.typ)
		}
		for i := range c.typ.NumField() {
			name := c.typ.Field(i).Name
			b := filled(t, c.typ, 1)
			set(t, b.Field(i), name, 2)
			if c.equal(a, b.Addr().Interface()) {
				t.Errorf("%s.%s: a different value is seen as equal", c.typ, name)
			}
			switch b.Field(i).Kind() {
			case reflect.Slice, reflect.Map, reflect.Pointer:
				b = filled(t, c.typ, 1)
				b.Field(i).SetZero()
				if c.equal(a, b.Addr().Interface()) {
					t.Errorf("%s.%s: nil is seen as equal to a value", c.typ, name)
				}
				if k := b.Field(i).Kind(); k != reflect.Pointer {
					empty := filled(t, c.typ, 1)
					b.Field(i).SetZero()
					if k == reflect.Slice {
						empty.Field(i).Set(reflect.MakeSlice(empty.Field(i).Type(), 0, 0))
					} else {
						empty.Field(i).Set(reflect.MakeMap(empty.Field(i).Type()))
					}
					if c.equal(empty.Addr().Interface(), b.Addr().Interface()) {
						t.Errorf("%s.%s: nil is seen as equal to empty", c.typ, name)
					}
				}
			}
		}
	}
}
