package failover

import (
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/ipvsman/ipvsman/fsm/ipvsadm"
)

func TestCountLeadershipGained(t *testing.T) {
	log := strings.Join([]string{
		`{"time":"t1","level":"INFO","msg":"leadership gained","node":"d1","term":2}`,
		`{"time":"t2","level":"INFO","msg":"leadership lost","node":"d1"}`,
		// Planted look-alikes: none of them is a new leader.
		`{"time":"t3","level":"INFO","msg":"leadership gained while draining; handing it over","node":"d2"}`,
		`{"time":"t4","level":"WARN","msg":"leadership gained but the barrier has not completed; waiting again","node":"d2"}`,
		`{"time":"t5","level":"INFO","msg":"ipvsmand started","note":"leadership gained"}`,
		`{"time":"t6","level":"INFO","msg":"leadership gained","node":"d3","term":3}`,
	}, "\n")
	if got := CountLeadershipGained(log); got != 2 {
		t.Fatalf("counted %d, want 2 (the look-alikes are not leader changes)", got)
	}
	if got := CountLeadershipGained(""); got != 0 {
		t.Fatalf("empty log: %d", got)
	}
}

func TestStressInput(t *testing.T) {
	in := StressInput(300)
	ops, err := ipvsadm.ParseRestore(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(ops) != 301 || ops[0].Kind != fsm.OpAddService {
		t.Fatalf("%d ops, first %v: want one service and 300 servers", len(ops), ops[0].Kind)
	}
	seen := map[netip.Addr]bool{}
	lab := netip.MustParsePrefix("10.0.0.0/16")
	for _, op := range ops[1:] {
		a := op.Server.Address
		if op.Kind != fsm.OpAddServer || seen[a] || lab.Contains(a) {
			t.Fatalf("op %v %v: want distinct real servers outside %s", op.Kind, a, lab)
		}
		seen[a] = true
	}
	// Planted fault: a duplicate line is what the check above must catch
	// (the restore itself would refuse it).
	dup := in + "-a -t 172.16.0.1:80 -r 10.200.0.1:80 -g -w 1\n"
	ops, _ = ipvsadm.ParseRestore(strings.NewReader(dup))
	dups := 0
	seen = map[netip.Addr]bool{}
	for _, op := range ops[1:] {
		if seen[op.Server.Address] {
			dups++
		}
		seen[op.Server.Address] = true
	}
	if dups != 1 {
		t.Fatalf("planted duplicate: %d found", dups)
	}
}

func TestRestartEvery(t *testing.T) {
	for _, c := range []struct{ win, want time.Duration }{
		{10 * time.Minute, 2 * time.Minute},
		{6 * time.Minute, 2 * time.Minute},
		{3 * time.Minute, time.Minute},
		{30 * time.Second, 10 * time.Second},
	} {
		if got := RestartEvery(c.win); got != c.want {
			t.Errorf("RestartEvery(%s) = %s, want %s", c.win, got, c.want)
		}
	}
}

func TestBusyLoopsStop(t *testing.T) {
	b := StartBusyLoops(t, 2)
	pids := []int{b.cmds[0].Process.Pid, b.cmds[1].Process.Pid}
	b.Stop()
	b.Stop() // twice is fine
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err != syscall.ESRCH {
			t.Errorf("busy loop %d still there after Stop (kill 0: %v)", pid, err)
		}
	}
}
