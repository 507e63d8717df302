package cluster

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// records keeps what the adapter wrote.
type records struct {
	mu   sync.Mutex
	msgs []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.msgs = append(r.msgs, rec)
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

func attr(rec slog.Record, key string) (slog.Value, bool) {
	var v slog.Value
	found := false
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v, found = a.Value, true
			return false
		}
		return true
	})
	return v, found
}

// A dead member made the leader write 624 Raft error lines a minute. Three
// minutes of that, at the same rate and in Raft's three ways of naming the
// member, must come out as one line per minute carrying the count, while a
// line about no member still passes every time.
func TestDeadMemberIsSummarised(t *testing.T) {
	rec := &records{}
	clock := time.Unix(1_700_000_000, 0)
	a := NewHCLog(slog.New(rec), "raft", hclog.Warn).(*slogAdapter)
	a.sum.now = func() time.Time { return clock }
	l := a.Named("replication") // derived loggers share the summary
	dead := raft.Server{Suffrage: raft.Voter, ID: "n3", Address: "10.0.0.3:7000"}
	err := errors.New("dial tcp 10.0.0.3:7000: connect: connection refused")

	const perMinute = 624
	step := time.Minute / perMinute
	for i := 0; i < 3*perMinute; i++ {
		switch i % 3 {
		case 0:
			l.Error("failed to appendEntries to", "peer", dead, "error", err)
		case 1:
			l.Error("failed to heartbeat to", "peer", dead.Address, "backoff time", time.Second, "error", err)
		case 2:
			l.Warn("failed to contact", "server-id", dead.ID, "time", time.Second)
		}
		clock = clock.Add(step)
	}
	a.Error("failed to commit logs", "error", err)
	a.Error("failed to commit logs", "error", err)

	var member, other int
	var counted int64
	for _, r := range rec.msgs {
		if r.Message == "failed to commit logs" {
			other++
			continue
		}
		member++
		if v, ok := attr(r, "repeated"); ok {
			counted += v.Int64()
		}
	}
	if member != 3 {
		t.Errorf("lines about the dead member in 3 minutes: %d, want 3 (one per minute)", member)
	}
	if other != 2 {
		t.Errorf("lines about no member: %d, want 2 (never summarised)", other)
	}
	// The first line stands for itself; the next two for a minute each.
	if want := int64(2 * perMinute); counted < want-3 || counted > want+3 {
		t.Errorf("repeated counts add up to %d, want about %d", counted, want)
	}
}
