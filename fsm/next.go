//go:build next

package fsm

import (
	"fmt"
	"unicode/utf8"
)

// The next release, simulated for the rolling-upgrade test (build tag
// next): protocol 3 adds one harmless command, a cluster note. Type 99 is
// reserved for this simulation and never used by a real command.
const CmdNote CommandType = 99

// NotePayload sets (or, when empty, clears) the cluster's note.
type NotePayload struct {
	Text string `json:"text"`
}

// MaxNote bounds a note's length in bytes.
const MaxNote = 200

func init() {
	register(CmdNote, "note", RequestProtocol+1, true, func(s *State, cmd Command) (change, error) {
		p, err := decodePayload[NotePayload](cmd)
		if err != nil {
			return change{}, err
		}
		if len(p.Text) > MaxNote || !utf8.ValidString(p.Text) {
			return change{}, fmt.Errorf("note: text: %d bytes or not UTF-8, want at most %d bytes of UTF-8", len(p.Text), MaxNote)
		}
		return change{annotate: map[string]string{"note": p.Text}}, nil
	})
}
