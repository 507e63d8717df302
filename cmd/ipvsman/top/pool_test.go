package top

import (
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

// withPool is threeByFour with a server defined in web's pool.
func withPool(t *testing.T) *fakeSource {
	f := threeByFour(t)
	cfg, err := fsm.ApplyOps(f.cfg, []fsm.Op{{Kind: fsm.OpPoolServer, ServiceKey: f.cfg.Services[web].Key,
		Server: &fsm.RealServer{Name: "spare", Address: addr("10.3.0.9"), Port: 8080, Forward: fsm.Masquerade, Weight: 6}}})
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = cfg
	return f
}

// d unassigns after y: the server leaves the service's real servers for
// its pool, whole, and the cursor follows it there; any other key cancels.
func TestUnassignAsksFirst(t *testing.T) {
	f := threeByFour(t)
	m := newTest(t, f)
	press(m, "d")
	if v := m.View(); !strings.Contains(v, "unassign 10.3.0.1:8080 from tcp:10.0.0.1:80 into its pool? (y/n)") ||
		!strings.Contains(v, "y unassign  any other key cancels") {
		t.Fatalf("d:\n%s", v)
	}
	press(m, "n")
	if len(f.acts) != 0 || !strings.Contains(m.View(), "unassign cancelled") {
		t.Fatalf("d n sent %v", f.acts)
	}
	press(m, "d", "y")
	ops := f.lastOps()
	if len(ops) != 1 || ops[0].Kind != fsm.OpUnassignServer || ops[0].Server.Key() != "10.3.0.1:8080" {
		t.Fatalf("d y sent %+v", ops)
	}
	svc := f.cfg.Services[web]
	if svc.Servers["10.3.0.1:8080"] != nil || svc.Pool["10.3.0.1:8080"] == nil || svc.Pool["10.3.0.1:8080"].Weight != 1 {
		t.Fatalf("after d y: servers %v, pool %v", svc.SortedServerKeys(), svc.Pool)
	}
	v := m.View()
	fits(t, v, 80, 24)
	if l := line(v, ">"); !strings.Contains(l, "10.3.0.1:8080") || !strings.Contains(l, " pool ") {
		t.Errorf("cursor after unassign: %q\n%s", l, v)
	}
	if !strings.Contains(v, "ok: unassign 10.3.0.1:8080 of tcp:10.0.0.1:80 (kept in its pool)") ||
		!strings.Contains(v, "10.3.0.1:8080 of tcp:10.0.0.1:80: in its pool, not assigned: in no kernel table") ||
		!strings.Contains(v, "a assign  x forget") {
		t.Errorf("after unassign:\n%s", v)
	}
	// The pool row, selected, takes a to assign it back: no picker.
	press(m, "a")
	if ops := f.lastOps(); len(ops) != 1 || ops[0].Kind != fsm.OpAssignServer || ops[0].Server.Key() != "10.3.0.1:8080" {
		t.Fatalf("a on the pool row sent %+v", ops)
	}
	if f.cfg.Services[web].Servers["10.3.0.1:8080"] == nil || f.cfg.Services[web].Pool != nil {
		t.Fatalf("not assigned back: %+v", f.cfg.Services[web])
	}
	if l := line(m.View(), ">"); !strings.Contains(l, "10.3.0.1:8080") || !strings.Contains(l, "active") {
		t.Errorf("cursor after assign: %q", l)
	}
}

// a offers the service's own pool first, marked "its pool", then the other
// servers of the topology, another service's pool included; enter on a
// pool server assigns it as defined (pool assign), not a copy (-a).
func TestAssignOffersThePoolFirst(t *testing.T) {
	f := withPool(t)
	cfg, err := fsm.ApplyOps(f.cfg, []fsm.Op{{Kind: fsm.OpPoolServer, ServiceKey: f.cfg.Services["tcp:10.0.0.2:443"].Key,
		Server: &fsm.RealServer{Address: addr("10.3.5.5"), Forward: fsm.DirectRoute, Weight: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	f.cfg = cfg
	m := newTest(t, f)
	press(m, "a")
	v := m.View()
	fits(t, v, 80, 24)
	if l := line(v, ">"); !strings.Contains(l, "10.3.0.9:8080") || !strings.Contains(l, "its pool") {
		t.Fatalf("picker's first line %q:\n%s", l, v)
	}
	if l := line(v, "10.3.5.5"); !strings.Contains(l, "tcp:10.0.0.2:443 (pool)") {
		t.Errorf("another service's pool server: %q", l)
	}
	if strings.Contains(v, "10.3.0.1:8080") {
		t.Errorf("the picker offers a server the service has:\n%s", v)
	}
	press(m, "enter")
	ops := f.lastOps()
	if len(ops) != 1 || ops[0].Kind != fsm.OpAssignServer || ops[0].Server.Key() != "10.3.0.9:8080" {
		t.Fatalf("enter sent %+v", ops)
	}
	if rs := server(f, web, "10.3.0.9:8080"); rs == nil || rs.Name != "spare" || rs.Weight != 6 {
		t.Fatalf("assigned: %+v", rs)
	}
	if !strings.Contains(m.View(), "ok: assign 10.3.0.9:8080 to tcp:10.0.0.1:80") {
		t.Errorf("after assign:\n%s", m.View())
	}
	// Another service's pool server is a template, copied with -a.
	press(m, "a")
	for i := 0; i < 20 && !strings.Contains(line(m.View(), ">"), "10.3.5.5"); i++ {
		press(m, "j")
	}
	press(m, "enter")
	if ops := f.lastOps(); len(ops) != 1 || ops[0].Kind != fsm.OpAddServer || ops[0].Server.Address != addr("10.3.5.5") {
		t.Fatalf("enter on another service's pool server sent %+v", ops)
	}
	if server(f, web, "10.3.5.5:80") == nil || f.cfg.Services["tcp:10.0.0.2:443"].Pool["10.3.5.5:443"] == nil {
		t.Errorf("the copy: web %v, the other pool %v", f.cfg.Services[web].SortedServerKeys(), f.cfg.Services["tcp:10.0.0.2:443"].Pool)
	}
}

// x forgets a pool server, or deletes an assigned one, each after y; keys
// that act on an assigned server say what to do on a pool row.
func TestForgetAndDelete(t *testing.T) {
	f := withPool(t)
	m := newTest(t, f)
	press(m, "x")
	if v := m.View(); !strings.Contains(v, "delete 10.3.0.1:8080 from tcp:10.0.0.1:80, not kept in a pool? (y/n)") ||
		!strings.Contains(v, "y delete  any other key cancels") {
		t.Fatalf("x on an assigned server:\n%s", v)
	}
	press(m, "y")
	if ops := f.lastOps(); len(ops) != 1 || ops[0].Kind != fsm.OpDeleteServer || ops[0].Server.Key() != "10.3.0.1:8080" {
		t.Fatalf("x y sent %+v", ops)
	}
	if svc := f.cfg.Services[web]; svc.Servers["10.3.0.1:8080"] != nil || svc.Pool["10.3.0.1:8080"] != nil {
		t.Fatal("deleted server still in the model")
	}
	press(m, "j", "j", "j")
	if l := line(m.View(), ">"); !strings.Contains(l, "10.3.0.9:8080 sp~") || !strings.Contains(l, "Masq       6 -       pool") {
		t.Fatalf("pool row: %q\n%s", l, m.View())
	}
	for _, k := range []string{"+", "s", "d"} {
		n := len(f.acts)
		press(m, k)
		if len(f.acts) != n || !strings.Contains(m.View(), "10.3.0.9:8080 is in the pool of tcp:10.0.0.1:80") {
			t.Errorf("%s on a pool row:\n%s", k, m.View())
		}
	}
	press(m, "x", "n")
	if !strings.Contains(m.View(), "forget cancelled") {
		t.Errorf("x n:\n%s", m.View())
	}
	press(m, "x")
	if !strings.Contains(m.View(), "forget 10.3.0.9:8080 of tcp:10.0.0.1:80 for good? (y/n)") {
		t.Fatalf("x on a pool server:\n%s", m.View())
	}
	press(m, "y")
	if ops := f.lastOps(); len(ops) != 1 || ops[0].Kind != fsm.OpForgetServer || ops[0].Server.Key() != "10.3.0.9:8080" {
		t.Fatalf("x y on a pool server sent %+v", ops)
	}
	if f.cfg.Services[web].Pool != nil || strings.Contains(m.View(), "10.3.0.9") && !strings.Contains(m.View(), "ok: forget 10.3.0.9:8080") {
		t.Errorf("after forget:\n%s", m.View())
	}
}
