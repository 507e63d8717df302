package ipvsadm

import (
	"bytes"
	"slices"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

var opKinds = []fsm.OpKind{fsm.OpAddService, fsm.OpEditService, fsm.OpDeleteService,
	fsm.OpAddServer, fsm.OpEditServer, fsm.OpDeleteServer, fsm.OpClear, fsm.OpSetTimeouts}

// FuzzParse splits its input on spaces (keeping empty arguments) and checks
// that Parse never panics, that errors say something, and that what it
// accepts is one well-formed op that fsm can apply or refuse without panic.
func FuzzParse(f *testing.F) {
	for _, s := range append(slices.Clone(fixture),
		"", "-Ln", "-L --stats --exact -t 10.0.0.1:80", "-A -t [2001:db8::1]:80 -p -M 64 -b sh-port,,",
		"-a -t 10.0.0.1:80 -r 10.3.0.10:http -i --tun-type ipip -x 1 -y 2", "--set 1 2 3", "-At10.0.0.1:80 -p600",
		"-Z -f 1 -6", "-S -n", "-e -u 10.0.0.1:53 -r ::9 -w 65536", "-- -A", "-p", "-w",
		"-a -t 10.0.0.1:80 -r 10.3.0.12 -i --tun-type gue --tun-port 6080 --tun-csum",
		"-e -t 10.0.0.1:80 -r 10.3.0.10 -i --tun-type=gre --tun-remcsum", "-a -f 7 -r ::1 -i --tun-port 1 --tun-nocsum",
		"-L -n --tun-info") {
		f.Add(s)
	}
	base := fixtureConfig(f)
	f.Fuzz(func(t *testing.T, s string) {
		cmd, err := Parse(strings.Split(s, " "))
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("Parse(%q): empty error", s)
			}
			return
		}
		if cmd.Action != ActionOps {
			if len(cmd.Ops) != 0 {
				t.Fatalf("Parse(%q): action %s with ops", s, cmd.Action)
			}
			if cmd.Action == ActionList {
				var b bytes.Buffer
				_ = FormatList(&b, header, base, fixtureStats, cmd.List, fakeResolver{})
			}
			return
		}
		if len(cmd.Ops) != 1 || !slices.Contains(opKinds, cmd.Ops[0].Kind) {
			t.Fatalf("Parse(%q): ops %s, want one op of a known kind", s, asJSON(cmd.Ops))
		}
		_, _ = fsm.ApplyOps(base, cmd.Ops)
	})
}

// FuzzParseRestore checks that ParseRestore never panics and that whatever
// it accepts and fsm applies saves to a text that restores to itself.
func FuzzParseRestore(f *testing.F) {
	f.Add(wantSave)
	f.Add(wantSaveTunnel)
	f.Add("-A -u 10.0.0.1:53\n-a -u 10.0.0.1:53 -r 10.3.0.1 -i --tun-type gue --tun-port 1 --tun-remcsum\n-e -u 10.0.0.1:53 -r 10.3.0.1 -i --tun-type gre\n")
	f.Add("# c\n-A -t 10.0.0.1:0 -p\n-a -t 10.0.0.1:0 -r [::ffff:10.3.0.1]:9 -m -y 5\n")
	f.Add("-A -t 10.0.0.1:80 -s sh -b flag-3,flag-1\n-E -t 10.0.0.1:80 -s mh -b flag-2 -p 5 -M 255.255.0.0\n")
	f.Add("-A -f 3 -6 -p -M 64\n-a -f 3 -6 -r [::1]:5 -i -w 0\n-a -f 3 -6 -r 10.0.0.1 -i\n")
	f.Add(wantGroupSave)
	f.Add("-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.3.0.1 -g\n#ipvsman group add tcp:10.0.0.1:80 tcp:10.0.0.1:81 fwmark:2\n")
	f.Fuzz(func(t *testing.T, in string) {
		ops, err := ParseRestore(strings.NewReader(in))
		if err != nil {
			return
		}
		cfg, err := fsm.ApplyOps(fsm.NewConfig(), ops)
		if err != nil {
			return
		}
		var saved bytes.Buffer
		if err := FormatSave(&saved, cfg, true, nil); err != nil {
			t.Fatal(err)
		}
		ops2, err := ParseRestore(bytes.NewReader(saved.Bytes()))
		if err != nil {
			t.Fatalf("restoring our own save of %q: %v\n%s", in, err, saved.String())
		}
		cfg2, err := fsm.ApplyOps(fsm.NewConfig(), ops2)
		if err != nil {
			t.Fatalf("applying our own save of %q: %v\n%s", in, err, saved.String())
		}
		var again bytes.Buffer
		if err := FormatSave(&again, cfg2, true, nil); err != nil {
			t.Fatal(err)
		}
		if again.String() != saved.String() {
			t.Fatalf("save of %q does not restore to itself:\nfirst:\n%s\nsecond:\n%s", in, saved.String(), again.String())
		}
		for _, o := range []ListOptions{{}, {Stats: true}, {Rate: true, Exact: true}, {Thresholds: true}, {Persistent: true}, {TunInfo: true}} {
			var b bytes.Buffer
			if err := FormatList(&b, header, cfg, nil, o, fakeResolver{}); err != nil {
				t.Fatal(err)
			}
		}
	})
}
