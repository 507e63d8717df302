//go:build lab

package lab

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// sameInEveryKernel waits until `ipvsadm -S -n` of every director equals
// want.
func sameInEveryKernel(t *testing.T, tp *topo.Topology, nodes []*harness.Node, what, want string) {
	t.Helper()
	harness.Eventually(t, 60*time.Second, what, func() (bool, string) {
		for _, n := range nodes {
			if out, err := tp.Exec(n.ID, "ipvsadm", "-S", "-n"); err != nil || out != want {
				return false, fmt.Sprintf("%s:\n%s%v\nmodel:\n%s", n.ID, out, err, want)
			}
		}
		return true, ""
	})
}

// nodeViewIsIpvsadm: `ipvsman -L -n --node N` (the node's kernel table as
// our netlink client reads it, printed by our formatter) equals the real
// `ipvsadm -L -n` in N's namespace, for every director.
func nodeViewIsIpvsadm(t *testing.T, c *harness.Cluster, tp *topo.Topology, nodes []*harness.Node) string {
	t.Helper()
	var last string
	harness.Eventually(t, 30*time.Second, "ipvsman -L -n --node equal to ipvsadm -L -n on every director", func() (bool, string) {
		for _, n := range nodes {
			k, err := tp.Exec(n.ID, "ipvsadm", "-L", "-n")
			v := c.CLI(nodes[0], "", "-L", "-n", "--node", n.ID)
			if err != nil || v.Err != nil || v.Stdout != k {
				return false, fmt.Sprintf("%s: ipvsadm:\n%s%v\nipvsman --node:\n%s%s", n.ID, k, err, v.Stdout, v.Stderr)
			}
			last = k
		}
		return true, ""
	})
	return last
}

// TestLocalNodeAnswersThroughTheVIP: a real server that is the director
// itself (127.0.0.1, ipvsadm's "-r 127.0.0.1 -g"), beside a direct-routing
// one. Every kernel holds it with the local-node method (ipvsadm shows
// "Local"), the VIP holder's own server answers through the VIP, and
// `ipvsman -L -n --node` equals `ipvsadm -L -n` on every director. The
// followers' copies never see traffic: only the VIP holder receives it.
func TestLocalNodeAnswersThroughTheVIP(t *testing.T) {
	requireKernelIPVS(t)
	tp := topo.Build(t, topo.Options{})
	labtool := topo.BuildLabtool(t)
	tp.StartRealServers(labtool)
	c, nodes := labCluster(t, tp)
	// The service's process on every director, as an operator would run
	// it, listening on every address: the VIP is only on the leader.
	for _, n := range nodes {
		p := tp.Start(n.ID, labtool, "serve", "--name", n.ID, "--http", ":"+strconv.Itoa(topo.HTTPPort), "--echo", "", "--dns", "")
		if err := p.WaitLine("ready", 30*time.Second); err != nil {
			t.Fatalf("server on %s: %v", n.ID, err)
		}
	}
	lead := leaderOf(t, c, nodes)
	tp.AddAddr(lead.ID, topo.VIP+"/24", "eth0")
	svc := topo.VIP + ":80"
	c.MustCLI(nodes[1], "", "-A", "-t", svc, "-s", "rr")
	c.MustCLI(nodes[1], "", "-a", "-t", svc, "-r", "127.0.0.1", "-g")
	c.MustCLI(nodes[1], "", "-a", "-t", svc, "-r", topo.RealServerAddr(1), "-g")
	model := c.MustCLI(nodes[0], "", "-L", "-n")
	if !strings.Contains(model, "127.0.0.1:80                 Local") {
		t.Fatalf("the model does not show the local node:\n%s", model)
	}
	// -S prints -g for it, as ipvsadm does: the same text as the kernels'.
	sameInEveryKernel(t, tp, nodes, "the table in every kernel", c.MustCLI(nodes[0], "", "-S", "-n"))
	kernel := nodeViewIsIpvsadm(t, c, tp, nodes)
	t.Logf("ipvsadm -L -n on a director, equal to ipvsman -L -n --node there:\n%s", kernel)
	if kernel != model {
		t.Errorf("kernel table differs from the model's listing:\n%s\nmodel:\n%s", kernel, model)
	}
	s := traffic(t, tp, labtool, "http://"+svc+"/", 20)
	t.Logf("through the VIP: %+v", s)
	if s.OK != 20 || s.ByServer[lead.ID] != 10 || s.ByServer[topo.RealServer(1)] != 10 {
		t.Errorf("want 10 answers from the leader %s itself and 10 from %s (rr): %+v", lead.ID, topo.RealServer(1), s)
	}
	// A second pass of every reconciler found nothing to change: the
	// kernel's local node is the model's, not drift.
	status := c.MustCLI(nodes[0], "", "cluster", "status")
	if strings.Count(status, "failed)") != 0 {
		t.Errorf("a reconciler reports failures:\n%s", status)
	}
	st := tp.MustExec(lead.ID, "ipvsadm", "-L", "-n", "--stats", "-t", svc)
	t.Logf("leader's counters:\n%s", st)
}

// TestSCTPAndSIPInTheKernel: an SCTP service (--sctp-service) and a UDP
// service with the SIP persistence engine (--pe sip) reach every kernel
// as ipvsadm would set them (ipvsadm -S equal to the model's -S), list
// the same through ipvsman -L -n --node as through ipvsadm -L -n, and the
// engine's module, not preloaded, is loaded by the kernel on first use. An
// engine the kernel does not have is refused before the log.
func TestSCTPAndSIPInTheKernel(t *testing.T) {
	requireKernelIPVS(t)
	tp := topo.Build(t, topo.Options{})
	c, nodes := labCluster(t, tp)
	sctp, sip := topo.VIP+":5000", topo.VIP+":5060"
	c.MustCLI(nodes[1], "-A --sctp-service "+sctp+" -s rr\n"+
		"-a --sctp-service "+sctp+" -r "+topo.RealServerAddr(1)+" -g -w 2\n"+
		"-a --sctp-service "+sctp+" -r "+topo.NATServerAddr(1)+":5001 -m\n"+
		"-A -u "+sip+" -s sh -p 120 -M 255.255.255.0 --pe sip -b sh-port\n"+
		"-a -u "+sip+" -r "+topo.RealServerAddr(2)+" -g\n", "-R")
	model := c.MustCLI(nodes[0], "", "-S", "-n")
	for _, want := range []string{"-A --sctp-service " + sctp + " -s rr", "--pe sip"} {
		if !strings.Contains(model, want) {
			t.Fatalf("model -S lacks %q:\n%s", want, model)
		}
	}
	sameInEveryKernel(t, tp, nodes, "SCTP and SIP services in every kernel", model)
	kernel := nodeViewIsIpvsadm(t, c, tp, nodes)
	t.Logf("ipvsadm -L -n, equal to ipvsman -L -n --node on every director:\n%s", kernel)
	if m := c.MustCLI(nodes[2], "", "-L", "-n"); m != kernel {
		t.Errorf("ipvsman -L -n (the model):\n%s\nipvsadm -L -n:\n%s", m, kernel)
	}
	if _, err := os.Stat("/sys/module/ip_vs_pe_sip"); err != nil {
		t.Errorf("the SIP engine's module is not loaded: %v", err)
	}
	r := c.CLI(nodes[0], "", "-A", "-u", topo.VIP+":5061", "-p", "--pe", "h323")
	if r.Err == nil || !strings.Contains(r.Stderr, `persistence engine "h323": this kernel (`) || !strings.Contains(r.Stderr, "has no module ip_vs_pe_h323") {
		t.Errorf("an engine the kernel lacks: %v\n%s", r.Err, r.Stderr)
	}
	t.Logf("refused: %s", strings.TrimSpace(r.Stderr))
	if after := c.MustCLI(nodes[0], "", "-S", "-n"); after != model {
		t.Errorf("the refused write changed the model:\n%s", after)
	}
}
