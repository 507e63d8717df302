//go:build lab

package lab

// Tests of director/ipvsnl against the VM's kernel, read back both through
// ipvsnl and through ipvsadm 1.31. They run in the VM's root network
// namespace: ipvsnl talks to the namespace of the calling process, and the
// test process is root there; no topology is needed. Everything they create
// (services on 192.0.2.0/24 and 2001:db8::/32, a dummy interface, sync
// daemons, timeouts) is removed or restored by t.Cleanup.

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/director/ipvsnl"
)

const nlIface = "ipvsnl0" // dummy: gives 192.0.2.0/24 a unicast route (IPVS refuses dests without one)

// Method-less copies, so that %+v prints fields rather than String().
type (
	nlPlainService ipvsnl.Service
	nlPlainDest    ipvsnl.Dest
)

func nlCmd(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// nlSetup checks for IPVS, creates the dummy interface and dials ipvsnl.
func nlSetup(t *testing.T) *ipvsnl.Conn {
	t.Helper()
	requireKernelIPVS(t)
	exec.Command("ip", "link", "del", nlIface).Run() // a crashed run's leftover
	nlCmd(t, "ip", "link", "add", nlIface, "type", "dummy")
	t.Cleanup(func() { exec.Command("ip", "link", "del", nlIface).Run() })
	nlCmd(t, "ip", "link", "set", nlIface, "multicast", "on") // the sync daemons join a group on it
	nlCmd(t, "ip", "addr", "add", "192.0.2.1/24", "dev", nlIface)
	nlCmd(t, "ip", "-6", "addr", "add", "2001:db8::1/64", "dev", nlIface, "nodad")
	nlCmd(t, "ip", "link", "set", nlIface, "up")
	c, err := ipvsnl.Dial()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// nlService adds a service and deletes it (with its destinations) at cleanup.
func nlService(t *testing.T, c *ipvsnl.Conn, s ipvsnl.Service) {
	t.Helper()
	if err := c.NewService(s); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.DelService(s); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
}

func nlFind(t *testing.T, c *ipvsnl.Conn, s ipvsnl.Service) ipvsnl.Service {
	t.Helper()
	all, err := c.Services()
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range all {
		if x.String() == s.String() && (s.Family == 0 || x.Family == s.Family) {
			return x
		}
	}
	t.Fatalf("service %s not in the kernel's list %+v", s, all)
	return ipvsnl.Service{}
}

func nlDests(t *testing.T, c *ipvsnl.Conn, s ipvsnl.Service) map[string]ipvsnl.Dest {
	t.Helper()
	ds, err := c.Dests(s)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]ipvsnl.Dest{}
	for _, d := range ds {
		m[d.String()] = d
	}
	return m
}

// nlTunInfo is the TunnelInfo column of ipvsadm -L --tun-info (fwd_tun_info
// in ipvsadm 1.31: "ipip", "gue:PORT:FLAGS", "gre:FLAGS", the flags
// abbreviated: -c no checksum, +c checksum, r+c remote checksum).
func nlTunInfo(d ipvsnl.Dest) string {
	flags := [...]string{"-c", "+c", "r+c"}[d.TunFlags]
	switch d.TunType {
	case ipvsnl.TunGUE:
		return fmt.Sprintf("gue:%d:%s", d.TunPort, flags)
	case ipvsnl.TunGRE:
		return "gre:" + flags
	}
	return "ipip"
}

// nlAdmDests parses the destination lines of ipvsadm -L -n --tun-info:
// address:port -> [forward, tunnel info, weight].
func nlAdmDests(out string) map[string][]string {
	m := map[string][]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) >= 5 && f[0] == "->" && f[1] != "RemoteAddress:Port" {
			m[f[1]] = f[2:5]
		}
	}
	return m
}

// nlCheckDests compares the service's destinations, read through ipvsnl
// and through ipvsadm -L -n --tun-info, with want.
func nlCheckDests(t *testing.T, c *ipvsnl.Conn, s ipvsnl.Service, want ...ipvsnl.Dest) {
	t.Helper()
	out := nlCmd(t, "ipvsadm", "-L", "-n", "--tun-info", "-t", netip.AddrPortFrom(s.Addr, s.Port).String())
	t.Logf("ipvsadm -L -n --tun-info:\n%s", out)
	got, adm := nlDests(t, c, s), nlAdmDests(out)
	if len(got) != len(want) || len(adm) != len(want) {
		t.Errorf("%d destinations through ipvsnl, %d through ipvsadm, want %d", len(got), len(adm), len(want))
	}
	for _, w := range want {
		g, ok := got[w.String()]
		if !ok {
			t.Errorf("destination %s missing from ipvsnl's dump %v", w, slices.Collect(maps.Keys(got)))
			continue
		}
		g.ActiveConns, g.InactConns, g.PersistConns, g.Stats = 0, 0, 0, ipvsnl.Stats{}
		if g != w {
			t.Errorf("destination read back through ipvsnl\n %+v\nwant\n %+v", nlPlainDest(g), nlPlainDest(w))
		}
		if a, wa := adm[w.String()], []string{"Tunnel", nlTunInfo(w), fmt.Sprint(w.Weight)}; !slices.Equal(a, wa) {
			t.Errorf("ipvsadm shows %s as %q, want %q", w, a, wa)
		}
	}
}

// TestNetlinkTunnelDests: GUE (port 6080) and GRE destinations, added and
// changed through ipvsnl, read back through ipvsnl and ipvsadm --tun-info.
func TestNetlinkTunnelDests(t *testing.T) {
	c := nlSetup(t)
	s := ipvsnl.Service{Family: ipvsnl.AFInet, Protocol: syscall.IPPROTO_TCP, Addr: netip.MustParseAddr("192.0.2.10"), Port: 80, Sched: "wlc"}
	nlService(t, c, s)
	gue := ipvsnl.Dest{Family: ipvsnl.AFInet, Addr: netip.MustParseAddr("192.0.2.21"), Port: 80, FwdMethod: ipvsnl.FwdTunnel,
		Weight: 2, TunType: ipvsnl.TunGUE, TunPort: 6080, TunFlags: ipvsnl.TunFlagCsum}
	gre := ipvsnl.Dest{Family: ipvsnl.AFInet, Addr: netip.MustParseAddr("192.0.2.22"), Port: 80, FwdMethod: ipvsnl.FwdTunnel,
		Weight: 3, Upper: 50, Lower: 5, TunType: ipvsnl.TunGRE}
	for _, d := range []ipvsnl.Dest{gue, gre} {
		if err := c.NewDest(s, d); err != nil {
			t.Fatal(err)
		}
	}
	nlCheckDests(t, c, s, gue, gre)

	gue.Weight, gue.TunPort, gue.TunFlags = 7, 6081, ipvsnl.TunFlagRemCsum
	gre.TunFlags = ipvsnl.TunFlagCsum
	for _, d := range []ipvsnl.Dest{gue, gre} {
		if err := c.UpdateDest(s, d); err != nil {
			t.Fatal(err)
		}
	}
	nlCheckDests(t, c, s, gue, gre)
	t.Logf("ipvsadm -S -n:\n%s", nlCmd(t, "ipvsadm", "-S", "-n"))

	if err := c.DelDest(s, gre); err != nil {
		t.Fatal(err)
	}
	nlCheckDests(t, c, s, gue)
}

// TestNetlinkMixedFamilyDest: an IPv4 service tunnelling to an IPv6 real
// server (ADDR_FAMILY differs from the service's), added, read back as
// AF_INET6, and deleted again (which needs ADDR_FAMILY too).
func TestNetlinkMixedFamilyDest(t *testing.T) {
	c := nlSetup(t)
	s := ipvsnl.Service{Protocol: syscall.IPPROTO_TCP, Addr: netip.MustParseAddr("192.0.2.11"), Port: 80, Sched: "rr"}
	nlService(t, c, s) // Family 0: taken from the address
	d := ipvsnl.Dest{Addr: netip.MustParseAddr("2001:db8::21"), Port: 80, FwdMethod: ipvsnl.FwdTunnel, Weight: 1}
	if err := c.NewDest(s, d); err != nil {
		t.Fatal(err)
	}
	d.Family = ipvsnl.AFInet6
	nlCheckDests(t, c, s, d) // ipvsadm brackets IPv6 as netip.AddrPort does: [2001:db8::21]:80

	// The kernel allows another family only for tunnelling: a direct-routing
	// IPv6 destination of an IPv4 service is refused (EINVAL).
	bad := ipvsnl.Dest{Addr: netip.MustParseAddr("2001:db8::22"), Port: 80, FwdMethod: ipvsnl.FwdDirectRoute, Weight: 1}
	if err := c.NewDest(s, bad); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("mixed-family direct routing %s: %v, want EINVAL", bad, err)
	} else {
		t.Logf("refused as expected: %v", err)
	}
	// Nor can a sync daemon start while one exists: the sync protocol cannot
	// carry mixed-family connections.
	if err := c.StartDaemon(ipvsnl.Daemon{State: ipvsnl.DaemonBackup, Iface: nlIface, SyncID: 42}); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("sync daemon with a mixed-family destination: %v, want EINVAL", err)
		c.StopDaemon(ipvsnl.DaemonBackup)
	}
	if err := c.DelDest(s, d); err != nil {
		t.Fatal(err)
	}
	nlCheckDests(t, c, s)
}

// TestNetlinkServiceFields: netmask (IPv4 mask, IPv6 prefix), persistence,
// flags, and fwmark services, read back through ipvsnl and ipvsadm -S.
func TestNetlinkServiceFields(t *testing.T) {
	c := nlSetup(t)
	v4 := ipvsnl.Service{Protocol: syscall.IPPROTO_TCP, Addr: netip.MustParseAddr("192.0.2.13"), Port: 443, Sched: "sh",
		Flags: ipvsnl.FlagPersistent | ipvsnl.FlagSched1 | ipvsnl.FlagSched2, Timeout: 600, Netmask: 0xFFFFFF00}
	v6 := ipvsnl.Service{Protocol: syscall.IPPROTO_UDP, Addr: netip.MustParseAddr("2001:db8::13"), Port: 53, Sched: "rr",
		Flags: ipvsnl.FlagPersistent, Timeout: 300, Netmask: 64}
	fw := ipvsnl.Service{Family: ipvsnl.AFInet6, FWMark: 4242, Sched: "lc"}
	for _, s := range []ipvsnl.Service{v4, v6, fw} {
		nlService(t, c, s)
	}
	v4.Family, v6.Family = ipvsnl.AFInet, ipvsnl.AFInet6
	fw.Netmask = 128 // the kernel's host mask for an unset one
	for _, s := range []ipvsnl.Service{v4, v6, fw} {
		g := nlFind(t, c, s)
		if g.Flags&ipvsnl.FlagHashed == 0 {
			t.Errorf("%s: the kernel reports flags %#x without FlagHashed", s, g.Flags)
		}
		g.Flags &^= ipvsnl.FlagHashed
		g.Stats = ipvsnl.Stats{}
		if g != s {
			t.Errorf("read back\n %+v\nwant\n %+v", nlPlainService(g), nlPlainService(s))
		}
	}
	rules := nlCmd(t, "ipvsadm", "-S", "-n")
	t.Logf("ipvsadm -S -n:\n%s", rules)
	for _, want := range []string{
		"-A -t 192.0.2.13:443 -s sh -p 600 -M 255.255.255.0 -b sh-fallback,sh-port",
		"-A -u [2001:db8::13]:53 -s rr -p 300 -M 64",
		"-A -f 4242 -6 -s lc",
	} {
		if !strings.Contains(rules, want+"\n") {
			t.Errorf("ipvsadm -S -n lacks %q", want)
		}
	}
	v4.Sched, v4.Flags, v4.Netmask = "wrr", 0, 0
	if err := c.UpdateService(v4); err != nil {
		t.Fatal(err)
	}
	if g := nlFind(t, c, v4); g.Sched != "wrr" || g.Flags != ipvsnl.FlagHashed || g.Netmask != 0xFFFFFFFF {
		t.Errorf("after UpdateService: %+v", nlPlainService(g))
	}
}

// TestNetlinkStats64: connections to a service from this namespace are
// scheduled by IPVS (LOCAL_OUT); the 64-bit counters read through ipvsnl
// equal ipvsadm --stats --exact.
func TestNetlinkStats64(t *testing.T) {
	c := nlSetup(t)
	s := ipvsnl.Service{Protocol: syscall.IPPROTO_TCP, Addr: netip.MustParseAddr("192.0.2.12"), Port: 80, Sched: "rr"}
	nlService(t, c, s)
	d := ipvsnl.Dest{Addr: netip.MustParseAddr("192.0.2.31"), Port: 8080, FwdMethod: ipvsnl.FwdMasq, Weight: 1}
	if err := c.NewDest(s, d); err != nil {
		t.Fatal(err)
	}
	// Nobody answers behind the dummy interface: each dial times out after
	// its SYN was scheduled (and the socket closes before a retransmission).
	const n = 3
	for range n {
		if conn, err := net.DialTimeout("tcp", "192.0.2.12:80", 300*time.Millisecond); err == nil {
			conn.Close()
		}
	}
	var svc ipvsnl.Service
	deadline := time.Now().Add(10 * time.Second)
	for svc = nlFind(t, c, s); svc.Stats.Conns < n && time.Now().Before(deadline); svc = nlFind(t, c, s) {
		time.Sleep(200 * time.Millisecond) // counters are summed from per-CPU ones by the estimator
	}
	t.Logf("service stats through ipvsnl: %+v", svc.Stats)
	if svc.Stats.Conns != n || svc.Stats.InPkts < n || svc.Stats.InBytes == 0 {
		t.Errorf("after %d connection attempts: %+v", n, svc.Stats)
	}
	// Compare with ipvsadm between two equal ipvsnl reads, so that no
	// counter moves between the reads being compared.
	for try := 0; ; try++ {
		before := nlFind(t, c, s).Stats
		dest := nlDests(t, c, s)[d.String()].Stats
		out := nlCmd(t, "ipvsadm", "-L", "-n", "--stats", "--exact", "-t", "192.0.2.12:80")
		if before != nlFind(t, c, s).Stats && try < 5 {
			continue
		}
		t.Logf("ipvsadm -L -n --stats --exact:\n%s", out)
		var lines []string
		for _, l := range strings.Split(out, "\n") {
			lines = append(lines, strings.Join(strings.Fields(l), " "))
		}
		for _, want := range []string{nlStatsLine("TCP 192.0.2.12:80", before), nlStatsLine("-> "+d.String(), dest)} {
			if !slices.Contains(lines, want) {
				t.Errorf("ipvsadm --stats --exact lacks %q", want)
			}
		}
		return
	}
}

// nlStatsLine is a line of ipvsadm -L -n --stats, spaces squeezed.
func nlStatsLine(prefix string, st ipvsnl.Stats) string {
	return fmt.Sprintf("%s %d %d %d %d %d", prefix, st.Conns, st.InPkts, st.OutPkts, st.InBytes, st.OutBytes)
}

// nlDaemonText renders a daemon as ipvsadm -L --daemon prints it.
func nlDaemonText(ds ...ipvsnl.Daemon) string {
	var b strings.Builder
	for _, d := range ds {
		fmt.Fprintf(&b, "%s sync daemon (mcast=%s, syncid=%d, maxlen=%d, group=%s, port=%d, ttl=%d)\n",
			map[uint32]string{ipvsnl.DaemonMaster: "master", ipvsnl.DaemonBackup: "backup"}[d.State],
			d.Iface, d.SyncID, d.MaxLen, d.Group, d.Port, d.TTL)
	}
	return b.String()
}

// TestNetlinkSyncDaemons: a master (explicit group, port, TTL, maxlen) and
// a backup (kernel defaults) with sync ID 42, listed through ipvsnl and
// ipvsadm --daemon, then stopped.
func TestNetlinkSyncDaemons(t *testing.T) {
	c := nlSetup(t)
	master := ipvsnl.Daemon{State: ipvsnl.DaemonMaster, Iface: nlIface, SyncID: 42, MaxLen: 1400,
		Group: netip.MustParseAddr("239.0.0.42"), Port: 8850, TTL: 2}
	backup := ipvsnl.Daemon{State: ipvsnl.DaemonBackup, Iface: nlIface, SyncID: 42}
	for _, d := range []ipvsnl.Daemon{master, backup} {
		if err := c.StartDaemon(d); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.StopDaemon(d.State) }) // a no-op error once stopped below
	}
	ds, err := c.Daemons()
	if err != nil {
		t.Fatal(err)
	}
	got, adm := nlDaemonText(ds...), nlCmd(t, "ipvsadm", "-L", "--daemon")
	t.Logf("ipvsnl:\n%sipvsadm -L --daemon:\n%s", got, adm)
	// The kernel's defaults for the backup: maxlen from the dummy's MTU 1500
	// less IPv4 and UDP headers, group 224.0.0.81, port 8848, TTL 1.
	backup.MaxLen, backup.Group, backup.Port, backup.TTL = 1472, netip.MustParseAddr("224.0.0.81"), 8848, 1
	if want := nlDaemonText(master, backup); got != want {
		t.Errorf("daemons through ipvsnl:\n%swant:\n%s", got, want)
	}
	if got != adm {
		t.Errorf("ipvsnl and ipvsadm differ")
	}
	for _, st := range []uint32{ipvsnl.DaemonMaster, ipvsnl.DaemonBackup} {
		if err := c.StopDaemon(st); err != nil {
			t.Fatal(err)
		}
	}
	if ds, err := c.Daemons(); err != nil || len(ds) != 0 {
		t.Errorf("after stopping both: %s %v", nlDaemonText(ds...), err)
	}
	if out := nlCmd(t, "ipvsadm", "-L", "--daemon"); strings.TrimSpace(out) != "" {
		t.Errorf("ipvsadm still shows daemons:\n%s", out)
	}
}

// TestNetlinkTimeouts: set 900/120/300, read back through ipvsnl and
// ipvsadm --timeout; a 0 leaves a timeout unchanged; the old values are
// restored.
func TestNetlinkTimeouts(t *testing.T) {
	c := nlSetup(t)
	tcp, fin, udp, err := c.Timeouts()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("timeouts before: %d %d %d", tcp, fin, udp)
	t.Cleanup(func() {
		if err := c.SetTimeouts(tcp, fin, udp); err != nil {
			t.Errorf("restore timeouts: %v", err)
		}
	})
	check := func(wt, wf, wu uint32) {
		t.Helper()
		gt, gf, gu, err := c.Timeouts()
		if err != nil || gt != wt || gf != wf || gu != wu {
			t.Errorf("ipvsnl reads %d %d %d (%v), want %d %d %d", gt, gf, gu, err, wt, wf, wu)
		}
		out := nlCmd(t, "ipvsadm", "-L", "--timeout")
		if want := fmt.Sprintf("Timeout (tcp tcpfin udp): %d %d %d", wt, wf, wu); strings.TrimSpace(out) != want {
			t.Errorf("ipvsadm -L --timeout: %q, want %q", out, want)
		}
	}
	// Away from the defaults (900 120 300) first, so that setting those is seen.
	if err := c.SetTimeouts(1000, 110, 310); err != nil {
		t.Fatal(err)
	}
	check(1000, 110, 310)
	if err := c.SetTimeouts(900, 120, 300); err != nil {
		t.Fatal(err)
	}
	check(900, 120, 300)
	if err := c.SetTimeouts(0, 60, 0); err != nil {
		t.Fatal(err)
	}
	check(900, 60, 300)
}
