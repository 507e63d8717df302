package failover

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/lab/topo"
	"github.com/ipvsman/ipvsman/test/skip"
)

// VRID is the virtual_router_id of the baseline's one VRRP instance.
const VRID = 51

// keepalivedPriority is what an operator who wants no needless failover
// would set: distinct priorities, so that the election after a failure is
// decided by the priority skew rather than by a tie of two masters
// resolved by address, and nopreempt (every node starts as BACKUP), so that
// a repaired node coming back does not take the VIP again and cause a
// second outage.
var keepalivedPriority = map[string]int{"d1": 150, "d2": 100, "d3": 50}

// Keepalived runs one keepalived (VRRP only) per director.
type Keepalived struct {
	t      testing.TB
	lab    *Lab
	dir    string
	advert time.Duration

	mu     sync.Mutex
	procs  map[string]*topo.Proc
	linkUp map[string]time.Time // when Restore brought the link back
}

// KeepalivedBinary returns keepalived's path, skipping the test if it is
// not installed (bench.sh installs it).
func KeepalivedBinary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("keepalived")
	if err != nil {
		skip.Now(t, "keepalived not installed (apt-get install -y keepalived; bench.sh does it)")
	}
	return p
}

// StartKeepalived writes a configuration per director and starts them all.
// advert is advert_int: 1 s is keepalived's default and VRRPv2's finest;
// anything else (0.1 s) needs VRRPv3, which this then configures. Every
// other setting, the gratuitous ARP ones included, is keepalived's default.
func StartKeepalived(t testing.TB, lab *Lab, advert time.Duration) *Keepalived {
	t.Helper()
	KeepalivedBinary(t)
	if advert <= 0 || advert%(10*time.Millisecond) != 0 {
		t.Fatalf("keepalived: advert %s: want a positive multiple of 10ms", advert)
	}
	k := &Keepalived{t: t, lab: lab, dir: t.TempDir(), advert: advert, procs: map[string]*topo.Proc{}, linkUp: map[string]time.Time{}}
	for _, d := range lab.Directors {
		if err := os.WriteFile(k.path(d, "conf"), []byte(k.config(d)), 0o600); err != nil {
			t.Fatal(err)
		}
		k.start(d)
	}
	t.Cleanup(k.Stop)
	return k
}

// config is the whole keepalived.conf of one director.
func (k *Keepalived) config(node string) string {
	var b strings.Builder
	b.WriteString("global_defs {\n")
	fmt.Fprintf(&b, "  router_id %s\n", node)
	if k.advert%time.Second != 0 {
		b.WriteString("  vrrp_version 3\n")
	}
	b.WriteString("}\n")
	fmt.Fprintf(&b, `vrrp_instance VI_1 {
  state BACKUP
  nopreempt
  interface %s
  virtual_router_id %d
  priority %d
  advert_int %s
  virtual_ipaddress {
    %s dev %s
  }
}
`, VIPDev, VRID, keepalivedPriority[node], strconv.FormatFloat(k.advert.Seconds(), 'f', -1, 64), VIPCIDR, VIPDev)
	return b.String()
}

func (k *Keepalived) path(node, ext string) string { return filepath.Join(k.dir, node+"."+ext) }

// start runs keepalived in the foreground (--dont-fork; its VRRP child
// stays in the same process group, so one group SIGKILL takes both), logging
// to the console, with pid files of its own so three can run on one host.
func (k *Keepalived) start(node string) {
	p := k.lab.Topo.Start(node, "keepalived", "--vrrp", "--dont-fork", "--log-console", "--log-detail", "--no-syslog",
		"--use-file", k.path(node, "conf"), "--pid", k.path(node, "pid"), "--vrrp_pid", k.path(node, "vrrp.pid"))
	k.mu.Lock()
	k.procs[node] = p
	k.mu.Unlock()
	// The VRRP child removes any VIP left over from a crash as it starts,
	// in whatever state (BACKUP, or FAULT while the link is cut), and says
	// so; from then on the node holds the VIP only if it wins. The parent's
	// "Startup complete" may come before or after that.
	for _, line := range []string{"Startup complete", "(VI_1) removing VIPs."} {
		if err := waitOutput(p, line, 30*time.Second); err != nil {
			k.t.Fatalf("keepalived in %s: %v", node, err)
		}
	}
}

// waitOutput waits for substr in p's output. topo.Proc.WaitLine matches
// whole lines, and keepalived's carry a timestamp.
func waitOutput(p *topo.Proc, substr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !strings.Contains(p.Output(), substr) {
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not print %q within %s; output:\n%s", p.Name, substr, timeout, p.Output())
		}
		select {
		case <-tick.C:
		case <-p.Done():
			if strings.Contains(p.Output(), substr) {
				return nil
			}
			return fmt.Errorf("%s exited (%v) without printing %q; output:\n%s", p.Name, p.Wait(0), substr, p.Output())
		}
	}
	return nil
}

// Crash SIGKILLs the node's keepalived (its whole process group) and
// takes its link down right after.
func (k *Keepalived) Crash(node string) time.Time {
	k.mu.Lock()
	p := k.procs[node]
	k.mu.Unlock()
	at := time.Now()
	if err := syscall.Kill(-p.Pid(), syscall.SIGKILL); err != nil {
		k.t.Fatalf("keepalived in %s: kill: %v", node, err)
	}
	k.lab.Topo.CutLink(node)
	if err := p.Wait(10 * time.Second); err == nil || !strings.Contains(err.Error(), "killed") {
		k.t.Fatalf("keepalived in %s after SIGKILL: %v", node, err)
	}
	return at
}

// Restore restarts keepalived with the link still cut (it removes the VIP
// the crash left behind, then waits in FAULT state for the link) and then
// brings the link back.
func (k *Keepalived) Restore(node string, beforeLinkUp func()) {
	// The crash left the pid files behind, and keepalived refuses to start
	// while one names a live process, a zombie VRRP child not yet reaped
	// included. A reboot would have emptied /run.
	for _, ext := range []string{"pid", "vrrp.pid"} {
		if err := os.Remove(k.path(node, ext)); err != nil && !os.IsNotExist(err) {
			k.t.Fatal(err)
		}
	}
	k.start(node)
	if beforeLinkUp != nil {
		beforeLinkUp()
	}
	k.lab.Topo.RestoreLink(node)
	k.mu.Lock()
	k.linkUp[node] = time.Now()
	k.mu.Unlock()
}

// MasterDown is the longest a backup waits without advertisements before it
// takes over: 3 × advert_int plus a skew below one advert_int.
func (k *Keepalived) MasterDown() time.Duration { return 4 * k.advert }

// Ready holds steady state back until a restored node has been on the
// network longer than MasterDown. By then it has heard the master (or it
// would have become a second master and the Rig would see two holders), so
// the next crash finds every backup with a running timer, as in a cluster
// that has been up for a while.
func (k *Keepalived) Ready() error {
	k.mu.Lock()
	defer k.mu.Unlock()
	for node, up := range k.linkUp {
		if wait := k.MasterDown() + 500*time.Millisecond - time.Since(up); wait > 0 {
			return fmt.Errorf("keepalived in %s back for less than %s", node, k.MasterDown())
		}
	}
	for node, p := range k.procs {
		select {
		case <-p.Done():
			return fmt.Errorf("keepalived in %s exited: %v\n%s", node, p.Wait(0), p.Output())
		default:
		}
	}
	return nil
}

// Stop ends every keepalived with SIGTERM, on which it removes the VIP it
// holds, so that the next driver starts from a clean slate.
func (k *Keepalived) Stop() {
	k.mu.Lock()
	procs := k.procs
	k.procs = map[string]*topo.Proc{}
	k.mu.Unlock()
	for _, p := range procs {
		p.Stop()
	}
	for node, p := range procs {
		if err := p.Wait(15 * time.Second); err != nil && !strings.Contains(err.Error(), "killed") {
			k.t.Errorf("keepalived in %s did not stop: %v", node, err)
		}
	}
}
