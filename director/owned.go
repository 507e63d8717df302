package director

import (
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/google/renameio/v2"

	"github.com/ipvsman/ipvsman/director/ipvsnl"
)

// Owned is what this node's ipvsmand put into the kernel and has not
// removed since: the services its reconciler created or took over, and the
// sync threads it started. Only these are ever deleted or stopped (besides
// everything under --ipvs-exclusive), so that another tool on the same
// kernel (ldirectord, keepalived, a hand-made ipvsadm service) keeps what
// it made, even under a key the model held once.
//
// A service is recorded before the pass that creates it (as the VIP file
// records an address before it is added): a crash between the two leaves
// a service that is ours on record, never one that is ours and unknown.
// With each service goes the Raft index of the target it was taken for; a
// pass deletes it only for a target at that index or later. A restart
// restores the last snapshot and applies the log after it only once a
// leader is heard from, so the first passes may see a model older than
// the kernel: a service added since that snapshot is then not in their
// target, yet must not be deleted and created again.
//
// It is kept in a file in the data directory, written (atomically) only
// when it changes. Safe for concurrent use: the reconciler's and the sync
// threads' loops share it.
type Owned struct {
	path string

	mu       sync.Mutex
	services map[string]uint64 // service key -> index of the target it was taken for
	threads  map[uint32]bool   // sync thread states (ipvsnl.DaemonMaster, DaemonBackup)
	fresh    bool              // no record was found: Seed applies once
	dirty    bool              // changed since the last successful save
}

// ownedFile is the record's format.
type ownedFile struct {
	Services    map[string]uint64 `json:"services"`
	SyncThreads []string          `json:"sync_threads"`
}

// NewOwned is an empty record kept in memory only.
func NewOwned() *Owned {
	return &Owned{services: map[string]uint64{}, threads: map[uint32]bool{}}
}

// OpenOwned reads the record at path. A missing file is a node's first
// start or its first under a release that kept no record: the record is
// then empty and Fresh until Seed.
func OpenOwned(path string) (*Owned, error) {
	o := NewOwned()
	o.path = path
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		o.fresh = true
		return o, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	var f ownedFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("read %s: %w (remove it to take ownership again from the model and its history)", path, err)
	}
	for k, idx := range f.Services {
		o.services[k] = idx
	}
	for _, s := range f.SyncThreads {
		switch s {
		case "master":
			o.threads[ipvsnl.DaemonMaster] = true
		case "backup":
			o.threads[ipvsnl.DaemonBackup] = true
		default:
			return nil, fmt.Errorf("read %s: sync thread %q: want master or backup", path, s)
		}
	}
	return o, nil
}

// Path is the record's file ("": kept in memory only).
func (o *Owned) Path() string { return o.path }

// Fresh reports whether no record was found and Seed has not run.
func (o *Owned) Fresh() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.fresh
}

// Seed makes a fresh record own keys, taken for the target at index; on a
// record that was read from its file it does nothing. A node upgraded from
// a release that kept no record seeds it once with every key the model
// holds or held in its history (table.Managed), which is what that release
// deleted when it left the model, so that it forgets none of the services
// it programmed. It reports whether it seeded.
func (o *Owned) Seed(keys map[string]bool, index uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.fresh {
		return false
	}
	for k := range keys {
		o.services[k] = index
	}
	o.fresh, o.dirty = false, true
	return true
}

// Has reports whether the service key is ours.
func (o *Owned) Has(key string) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.services[key]
	return ok
}

// Services lists the services owned, sorted.
func (o *Owned) Services() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Sorted(maps.Keys(o.services))
}

// mayDelete reports whether a pass for the target at index may delete the
// service key when the model does not have it: it is ours, taken for a
// target no later than this one.
func (o *Owned) mayDelete(key string, index uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	at, ok := o.services[key]
	return ok && at <= index
}

// deletable lists, of keys, those a pass for the target at index may
// delete (mayDelete), as Plan takes them.
func (o *Owned) deletable(keys iter.Seq[string], index uint64) map[string]bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := map[string]bool{}
	for k := range keys {
		if at, ok := o.services[k]; ok && at <= index {
			m[k] = true
		}
	}
	return m
}

// set is every service owned, as readBack takes them.
func (o *Owned) set() map[string]bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	m := make(map[string]bool, len(o.services))
	for k := range o.services {
		m[k] = true
	}
	return m
}

// take records the service key as ours, taken for the target at index;
// it reports whether it was not already.
func (o *Owned) take(key string, index uint64) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.services[key]; ok {
		return false
	}
	o.services[key] = index
	o.dirty = true
	return true
}

// forget drops the service key, deleted from the kernel.
func (o *Owned) forget(key string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.services[key]; ok {
		delete(o.services, key)
		o.dirty = true
	}
}

// prune forgets the services keep says are no longer there.
func (o *Owned) prune(keep func(key string) bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for k := range o.services {
		if !keep(k) {
			delete(o.services, k)
			o.dirty = true
		}
	}
}

// ownsThread reports whether this node started the sync thread in state.
func (o *Owned) ownsThread(state uint32) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.threads[state]
}

// setThread records the sync thread in state as ours (or no longer).
func (o *Owned) setThread(state uint32, ours bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.threads[state] == ours {
		return
	}
	if ours {
		o.threads[state] = true
	} else {
		delete(o.threads, state)
	}
	o.dirty = true
}

// Save writes the record if it changed since the last save: to a
// temporary file, synced, renamed over the old one, so that a crash
// leaves the old record or the new one, never a torn one.
func (o *Owned) Save() error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.dirty {
		return nil
	}
	if o.path == "" {
		o.dirty = false
		return nil
	}
	f := ownedFile{Services: maps.Clone(o.services), SyncThreads: []string{}}
	for _, s := range []uint32{ipvsnl.DaemonMaster, ipvsnl.DaemonBackup} {
		if o.threads[s] {
			f.SyncThreads = append(f.SyncThreads, stateName(s))
		}
	}
	b, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", o.path, err)
	}
	if err := writeAtomic(o.path, append(b, '\n')); err != nil {
		return err
	}
	o.dirty = false
	return nil
}

// writeAtomic replaces path durably: the new file synced and renamed over
// the old (renameio), then the directory synced so the rename survives a
// crash.
func writeAtomic(path string, b []byte) error {
	if err := renameio.WriteFile(path, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
