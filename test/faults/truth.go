package faults

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ipvsman/ipvsman/cluster/api"
)

// Outcome is what the API told a writer about one write.
type Outcome int

const (
	// Committed: a 2xx answer, with the version the write made.
	Committed Outcome = iota + 1
	// Refused: 400 rejected (nothing changed) or 429 (refused before the
	// log): a definite non-commit.
	Refused
	// NotCommitted: 503 no-leader, or no connection was ever made.
	NotCommitted
	// Unknown: *api.OutcomeUnknownError, or any other failure whose
	// outcome the writer cannot know.
	Unknown
)

func (o Outcome) String() string {
	switch o {
	case Committed:
		return "committed"
	case Refused:
		return "refused"
	case NotCommitted:
		return "not committed"
	case Unknown:
		return "unknown"
	}
	return fmt.Sprintf("outcome(%d)", int(o))
}

// WriteKind is what a write asked for.
type WriteKind string

const (
	KindAdd    WriteKind = "add"    // -a: a new real server
	KindEdit   WriteKind = "edit"   // -e: a new weight for a committed server
	KindDelete WriteKind = "delete" // -d: a committed server
	KindBulk   WriteKind = "bulk"   // -A and thousands of -a in one write
	KindDrop   WriteKind = "drop"   // -D of a bulk write's service
)

// WriteRecord is one write and the outcome the API reported for it.
type WriteRecord struct {
	ID      string // the request ID it was sent with
	Writer  int
	Node    string // the node it was sent through
	Kind    WriteKind
	Service string // fsm.ServiceKey.String(): "tcp:10.0.0.10:80"
	Server  string // RealServer.Key() for add, edit and delete
	Weight  int    // the weight an add or edit sets
	Servers int    // how many real servers a bulk write adds
	Outcome Outcome
	// Version and Duplicate are the committed answer's: the version the
	// write made, and whether the answer was the remembered one of an
	// earlier attempt.
	Version   uint64
	Duplicate bool
	// RateLimited marks a refusal with 429: the write never reached the
	// leader, so it says nothing about validation.
	RateLimited bool
	Reason      string // the error, for any outcome but Committed

	Deadline time.Duration // the client's
	Sent     time.Time
	Took     time.Duration // from sending to the answer
}

func (w WriteRecord) String() string {
	what := string(w.Kind) + " " + w.Service
	switch w.Kind {
	case KindAdd, KindEdit:
		what += fmt.Sprintf(" %s weight %d", w.Server, w.Weight)
	case KindDelete:
		what += " " + w.Server
	case KindBulk:
		what += fmt.Sprintf(" with %d real servers", w.Servers)
	}
	s := fmt.Sprintf("write %s (%s, via %s, deadline %s): reported %s", w.ID, what, w.Node, w.Deadline, w.Outcome)
	switch {
	case w.Outcome == Committed:
		s += fmt.Sprintf(" at version %d", w.Version)
		if w.Duplicate {
			s += " (duplicate answer)"
		}
	case w.Reason != "":
		s += ": " + w.Reason
	}
	return s
}

// key names what a write changes: one real server of a service, or a
// whole service (bulk and drop).
func (w WriteRecord) key() string {
	if w.Kind == KindBulk || w.Kind == KindDrop {
		return w.Service
	}
	return w.Service + " " + w.Server
}

// Model is a configuration as the writes see it: service → real server →
// weight. A service without real servers is an empty map, not absent.
type Model map[string]map[string]int

// ModelOf is the model of an API config answer.
func ModelOf(cfg api.ConfigResponse) Model {
	m := Model{}
	if cfg.Config == nil {
		return m
	}
	for k, s := range cfg.Config.Services {
		servers := map[string]int{}
		for rk, rs := range s.Servers {
			servers[rk] = rs.Weight
		}
		m[k] = servers
	}
	return m
}

// Figures are what the write-truth scenario measures in one run.
type Figures struct {
	// The writes by reported outcome.
	Writes, Committed, Refused, NotCommitted, Unknown int

	RateLimited      int // of Refused: 429
	DuplicateAnswers int // committed answers marked Duplicate (a retry settled)
	UnknownCommitted int // of Unknown: its request ID is in the history

	// The faults: each must be 0.
	Misreported      int // writes whose reported outcome the history or the model contradicts
	ValidRejected    int // valid writes refused (every write of the workload is valid)
	DuplicateApplies int // request IDs carried by more than one version
	Lost             int // acknowledged writes whose effect is missing from the final model

	Findings []string // one line per fault found, for the log
}

// Bad reports whether the figures show a broken promise.
func (f Figures) Bad() bool {
	return f.Misreported+f.ValidRejected+f.DuplicateApplies+f.Lost > 0
}

// Lines are the figures as the suite prints them.
func (f Figures) Lines() []string {
	return []string{
		fmt.Sprintf("writes_misreported: %d", f.Misreported),
		fmt.Sprintf("valid_writes_rejected: %d", f.ValidRejected),
		fmt.Sprintf("duplicate_applies: %d", f.DuplicateApplies),
		fmt.Sprintf("writes_unknown: %d", f.Unknown),
		fmt.Sprintf("writes_unknown_committed: %d", f.UnknownCommitted),
		fmt.Sprintf("writes_lost: %d", f.Lost),
	}
}

// Judge compares what the writers were told (writes, in the order each
// writer sent them) with what the cluster did: history, every version
// with the request ID of the write that made it (merged from reads during
// the run: no version missing), and final, the model the nodes agree on
// afterwards. It is pure: the unit tests plant faults in its inputs.
//
// A write is misreported when it was reported refused or not committed
// and a version carries its ID; when it was reported committed and no
// version carries its ID, or one other than the version reported; or when
// it was acknowledged and its effect is missing from the final model
// although no later write of the same item may have changed it (that is
// also a lost write). Every write of the workload is valid when sent, so
// every refusal but a 429 is a valid write rejected.
func Judge(writes []WriteRecord, history []api.HistoryItem, final Model) Figures {
	var f Figures
	carried := map[string][]uint64{} // request ID → versions that carry it
	for _, h := range history {
		if h.Request != "" {
			carried[h.Request] = append(carried[h.Request], h.Version)
		}
	}
	ids := make([]string, 0, len(carried))
	for id := range carried {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		if v := carried[id]; len(v) > 1 {
			f.DuplicateApplies++
			f.Findings = append(f.Findings, fmt.Sprintf("duplicate apply: request %s made versions %v", id, v))
		}
	}

	misreported := map[int]bool{}
	flag := func(i int, why string) {
		if !misreported[i] {
			misreported[i] = true
			f.Misreported++
		}
		f.Findings = append(f.Findings, fmt.Sprintf("misreported: %s; %s", writes[i], why))
	}
	for i, w := range writes {
		f.Writes++
		in := carried[w.ID]
		switch w.Outcome {
		case Committed:
			f.Committed++
			if w.Duplicate {
				f.DuplicateAnswers++
			}
			switch {
			case len(in) == 0:
				flag(i, "no version carries its request ID")
			case !slices.Contains(in, w.Version):
				flag(i, fmt.Sprintf("its request ID made version %v", in))
			}
		case Refused, NotCommitted:
			if w.Outcome == Refused {
				f.Refused++
				if w.RateLimited {
					f.RateLimited++
				} else {
					f.ValidRejected++
					f.Findings = append(f.Findings, fmt.Sprintf("valid write rejected: %s", w))
				}
			} else {
				f.NotCommitted++
			}
			if len(in) > 0 {
				flag(i, fmt.Sprintf("its request ID made version %v", in))
			}
		default:
			f.Unknown++
			if len(in) > 0 {
				f.UnknownCommitted++
			}
		}
	}

	// The effect of each item's last write that may have changed it: one
	// acknowledged, one of unknown outcome, or one the history carries
	// whatever was reported (an earlier write's effect may be gone).
	last := map[string]int{}
	var order []string
	for i, w := range writes {
		if w.Outcome == Committed || w.Outcome == Unknown || len(carried[w.ID]) > 0 {
			if _, ok := last[w.key()]; !ok {
				order = append(order, w.key())
			}
			last[w.key()] = i
		}
	}
	for _, k := range order {
		i := last[k]
		w := writes[i]
		if w.Outcome != Committed {
			continue
		}
		if why := missingEffect(w, final); why != "" {
			f.Lost++
			flag(i, "lost: "+why)
		}
	}
	return f
}

// missingEffect says how final lacks w's effect, or "".
func missingEffect(w WriteRecord, final Model) string {
	servers, svc := final[w.Service]
	switch w.Kind {
	case KindAdd, KindEdit:
		weight, ok := servers[w.Server]
		switch {
		case !ok:
			return fmt.Sprintf("real server %s is not in the final model", w.Server)
		case weight != w.Weight:
			return fmt.Sprintf("real server %s has weight %d in the final model", w.Server, weight)
		}
	case KindDelete:
		if _, ok := servers[w.Server]; ok {
			return fmt.Sprintf("real server %s is still in the final model", w.Server)
		}
	case KindBulk:
		switch {
		case !svc:
			return "the service is not in the final model"
		case len(servers) != w.Servers:
			return fmt.Sprintf("the service has %d real servers in the final model", len(servers))
		}
	case KindDrop:
		if svc {
			return "the service is still in the final model"
		}
	}
	return ""
}

// History merges the history read from any node at any time, by version:
// a node's history is a prefix of the committed one, so two reads of one
// version must agree. Only versions after a given one are kept: a node
// that restarts and replays its log serves old versions for a while.
type History struct {
	mu        sync.Mutex
	after     uint64
	versions  map[uint64]api.HistoryItem
	conflicts []string
}

// NewHistory is an empty merge of the versions after the given one.
func NewHistory(after uint64) *History {
	return &History{after: after, versions: map[uint64]api.HistoryItem{}}
}

// Merge adds items (the summaries are cut to their first line).
func (h *History) Merge(node string, items []api.HistoryItem) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, it := range items {
		if it.Version <= h.after {
			continue
		}
		it.Summary, _, _ = strings.Cut(it.Summary, "\n")
		if had, ok := h.versions[it.Version]; ok {
			if had.Request != it.Request || had.Actor != it.Actor || had.Time != it.Time {
				h.conflicts = append(h.conflicts, fmt.Sprintf("version %d: request %q by %s, but %s says request %q by %s", it.Version, had.Request, had.Actor, node, it.Request, it.Actor))
			}
			continue
		}
		h.versions[it.Version] = it
	}
}

// Items are the merged versions, oldest first.
func (h *History) Items() []api.HistoryItem {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]api.HistoryItem, 0, len(h.versions))
	for _, it := range h.versions {
		out = append(out, it)
	}
	slices.SortFunc(out, func(a, b api.HistoryItem) int { return cmp.Compare(a.Version, b.Version) })
	return out
}

// Problems are the reasons the merge cannot be judged against: versions
// missing between the first kept and the newest read, and versions two
// nodes disagree on.
func (h *History) Problems() []string {
	items := h.Items()
	h.mu.Lock()
	defer h.mu.Unlock()
	out := slices.Clone(h.conflicts)
	prev := h.after
	for _, it := range items {
		if it.Version != prev+1 {
			out = append(out, fmt.Sprintf("versions %d to %d never read", prev+1, it.Version-1))
		}
		prev = it.Version
	}
	return out
}
