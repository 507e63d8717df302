package cluster

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
)

// store writes a Raft store with n log entries of 1 KiB into a new dir.
func store(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	s, err := raftboltdb.NewBoltStore(filepath.Join(dir, "raft.db"))
	if err != nil {
		t.Fatal(err)
	}
	var logs []*raft.Log
	for i := 1; i <= n; i++ {
		logs = append(logs, &raft.Log{Index: uint64(i), Term: 1, Type: raft.LogCommand, Data: []byte(strings.Repeat(fmt.Sprint(i%10), 1024))})
	}
	if err := s.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := s.SetUint64([]byte("CurrentTerm"), 1); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestCheckStore(t *testing.T) {
	t.Run("intact", func(t *testing.T) {
		if err := checkStore(store(t, 300)); err != nil {
			t.Fatalf("intact store: %v", err)
		}
	})
	t.Run("no store yet", func(t *testing.T) {
		if err := checkStore(t.TempDir()); err != nil {
			t.Fatalf("empty dir: %v", err)
		}
	})
	for _, tc := range []struct {
		name, want string
		damage     func(path string) error
	}{
		{"truncated to half", "truncated", func(p string) error {
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			return os.Truncate(p, fi.Size()/2)
		}},
		{"truncated to 100 bytes", "raft.db", func(p string) error { return os.Truncate(p, 100) }},
		{"pages after the metadata overwritten", "raft.db", func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			junk := make([]byte, 64<<10)
			rand.Read(junk)
			_, err = f.WriteAt(junk, 8192)
			return err
		}},
		{"both metadata pages overwritten", "invalid", func(p string) error {
			f, err := os.OpenFile(p, os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			junk := make([]byte, 8192)
			rand.Read(junk)
			_, err = f.WriteAt(junk, 0)
			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := store(t, 300)
			if err := tc.damage(filepath.Join(dir, "raft.db")); err != nil {
				t.Fatal(err)
			}
			err := checkStore(dir)
			if !errors.Is(err, ErrDamagedStore) {
				t.Fatalf("checkStore = %v, want a damaged-store error", err)
			}
			for _, w := range []string{dir, tc.want, "--join"} {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}
