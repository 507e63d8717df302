// Package escape makes text that came from a client or from the log safe
// to print on a terminal: every rune a terminal or a text renderer would
// act on instead of showing is written as a Go-style escape, and every
// byte that is not UTF-8 as \xNN. Everything else, backslashes included,
// passes unchanged, so ordinary text reads as it was written.
//
// What is escaped, and why:
//
//   - C0 controls and DEL (\x1b starts terminal sequences that recolour,
//     move the cursor, retitle the window or write the clipboard; \r
//     overwrites a line; \b erases): as \a \b \f \n \r \t \v or \xNN.
//   - C1 controls, U+0080–U+009F (U+009B is an 8-bit CSI, acted on by
//     terminals that read it as UTF-8): as \u0080.
//   - Bidirectional overrides, embeddings, isolates and marks (U+202A–
//     U+202E, U+2066–U+2069, U+200E, U+200F, U+061C) and the line and
//     paragraph separators U+2028 and U+2029: they reorder or break what
//     follows them, so "alice" can be made to read as something else.
//   - Bytes that are not UTF-8: as \xNN.
//
// String is for one field on one line (an actor, a table cell) and
// escapes the newline and the tab too: a field must not forge a row.
// Text and Writer keep them, for whole outputs. Neither escapes
// a backslash, so an escape in the output may also have been typed; the
// JSON forms of the API and of the CLI's --json carry the exact value.
package escape

import (
	"io"
	"unicode/utf8"
)

// String is s with every rune that could act on a terminal escaped,
// newlines and tabs included.
func String(s string) string { return escape(s, false) }

// Text is s with every rune that could act on a terminal escaped; newlines
// and tabs are kept.
func Text(s string) string { return escape(s, true) }

// Needed reports whether Text would change s.
func Needed(s string) bool { return Text(s) != s }

func escape(s string, layout bool) string {
	if clean(s, layout) {
		return s
	}
	return string(appendEscaped(make([]byte, 0, len(s)+16), s, layout))
}

// clean reports, without allocating, that s has nothing to escape.
func clean(s string, layout bool) bool {
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b < 0x20 && !(layout && (b == '\n' || b == '\t')) || b == 0x7f {
				return false
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || offending(r) {
			return false
		}
		i += size
	}
	return true
}

// offending reports the non-ASCII runes a terminal or a renderer acts on.
func offending(r rune) bool {
	switch {
	case r >= 0x80 && r <= 0x9f: // C1 controls
		return true
	case r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069: // embeddings, overrides, isolates
		return true
	case r == 0x200e, r == 0x200f, r == 0x061c: // directional marks
		return true
	case r == 0x2028, r == 0x2029: // line and paragraph separators
		return true
	}
	return false
}

const hex = "0123456789abcdef"

func appendEscaped(dst []byte, s string, layout bool) []byte {
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			i++
			switch {
			case layout && (b == '\n' || b == '\t'), b >= 0x20 && b != 0x7f:
				dst = append(dst, b)
			case b == '\a':
				dst = append(dst, `\a`...)
			case b == '\b':
				dst = append(dst, `\b`...)
			case b == '\f':
				dst = append(dst, `\f`...)
			case b == '\n':
				dst = append(dst, `\n`...)
			case b == '\r':
				dst = append(dst, `\r`...)
			case b == '\t':
				dst = append(dst, `\t`...)
			case b == '\v':
				dst = append(dst, `\v`...)
			default:
				dst = append(dst, '\\', 'x', hex[b>>4], hex[b&0xf])
			}
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, '\\', 'x', hex[b>>4], hex[b&0xf])
		case offending(r):
			dst = append(dst, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
		default:
			dst = append(dst, s[i:i+size]...)
		}
		i += size
	}
	return dst
}

// Writer escapes everything written through it as Text does. A rune split
// across two writes is escaped whole: the bytes that may begin one wait
// for the next write, or for Flush. It is not safe for concurrent use.
type Writer struct {
	w       io.Writer
	pending []byte // the start of a rune the last write cut off
	buf     []byte
}

// NewWriter escapes what is written to w.
func NewWriter(w io.Writer) *Writer { return &Writer{w: w} }

// Write escapes p and writes it; it reports all of p written unless the
// underlying writer fails.
func (w *Writer) Write(p []byte) (int, error) {
	data := p
	if len(w.pending) > 0 {
		data = append(w.pending, p...)
		w.pending = nil
	}
	// Hold back a tail that is the valid start of a longer rune.
	keep := 0
	for k := 1; k < utf8.UTFMax && k <= len(data); k++ {
		if c := data[len(data)-k]; c >= 0xc0 {
			if !utf8.FullRune(data[len(data)-k:]) {
				keep = k
			}
			break
		} else if c < 0x80 {
			break
		}
	}
	if keep > 0 {
		w.pending = append([]byte(nil), data[len(data)-keep:]...)
		data = data[:len(data)-keep]
	}
	w.buf = appendEscaped(w.buf[:0], string(data), true)
	if _, err := w.w.Write(w.buf); err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes a rune start still held back, escaped as the bytes it is:
// nothing completes it any more.
func (w *Writer) Flush() error {
	if len(w.pending) == 0 {
		return nil
	}
	w.buf = appendEscaped(w.buf[:0], string(w.pending), true)
	w.pending = nil
	_, err := w.w.Write(w.buf)
	return err
}
