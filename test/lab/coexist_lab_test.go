//go:build lab

package lab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
	"github.com/ipvsman/ipvsman/test/skip"
)

// ldVIP is the address of ldirectord's own services in the coexistence
// test: another VIP than the cluster's, on the same kernel.
const ldVIP = "10.0.0.50"

// ldirectordConf is ldirectord's own configuration: two masquerading
// services, one whose real servers are always on (checktype=on), one with
// a connect check they pass (labtool serves HTTP on every NAT server).
func ldirectordConf(logfile string) string {
	return fmt.Sprintf(`checktimeout=2
checkinterval=1
autoreload=no
logfile="%s"
quiescent=no

virtual=%s:80
	real=%s:80 masq
	real=%s:80 masq
	scheduler=wrr
	protocol=tcp
	checktype=on

virtual=%s:8080
	real=%s:80 masq 2
	real=%s:80 masq 3
	scheduler=wlc
	protocol=tcp
	checktype=connect
`, logfile, ldVIP, topo.NATServerAddr(1), topo.NATServerAddr(2), ldVIP, topo.NATServerAddr(2), topo.NATServerAddr(3))
}

// coexistModel is the cluster's model: connection sync off (with it on,
// the kernel's one master and one backup thread are ipvsmand's), and its
// own services on the cluster's VIP.
func coexistModel() string {
	var b strings.Builder
	b.WriteString("version: 1\nsync: {off: true}\nservices:\n")
	for _, s := range []struct {
		port  int
		sched string
		n     int
	}{{80, "rr", 3}, {23, "wlc", 2}} {
		fmt.Fprintf(&b, "  - {protocol: tcp, address: %s, port: %d, scheduler: %s, forward: droute, servers: [", topo.VIP, s.port, s.sched)
		for i := 1; i <= s.n; i++ {
			fmt.Fprintf(&b, "{address: %s, port: %d}, ", topo.RealServerAddr(i), s.port)
		}
		b.WriteString("]}\n")
	}
	return b.String()
}

// foreignState is what another tool owns in a director's network
// namespace: ldirectord's services, the sync threads, the IPVS sysctls and
// the connection timeouts.
type foreignState struct {
	Services, Daemons, Sysctls, Timeouts string
}

func readForeign(t *testing.T, tp *topo.Topology, node string) foreignState {
	t.Helper()
	var lines []string
	for _, l := range strings.Split(tp.MustExec(node, "ipvsadm", "-S", "-n"), "\n") {
		if strings.Contains(l, ldVIP+":") {
			lines = append(lines, l)
		}
	}
	return foreignState{
		Services: strings.Join(lines, "\n"),
		Daemons:  tp.MustExec(node, "ipvsadm", "-L", "--daemon"),
		// /proc/sys/net is the reading process's namespace's.
		Sysctls:  tp.MustExec(node, "sh", "-c", "grep -rs . /proc/sys/net/ipv4/vs/; true"),
		Timeouts: tp.MustExec(node, "ipvsadm", "-L", "--timeout"),
	}
}

// theirs checks that st holds what the test set as the other tools:
// their sync threads (sync ID 9), sysctls and timeouts.
func (st foreignState) theirs(t *testing.T, when string) {
	t.Helper()
	want := []string{"master sync daemon (mcast=eth0, syncid=9", "backup sync daemon (mcast=eth0, syncid=9"}
	for _, w := range want {
		if !strings.Contains(st.Daemons, w) {
			t.Errorf("%s: the other tool's sync thread %q is gone:\n%s", when, w, st.Daemons)
		}
	}
	for name, v := range foreignSysctls {
		if w := "/proc/sys/net/ipv4/vs/" + name + ":" + strings.ReplaceAll(v, " ", "\t") + "\n"; !strings.Contains(st.Sysctls, w) {
			t.Errorf("%s: sysctl %s is not the other tool's %q:\n%s", when, name, v, st.Sysctls)
		}
	}
	if !strings.Contains(st.Timeouts, "1000 100 200") {
		t.Errorf("%s: timeouts are not the other tool's 1000 100 200: %s", when, st.Timeouts)
	}
}

// foreignSysctls are the IPVS sysctls the other tool sets, off the
// kernel's defaults or at values ipvsmand used to write.
var foreignSysctls = map[string]string{"sync_threshold": "4 40", "sync_refresh_period": "7", "sync_retries": "2",
	"expire_nodest_conn": "0", "expire_quiescent_template": "0", "conntrack": "0", "sloppy_tcp": "1"}

// ownTable is a director's kernel table without ldirectord's services, as
// ipvsadm -S -n prints it: what must equal the model's ipvsman -S -n.
func ownTable(tp *topo.Topology, node string) (string, error) {
	out, err := tp.Exec(node, "ipvsadm", "-S", "-n")
	var b strings.Builder
	for _, l := range strings.SplitAfter(out, "\n") {
		if l != "" && !strings.Contains(l, ldVIP+":") {
			b.WriteString(l)
		}
	}
	return b.String(), err
}

func waitTablesEqualModel(t *testing.T, c *harness.Cluster, tp *topo.Topology, nodes []*harness.Node, what string) {
	t.Helper()
	model := c.MustCLI(nodes[1], "", "-S", "-n")
	harness.Eventually(t, 120*time.Second, what, func() (bool, string) {
		for _, n := range nodes {
			own, err := ownTable(tp, n.ID)
			if err != nil || own != model {
				return false, fmt.Sprintf("%s: kernel (ldirectord's services aside):\n%s%v\nmodel:\n%s", n.ID, own, err, model)
			}
		}
		return true, ""
	})
}

// waitRepair deletes a real server of the cluster's port-80 service from
// node's kernel by hand and waits until drift repair has put it back: a
// round of drift repair ran with the other tool's services in the kernel.
func waitRepair(t *testing.T, tp *topo.Topology, node, what string) {
	t.Helper()
	tp.MustExec(node, "ipvsadm", "-d", "-t", topo.VIP+":80", "-r", topo.RealServerAddr(1)+":80")
	harness.Eventually(t, 60*time.Second, what, func() (bool, string) {
		out, err := tp.Exec(node, "ipvsadm", "-L", "-n", "-t", topo.VIP+":80")
		return err == nil && strings.Contains(out, topo.RealServerAddr(1)+":80"), out
	})
}

// TestLdirectordBesideIpvsmand: Debian's ldirectord runs its own services
// in d1's kernel, and another tool's sync threads, sysctls and timeouts
// are set there, while ipvsmand programs its services, repairs drift,
// changes leader and is restarted: what the other tools own is byte for
// byte as it was, and ipvsmand's tables equal the model. Then a service
// that leaves the model is deleted, one another tool makes later under
// its key stays, and the model taking that key takes the service over.
func TestLdirectordBesideIpvsmand(t *testing.T) {
	requireKernelIPVS(t)
	if _, err := os.Stat("/usr/sbin/ldirectord"); err != nil {
		skip.Nowf(t, "ldirectord is not installed on the host (%v): test/lab/build.sh lab_ldirectord installs it", err)
	}
	tp := topo.Build(t, topo.Options{})
	tp.StartRealServers(topo.BuildLabtool(t))
	c, nodes := labCluster(t, tp)
	d1 := nodes[0]
	dir := t.TempDir()

	// Sync off first: until then the default model (sync on) has d1 run
	// ipvsmand's threads, and the kernel takes one of each.
	file := filepath.Join(dir, "model.yaml")
	if err := os.WriteFile(file, []byte("version: 1\nsync: {off: true}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.MustCLI(d1, "", "apply", "-f", file)
	harness.Eventually(t, 60*time.Second, "ipvsmand's own sync threads stopped on d1 (sync off)", func() (bool, string) {
		out, err := tp.Exec(d1.ID, "ipvsadm", "-L", "--daemon")
		return err == nil && strings.TrimSpace(out) == "", out
	})

	// The other tools' settings: a sync master and backup of their own,
	// sysctls off their defaults, timeouts of their own; then ldirectord.
	tp.MustExec(d1.ID, "ipvsadm", "--start-daemon", "master", "--mcast-interface", "eth0", "--syncid", "9")
	tp.MustExec(d1.ID, "ipvsadm", "--start-daemon", "backup", "--mcast-interface", "eth0", "--syncid", "9")
	for name, v := range foreignSysctls {
		tp.MustExec(d1.ID, "sh", "-c", fmt.Sprintf("echo %s > /proc/sys/net/ipv4/vs/%s", v, name))
	}
	tp.MustExec(d1.ID, "ipvsadm", "--set", "1000", "100", "200")
	cf := filepath.Join(dir, "ldirectord.cf")
	if err := os.WriteFile(cf, []byte(ldirectordConf(filepath.Join(dir, "ldirectord.log"))), 0o600); err != nil {
		t.Fatal(err)
	}
	// Perl under emulation starts slowly (a minute on a busy host).
	ld := tp.Start(d1.ID, "/usr/sbin/ldirectord", "-d", cf, "start")
	harness.Eventually(t, 180*time.Second, "ldirectord's services with their real servers", func() (bool, string) {
		out, _ := tp.Exec(d1.ID, "ipvsadm", "-L", "-n")
		return strings.Count(out, "10.1.0.2") == 4, out + "\nldirectord:\n" + ld.Output()
	})
	before := readForeign(t, tp, d1.ID)
	before.theirs(t, "before")
	t.Logf("before, what other tools own in d1:\nservices:\n%s\ndaemons:\n%s\ntimeouts: %s\nsysctls:\n%s", before.Services, before.Daemons, before.Timeouts, before.Sysctls)

	// ipvsmand programs its services; a round of drift repair; the leader
	// changes; d1's ipvsmand restarts.
	if err := os.WriteFile(file, []byte(coexistModel()), 0o600); err != nil {
		t.Fatal(err)
	}
	c.MustCLI(d1, "", "apply", "-f", file)
	waitTablesEqualModel(t, c, tp, nodes, "every kernel holds the model beside ldirectord's services")
	waitRepair(t, tp, d1.ID, "drift repair on d1 puts back a real server deleted by hand")
	lead := leaderOf(t, c, nodes)
	next := d1
	if lead == d1 {
		next = nodes[1]
	}
	c.MustCLI(nodes[2], "", "cluster", "transfer", next.ID)
	harness.Eventually(t, 60*time.Second, "leadership moved to "+next.ID, func() (bool, string) {
		return leaderOf(t, c, nodes) == next, ""
	})
	t.Logf("leadership: %s -> %s", lead.ID, next.ID)
	if err := d1.Stop(); err != nil {
		t.Fatalf("d1 stopping: %v", err)
	}
	d1.Start()
	c.WaitRoles(t, nodes[1], len(nodes))
	waitTablesEqualModel(t, c, tp, nodes, "every kernel holds the model after d1's restart")
	waitRepair(t, tp, d1.ID, "drift repair on the restarted d1")

	var decisions []string
	for _, l := range strings.Split(d1.Log(), "\n") {
		for _, m := range []string{"sync thread changed", "ipvs sysctl set", "until the state catches up", "record of owned", "taken over"} {
			if strings.Contains(l, m) {
				decisions = append(decisions, l)
			}
		}
	}
	t.Logf("d1's log, its decisions on sync threads, sysctls and ownership:\n%s", strings.Join(decisions, "\n"))
	after := readForeign(t, tp, d1.ID)
	after.theirs(t, "after the passes, drift repair, the transfer and the restart")
	for _, f := range []struct{ name, before, after string }{
		{"ldirectord's services (ipvsadm -S -n)", before.Services, after.Services},
		{"sync threads (ipvsadm -L --daemon)", before.Daemons, after.Daemons},
		{"sysctls (/proc/sys/net/ipv4/vs)", before.Sysctls, after.Sysctls},
		{"timeouts (ipvsadm -L --timeout)", before.Timeouts, after.Timeouts},
	} {
		if f.before != f.after {
			t.Errorf("%s changed:\nbefore:\n%s\nafter:\n%s", f.name, f.before, f.after)
		} else {
			t.Logf("%s: unchanged (%d lines)", f.name, strings.Count(f.after, "\n")+1)
		}
	}
	record, err := os.ReadFile(filepath.Join(d1.DataDir, "ipvs-owned.json"))
	if err != nil {
		t.Fatal(err)
	}
	var owned struct {
		Services    map[string]uint64 `json:"services"`
		SyncThreads []string          `json:"sync_threads"`
	}
	if err := json.Unmarshal(record, &owned); err != nil {
		t.Fatalf("ipvs-owned.json: %v\n%s", err, record)
	}
	if len(owned.Services) != 2 || owned.Services["tcp:"+topo.VIP+":80"] == 0 || owned.Services["tcp:"+topo.VIP+":23"] == 0 || len(owned.SyncThreads) != 0 {
		t.Fatalf("d1's record of what it owns:\n%s\nwant the model's two services, no thread", record)
	}

	// A service that leaves the model is deleted everywhere; one another
	// tool makes under that key afterwards is left alone through drift
	// repair; and when the model has the key again it is taken over.
	gone := topo.VIP + ":23"
	c.MustCLI(nodes[1], "", "-D", "-t", gone)
	waitTablesEqualModel(t, c, tp, nodes, "the service that left the model deleted from every kernel")
	tp.MustExec(d1.ID, "ipvsadm", "-A", "-t", gone, "-s", "sh")
	tp.MustExec(d1.ID, "ipvsadm", "-a", "-t", gone, "-r", topo.RealServerAddr(3)+":23", "-g", "-w", "9")
	theirs := tp.MustExec(d1.ID, "ipvsadm", "-L", "-n", "-t", gone)
	waitRepair(t, tp, d1.ID, "a round of drift repair on d1 with the other tool's service under the key")
	if now, err := tp.Exec(d1.ID, "ipvsadm", "-L", "-n", "-t", gone); err != nil || now != theirs {
		t.Fatalf("another tool's service under a key the model held:\nbefore the round:\n%s\nafter:\n%s%v", theirs, now, err)
	}
	t.Logf("another tool's service under %s, left alone through drift repair:\n%s", gone, theirs)
	c.MustCLI(nodes[1], "", "-A", "-t", gone, "-s", "rr")
	c.MustCLI(nodes[1], "", "-a", "-t", gone, "-r", topo.RealServerAddr(2)+":23", "-g")
	waitTablesEqualModel(t, c, tp, nodes, "the model's service under that key again, taken over on d1")
	if n := strings.Count(d1.Log(), "service taken over"); n != 1 {
		t.Fatalf("d1 logged %d takeovers, want 1:\n%s", n, d1.Log())
	}
	if after := readForeign(t, tp, d1.ID); after.Services != before.Services || after.Daemons != before.Daemons || after.Sysctls != before.Sysctls {
		t.Fatalf("what other tools own changed by the end:\nbefore %+v\nafter %+v", before, after)
	}
}
