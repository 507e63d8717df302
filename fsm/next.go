//go:build next

package fsm

import (
	"fmt"
	"unicode/utf8"
)

// The next release, simulated for the rolling-upgrade test (build tag
// next): one protocol higher, it adds one harmless command, a cluster note. Type 99 is
// reserved for this simulation and never used by a real command.
const CmdNote CommandType = 99

// NoteProtocol is the protocol that introduced CmdNote.
const NoteProtocol = ECMPProtocol + 1

// CommandProtocol is the newest command protocol this build speaks. A command
// type introduced by protocol N is proposed only while every member
// gossips a protocol of at least N (the rolling-upgrade gate).
const CommandProtocol = NoteProtocol

// NotePayload sets (or, when empty, clears) the cluster's note.
type NotePayload struct {
	Text string `json:"text"`
}

// MaxNote bounds a note's length in bytes.
const MaxNote = 200

// laterCommands are the types this build adds to the base protocols. The
// note is ignorable: it changes nothing that another command or the
// kernel table depends on, so an older build may skip it and stay equal.
func laterCommands() []commandSpec {
	return []commandSpec{
		{typ: CmdNote, name: "note", since: NoteProtocol, ignorable: true, plan: decoded((*State).planNote)},
	}
}

func (s *State) planNote(_ Command, p NotePayload) (change, error) {
	if len(p.Text) > MaxNote || !utf8.ValidString(p.Text) {
		return change{}, fmt.Errorf("note: text: %d bytes or not UTF-8, want at most %d bytes of UTF-8", len(p.Text), MaxNote)
	}
	return change{annotate: map[string]string{"note": p.Text}}, nil
}
