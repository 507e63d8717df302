package director

import (
	"maps"
	"net/netip"
	"slices"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

var (
	web2 = fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.12"), Port: 80}
	web3 = fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("10.0.0.13"), Port: 443}
	fwm7 = fsm.ServiceKey{Protocol: fsm.FWMark, Mark: 7}
)

// groupSample is web with a sorry server, three real servers and a group
// of three more virtual services: two addresses and a firewall mark.
func groupSample(t *testing.T, onFailure string) *fsm.State {
	return state(t,
		addSvc(web, "wlc", func(s *fsm.Service) {
			s.OnFailure = onFailure
			s.Sorry = &fsm.RealServer{Address: netip.MustParseAddr("10.1.0.99"), Port: 8080, Forward: fsm.Masquerade, Weight: 1}
		}),
		addSrv(web, "10.1.0.21", 3, fsm.Active),
		addSrv(web, "10.1.0.22", 2, fsm.Active),
		addSrv(web, "10.1.0.23", 1, fsm.Suspended),
		fsm.Op{Kind: fsm.OpGroupAdd, ServiceKey: web, Group: []fsm.ServiceKey{web2, web3, fwm7}},
		addSvc(dns, "rr"),
	)
}

// dests is a kernel service's destinations, canonical.
func dests(s Service) string {
	return Table{"x": Service{Scheduler: s.Scheduler, Flags: s.Flags, Timeout: s.Timeout, Netmask: s.Netmask, Dests: s.Dests}}.Canonical()
}

// A grouped service is one kernel service per key, each with the
// service's attributes and destinations; the reconciler programs them all
// and a second pass changes nothing.
func TestGroupIsOneKernelServicePerKey(t *testing.T) {
	st := groupSample(t, "")
	d := Desired(st)
	if got := slices.Sorted(maps.Keys(d)); !slices.Equal(got, []string{"fwmark:7", "tcp:10.0.0.10:80", "tcp:10.0.0.12:80", "tcp:10.0.0.13:443", "udp:[fd00::10]:53"}) {
		t.Fatalf("desired services %v", got)
	}
	want := dests(d[web.String()])
	for _, k := range []fsm.ServiceKey{web2, web3, fwm7} {
		m := d[k.String()]
		if m.Key != k {
			t.Errorf("%s: entry keyed %s", k, m.Key)
		}
		if got := dests(m); got != want {
			t.Errorf("%s destinations\n%s\nwant the service's\n%s", k, got, want)
		}
	}
	k := newFake()
	r := rec(k)
	if rep := r.Step(target(st)); rep.Failed != 0 || rep.Services != 5 {
		t.Fatalf("first pass: %+v", rep)
	}
	if got, want := k.table.Canonical(), d.Canonical(); got != want {
		t.Fatalf("kernel\n%s\nwant\n%s", got, want)
	}
	k.applied = nil
	if rep := r.StepFull(target(st)); rep.Ops != 0 || len(k.applied) != 0 {
		t.Fatalf("second pass: %+v %v", rep, k.applied)
	}
}

// One verdict (the service's, keyed by its own key) takes the real server
// out of every member: to weight 0 when quiescent, out of the table with
// on_failure remove; with every server down the sorry server is in all.
func TestVerdictDownTakesTheServerOutOfEveryMember(t *testing.T) {
	for _, onFailure := range []string{"", fsm.OnFailureRemove} {
		st := groupSample(t, onFailure)
		k := newFake()
		r := rec(k)
		r.Step(target(st))
		down := func(servers ...string) {
			var vs []fsm.VerdictChange
			for _, s := range servers {
				vs = append(vs, fsm.VerdictChange{Service: web.String(), Server: s, Health: fsm.HealthDown})
			}
			c, _ := fsm.NewCommand(fsm.CmdSetVerdicts, 100, "test", fsm.SetVerdictsPayload{Verdicts: vs})
			if res, err := st.Apply(c); err != nil || res.Err != "" {
				t.Fatal(err, res.Err)
			}
			r.Step(target(st))
		}
		down("10.1.0.21:8080")
		for _, key := range []fsm.ServiceKey{web, web2, web3, fwm7} {
			d, ok := k.table[key.String()].Dests["10.1.0.21:8080"]
			switch {
			case onFailure == "" && (!ok || d.Weight != 0):
				t.Errorf("quiescent: %s holds 10.1.0.21 %v at weight %d, want 0", key, ok, d.Weight)
			case onFailure == fsm.OnFailureRemove && ok:
				t.Errorf("on_failure remove: %s still holds 10.1.0.21", key)
			}
			if _, ok := k.table[key.String()].Dests["10.1.0.99:8080"]; ok {
				t.Errorf("%s: sorry server in while 10.1.0.22 is usable", key)
			}
		}
		down("10.1.0.22:8080")
		for _, key := range []fsm.ServiceKey{web, web2, web3, fwm7} {
			if _, ok := k.table[key.String()].Dests["10.1.0.99:8080"]; !ok {
				t.Errorf("%s (on_failure %q): no sorry server with every server down", key, onFailure)
			}
		}
		if got, want := k.table.Canonical(), Desired(st).Canonical(); got != want {
			t.Fatalf("kernel\n%s\nwant\n%s", got, want)
		}
	}
}

// Removing a member deletes its kernel service and nothing else; adding it
// back creates it and its destinations only.
func TestRemovingAMemberDeletesOnlyItsService(t *testing.T) {
	st := groupSample(t, "")
	k := newFake()
	r := rec(k)
	var g Targets
	r.Step(g.Target(st, 1))
	apply(t, st, fsm.CmdOps, fsm.OpsPayload{Ops: []fsm.Op{{Kind: fsm.OpGroupRemove, ServiceKey: web, Group: []fsm.ServiceKey{web3}}}})
	k.applied = nil
	tg := g.Target(st, 2)
	r.Step(tg)
	if want := []string{"delete-service tcp:10.0.0.13:443"}; !slices.Equal(k.applied, want) {
		t.Fatalf("removing %s applied %v, want %v", web3, k.applied, want)
	}
	if !tg.Changed[web3.String()] {
		t.Errorf("changed %v does not name the removed member", tg.Changed)
	}
	apply(t, st, fsm.CmdOps, fsm.OpsPayload{Ops: []fsm.Op{{Kind: fsm.OpGroupAdd, ServiceKey: web, Group: []fsm.ServiceKey{web3}}}})
	k.applied = nil
	r.Step(g.Target(st, 3))
	want := []string{"create-service tcp:10.0.0.13:443", "create-dest tcp:10.0.0.13:443 -> 10.1.0.21:8080",
		"create-dest tcp:10.0.0.13:443 -> 10.1.0.22:8080", "create-dest tcp:10.0.0.13:443 -> 10.1.0.23:8080"}
	if !slices.Equal(k.applied, want) {
		t.Fatalf("adding %s back applied %v, want %v", web3, k.applied, want)
	}
	// Deleting the service deletes every member's kernel service with it.
	apply(t, st, fsm.CmdOps, fsm.OpsPayload{Ops: []fsm.Op{{Kind: fsm.OpDeleteService, ServiceKey: web}}})
	r.Step(g.Target(st, 4))
	if got := slices.Sorted(maps.Keys(k.table)); !slices.Equal(got, []string{dns.String()}) {
		t.Fatalf("after deleting the service the kernel holds %v", got)
	}
}

// A member that moves from one group to another in one command ends in
// the second: the target deletes dropped members before it puts entries.
func TestMemberMovingBetweenGroupsInOneCommand(t *testing.T) {
	st := groupSample(t, "")
	apply(t, st, fsm.CmdOps, fsm.OpsPayload{Ops: []fsm.Op{addSvc(fwm, "rr"), addSrv(fwm, "10.1.0.31", 1, fsm.Active)}})
	var g Targets
	g.Target(st, 1)
	for i := range 20 { // map order varies: each run may visit the two services in another order
		from, to := web, fwm
		if i%2 == 1 {
			from, to = fwm, web
		}
		apply(t, st, fsm.CmdOps, fsm.OpsPayload{Ops: []fsm.Op{
			{Kind: fsm.OpGroupRemove, ServiceKey: from, Group: []fsm.ServiceKey{fwm7}},
			{Kind: fsm.OpGroupAdd, ServiceKey: to, Group: []fsm.ServiceKey{fwm7}},
		}})
		tg := g.Target(st, uint64(i+2))
		if got, want := tg.Table.Canonical(), Desired(st).Canonical(); got != want {
			t.Fatalf("move %d: target\n%s\nwant\n%s", i, got, want)
		}
		if !tg.Changed[fwm7.String()] {
			t.Fatalf("move %d: changed %v", i, tg.Changed)
		}
	}
}
