package fsm

import (
	"bytes"
	"net/netip"
	"slices"
	"strings"
	"testing"
)

var (
	web2  = ServiceKey{Protocol: TCP, Address: netip.MustParseAddr("193.123.45.13"), Port: 80}
	web3  = ServiceKey{Protocol: TCP, Address: netip.MustParseAddr("193.123.45.14"), Port: 80}
	mark9 = ServiceKey{Protocol: FWMark, Mark: 9}
)

func groupOp(kind OpKind, k ServiceKey, members ...ServiceKey) Op {
	return Op{Kind: kind, ServiceKey: k, Group: members}
}

// groupState is sampleLog with web served on two more addresses and on
// fwmark 9, a verdict on one of its real servers.
func groupState(t *testing.T) *State {
	t.Helper()
	s := NewState()
	applyLog(t, s, sampleLog(t))
	if r := apply1(t, s, groupOp(OpGroupAdd, web, web3, mark9, web2)); r.Err != "" || !r.Changed {
		t.Fatalf("group-add: %+v", r)
	}
	return s
}

// group-add keeps the members sorted; the diff says it; the verdict and
// the real servers are the service's, untouched; group-remove takes one
// member out and the last one leaves no group.
func TestGroupAddAndRemove(t *testing.T) {
	s := groupState(t)
	svc := s.Config.Services[web.String()]
	if got := describeGroup(svc.Group); got != "fwmark:9,tcp:193.123.45.13:80,tcp:193.123.45.14:80" {
		t.Fatalf("group %s", got)
	}
	if len(s.Config.Services) != 3 || len(svc.Servers) != 2 {
		t.Fatalf("services %v, servers %d: the group made services of its own", s.Config.SortedServiceKeys(), len(svc.Servers))
	}
	if _, ok := s.Verdicts[VerdictKey(web.String(), "10.3.0.10:8080")]; !ok {
		t.Fatal("the service's verdict went with the group-add")
	}
	last := s.History[len(s.History)-1].Summary
	if !strings.Contains(last, "group=fwmark:9,tcp:193.123.45.13:80,tcp:193.123.45.14:80") {
		t.Errorf("summary %q does not show the group", last)
	}
	before := s.Config
	if r := apply1(t, s, groupOp(OpGroupRemove, web, web2)); r.Err != "" {
		t.Fatal(r.Err)
	}
	if got := describeGroup(s.Config.Services[web.String()].Group); got != "fwmark:9,tcp:193.123.45.14:80" {
		t.Fatalf("after removing %s: %s", web2, got)
	}
	if got := describeGroup(before.Services[web.String()].Group); !strings.Contains(got, web2.String()) {
		t.Fatalf("the committed configuration changed in place: %s", got)
	}
	apply1(t, s, groupOp(OpGroupRemove, web, web3, mark9))
	if g := s.Config.Services[web.String()].Group; g != nil {
		t.Fatalf("no member left, group %#v, want nil", g)
	}
}

// Every refusal names the field and the value and changes nothing.
func TestGroupOpsRefuse(t *testing.T) {
	s := groupState(t)
	v6 := ServiceKey{Protocol: TCP, Address: netip.MustParseAddr("2001:db8::80"), Port: 80}
	for _, c := range []struct {
		name string
		ops  []Op
		want string
	}{
		{"own key", []Op{groupOp(OpGroupAdd, web, web)}, "service tcp:193.123.45.12:80 group member tcp:193.123.45.12:80: the service's own key"},
		{"another service", []Op{groupOp(OpGroupAdd, web, dns)}, "group member udp:[2001:db8::53]:53: a service of its own"},
		{"already a member", []Op{groupOp(OpGroupAdd, web, web2)}, "group member tcp:193.123.45.13:80: already a member"},
		{"another group", []Op{addSvc(web, "rr"), groupOp(OpGroupAdd, mark1, web2)}, "service tcp:193.123.45.12:80: already exists"},
		{"member of another group", []Op{groupOp(OpGroupAdd, mark1, web2)}, "service fwmark:1 group member tcp:193.123.45.13:80: already a member of the group of service tcp:193.123.45.12:80"},
		{"twice", []Op{groupOp(OpGroupAdd, mark1, ServiceKey{Protocol: FWMark, Mark: 5}, ServiceKey{Protocol: FWMark, Mark: 5})}, "service fwmark:1 group member fwmark:5: listed twice"},
		{"family", []Op{groupOp(OpGroupAdd, web, v6)}, "service tcp:193.123.45.12:80 group member tcp:[2001:db8::80]:80: address family inet6 differs from the service's inet"},
		{"fwmark family", []Op{groupOp(OpGroupAdd, web, ServiceKey{Protocol: FWMark, Mark: 5, IPv6: true})}, "group member fwmark6:5: address family inet6 differs"},
		{"port 0", []Op{groupOp(OpGroupAdd, web, ServiceKey{Protocol: TCP, Address: netip.MustParseAddr("10.9.9.9")})}, "service tcp:193.123.45.12:80 group member tcp:10.9.9.9:0: service tcp:10.9.9.9:0: port 0 is only valid for a persistent service (-p)"},
		{"one-packet on tcp", []Op{
			Op{Kind: OpEditService, Service: &Service{Key: web, Scheduler: "rr"}},
			addSvc(ServiceKey{Protocol: UDP, Address: netip.MustParseAddr("10.0.0.53"), Port: 53}, "rr"),
			Op{Kind: OpEditService, Service: &Service{Key: ServiceKey{Protocol: UDP, Address: netip.MustParseAddr("10.0.0.53"), Port: 53}, Scheduler: "rr", OnePacket: true}},
			groupOp(OpGroupAdd, ServiceKey{Protocol: UDP, Address: netip.MustParseAddr("10.0.0.53"), Port: 53}, ServiceKey{Protocol: TCP, Address: netip.MustParseAddr("10.0.0.53"), Port: 53}),
		}, "group member tcp:10.0.0.53:53: service tcp:10.0.0.53:53: one-packet scheduling (-o) is only for UDP and fwmark services"},
		{"-E breaks a member", []Op{Op{Kind: OpEditService, Service: &Service{Key: web, Scheduler: "rr", Persistence: &Persistence{Engine: "sip"}}}}, "service tcp:193.123.45.12:80 persistence engine \"sip\": only for UDP and fwmark services"},
		{"empty", []Op{groupOp(OpGroupAdd, web)}, "group-add on service tcp:193.123.45.12:80: group: empty"},
		{"remove a stranger", []Op{groupOp(OpGroupRemove, web, ServiceKey{Protocol: FWMark, Mark: 5})}, "service tcp:193.123.45.12:80 group member fwmark:5: not a member (members: fwmark:9,tcp:193.123.45.13:80,tcp:193.123.45.14:80)"},
		{"remove another's", []Op{groupOp(OpGroupAdd, mark1, ServiceKey{Protocol: FWMark, Mark: 5}), groupOp(OpGroupRemove, web, ServiceKey{Protocol: FWMark, Mark: 5})}, "group member fwmark:5: not in this group but in the group of service fwmark:1"},
		{"-A on a member", []Op{addSvc(web2, "rr")}, "service tcp:193.123.45.13:80: a member of the group of service tcp:193.123.45.12:80: edit that service"},
		{"-a on a member", []Op{addSrv(web2, "10.3.0.30", 0, DirectRoute, 1)}, "ipvsman group remove tcp:193.123.45.12:80 tcp:193.123.45.13:80"},
		{"-D on a member", []Op{{Kind: OpDeleteService, ServiceKey: mark9}}, "service fwmark:9: a member of the group of service tcp:193.123.45.12:80"},
		{"-E on a member", []Op{{Kind: OpEditService, Service: &Service{Key: web3, Scheduler: "rr"}}}, "service tcp:193.123.45.14:80: a member of the group"},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, _ := s.Marshal()
			r := apply1ops(t, s, c.ops)
			if r.Err == "" || !strings.Contains(r.Err, c.want) {
				t.Fatalf("error %q, want it to contain %q", r.Err, c.want)
			}
			if after, _ := s.Marshal(); !bytes.Equal(before, after) {
				t.Fatal("a refused op changed the state")
			}
		})
	}
}

func apply1ops(t *testing.T, s *State, ops []Op) Result {
	t.Helper()
	v := s.Version
	r := applyLog(t, s, makeLog(t, ops))[0]
	if s.Version != v {
		t.Fatalf("refused ops made version %d", s.Version)
	}
	return r
}

// Deleting the service deletes the group with it, so its keys are free
// for services of their own; -C frees them too.
func TestDeletedServiceFreesItsMembers(t *testing.T) {
	s := groupState(t)
	if r := apply1ops2(t, s, []Op{{Kind: OpDeleteService, ServiceKey: web}, addSvc(web2, "rr"), groupOp(OpGroupAdd, mark1, web3)}); r.Err != "" {
		t.Fatal(r.Err)
	}
	if g := describeGroup(s.Config.Services[mark1.String()].Group); g != web3.String() {
		t.Fatalf("fwmark:1 group %s", g)
	}
	if r := apply1ops2(t, s, []Op{{Kind: OpClear}, addSvc(web3, "rr")}); r.Err != "" {
		t.Fatal(r.Err)
	}
}

func apply1ops2(t *testing.T, s *State, ops []Op) Result {
	t.Helper()
	return applyLog(t, s, makeLog(t, ops))[0]
}

// -E keeps the group, as it keeps the pool: ipvsadm cannot say it.
func TestEditServiceKeepsTheGroup(t *testing.T) {
	s := groupState(t)
	apply1(t, s, Op{Kind: OpEditService, Service: &Service{Key: web, Scheduler: "rr", Persistence: &Persistence{}}})
	svc := s.Config.Services[web.String()]
	if svc.Scheduler != "rr" || len(svc.Group) != 3 {
		t.Fatalf("after -E: scheduler %s, group %v", svc.Scheduler, svc.Group)
	}
}

// The group survives both snapshot encodings, a rollback, and a state
// without groups encodes no group key (older builds' snapshots stay equal).
func TestGroupSurvivesSnapshotsAndRollback(t *testing.T) {
	s := groupState(t)
	grouped := s.Version
	apply1(t, s, groupOp(OpGroupRemove, web, web2, web3, mark9))
	apply1(t, s, groupOp(OpGroupAdd, web, web2))
	plain, pooled := encodeBoth(t, s)
	for name, b := range map[string][]byte{"plain": plain, "pooled": pooled} {
		r, err := UnmarshalState(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if again, _ := r.Marshal(); !bytes.Equal(again, plain) {
			t.Errorf("%s snapshot: the restored state encodes differently", name)
		}
		if g := r.Config.Services[web.String()].Group; !slices.Equal(g, []ServiceKey{web2}) {
			t.Errorf("%s snapshot: group %v", name, g)
		}
		if g := r.entry(grouped).Config.Services[web.String()].Group; len(g) != 3 {
			t.Errorf("%s snapshot: version %d's group %v", name, grouped, g)
		}
	}
	if !bytes.Contains(plain, []byte(`"group":[{"protocol":"tcp","address":"193.123.45.13","port":80}]`)) {
		t.Errorf("the plain snapshot has no group key")
	}
	r := applyLog(t, s, makeLog(t, mustCmd(t, CmdRollback, RollbackPayload{Version: grouped})))[0]
	if r.Err != "" || len(s.Config.Services[web.String()].Group) != 3 {
		t.Fatalf("rollback: %+v, group %v", r, s.Config.Services[web.String()].Group)
	}
	c := s.Config.Services[web.String()].Clone()
	c.Group[0] = web
	if s.Config.Services[web.String()].Group[0] == web {
		t.Fatal("Clone shares the group with the original")
	}

	old := NewState()
	applyLog(t, old, sampleLog(t))
	if b, _ := old.Marshal(); bytes.Contains(b, []byte(`"group"`)) {
		t.Fatal("a state without groups encodes a group key")
	}
}

func TestConfigNeedsGroupProtocol(t *testing.T) {
	s := groupState(t)
	if need, what := s.Config.Needs(); need != GroupProtocol || what != "service tcp:193.123.45.12:80 group" {
		t.Errorf("with a group: needs %d (%s)", need, what)
	}
	apply1(t, s, groupOp(OpGroupRemove, web, web2, web3, mark9))
	if need, _ := s.Config.Needs(); need >= GroupProtocol {
		t.Errorf("without a group: needs %d", need)
	}
	if CommandProtocol < GroupProtocol {
		t.Errorf("this build speaks protocol %d, below the group's %d", CommandProtocol, GroupProtocol)
	}
}

// A whole configuration (apply -f) is checked groups and all.
func TestValidateConfigChecksGroups(t *testing.T) {
	mk := func(mod func(c *Config)) error {
		c := NewConfig()
		c.Services[web.String()] = &Service{Key: web, Scheduler: "rr", Group: []ServiceKey{web3, {Protocol: TCP, Address: netip.MustParseAddr("::ffff:193.123.45.13"), Port: 80}}}
		c.Services[mark1.String()] = &Service{Key: mark1, Scheduler: "rr"}
		mod(c)
		return ValidateConfig(c)
	}
	c := NewConfig()
	c.Services[web.String()] = &Service{Key: web, Scheduler: "rr", Group: []ServiceKey{web3, {Protocol: TCP, Address: netip.MustParseAddr("::ffff:193.123.45.13"), Port: 80}}}
	if err := ValidateConfig(c); err != nil {
		t.Fatal(err)
	}
	if got := describeGroup(c.Services[web.String()].Group); got != "tcp:193.123.45.13:80,tcp:193.123.45.14:80" {
		t.Errorf("normalized group %s, want unmapped and sorted", got)
	}
	for _, tc := range []struct {
		mod  func(c *Config)
		want string
	}{
		{func(c *Config) { c.Services[mark1.String()].Group = []ServiceKey{web3} }, "service tcp:193.123.45.12:80 group member tcp:193.123.45.14:80: also a member of the group of service fwmark:1"},
		{func(c *Config) { c.Services[web3.String()] = &Service{Key: web3, Scheduler: "rr"} }, "service tcp:193.123.45.12:80 group member tcp:193.123.45.14:80: also a service of its own"},
		{func(c *Config) { c.Services[web.String()].Group = append(c.Services[web.String()].Group, web3) }, "group member tcp:193.123.45.14:80: listed twice"},
		{func(c *Config) { c.Services[web.String()].Group = []ServiceKey{web} }, "group member tcp:193.123.45.12:80: the service's own key"},
		{func(c *Config) { c.Services[web.String()].Group = []ServiceKey{dns} }, "group member udp:[2001:db8::53]:53: address family inet6 differs from the service's inet"},
		{func(c *Config) { c.Services[mark1.String()].Group = []ServiceKey{{Protocol: FWMark}} }, "service fwmark:1 group member fwmark:0: service fwmark 0: a firewall mark must be 1 or more"},
	} {
		if err := mk(tc.mod); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("error %v, want %q", err, tc.want)
		}
	}
}
