package cluster

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"go.etcd.io/bbolt"
)

// ErrDamagedStore marks a Raft store that failed the start-up check.
var ErrDamagedStore = errors.New("damaged raft store")

// checkStore reads every page of the Raft store before Raft trusts it. A
// truncated or overwritten raft.db would otherwise surface later, in the
// middle of replication, as a fault on the memory map (which kills the
// process without a word) or as a log entry that cannot be decoded. A node
// with such a log must not take part in elections or join a cluster: the
// operator wipes it and the node copies the state from the others.
func checkStore(dir string) (err error) {
	path := filepath.Join(dir, "raft.db")
	fi, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("data-dir %q: %w", dir, err)
	}
	// The map of a truncated file ends before the pages its metadata
	// names: reading one faults. A fault, like bbolt's own panics on
	// pages that are not what they claim, becomes this error.
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			err = damaged(dir, fmt.Errorf("%v", p))
		}
	}()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if errors.Is(err, bbolt.ErrTimeout) {
		return fmt.Errorf("open raft store %s: %w (is another ipvsmand using this data dir?)", path, err)
	}
	if err != nil {
		return damaged(dir, err)
	}
	defer db.Close()
	return db.View(func(tx *bbolt.Tx) error {
		if need := tx.Size(); need > fi.Size() {
			return damaged(dir, fmt.Errorf("raft.db has %d bytes but its pages need %d: truncated", fi.Size(), need))
		}
		// Walked here rather than with tx.Check, which runs on a
		// goroutine of its own where a fault could not be recovered.
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			return walk(b)
		})
	})
}

func walk(b *bbolt.Bucket) error {
	return b.ForEach(func(k, v []byte) error {
		if v == nil {
			if sub := b.Bucket(k); sub != nil {
				return walk(sub)
			}
		}
		return nil
	})
}

func damaged(dir string, cause error) error {
	return fmt.Errorf("data-dir %q: raft.db: %w: %v; this node's log cannot be trusted: move the data dir aside (or wipe it) and start the node with --join MEMBER_API, and it copies the state from the cluster", dir, ErrDamagedStore, cause)
}
