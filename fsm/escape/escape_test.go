package escape

import (
	"bytes"
	"strings"
	"testing"
)

func TestString(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"alice@prod-admin", "alice@prod-admin"},
		{`C:\path and "quotes" stay`, `C:\path and "quotes" stay`},
		{"grüße, 日本, 🙂", "grüße, 日本, 🙂"},
		{"red\x1b[31mtext\x1b[0m", `red\x1b[31mtext\x1b[0m`},
		{"title\x1b]0;pwned\x07", `title\x1b]0;pwned\a`},
		{"over\rwrite\b", `over\rwrite\b`},
		{"nul\x00del\x7f", `nul\x00del\x7f`},
		{"row\nforged\tcell", `row\nforged\tcell`},
		{"csi\u009b31m", `csi\u009b31m`},
		{"admin\u202enimda", `admin\u202enimda`},
		{"\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069", `\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069`},
		{"mark\u200e\u200f\u061c", `mark\u200e\u200f\u061c`},
		{"line\u2028para\u2029", `line\u2028para\u2029`},
		{"bad\xffbyte\xc3", `bad\xffbyte\xc3`},
		{"cut\xe2\x80", `cut\xe2\x80`},
	} {
		if got := String(tc.in); got != tc.want {
			t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestTextKeepsLayout(t *testing.T) {
	in := "a\tb\nc\x1b[2J\u202e\xff\n"
	want := "a\tb\nc\\x1b[2J\\u202e\\xff\n"
	if got := Text(in); got != want {
		t.Fatalf("Text(%q) = %q, want %q", in, got, want)
	}
	if Needed("plain\ttext\n") || !Needed("\u202e") || !Needed("\xff") {
		t.Fatal("Needed")
	}
}

// TestWriterKeepsRunesWhole: a rune cut between two writes is passed
// whole; a cut-off start with nothing after it is escaped at Flush.
func TestWriterKeepsRunesWhole(t *testing.T) {
	in := "é 日本 🙂 \u202e x\x1b"
	for cut := range len(in) + 1 {
		var out bytes.Buffer
		w := NewWriter(&out)
		if _, err := w.Write([]byte(in[:cut])); err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write([]byte(in[cut:])); err != nil {
			t.Fatal(err)
		}
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		if want := Text(in); out.String() != want {
			t.Fatalf("cut at %d: %q, want %q", cut, out.String(), want)
		}
	}
	var out bytes.Buffer
	w := NewWriter(&out)
	w.Write([]byte("end\xf0\x9f"))
	if strings.Contains(out.String(), `\x`) {
		t.Fatalf("escaped a rune start before it could be completed: %q", out.String())
	}
	w.Flush()
	if out.String() != `end\xf0\x9f` {
		t.Fatalf("after Flush: %q", out.String())
	}
}
