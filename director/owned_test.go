package director

import (
	"bytes"
	"errors"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/director/ipvsnl"
	"github.com/ipvsman/ipvsman/fsm"
)

// ownedOf is an in-memory record owning keys, taken for the target at
// index.
func ownedOf(index uint64, keys ...string) *Owned {
	o := NewOwned()
	for _, k := range keys {
		o.take(k, index)
	}
	return o
}

func applyOps(t *testing.T, st *fsm.State, ops ...fsm.Op) {
	t.Helper()
	c, err := fsm.NewCommand(fsm.CmdOps, int64(st.Version+100), "test", fsm.OpsPayload{Ops: ops})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := st.Apply(c); err != nil || r.Err != "" {
		t.Fatalf("apply %v: %v %s", ops, err, r.Err)
	}
}

// foreignService is a service another tool (ldirectord) made under key.
func foreignService(key fsm.ServiceKey) Service {
	d := Dest{Address: netip.MustParseAddr("192.0.2.80"), Port: 80, Forward: fsm.DirectRoute, Weight: 5}
	if key.Address.Is6() {
		d.Address = netip.MustParseAddr("2001:db8::80")
	}
	return Service{Key: key, Scheduler: "rr", Netmask: netmaskOf(key), Dests: map[string]Dest{d.Key(): d}}
}

func netmaskOf(key fsm.ServiceKey) uint32 {
	if key.Address.Is6() {
		return 128
	}
	return 0xFFFFFFFF
}

// The case: a service the model held (it is in the history) and
// deleted, made again later by another tool under the same key, is that
// tool's. Neither a pass nor drift repair deletes it.
func TestForeignServiceUnderAKeyTheModelHeldStays(t *testing.T) {
	st := sample(t)
	k := newFake()
	r := rec(k)
	r.Step(target(st))
	applyOps(t, st, fsm.Op{Kind: fsm.OpDeleteService, ServiceKey: dns})
	k.applied = nil
	r.Step(target(st))
	if len(k.applied) != 1 || k.applied[0] != "delete-service udp:[fd00::10]:53" {
		t.Fatalf("the service leaving the model: applied %v, want its deletion", k.applied)
	}
	k.table[dns.String()] = foreignService(dns)
	k.applied = nil
	r.StepFull(target(st))
	if _, ok := k.table[dns.String()]; !ok || len(k.applied) != 0 {
		t.Fatalf("another tool's service under a key the model held: applied %v, in the kernel %v; want it left alone", k.applied, ok)
	}
	scrubRound(t, r, target(st))
	if _, ok := k.table[dns.String()]; !ok || len(k.applied) != 0 {
		t.Fatalf("drift repair: applied %v, in the kernel %v; want it left alone", k.applied, ok)
	}
	if last := r.Last(); last.Drifted != 0 {
		t.Fatalf("drift repair reported %v: another tool's service is no drift", last.Drift)
	}
}

// A service the model adds under a key another tool already has is taken
// over: programmed as the model says, said once in the log, and deleted
// when it leaves the model.
func TestServiceUnderAForeignKeyIsTakenOver(t *testing.T) {
	var log bytes.Buffer
	k := newFake()
	k.table[web.String()] = foreignService(web)
	r := &Reconciler{Kernel: k, Log: slog.New(slog.NewTextHandler(&log, nil))}
	empty := fsm.NewState()
	r.Step(target(empty))
	if _, ok := k.table[web.String()]; !ok || r.owned().Has(web.String()) {
		t.Fatal("another tool's service deleted or taken before the model has it")
	}
	st := sample(t)
	r.StepFull(target(st))
	if got, want := k.table.Canonical(), Desired(st).Canonical(); got != want {
		t.Fatalf("kernel:\n%s\nwant:\n%s", got, want)
	}
	if n := strings.Count(log.String(), "service taken over"); n != 1 || !strings.Contains(log.String(), "service=tcp:10.0.0.10:80") {
		t.Fatalf("log:\n%s\nwant one takeover line naming tcp:10.0.0.10:80", log.String())
	}
	r.StepFull(target(st))
	if n := strings.Count(log.String(), "service taken over"); n != 1 {
		t.Fatalf("takeover said %d times, want once", n)
	}
	applyOps(t, st, fsm.Op{Kind: fsm.OpDeleteService, ServiceKey: web})
	k.applied = nil
	r.Step(target(st))
	if len(k.applied) != 1 || k.applied[0] != "delete-service tcp:10.0.0.10:80" || r.owned().Has(web.String()) {
		t.Fatalf("taken over, then left the model: applied %v, owned %v", k.applied, r.owned().Services())
	}

	// Another tool makes it again while the reconciler's copy says it is
	// not there: the create fails, and the next pass (a dump) takes it
	// over, saying so.
	k.table[web.String()] = foreignService(web)
	applyOps(t, st, addSvc(web, "wlc"))
	if rep := r.Step(target(st)); rep.Failed != 1 || r.owned().Has(web.String()) {
		t.Fatalf("create over another tool's service: %+v, owned %v; want the create failed and the key not ours", rep, r.owned().Services())
	}
	if rep := r.Step(target(st)); rep.Failed != 0 || !r.owned().Has(web.String()) {
		t.Fatalf("the pass after: %+v, owned %v", rep, r.owned().Services())
	}
	if n := strings.Count(log.String(), "service taken over"); n != 2 {
		t.Fatalf("log:\n%s\nwant a second takeover line", log.String())
	}
	if got, want := k.table.Canonical(), Desired(st).Canonical(); got != want {
		t.Fatalf("kernel:\n%s\nwant:\n%s", got, want)
	}
}

// A target older than the one a service was taken for (a restart's first
// passes run on the last snapshot, before the log after it is applied)
// does not delete it; one at that index or later does.
func TestOlderTargetDeletesNoNewerService(t *testing.T) {
	k := newFake()
	k.table[web.String()] = foreignService(web)
	r := rec(k)
	r.Owned = ownedOf(10, web.String())
	r.StepFull(Target{Table: Table{}, Index: 9})
	if _, ok := k.table[web.String()]; !ok {
		t.Fatal("a service taken at index 10 deleted by a target at index 9")
	}
	r.StepFull(Target{Table: Table{}, Index: 10})
	if _, ok := k.table[web.String()]; ok || r.owned().Has(web.String()) {
		t.Fatalf("a target at index 10: still there, or still owned: %v", r.owned().Services())
	}
}

// The record lives in a file: read at start-up, seeded once when missing
// (a node upgraded from a release without one deletes what that release
// would have), written only when it changes, refused when unreadable.
func TestOwnedRecordFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ipvs-owned.json")
	own, err := OpenOwned(path)
	if err != nil || !own.Fresh() {
		t.Fatalf("no file: %v, fresh %v; want a fresh record", err, own.Fresh())
	}
	// The previous release programmed sample's three services; dns has
	// since left the model (it is in the history) and is still in the
	// kernel; another tool has its own service.
	st := sample(t)
	k := newFake()
	rec(k).Step(target(st))
	applyOps(t, st, fsm.Op{Kind: fsm.OpDeleteService, ServiceKey: dns})
	other := fsm.ServiceKey{Protocol: fsm.TCP, Address: netip.MustParseAddr("192.0.2.1"), Port: 25}
	k.table[other.String()] = foreignService(other)
	if !own.Seed(Managed(st), 40) || own.Seed(map[string]bool{"x": true}, 41) {
		t.Fatal("Seed: want it once on a fresh record, then never")
	}
	r := rec(k)
	r.Owned = own
	tg := target(st)
	tg.Index = 41
	r.Step(tg)
	if _, ok := k.table[dns.String()]; ok {
		t.Fatal("a service of the history left in the kernel after the upgrade")
	}
	if _, ok := k.table[other.String()]; !ok {
		t.Fatal("another tool's service deleted")
	}
	again, err := OpenOwned(path)
	if err != nil || again.Fresh() || !slices.Equal(again.Services(), []string{fwm.String(), web.String()}) {
		t.Fatalf("reopened: %v, fresh %v, services %v; want fwmark:3 and web", err, again.Fresh(), again.Services())
	}
	if !again.mayDelete(web.String(), 40) || again.mayDelete(web.String(), 39) {
		t.Fatal("the seed's index was not kept")
	}
	// Nothing changes: the file is not written.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	r.StepFull(tg)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a pass that changed nothing wrote the record: %v", err)
	}
	applyOps(t, st, addSvc(dns, "rr"))
	tg = target(st)
	tg.Index = 42
	r.Step(tg)
	if again, err = OpenOwned(path); err != nil || !again.Has(dns.String()) || !again.mayDelete(dns.String(), 42) || again.mayDelete(dns.String(), 41) {
		t.Fatalf("after a service was created: %v, %v", err, again.Services())
	}
	if err := os.WriteFile(path, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenOwned(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("a torn record: err %v, want it named", err)
	}
}

// With sync off in the model no thread is started, stopped or replaced
// but the ones this node started; at shutdown another tool's master goes
// on.
func TestSyncOffTouchesOnlyItsOwnThreads(t *testing.T) {
	theirs := ipvsnl.Daemon{Iface: "eth9", SyncID: 7, MaxLen: 1472, Port: 8848, TTL: 1}
	k := &fakeSync{}
	for _, st := range []uint32{ipvsnl.DaemonMaster, ipvsnl.DaemonBackup} {
		d := theirs
		d.State = st
		k.threads = append(k.threads, d)
	}
	off := syncTarget(true)
	off.Settings.Off = true
	s := &SyncDaemons{Kernel: k, Log: quiet}
	if err := s.Pass(off); err != nil {
		t.Fatal(err)
	}
	if got := k.took(); len(got) != 0 {
		t.Fatalf("sync off, another tool's threads: calls %v, want none", got)
	}
	if r := s.Last(); len(r.Threads) != 2 {
		t.Fatalf("report %+v: want their threads listed", r)
	}
	s.stopMaster()
	if got := k.took(); len(got) != 0 {
		t.Fatalf("shutdown with another tool's master: calls %v, want none", got)
	}

	// This node's own threads, though, are stopped when sync goes off,
	// also after a restart (the record is a file).
	path := filepath.Join(t.TempDir(), "ipvs-owned.json")
	own, err := OpenOwned(path)
	if err != nil {
		t.Fatal(err)
	}
	k = &fakeSync{}
	s = &SyncDaemons{Kernel: k, Log: quiet, Owned: own}
	if err := s.Pass(syncTarget(false)); err != nil || strings.Join(k.took(), ",") != "start backup" {
		t.Fatalf("sync on: %v", err)
	}
	own, err = OpenOwned(path)
	if err != nil {
		t.Fatal(err)
	}
	s = &SyncDaemons{Kernel: k, Log: quiet, Owned: own}
	if err := s.Pass(off); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(k.took(), ","); got != "stop backup" {
		t.Fatalf("sync off after a restart: calls %q, want its own backup stopped", got)
	}
	// Another tool starts a backup now: it is left alone.
	d := theirs
	d.State = ipvsnl.DaemonBackup
	k.threads = append(k.threads, d)
	if err := s.Pass(off); err != nil || len(k.took()) != 0 {
		t.Fatalf("another tool's backup, sync off: %v, want no calls", err)
	}
}

// With sync on the kernel's threads are ipvsmand's: one with other
// settings is replaced, and a thread already running as wanted is kept
// and counted as its own.
func TestSyncOnOwnsTheThreads(t *testing.T) {
	k := &fakeSync{}
	theirs := WantDaemons(syncTarget(false))[0]
	k.threads = []ipvsnl.Daemon{theirs}
	k.threads[0].MaxLen = 1472
	s := &SyncDaemons{Kernel: k, Log: quiet}
	if err := s.Pass(syncTarget(false)); err != nil || len(k.took()) != 0 || !s.owned().ownsThread(ipvsnl.DaemonBackup) {
		t.Fatalf("a backup running as wanted: err %v, want it kept and owned", err)
	}
	k.threads[0].SyncID = 7
	s = &SyncDaemons{Kernel: k, Log: quiet}
	if err := s.Pass(syncTarget(false)); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(k.took(), ","); got != "stop backup,start backup" {
		t.Fatalf("another tool's backup with sync id 7: calls %q, want it replaced", got)
	}
}

// A recorded service deleted by hand while it left the model is no longer
// ours once a dump shows it gone: another tool may then make one under
// its key. Likewise a recorded sync thread stopped by hand.
func TestOwnedGoneByHandIsForgotten(t *testing.T) {
	k := newFake()
	r := rec(k)
	r.Owned = ownedOf(0, web.String())
	r.StepFull(Target{Table: Table{}})
	if r.owned().Has(web.String()) {
		t.Fatalf("a recorded service in neither the kernel nor the model still owned: %v", r.owned().Services())
	}
	k.table[web.String()] = foreignService(web)
	if r.StepFull(Target{Table: Table{}}); len(k.applied) != 0 {
		t.Fatalf("another tool's service under that key: applied %v, want nothing", k.applied)
	}

	ks := &fakeSync{}
	s := &SyncDaemons{Kernel: ks, Log: quiet}
	if err := s.Pass(syncTarget(false)); err != nil || strings.Join(ks.took(), ",") != "start backup" {
		t.Fatalf("sync on: %v", err)
	}
	ks.threads = nil // stopped by hand
	off := syncTarget(false)
	off.Settings.Off = true
	if err := s.Pass(off); err != nil {
		t.Fatal(err)
	}
	theirs := WantDaemons(syncTarget(false))[0]
	theirs.SyncID = 7
	ks.threads = []ipvsnl.Daemon{theirs}
	if err := s.Pass(off); err != nil || len(ks.took()) != 0 {
		t.Fatalf("another tool's backup after ours was stopped by hand: %v, want no calls", err)
	}
}

// A restarted node's state may be older than its model (an empty state
// says sync is on): until it has caught up with the log it started with,
// or with a leader's commit index, sync passes change nothing.
func TestSyncWaitsForTheStateToCatchUp(t *testing.T) {
	c := CatchUp{Last: 40}
	if c.Hold(0, 0) == "" || c.Hold(39, 0) == "" || c.Hold(12, 30) == "" || c.Done() {
		t.Fatal("a state behind the log and the commit index not held")
	}
	if c.Hold(30, 30) != "" || !c.Done() || c.Hold(0, 0) != "" {
		t.Fatal("a state at the leader's commit index still held, or held again after")
	}
	if c := (CatchUp{Last: 40}); c.Hold(40, 0) != "" {
		t.Fatal("a state at the log's end held")
	}

	dir := kernelSysctls(t)
	before := readSysctls(t, dir)
	theirs := WantDaemons(syncTarget(false))[0]
	theirs.SyncID = 7
	k := &fakeSync{threads: []ipvsnl.Daemon{theirs}}
	s := &SyncDaemons{Kernel: k, Log: quiet, SysctlDir: dir}
	held := syncTarget(true)
	held.Hold = (&CatchUp{Last: 40}).Hold(3, 0)
	if err := s.Pass(held); err != nil {
		t.Fatal(err)
	}
	if calls := k.took(); len(calls) != 0 || readSysctls(t, dir) != before {
		t.Fatalf("a held pass: calls %v, sysctls %s; want nothing changed", calls, readSysctls(t, dir))
	}
	if r := s.Last(); len(r.Threads) != 1 || !strings.Contains(r.Why, "index 3") {
		t.Fatalf("held report %+v: want the threads and why", r)
	}
}
