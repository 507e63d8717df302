package faults

import (
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/ipvsman/ipvsman/cluster/api"
)

// The write-truth instrument must be able to fail: these tests plant each
// fault it looks for in a clean run and check that Judge counts it, and
// only it. They need no root.

const (
	mainSvc = "tcp:10.0.0.10:80"
	bulkSvc = "tcp:192.168.0.1:80"
)

// cleanRun is a run in which every write told the truth: the writes, the
// history they made and the final model.
func cleanRun() ([]WriteRecord, []api.HistoryItem, Model) {
	writes := []WriteRecord{
		{ID: "w-1", Kind: KindAdd, Service: mainSvc, Server: "10.10.0.1:80", Weight: 3, Outcome: Committed, Version: 5},
		{ID: "w-2", Kind: KindAdd, Service: mainSvc, Server: "10.10.0.2:80", Weight: 1, Outcome: NotCommitted, Reason: "not committed: no leader"},
		{ID: "w-3", Kind: KindEdit, Service: mainSvc, Server: "10.10.0.1:80", Weight: 4, Outcome: Committed, Version: 6},
		{ID: "w-4", Kind: KindAdd, Service: mainSvc, Server: "10.10.0.3:80", Weight: 2, Outcome: Committed, Version: 7, Duplicate: true},
		{ID: "w-5", Kind: KindDelete, Service: mainSvc, Server: "10.10.0.3:80", Outcome: Committed, Version: 8},
		{ID: "w-6", Kind: KindAdd, Service: mainSvc, Server: "10.10.0.4:80", Weight: 9, Outcome: Unknown, Reason: "outcome unknown"},
		{ID: "w-7", Kind: KindBulk, Service: bulkSvc, Servers: 3, Outcome: Committed, Version: 10},
		{ID: "w-8", Kind: KindEdit, Service: mainSvc, Server: "10.10.0.1:80", Weight: 5, Outcome: Refused, RateLimited: true, Reason: "more than 50 writes/s"},
		{ID: "w-9", Kind: KindDrop, Service: bulkSvc, Outcome: Committed, Version: 11},
		{ID: "w-10", Kind: KindAdd, Service: mainSvc, Server: "10.10.0.5:80", Weight: 1, Outcome: Unknown, Reason: "outcome unknown"},
	}
	history := []api.HistoryItem{
		{Version: 4, Request: "setup"},
		{Version: 5, Request: "w-1"},
		{Version: 6, Request: "w-3"},
		{Version: 7, Request: "w-4"},
		{Version: 8, Request: "w-5"},
		{Version: 9, Request: "w-6"}, // the unknown add was committed
		{Version: 10, Request: "w-7"},
		{Version: 11, Request: "w-9"},
		{Version: 12}, // a version without a request ID
	}
	final := Model{mainSvc: {"10.10.0.1:80": 4, "10.10.0.4:80": 9}}
	return writes, history, final
}

func TestJudgeClean(t *testing.T) {
	writes, history, final := cleanRun()
	f := Judge(writes, history, final)
	if f.Bad() || len(f.Findings) > 0 {
		t.Fatalf("a clean run judged bad: %s\n%v", f.Lines(), f.Findings)
	}
	want := Figures{Writes: 10, Committed: 6, Refused: 1, RateLimited: 1, NotCommitted: 1, Unknown: 2, UnknownCommitted: 1, DuplicateAnswers: 1}
	if fmt.Sprint(f) != fmt.Sprint(want) {
		t.Errorf("figures %+v, want %+v", f, want)
	}
}

func TestJudgePlantedFaults(t *testing.T) {
	for _, c := range []struct {
		name  string
		plant func(w []WriteRecord, h []api.HistoryItem, m Model) ([]WriteRecord, []api.HistoryItem, Model)
		// the figures the fault must make
		misreported, rejected, duplicates, lost int
	}{
		{"reported not committed, in the history", func(w []WriteRecord, h []api.HistoryItem, m Model) ([]WriteRecord, []api.HistoryItem, Model) {
			m[mainSvc]["10.10.0.2:80"] = 1
			return w, append(h, api.HistoryItem{Version: 13, Request: "w-2"}), m
		}, 1, 0, 0, 0},
		{"reported refused, in the history", func(w []WriteRecord, h []api.HistoryItem, m Model) ([]WriteRecord, []api.HistoryItem, Model) {
			w[7].Outcome, w[7].RateLimited, w[7].Reason = Refused, false, "real server 10.10.0.1:80: no such real server"
			m[mainSvc]["10.10.0.1:80"] = 5
			return w, append(h, api.HistoryItem{Version: 13, Request: "w-8"}), m
		}, 1, 1, 0, 0},
		{"a valid write rejected", func(w []WriteRecord, h []api.HistoryItem, m Model) ([]WriteRecord, []api.HistoryItem, Model) {
			w[1].Outcome, w[1].Reason = Refused, "real server 10.10.0.2:80 of service tcp:10.0.0.10:80: already exists"
			return w, h, m
		}, 0, 1, 0, 0},
		{"a request ID in two versions", func(w []WriteRecord, h []api.HistoryItem, m Model) ([]WriteRecord, []api.HistoryItem, Model) {
			return w, append(h, api.HistoryItem{Version: 13, Request: "w-3"}), m
		}, 0, 0, 1, 0},
		{"a committed write absent", func(w []WriteRecord, h []api.HistoryItem, m Model) ([]WriteRecord, []api.HistoryItem, Model) {
			w = append(w, WriteRecord{ID: "w-11", Kind: KindAdd, Service: mainSvc, Server: "10.10.0.6:80", Weight: 1, Outcome: Committed, Version: 13})
			return w, h, m
		}, 1, 0, 0, 1},
		{"a committed write in the history, its effect gone", func(w []WriteRecord, h []api.HistoryItem, m Model) ([]WriteRecord, []api.HistoryItem, Model) {
			delete(m[mainSvc], "10.10.0.1:80")
			return w, h, m
		}, 1, 0, 0, 1},
		{"a committed delete undone", func(w []WriteRecord, h []api.HistoryItem, m Model) ([]WriteRecord, []api.HistoryItem, Model) {
			m[mainSvc]["10.10.0.3:80"] = 2
			return w, h, m
		}, 1, 0, 0, 1},
		{"a committed bulk write's service still there after its drop", func(w []WriteRecord, h []api.HistoryItem, m Model) ([]WriteRecord, []api.HistoryItem, Model) {
			m[bulkSvc] = map[string]int{"172.16.0.1:80": 1}
			return w, h, m
		}, 1, 0, 0, 1},
		{"reported committed at the wrong version", func(w []WriteRecord, h []api.HistoryItem, m Model) ([]WriteRecord, []api.HistoryItem, Model) {
			w[0].Version = 6
			return w, h, m
		}, 1, 0, 0, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := Judge(c.plant(cleanRun()))
			got := [4]int{f.Misreported, f.ValidRejected, f.DuplicateApplies, f.Lost}
			if want := [4]int{c.misreported, c.rejected, c.duplicates, c.lost}; got != want {
				t.Errorf("misreported, rejected, duplicates, lost = %v, want %v\nfindings: %q", got, want, f.Findings)
			}
			if !f.Bad() {
				t.Error("a planted fault judged clean")
			}
		})
	}
}

// TestJudgeUnknownSettled: an unknown outcome is allowed either way, and
// the figures say how many were committed.
func TestJudgeUnknownSettled(t *testing.T) {
	writes, history, final := cleanRun()
	history = append(history, api.HistoryItem{Version: 13, Request: "w-10"})
	final[mainSvc]["10.10.0.5:80"] = 1
	f := Judge(writes, history, final)
	if f.Bad() || f.Unknown != 2 || f.UnknownCommitted != 2 {
		t.Errorf("%s, unknown %d (%d committed): want clean, 2 unknown, 2 committed; %v", f.Lines(), f.Unknown, f.UnknownCommitted, f.Findings)
	}
}

func TestHistoryProblems(t *testing.T) {
	h := NewHistory(1)
	h.Merge("d1", []api.HistoryItem{{Version: 1, Request: "old"}, {Version: 2, Request: "b"}})
	h.Merge("d2", []api.HistoryItem{{Version: 2, Request: "b"}, {Version: 3, Request: "c\nsecond line"}})
	if p := h.Problems(); len(p) != 0 {
		t.Fatalf("overlapping reads: problems %q", p)
	}
	if it := h.Items(); len(it) != 2 || it[0].Version != 2 || it[1].Summary != "" {
		t.Fatalf("items %+v, want versions 2 and 3", it)
	}
	h.Merge("d3", []api.HistoryItem{{Version: 3, Request: "x"}, {Version: 6, Request: "f"}})
	if p := h.Problems(); len(p) != 2 {
		t.Errorf("a conflicting version and a gap: problems %q, want 2", p)
	}
	if p := NewHistory(5).Problems(); len(p) != 0 {
		t.Errorf("nothing read after version 5: problems %q", p)
	}
	late := NewHistory(5)
	late.Merge("d1", []api.HistoryItem{{Version: 8, Request: "h"}})
	if p := late.Problems(); len(p) != 1 {
		t.Errorf("versions 6 and 7 never read: problems %q, want 1", p)
	}
}

func TestClassify(t *testing.T) {
	dial := fmt.Errorf("api https://10.0.0.11:7080: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")})
	reset := fmt.Errorf("api https://10.0.0.11:7080: %w", &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")})
	for _, c := range []struct {
		err     error
		want    Outcome
		limited bool
	}{
		{nil, Committed, false},
		{&api.OutcomeUnknownError{Request: "x", Msg: "outcome unknown"}, Unknown, false},
		{&api.Error{Status: 400, Kind: "rejected", Msg: "no such service"}, Refused, false},
		{&api.Error{Status: 429, Kind: "rate-limited"}, Refused, true},
		{&api.Error{Status: 503, Kind: "no-leader"}, NotCommitted, false},
		{&api.Error{Status: 503, Kind: api.KindOutcomeUnknown}, Unknown, false},
		{&api.Error{Status: 500, Kind: "internal"}, Unknown, false},
		{dial, NotCommitted, false},
		{reset, Unknown, false},
		{errors.New("decode answer: unexpected EOF"), Unknown, false},
	} {
		if got, limited := classify(c.err); got != c.want || limited != c.limited {
			t.Errorf("classify(%v) = %s, %v; want %s, %v", c.err, got, limited, c.want, c.limited)
		}
	}
}
