//go:build lab && labshell

package lab

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// TestShell is `make lab-shell`: the lab with its topology and a running
// three-director cluster, and an interactive shell to explore it. Leaving
// the shell tears everything down.
func TestShell(t *testing.T) {
	requireKernelIPVS(t)
	tp := topo.Build(t, topo.Options{})
	tp.StartRealServers(topo.BuildLabtool(t))
	c, nodes := labCluster(t, tp)
	lead := leaderOf(t, c, nodes)
	tp.AddAddr(lead.ID, topo.VIP+"/24", "eth0")
	fmt.Printf(`
The lab is up: namespaces %[1]sclient, %[1]sd1-d3 (ipvsmand --ipvs=on), %[1]srs1-rs3 (DR real
servers), %[1]snat1-nat3 (NAT real servers, gateway %[2]s). VIP %[3]s is on the leader %[4]s.
Try:
  ipvsman -L -n                                  (the CLI is set up for you, through d1)
  ipvsman -A -t %[3]s:80 -s rr; ipvsman -a -t %[3]s:80 -r 10.0.0.21 -g
  ip netns exec %[1]sd2 ipvsadm -L -n            (a director's kernel table)
  ip netns exec %[1]sclient $LABTOOL http --url http://%[3]s/ --count 10
  ipvsman cluster status
Exit the shell to tear the lab down.
`, tp.NS(""), topo.Gateway, topo.VIP, lead.ID)
	wrapper := fmt.Sprintf("#!/bin/sh\nexec ip netns exec %s %s %s \"$@\"\n",
		tp.NS(topo.Client), c.CLIBin, strings.Join(c.CLIFlags(nodes[0]), " "))
	dir := t.TempDir()
	if err := os.WriteFile(dir+"/ipvsman", []byte(wrapper), 0o755); err != nil {
		t.Fatal(err)
	}
	sh := exec.Command("bash", "--norc", "-i")
	sh.Env = append(os.Environ(), "PATH="+dir+":"+os.Getenv("PATH"), "PS1=lab# ")
	sh.Stdin, sh.Stdout, sh.Stderr = os.Stdin, os.Stdout, os.Stderr
	_ = sh.Run()
}
