package director

import (
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ipvsman/ipvsman/director/ipvsnl"
	"github.com/ipvsman/ipvsman/fsm"
)

// fakeModules is a kernel's module tree: loaded modules in sys, installed
// ones in modules.dep (as Debian's 6.1 lays them out, one compressed as
// newer kernels do) and modules.builtin.
func fakeModules(t *testing.T, loaded []string, dep, builtin string) *Modules {
	t.Helper()
	dir := t.TempDir()
	m := &Modules{Release: "6.1.0-test", Sys: filepath.Join(dir, "sys"), Lib: filepath.Join(dir, "lib")}
	for _, l := range loaded {
		if err := os.MkdirAll(filepath.Join(m.Sys, l), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(m.Lib, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, body := range map[string]string{"modules.dep": dep, "modules.builtin": builtin} {
		if err := os.WriteFile(filepath.Join(m.Lib, f), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return m
}

const fakeDep = `kernel/net/netfilter/ipvs/ip_vs.ko: kernel/net/netfilter/nf_conntrack.ko kernel/lib/libcrc32c.ko
kernel/net/netfilter/ipvs/ip_vs_rr.ko: kernel/net/netfilter/ipvs/ip_vs.ko
kernel/net/netfilter/ipvs/ip_vs_mh.ko.zst: kernel/net/netfilter/ipvs/ip_vs.ko
kernel/net/netfilter/ipvs/ip_vs_pe_sip.ko: kernel/net/netfilter/ipvs/ip_vs.ko kernel/net/netfilter/nf_conntrack_sip.ko
`

// TestModulesAdmit: a scheduler or persistence engine is admitted when its
// module is loaded, built in or installed, refused naming the service, the
// field and the value when the kernel has none, and a name the current
// configuration already uses is never asked about again.
func TestModulesAdmit(t *testing.T) {
	m := fakeModules(t, []string{"ip_vs_wlc"}, fakeDep, "kernel/net/netfilter/ipvs/ip_vs_twos.ko\n")
	cfg := func(svcs ...*fsm.Service) *fsm.Config {
		c := fsm.NewConfig()
		for _, s := range svcs {
			c.Services[s.Key.String()] = s
		}
		return c
	}
	svc := func(port uint16, sched, pe string) *fsm.Service {
		s := &fsm.Service{Key: fsm.ServiceKey{Protocol: fsm.UDP, Address: netip.MustParseAddr("10.0.0.1"), Port: port}, Scheduler: sched}
		if pe != "" {
			s.Persistence = &fsm.Persistence{Timeout: 60, Engine: pe}
		}
		return s
	}
	for _, ok := range []*fsm.Service{svc(1, "wlc", ""), svc(2, "rr", ""), svc(3, "mh", ""), svc(4, "twos", ""), svc(5, "rr", "sip")} {
		if err := m.Admit(fsm.NewConfig(), cfg(ok)); err != nil {
			t.Errorf("%s %s: %v", ok.Key, ok.Scheduler, err)
		}
	}
	for _, tc := range []struct {
		svc  *fsm.Service
		want string
	}{
		{svc(6, "lc", ""), `service udp:10.0.0.1:6 scheduler "lc": this kernel (6.1.0-test) has no module ip_vs_lc`},
		{svc(7, "rr", "h323"), `service udp:10.0.0.1:7 persistence engine "h323": this kernel (6.1.0-test) has no module ip_vs_pe_h323`},
	} {
		// The first service in key order is named, whatever the map order.
		next := cfg(tc.svc, svc(9, "nope", ""))
		if err := m.Admit(fsm.NewConfig(), next); err == nil || err.Error() != tc.want {
			t.Errorf("got %v\nwant %s", err, tc.want)
		}
	}
	cur := cfg(svc(6, "lc", ""))
	if err := m.Admit(cur, cfg(svc(6, "lc", ""), svc(8, "lc", ""))); err != nil {
		t.Errorf("a scheduler already in use refused: %v", err)
	}
	// A kernel installed meanwhile (modules.dep rewritten) is read again.
	if err := os.WriteFile(filepath.Join(m.Lib, "modules.dep"), []byte(fakeDep+"kernel/net/netfilter/ipvs/ip_vs_lc.ko: kernel/net/netfilter/ipvs/ip_vs.ko\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := m.Admit(fsm.NewConfig(), cfg(svc(6, "lc", ""))); err != nil {
		t.Errorf("after the module was installed: %v", err)
	}
	// No module lists at all (a container without /lib/modules): nothing
	// can be said, nothing is refused.
	blind := &Modules{Release: "x", Sys: t.TempDir(), Lib: filepath.Join(t.TempDir(), "none")}
	if _, err := blind.Has("ip_vs_rr"); err == nil || !strings.Contains(err.Error(), "no module index") {
		t.Errorf("Has without lists: %v", err)
	}
	if err := blind.Admit(nil, cfg(svc(1, "anything", ""))); err != nil {
		t.Errorf("refused without lists: %v", err)
	}
}

// TestNetlinkLocalSCTPAndEngine: the local node, SCTP and a persistence
// engine go to the kernel as IPVS carries them (forwarding method 1,
// IPPROTO_SCTP, IPVS_SVC_ATTR_PE_NAME) and come back as the model's.
func TestNetlinkLocalSCTPAndEngine(t *testing.T) {
	d := Dest{Address: netip.MustParseAddr("127.0.0.1"), Port: 80, Forward: fsm.LocalNode, Weight: 1}
	nd := toNetlinkDest(d)
	if nd.FwdMethod != ipvsnl.FwdLocalNode {
		t.Fatalf("local node sent as forwarding method %d", nd.FwdMethod)
	}
	if back := fromNetlinkDest(nd); back != d {
		t.Fatalf("read back %+v, want %+v", back, d)
	}
	s := Service{Key: fsm.ServiceKey{Protocol: fsm.SCTP, Address: netip.MustParseAddr("10.0.0.1"), Port: 5060}, Scheduler: "rr", Engine: "sip", Flags: FlagPersistent, Timeout: 60, Netmask: 0xFFFFFFFF}
	ns := toNetlinkService(s)
	if ns.Protocol != syscall.IPPROTO_SCTP || ns.PEName != "sip" {
		t.Fatalf("sent %+v", ns)
	}
	back, ok := fromNetlinkService(ns)
	if !ok || back.Key != s.Key || back.Engine != "sip" || !sameService(back, s) {
		t.Fatalf("read back %+v %v", back, ok)
	}
	c := (Table{s.Key.String(): back}).Config()
	if p := c.Services[s.Key.String()].Persistence; p == nil || p.Engine != "sip" {
		t.Fatalf("kernel view lost the engine: %+v", p)
	}
	other := s
	other.Engine = ""
	if sameService(other, s) {
		t.Fatal("a changed engine is not an update")
	}
}
