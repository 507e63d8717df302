package director

import (
	"errors"
	"net/netip"
	"reflect"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

func TestTargetOf(t *testing.T) {
	st := sample(t)
	got := TargetOf(st, 42)
	if got.Index != 42 || got.Version != st.Version || got.Timeouts != st.Config.Timeouts {
		t.Errorf("index %d, version %d, timeouts %v; want 42, %d, the model's", got.Index, got.Version, got.Timeouts, st.Version)
	}
	if got.Table.Fingerprint() != Desired(st).Fingerprint() {
		t.Errorf("table differs from Desired of the state")
	}
}

// TestSyncTargetsFollowTheConfiguration: the memoized sync targets equal
// SyncTargetOf through configuration changes that turn masquerading and
// mixed families on and off, and through verdict-only changes.
func TestSyncTargetsFollowTheConfiguration(t *testing.T) {
	st := state(t, addSvc(web, "rr"))
	var g SyncTargets
	steps := []fsm.Op{
		addSrv(web, "10.1.0.21", 1, fsm.Active), // masqueraded
		{Kind: fsm.OpAddServer, ServiceKey: web, Server: &fsm.RealServer{Address: netip.MustParseAddr("fd00::21"), Forward: fsm.Tunnel, Port: 8080, Weight: 1}},
		{Kind: fsm.OpDeleteServer, ServiceKey: web, Server: &fsm.RealServer{Address: netip.MustParseAddr("fd00::21"), Forward: fsm.Tunnel, Port: 8080}},
		{Kind: fsm.OpDeleteServer, ServiceKey: web, Server: &fsm.RealServer{Address: netip.MustParseAddr("10.1.0.21"), Forward: fsm.Masquerade, Port: 8080}},
	}
	seen := map[SyncTarget]bool{}
	for i, op := range steps {
		for _, leader := range []bool{true, false} {
			got, want := g.Target(st.Config, leader, "eth1"), SyncTargetOf(st.Config, leader, "eth1")
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("step %d: got %+v, want %+v", i, got, want)
			}
			seen[got] = true
		}
		c, err := fsm.NewCommand(fsm.CmdOps, int64(i+10), "test", fsm.OpsPayload{Ops: []fsm.Op{op}})
		if err != nil {
			t.Fatal(err)
		}
		if r, err := st.Apply(c); err != nil || r.Err != "" {
			t.Fatalf("step %d: %v %s", i, err, r.Err)
		}
	}
	if len(seen) < 4 {
		t.Fatalf("only %d distinct targets seen: the steps did not move masquerading and mixed families", len(seen))
	}
}

func TestSyncTargetOf(t *testing.T) {
	st := sample(t)
	got := SyncTargetOf(st.Config, true, "eth1")
	want := SyncTarget{Leader: true, Iface: "eth1", Settings: fsm.SyncOf(st.Config)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

func TestKernelConfig(t *testing.T) {
	st := sample(t)
	to := fsm.Timeouts{TCP: 900, TCPFin: 120, UDP: 300}
	c := KernelConfig(Desired(st), to)
	if c.Timeouts == nil || *c.Timeouts != to {
		t.Errorf("timeouts %v, want %v", c.Timeouts, to)
	}
	if len(c.Services) != len(st.Config.Services) {
		t.Errorf("%d services, want %d", len(c.Services), len(st.Config.Services))
	}
}

func TestCountConns(t *testing.T) {
	ap := netip.MustParseAddrPort
	conns := []Conn{
		{Protocol: "TCP", Client: ap("10.2.0.1:40000"), Virtual: ap("10.0.0.10:80"), Dest: ap("10.1.0.21:8080")},
		{Protocol: "TCP", Client: ap("10.2.0.2:40000"), Virtual: ap("10.0.0.10:80"), Dest: ap("10.1.0.21:8080"), Synced: true},
		{Protocol: "UDP", Client: ap("10.2.0.3:40000"), Virtual: ap("10.0.0.10:53"), Dest: ap("10.1.0.22:53"), Synced: true},
	}
	r := CountConns(SyncReport{Why: "kept", Conns: 1}, conns)
	if r.Conns != 4 || r.Synced != 2 || r.Why != "kept" {
		t.Errorf("got %+v; want 4 connections (one already counted), 2 synced, the rest kept", r)
	}
	if r := CountConns(SyncReport{}, nil); r.Conns != 0 || r.Synced != 0 {
		t.Errorf("no connections: got %+v", r)
	}
}

// statsKernel answers KernelView from fixed values.
type statsKernel struct {
	t        Table
	st       ipvsadm.Stats
	to       fsm.Timeouts
	readErr  error
	timesErr error
}

func (k statsKernel) ReadStats() (Table, ipvsadm.Stats, error) { return k.t, k.st, k.readErr }
func (k statsKernel) Timeouts() (fsm.Timeouts, error)          { return k.to, k.timesErr }

func TestKernelView(t *testing.T) {
	st := sample(t)
	k := statsKernel{t: Desired(st), st: ipvsadm.Stats{}, to: fsm.Timeouts{TCP: 900}}
	c, stats, err := KernelView(k)
	if err != nil || stats == nil || c.Timeouts == nil || c.Timeouts.TCP != 900 || len(c.Services) != len(st.Config.Services) {
		t.Fatalf("got %v, %v, %v", c, stats, err)
	}
	for _, bad := range []statsKernel{{readErr: errors.New("dump")}, {timesErr: errors.New("timeouts")}} {
		if _, _, err := KernelView(bad); err == nil {
			t.Errorf("%+v: no error", bad)
		}
	}
}
