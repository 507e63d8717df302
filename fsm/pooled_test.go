package fsm

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// weightEdits applies n commands that each change one real server's
// weight in the table restoreTable(1, servers) made: n versions that
// differ from their predecessor by one value.
func weightEdits(t testing.TB, s *State, n int) {
	t.Helper()
	var svc *Service
	for _, v := range s.Config.Services {
		svc = v
	}
	var first *RealServer
	for _, r := range svc.Servers {
		first = r
		break
	}
	for i := range n {
		c := mustCmd(t, CmdOps, OpsPayload{Ops: []Op{{Kind: OpEditServer, ServiceKey: svc.Key,
			Server: &RealServer{Address: first.Address, Port: first.Port, Forward: first.Forward, Weight: 2 + i%5}}}})
		c.Time = int64(1000 + i)
		if r, err := s.Apply(c); err != nil || r.Err != "" || !r.Changed {
			t.Fatalf("edit %d: %+v %v", i, r, err)
		}
	}
}

func encodeBoth(t testing.TB, s *State) (plain, pooled []byte) {
	t.Helper()
	plain, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := s.EncodePooled(&b); err != nil {
		t.Fatal(err)
	}
	return plain, b.Bytes()
}

// A pooled snapshot restores the very state the plain one does: every
// command type, every version, verdicts, members and remembered requests.
func TestPooledSnapshotRestoresTheSameState(t *testing.T) {
	s := NewState()
	applyLog(t, s, sampleLog(t))
	restoreRounds(t, s, restoreTable(3, 40), 2)
	weightEdits(t, s, 5)
	plain, pooled := encodeBoth(t, s)
	r, err := UnmarshalState(pooled)
	if err != nil {
		t.Fatal(err)
	}
	again, err := r.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(again, plain) {
		t.Fatalf("the state restored from the pooled snapshot encodes to %d bytes that differ from the original's %d", len(again), len(plain))
	}
	// Versions that repeat the table share it again after the restore.
	last := r.History[len(r.History)-1].Config
	prev := r.History[len(r.History)-2].Config
	for k, svc := range last.Services {
		for sk, srv := range svc.Servers {
			if o := prev.Services[k].Servers[sk]; o != nil && *o == *srv && o != srv {
				t.Fatalf("real server %s of %s: equal in the last two versions but not shared after the restore", sk, k)
			}
		}
	}
	// And a state restored from it is still a state commands apply to.
	if res, err := r.Apply(mustCmd(t, CmdOps, OpsPayload{Ops: []Op{{Kind: OpClear}}})); err != nil || res.Err != "" {
		t.Fatalf("clear after the restore: %+v %v", res, err)
	}
}

// The size of a snapshot follows what the versions changed, not their
// number times the table: 200 versions of one service of 2,000 real
// servers, each changing one weight, took 200 copies of the table in the
// plain encoding.
func TestPooledSnapshotGrowsWithChangesNotVersions(t *testing.T) {
	s := NewState()
	restoreRounds(t, s, restoreTable(1, 2000), 0)
	one, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	weightEdits(t, s, HistoryLimit-1)
	plain, pooled := encodeBoth(t, s)
	t.Logf("%d versions of 2,000 real servers: plain %d bytes, pooled %d bytes; one version alone %d bytes", len(s.History), len(plain), len(pooled), len(one))
	if len(pooled) > 2*len(one) {
		t.Fatalf("pooled snapshot of %d versions: %d bytes, more than twice one version's %d", len(s.History), len(pooled), len(one))
	}
}

// Equal states give equal bytes whichever values a node's memory shares:
// a node that applied the log and one that decoded a plain snapshot
// without sharing write the same pooled snapshot.
func TestPooledSnapshotBytesDoNotDependOnSharing(t *testing.T) {
	s := NewState()
	restoreRounds(t, s, restoreTable(2, 30), 2)
	weightEdits(t, s, 3)
	plain, pooled := encodeBoth(t, s)
	unshared := NewState()
	if err := json.Unmarshal(plain, unshared); err != nil {
		t.Fatal(err)
	}
	_, again := encodeBoth(t, unshared)
	if !bytes.Equal(again, pooled) {
		t.Fatalf("pooled snapshot of the unshared copy: %d bytes that differ from the shared state's %d", len(again), len(pooled))
	}
}

// A build that predates the pooled encoding decodes a snapshot with
// json.Unmarshal into its State: it must refuse a pooled one, never read
// an empty table from it.
func TestOlderBuildsRefuseAPooledSnapshot(t *testing.T) {
	s := NewState()
	restoreRounds(t, s, restoreTable(1, 3), 0)
	_, pooled := encodeBoth(t, s)
	var old State
	err := json.Unmarshal(pooled, &old)
	if err == nil || !strings.Contains(err.Error(), "history") {
		t.Fatalf("a plain decoder read the pooled snapshot: err %v, %d services", err, len(old.Config.Services))
	}
}

// A pool reference out of range is an error naming it, not a panic or a
// missing service.
func TestPooledSnapshotWithABadReferenceIsRefused(t *testing.T) {
	s := NewState()
	restoreRounds(t, s, restoreTable(1, 3), 0)
	_, pooled := encodeBoth(t, s)
	for name, c := range map[string]struct{ from, to, want string }{
		"service": {`"services":{"tcp:172.16.0.0:80":0}`, `"services":{"tcp:172.16.0.0:80":7}`, `service "tcp:172.16.0.0:80": reference 7, the pool holds 1`},
		"server":  {`"10.0.0.1:80":0`, `"10.0.0.1:80":9`, `real server "10.0.0.1:80": reference 9, the pool holds 3`},
		"summary": {`"summary":0`, `"summary":4`, `version 1: summary reference 4, the pool holds 1`},
	} {
		bad := bytes.Replace(pooled, []byte(c.from), []byte(c.to), 1)
		if bytes.Equal(bad, pooled) {
			t.Fatalf("%s: %s not in %s", name, c.from, pooled)
		}
		if _, err := UnmarshalState(bad); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want it to say %q", name, err, c.want)
		}
	}
}
