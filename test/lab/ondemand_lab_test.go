//go:build lab

package lab

import (
	"bufio"
	"fmt"
	"os"
	"path"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// onDemandTest needs a VM of its own: e2e.sh boots one for it.
const onDemandTest = "TestSchedulersLoadOnDemand"

// imageSchedulers lists the IPVS scheduler modules in the VM's image, from
// the modules.dep the kernel's own /sbin/modprobe reads (PID 1's root is
// the initramfs), not from any list of ours: the FTP helper and the
// persistence engines are the ip_vs modules that are not schedulers.
func imageSchedulers(t *testing.T) []string {
	t.Helper()
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		t.Fatal(err)
	}
	var rel []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		rel = append(rel, byte(c))
	}
	f, err := os.Open("/proc/1/root/lib/modules/" + string(rel) + "/modules.dep")
	if err != nil {
		t.Fatalf("the image's module index: %v", err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		mod, _, _ := strings.Cut(sc.Text(), ":")
		name, ok := strings.CutSuffix(path.Base(mod), ".ko")
		if s, isIPVS := strings.CutPrefix(name, "ip_vs_"); ok && isIPVS && s != "ftp" && !strings.HasPrefix(s, "pe_") {
			out = append(out, s)
		}
	}
	if err := sc.Err(); err != nil || len(out) == 0 {
		t.Fatalf("no scheduler in the image's modules.dep (%v)", err)
	}
	slices.Sort(out)
	return out
}

// TestSchedulersLoadOnDemand: in a VM booted without loading any scheduler
// module (LAB_SCHEDULERS=ondemand: the image has them, nothing loads
// them), a service for every scheduler the kernel ships, created through
// ipvsman, is in all three kernels: each kernel loaded each module itself
// on first use. Traffic flows through one of them; a scheduler the kernel
// lacks is refused by the leader before the log.
func TestSchedulersLoadOnDemand(t *testing.T) {
	requireKernelIPVS(t)
	cmdline, _ := os.ReadFile("/proc/cmdline")
	if !strings.Contains(string(cmdline), "lab_schedulers=ondemand") {
		t.Fatalf("this VM preloaded the schedulers (%s): %s needs a fresh one booted with LAB_SCHEDULERS=ondemand, which test/lab/e2e.sh boots for it",
			strings.TrimSpace(string(cmdline)), onDemandTest)
	}
	scheds := imageSchedulers(t)
	for _, s := range scheds {
		if _, err := os.Stat("/sys/module/ip_vs_" + s); err == nil {
			t.Fatalf("ip_vs_%s is loaded before any service named it", s)
		}
	}
	t.Logf("schedulers in the image, none loaded: %s", strings.Join(scheds, " "))
	tp := topo.Build(t, topo.Options{})
	labtool := topo.BuildLabtool(t)
	tp.StartRealServers(labtool)
	c, nodes := labCluster(t, tp)
	var restore strings.Builder
	for i, s := range scheds {
		svc := fmt.Sprintf("%s:%d", topo.VIP, 1000+i)
		if i == 0 {
			svc = topo.VIP + ":80" // the one traffic goes through
		}
		fmt.Fprintf(&restore, "-A -t %s -s %s\n", svc, s)
		fmt.Fprintf(&restore, "-a -t %s -r %s -g\n-a -t %s -r %s -g\n", svc, topo.RealServerAddr(1), svc, topo.RealServerAddr(2))
	}
	c.MustCLI(nodes[0], restore.String(), "-R")
	model := c.MustCLI(nodes[1], "", "-S", "-n")
	sameInEveryKernel(t, tp, nodes, "a service per scheduler in every kernel", model)
	for _, s := range scheds {
		if _, err := os.Stat("/sys/module/ip_vs_" + s); err != nil {
			t.Errorf("ip_vs_%s not loaded after its service was created: %v", s, err)
		}
	}
	t.Logf("%d schedulers loaded on first use, %d services identical in 3 kernels", len(scheds), strings.Count(model, "-A "))
	lead := leaderOf(t, c, nodes)
	tp.AddAddr(lead.ID, topo.VIP+"/24", "eth0")
	if s := traffic(t, tp, labtool, "http://"+topo.VIP+"/", 20); s.OK != 20 {
		t.Errorf("through the %s service: %+v", scheds[0], s)
	} else {
		t.Logf("through the %s service: %+v", scheds[0], s)
	}
	// A name no module of this kernel provides: refused by the leader,
	// naming the field and the value; nothing committed.
	missing := "nosuchsched"
	if !slices.Contains(scheds, "twos") {
		missing = "twos" // Linux 6.7's, absent from older kernels
	}
	r := c.CLI(nodes[2], "", "-A", "-t", topo.VIP+":999", "-s", missing)
	if r.Err == nil || !strings.Contains(r.Stderr, fmt.Sprintf(`scheduler %q: this kernel (`, missing)) || !strings.Contains(r.Stderr, "has no module ip_vs_"+missing) {
		t.Errorf("scheduler %s: %v\n%s", missing, r.Err, r.Stderr)
	}
	t.Logf("refused: %s", strings.TrimSpace(r.Stderr))
	harness.Eventually(t, 10*time.Second, "the model unchanged", func() (bool, string) {
		out := c.MustCLI(nodes[0], "", "-S", "-n")
		return out == model, out
	})
}
