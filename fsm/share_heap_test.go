package fsm

import (
	"crypto/sha256"
	"fmt"
	"net/netip"
	"runtime"
	"testing"
)

// restoreTable is `ipvsman -R` of services x servers: one ops command that
// adds every service and its real servers, as ParseRestore makes it.
func restoreTable(services, servers int) []Op {
	ops := make([]Op, 0, services*(servers+1))
	for i := range services {
		k := ServiceKey{Protocol: TCP, Address: netip.AddrFrom4([4]byte{172, 16, byte(i >> 8), byte(i)}), Port: 80}
		ops = append(ops, addSvc(k, "wlc"))
		ops = append(ops, addServers(k, i*servers, servers)...)
	}
	return ops
}

// liveHeap is the heap still reachable after a full collection.
func liveHeap() uint64 {
	var m runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// restoreRounds applies `ipvsman -R` of table, then rounds of `ipvsman -C`
// and `ipvsman -R` of the same table, as make bench-writes does: each
// command is a new configuration version.
func restoreRounds(t testing.TB, s *State, table []Op, rounds int) {
	t.Helper()
	clear := mustCmd(t, CmdOps, OpsPayload{Ops: []Op{{Kind: OpClear}}})
	restore := mustCmd(t, CmdOps, OpsPayload{Ops: table})
	cmds := []Command{restore}
	for range rounds {
		cmds = append(cmds, clear, restore)
	}
	for i, c := range cmds {
		c.Time = int64(i)
		r, err := s.Apply(c)
		if err != nil || r.Err != "" || !r.Changed {
			t.Fatalf("command %d: %+v %v", i, r, err)
		}
	}
}

// BenchmarkHistoryHeap reports the live heap of a state whose history holds
// HistoryLimit versions made by -C / -R of one table (half of them the full
// table), and of the same state decoded from its snapshot, as a restarted
// node holds it. Run: go test ./fsm -run '^$' -bench HistoryHeap -benchtime 1x
func BenchmarkHistoryHeap(b *testing.B) {
	for _, size := range []struct{ services, servers int }{{2000, 10}} {
		b.Run(fmt.Sprintf("%dx%d", size.services, size.servers), func(b *testing.B) {
			table := restoreTable(size.services, size.servers)
			for range b.N {
				base := liveHeap()
				s := NewState()
				restoreRounds(b, s, table, HistoryLimit/2)
				built := liveHeap() - base
				snap, err := s.Marshal()
				if err != nil {
					b.Fatal(err)
				}
				s = nil
				base = liveHeap()
				r, err := UnmarshalState(snap)
				if err != nil {
					b.Fatal(err)
				}
				restored := liveHeap() - base
				runtime.KeepAlive(r)
				runtime.KeepAlive(snap)
				b.ReportMetric(float64(built)/(1<<20), "live-MB")
				b.ReportMetric(float64(restored)/(1<<20), "restored-live-MB")
				b.ReportMetric(float64(len(snap))/(1<<20), "snapshot-MB")
				b.Logf("snapshot sha256 %x", sha256.Sum256(snap))
			}
		})
	}
}

// BenchmarkApplyWithHistory is the cost of one command on a state whose
// history holds -C / -R rounds of a table: -R of the table again (after a
// clear), and an edit of one real server.
func BenchmarkApplyWithHistory(b *testing.B) {
	table := restoreTable(2000, 10)
	base := NewState()
	restoreRounds(b, base, table, 4)
	cleared := base.Frozen()
	if r, err := cleared.Apply(mustCmd(b, CmdOps, OpsPayload{Ops: []Op{{Kind: OpClear}}})); err != nil || !r.Changed {
		b.Fatalf("clear: %+v %v", r, err)
	}
	edit := mustCmd(b, CmdOps, OpsPayload{Ops: []Op{{Kind: OpEditServer, ServiceKey: table[0].Service.Key, Server: &RealServer{Address: table[1].Server.Address, Forward: DirectRoute, Weight: 5}}}})
	for _, c := range []struct {
		name  string
		state *State
		cmd   Command
	}{
		{"restore-2000x10", cleared, mustCmd(b, CmdOps, OpsPayload{Ops: table})},
		{"edit-one-server-of-2000x10", base, edit},
	} {
		b.Run(c.name, func(b *testing.B) {
			for range b.N {
				s := c.state.Frozen()
				if r, err := s.Apply(c.cmd); err != nil || !r.Changed {
					b.Fatalf("%+v %v", r, err)
				}
			}
		})
	}
}
