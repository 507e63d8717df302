package main

import (
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/cluster/api"
)

func TestKernelTableColumn(t *testing.T) {
	same := &api.NodeStatus{Director: &api.Report{Version: 7, Fingerprint: "aa", TargetFingerprint: "aa", KernelIndex: 40}}
	if c := kernelTable(same); c != "aa@40 v7" {
		t.Errorf("column = %q", c)
	}
	differ := &api.NodeStatus{Director: &api.Report{Version: 7, Fingerprint: "aa", TargetFingerprint: "bb", KernelIndex: 40, Failed: 1}}
	if c := kernelTable(differ); c != "aa@40 (target bb) v7 (1 failed)" {
		t.Errorf("column = %q", c)
	}
}

func holding(id string, held ...string) api.NodeView {
	return api.NodeView{ID: id, Status: &api.NodeStatus{VIPs: &api.VIPStats{Held: held}}}
}

func TestVIPColumnAndAlarm(t *testing.T) {
	one := api.ClusterStatus{Nodes: []api.NodeView{holding("d1", "10.0.0.10/32 on eth0", "fd00::10/128 on eth0"), holding("d2"), {ID: "d3"}}}
	if a := vipAlarm(one); a != "" {
		t.Fatalf("one holder raised %q", a)
	}
	if c := vipColumn(one.Nodes[0].Status); c != "10.0.0.10/32,fd00::10/128" {
		t.Errorf("column = %q", c)
	}
	if c := vipColumn(one.Nodes[1].Status); c != "-" {
		t.Errorf("column of a node holding none = %q", c)
	}
	if c := vipColumn(&api.NodeStatus{}); c != "off" {
		t.Errorf("column with --vips=off = %q", c)
	}
	two := api.ClusterStatus{Nodes: []api.NodeView{holding("d1", "10.0.0.10/32 on eth0"), holding("d2", "10.0.0.10/32 on eth1")}}
	if a := vipAlarm(two); a != "ALARM: VIP held by more than one node: 10.0.0.10/32 held by d1 and d2" {
		t.Errorf("two holders: %q", a)
	}
}

// A node whose forwarding switch is off while masquerading services need
// it gets a note naming the node, the switch, the services and the fix; a
// node without the field (forwarding fine, or --ipvs=off) gets none.
func TestForwardingNotes(t *testing.T) {
	st := api.ClusterStatus{Nodes: []api.NodeView{
		{ID: "d1", Status: &api.NodeStatus{ForwardingOff: []api.ForwardingOff{{Sysctl: "net.ipv4.ip_forward", Value: "0", Services: 3, Example: "tcp:10.0.0.1:80"}}}},
		{ID: "d2", Status: &api.NodeStatus{}},
		{ID: "d3"},
		{ID: "d4", Status: &api.NodeStatus{ForwardingOff: []api.ForwardingOff{{Sysctl: "net.ipv6.conf.all.forwarding", Error: "no such file", Services: 1, Example: "tcp:[2001:db8::1]:80"}}}},
	}}
	got := forwardingNotes(st)
	want := []string{
		"note: d1: net.ipv4.ip_forward=0 but 3 masquerading services need it (tcp:10.0.0.1:80, ...): their replies are not forwarded to the clients; on d1: sysctl -w net.ipv4.ip_forward=1",
		"note: d4: net.ipv6.conf.all.forwarding unreadable (no such file) but 1 masquerading service needs it (tcp:[2001:db8::1]:80): their replies are not forwarded to the clients; on d4: sysctl -w net.ipv6.conf.all.forwarding=1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("notes:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
