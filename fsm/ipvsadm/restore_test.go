package ipvsadm

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/ipvsman/ipvsman/fsm"
)

// TestRoundTrip: FormatSave → ParseRestore → ApplyOps → FormatSave gives
// the same text and the same model, for a config with TCP, UDP, fwmark
// (IPv4 and IPv6), IPv6, persistence with netmasks, scheduler flags,
// one-packet scheduling, thresholds and all three forwarding methods, and
// for one with every tunnel type and checksum mode.
func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name  string
		lines []string
		want  string
	}{{"fixture", fixture, wantSave}, {"tunnels", tunnelFixture, wantSaveTunnel}} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := mustApply(t, fsm.NewConfig(), tc.lines...)
			var saved bytes.Buffer
			if err := FormatSave(&saved, cfg, true, nil); err != nil {
				t.Fatal(err)
			}
			diffText(t, saved.String(), tc.want)

			ops, err := ParseRestore(strings.NewReader(saved.String()))
			if err != nil {
				t.Fatal(err)
			}
			restored, err := fsm.ApplyOps(fsm.NewConfig(), ops)
			if err != nil {
				t.Fatal(err)
			}
			var again bytes.Buffer
			if err := FormatSave(&again, restored, true, nil); err != nil {
				t.Fatal(err)
			}
			diffText(t, again.String(), saved.String())
			if g, w := asJSON(restored), asJSON(cfg); g != w {
				t.Errorf("restored model differs\n got %s\nwant %s", g, w)
			}
		})
	}
}

func TestParseRestore(t *testing.T) {
	in := "# saved by ipvsadm -S -n\n" +
		"\n" +
		"-A -t 10.0.0.1:80 -s rr   # the web service\n" +
		"ipvsadm -a -t 10.0.0.1:80 -r 10.3.0.10:80 -g -w 1\r\n" +
		"\t-a\t-t 10.0.0.1:80 -r 10.3.0.11:80 -m -w 2\n" +
		"   \n" +
		"-C\n" +
		"-A -f 1 -6 -s wlc" // no final newline
	ops, err := ParseRestore(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, op := range ops {
		kinds = append(kinds, string(op.Kind))
	}
	want := "add-service add-server add-server clear add-service"
	if got := strings.Join(kinds, " "); got != want {
		t.Fatalf("op kinds = %s, want %s", got, want)
	}
	if ops[2].Server.Forward != fsm.Masquerade || ops[2].Server.Weight != 2 {
		t.Errorf("third op server = %s, want masq weight 2", asJSON(ops[2].Server))
	}
	if ops[4].Service.Key != fwm1v6 {
		t.Errorf("last op key = %v, want %v", ops[4].Service.Key, fwm1v6)
	}

	ops, err = ParseRestore(strings.NewReader(" # nothing\n\n"))
	if err != nil || len(ops) != 0 {
		t.Errorf("comments only: %d ops, %v; want none", len(ops), err)
	}
}

func TestParseRestoreErrors(t *testing.T) {
	tests := []struct {
		in   string
		want string
	}{
		{"-A -t 10.0.0.1:80\n\n-a -t 10.0.0.1:80 -r 10.3.0.10 -w abc\n", `line 3: -w "abc": weight must be a number`},
		{"-A -t www:80\n", `line 1: -t "www:80": address "www": want a numeric IPv4 or IPv6 address`},
		{"# c\n-L -n\n", `line 2: "-L -n": only -A -E -D -C -a -e -d may appear in restore input`},
		{"-R\n", `line 1: "-R": only -A -E -D -C -a -e -d may appear in restore input`},
		{"-A -t 10.0.0.1:80 --bogus\n", `line 1: unknown option "--bogus"`},
		{"-A -t 10.0.0.1:80\nipvsadm\n-a -t 10.0.0.1:80\n", `line 3: -a needs -r`},
		{"-A -t 10.0.0.1:80\n-A " + strings.Repeat("x", maxRestoreLine) + "\n", `line 2: bufio.Scanner: token too long`},
	}
	for _, tt := range tests {
		_, err := ParseRestore(strings.NewReader(tt.in))
		if err == nil || err.Error() != tt.want {
			t.Errorf("ParseRestore(%.40q): error %v, want %s", tt.in, err, tt.want)
		}
	}
	_, err := ParseRestore(iotest.ErrReader(errWrite))
	if !errors.Is(err, errWrite) || !strings.HasPrefix(err.Error(), "line 1: ") {
		t.Errorf("read error: %v, want it wrapped with the line", err)
	}
}
