package cluster

import (
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// summaryWindow is how often a member's repeated complaints reach the log:
// a dead member makes Raft complain about it many times a second (every
// heartbeat, append and lease check), which buries every other line.
const summaryWindow = time.Minute

// summary lets the first complaint about a member through, then at most
// one line per member per window, carrying how many lines it stands for.
// It is shared by every logger derived from one adapter.
type summary struct {
	now    func() time.Time
	mu     sync.Mutex
	byKey  map[string]*complaints
	idByAd map[string]string // Raft address → server ID, learnt from the lines
}

type complaints struct {
	printed time.Time
	held    int // lines withheld since printed
}

func newSummary(now func() time.Time) *summary {
	return &summary{now: now, byKey: map[string]*complaints{}, idByAd: map[string]string{}}
}

// member names the Raft member a line is about, or "" when it names none.
// Raft names a peer by its whole entry, its ID or only its address; an
// address is turned into the ID once a line has shown both, so one dead
// member is one key.
func (s *summary) member(args []any) string {
	for i := 0; i+1 < len(args); i += 2 {
		k, _ := args[i].(string)
		if k != "peer" && k != "server-id" {
			continue
		}
		switch v := args[i+1].(type) {
		case raft.Server:
			s.idByAd[string(v.Address)] = string(v.ID)
			return string(v.ID)
		case raft.ServerID:
			return string(v)
		case raft.ServerAddress:
			if id, ok := s.idByAd[string(v)]; ok {
				return id
			}
			return string(v)
		default:
			return fmt.Sprint(v)
		}
	}
	return ""
}

// admit says whether a line about a member goes to the log, and how many
// lines about that member it stands for (0: it stands only for itself).
func (s *summary) admit(args []any) (print bool, repeated int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := s.member(args)
	if key == "" {
		return true, 0
	}
	now := s.now()
	c := s.byKey[key]
	if c == nil {
		c = &complaints{}
		s.byKey[key] = c
	} else if now.Sub(c.printed) < summaryWindow {
		c.held++
		return false, 0
	}
	repeated = 0
	if c.held > 0 {
		repeated = c.held + 1
	}
	c.printed, c.held = now, 0
	return true, repeated
}
