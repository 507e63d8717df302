//go:build lab

package lab

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/harness"
	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// TestTunnelsThroughTheCluster: GUE and GRE encapsulation with their ports
// and checksum modes, and an IPv4 service tunnelling to an IPv6 real
// server, given in ipvsadm's language, land identically in every kernel;
// and ipvsman -S sorts as ipvsadm -S does, even where libipvs's order is
// not numeric.
func TestTunnelsThroughTheCluster(t *testing.T) {
	requireKernelIPVS(t)
	tp := topo.Build(t, topo.Options{})
	if !tp.IPv6() {
		t.Fatal("the lab kernel has no IPv6: the mixed-family destination needs it")
	}
	c, nodes := labCluster(t, tp)
	svc := topo.VIP + ":80"
	for _, args := range [][]string{
		{"-A", "-t", svc, "-s", "rr"},
		{"-A", "-t", "200.0.0.1:80", "-s", "rr"}, // libipvs sorts it before 10.x (wrapped difference)
		{"-a", "-t", svc, "-r", topo.RealServerAddr(1), "-i", "--tun-type", "gue", "--tun-port", "6080", "--tun-csum"},
		{"-a", "-t", svc, "-r", topo.RealServerAddr(2), "-i", "--tun-type", "gre", "--tun-csum"},
		{"-a", "-t", svc, "-r", topo.RealServerAddr6(3), "-i"},
	} {
		c.MustCLI(nodes[1], "", args...)
	}
	if r := c.CLI(nodes[1], "", "-a", "-t", svc, "-r", topo.RealServerAddr(3), "-i", "--tun-type", "gue"); r.Err == nil || !strings.Contains(r.Stderr, "needs a tunnel port") {
		t.Fatalf("gue without a port: err=%v stderr=%q", r.Err, r.Stderr)
	}
	model := c.MustCLI(nodes[0], "", "-S", "-n")
	harness.Eventually(t, 60*time.Second, "every kernel holds the tunnels as the model says", func() (bool, string) {
		for _, n := range nodes {
			out, err := tp.Exec(n.ID, "ipvsadm", "-S", "-n")
			if err != nil || out != model {
				return false, fmt.Sprintf("%s:\n%s%v\nmodel:\n%s", n.ID, out, err, model)
			}
		}
		return true, ""
	})
	info := tp.MustExec(nodes[2].ID, "ipvsadm", "-L", "-n", "--tun-info")
	t.Logf("model (ipvsman -S -n):\n%s\nkernel of %s (ipvsadm -L -n --tun-info):\n%s", model, nodes[2].ID, info)
	for _, want := range []string{"gue:6080:+c", "gre:+c", "[fd00::23]:80"} {
		if !strings.Contains(info, want) {
			t.Errorf("kernel listing lacks %q", want)
		}
	}
}
