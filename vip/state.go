package vip

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"

	"github.com/google/renameio/v2"
)

// Addr is one address on one interface: what a node holds for a VIP.
type Addr struct {
	Prefix    netip.Prefix `json:"prefix"`
	Interface string       `json:"interface"`
}

func (a Addr) String() string { return a.Prefix.String() + " on " + a.Interface }

func compareAddr(a, b Addr) int {
	if c := a.Prefix.Addr().Compare(b.Prefix.Addr()); c != 0 {
		return c
	}
	if a.Prefix.Bits() != b.Prefix.Bits() {
		return a.Prefix.Bits() - b.Prefix.Bits()
	}
	switch {
	case a.Interface < b.Interface:
		return -1
	case a.Interface > b.Interface:
		return 1
	}
	return 0
}

// record is the file of addresses this node may hold. An address is written
// to it before it is added and taken out after it is deleted, so that after
// a crash the next start can remove every address a dead process left on
// the interfaces, even before the replicated state says which VIPs exist.
type record struct{ path string }

func (r record) load() ([]Addr, error) {
	if r.path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(r.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", r.path, err)
	}
	var out []Addr
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("read %s: %w", r.path, err)
	}
	return out, nil
}

// store replaces the file atomically and durably: a torn or lost write
// would hide an address from the next start-up's cleanup.
func (r record) store(addrs []Addr) error {
	if r.path == "" {
		return nil
	}
	addrs = slices.Clone(addrs)
	slices.SortFunc(addrs, compareAddr)
	b, err := json.Marshal(addrs)
	if err != nil {
		return err
	}
	// Synced and renamed over the old file (renameio), then the directory
	// synced so that the rename survives a crash.
	if err := renameio.WriteFile(r.path, b, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", r.path, err)
	}
	if d, err := os.Open(filepath.Dir(r.path)); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}
