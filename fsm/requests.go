package fsm

import (
	"fmt"
	"strings"
)

// RequestLimit is how many request IDs the state remembers, oldest
// forgotten first. A client retries a write only within its own deadline
// (minutes at most), and far fewer writes than this commit in that time.
// Changing it changes snapshots: it is part of the log's meaning.
const RequestLimit = 10000

// maxRequestID bounds a request ID; it is printed by history, so only
// characters that need no escaping are allowed.
const maxRequestID = 64

// ValidateRequestID checks a client's request ID: 1 to 64 characters of
// letters, digits and ". _ : -".
func ValidateRequestID(id string) error {
	if id == "" || len(id) > maxRequestID {
		return fmt.Errorf("request ID %q: want 1 to %d characters", id, maxRequestID)
	}
	for _, r := range id {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '.', r == '_', r == ':', r == '-':
		default:
			return fmt.Errorf("request ID %q: character %q: want letters, digits and . _ : -", id, r)
		}
	}
	return nil
}

// Requested returns the remembered outcome of request id, marked as a
// duplicate, if a command with that ID was applied.
func (s *State) Requested(id string) (Result, bool) {
	if id == "" {
		return Result{}, false
	}
	r, ok := s.Requests[id]
	if ok {
		r.Duplicate = true
	}
	return r, ok
}

// maxRememberedSummary bounds the summary kept with a request: a retry
// learns the outcome and the version; the full diff is in the history.
const maxRememberedSummary = 20

// remember records the outcome of request id and forgets the oldest IDs
// past RequestLimit. It trims in batches so that the order list is not
// copied on every command.
func (s *State) remember(id string, r Result) {
	if id == "" {
		return
	}
	r.Request = id
	if lines := strings.Split(r.Summary, "\n"); len(lines) > maxRememberedSummary {
		r.Summary = strings.Join(lines[:maxRememberedSummary], "\n") + fmt.Sprintf("\n… and %d more changes (see ipvsman history)", len(lines)-maxRememberedSummary)
	}
	if s.Requests == nil {
		s.Requests = map[string]Result{}
	}
	s.Requests[id] = r
	s.RequestOrder = append(s.RequestOrder, id)
	if over := len(s.RequestOrder) - RequestLimit; over >= RequestLimit/10 {
		for _, old := range s.RequestOrder[:over] {
			delete(s.Requests, old)
		}
		s.RequestOrder = append([]string(nil), s.RequestOrder[over:]...)
	}
}
