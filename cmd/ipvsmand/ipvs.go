package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/ipvsman/ipvsman/director"
	"github.com/ipvsman/ipvsman/director/ipvsnl"
	"github.com/ipvsman/ipvsman/director/table"
	"github.com/ipvsman/ipvsman/fsm"
)

// ipvs is the kernel side of --ipvs=on: the table's netlink handle and
// the reconciler, and the sync threads with theirs.
type ipvs struct {
	kernel *director.Netlink
	rec    *director.Reconciler // started by startIPVS, once the metrics exist
	syncd  *director.SyncDaemons
	iface  string // the sync threads' interface; "": connection sync off
	owned  *director.Owned
}

// ownedFile is the record of the services and sync threads this node
// created, in its data directory (director.Owned).
func ownedFile(dataDir string) string { return filepath.Join(dataDir, "ipvs-owned.json") }

// openIPVS opens the kernel handles (--ipvs=on).
func (d *daemon) openIPVS() error {
	if d.o.ipvs != "on" {
		return nil
	}
	sysctls, err := director.ParseSysctls(d.o.ipvsSysctls, director.SyncSysctlDir)
	if err != nil {
		return fmt.Errorf("--ipvs-sysctls: %w", err)
	}
	if err := os.MkdirAll(d.o.dataDir, 0o700); err != nil {
		return fmt.Errorf("--data-dir %q: %w", d.o.dataDir, err)
	}
	owned, err := director.OpenOwned(ownedFile(d.o.dataDir))
	if err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	k, err := director.NewNetlink()
	if err != nil {
		return fmt.Errorf("--ipvs=on: %w", err)
	}
	d.stack.push("IPVS netlink", func(context.Context) { k.Close() })
	iface, err := syncInterface(d.o.syncIface, d.o.raftAddr)
	if err != nil {
		// Without it the node still directs traffic; its connections just do
		// not survive a failover. Said loudly, not fatal.
		d.log.Error("connection sync off on this node", "err", err)
	}
	sk, err := ipvsnl.Dial()
	if err != nil {
		return fmt.Errorf("connection sync: %w", err)
	}
	d.stack.push("sync netlink", func(context.Context) { sk.Close() })
	d.ipvs = &ipvs{kernel: k, iface: iface, owned: owned,
		syncd: &director.SyncDaemons{Kernel: sk, Log: d.log, SysctlDir: director.SyncSysctlDir, Sysctls: sysctls, Owned: owned},
		rec:   &director.Reconciler{Kernel: k, Log: d.log, Owned: owned, Exclusive: d.o.exclusive, Resync: d.o.resync, ResyncBudget: d.o.resyncCPU / 100}}
	return nil
}

// startIPVS makes the kernel table and the sync threads follow the
// replicated state: on every change, on their timers, after failures, and
// (the sync threads) on every leadership change.
func (d *daemon) startIPVS() {
	p, node := d.ipvs, d.node
	observe := func(director.Report) {}
	if d.metrics != nil {
		observe = d.metrics.ObserveReconcile
	}
	// The ecmp announcer hears of every pass: the kernel table's state
	// is one of its conditions.
	p.rec.Observe = func(r director.Report) { observe(r); poke(d.ecmpWake) }
	d.seedOwned()
	changes := node.Subscribe()
	// Its closer cancels Run and waits for it: a pass under way finishes.
	d.stop.reconciler = d.stack.push("reconciler", start(func(ctx context.Context) {
		// Each target is made in proportion to what changed since the
		// last one: the state's lock, which the next apply waits for, is
		// held for that long only.
		var targets director.Targets
		p.rec.Run(ctx, changes, func() director.Target {
			var t director.Target
			node.View(func(s *fsm.State, applied uint64) { t = targets.Target(s, applied) })
			return t
		})
	}))
	// Masquerading needs IP forwarding, which is the host's to turn on:
	// said at start-up and when a change makes it matter (forwarding.go).
	fwdChanges := node.Subscribe()
	d.stack.push("forwarding check", start(func(ctx context.Context) { d.watchForwarding(ctx, fwdChanges) }))
	syncChanges := node.Subscribe()
	// Until the state has caught up with the log this node started with,
	// it may be older than the model (sync on by default): the sync threads
	// and sysctls wait for it.
	catchUp := &director.CatchUp{Last: node.Status().LastLogIndex}
	// Its closer cancels Run, which stops the sync master before it
	// returns, and waits for it.
	d.stop.sync = d.stack.push("sync threads", start(func(ctx context.Context) {
		var wg sync.WaitGroup
		wg.Go(func() { forward(ctx, syncChanges, d.syncWake) })
		var targets director.SyncTargets
		p.syncd.Run(ctx, d.syncWake, func() director.SyncTarget {
			var t director.SyncTarget
			var applied uint64
			leader := node.IsLeader()
			node.View(func(st *fsm.State, a uint64) { t, applied = targets.Target(st.Config, leader, p.iface), a })
			if !catchUp.Done() {
				t.Hold = catchUp.Hold(applied, node.Status().CommitIndex)
			}
			return t
		})
		wg.Wait()
	}))
}

// seedOwned takes ownership, on a node without a record (its first start,
// or its first since an upgrade from a release that kept none), of every
// service the model holds or held in its history: what that release would
// have deleted when it left the model (director.Owned.Seed).
func (d *daemon) seedOwned() {
	own := d.ipvs.owned
	if !own.Fresh() {
		return
	}
	var keys map[string]bool
	var index uint64
	d.node.View(func(s *fsm.State, applied uint64) { keys, index = table.Managed(s), applied })
	own.Seed(keys, index)
	d.log.Info("record of owned services begun from the model and its history", "file", own.Path(), "services", len(keys), "index", index)
	if err := own.Save(); err != nil {
		d.log.Warn("record of owned services not written; retrying at the next pass", "err", err)
	}
}

// forward pokes wake on every change until ctx ends.
func forward(ctx context.Context, changes <-chan struct{}, wake chan struct{}) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-changes:
			poke(wake)
		}
	}
}

func poke(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}
