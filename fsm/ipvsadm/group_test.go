package ipvsadm

import (
	"bytes"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

// groupConfig is a web service on 10.0.0.1:80 also served on 10.0.0.2:80
// and fwmark 7, with two real servers, and a service without a group.
func groupConfig(t *testing.T) *fsm.Config {
	t.Helper()
	cfg := mustApply(t, fsm.NewConfig(),
		"-A -t 10.0.0.1:80 -s wrr -p 600",
		"-a -t 10.0.0.1:80 -r 10.3.0.10 -g -w 3",
		"-a -t 10.0.0.1:80 -r 10.4.0.11:8080 -m -w 2 -x 100",
		"-A -u 10.0.0.9:53 -s rr",
		"-a -u 10.0.0.9:53 -r 10.3.0.53 -g",
	)
	cfg, err := fsm.ApplyOps(cfg, []fsm.Op{{Kind: fsm.OpGroupAdd, ServiceKey: key(t, "tcp:10.0.0.1:80"),
		Group: []fsm.ServiceKey{key(t, "tcp:10.0.0.2:80"), key(t, "fwmark:7")}}})
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func key(t *testing.T, s string) fsm.ServiceKey {
	t.Helper()
	k, err := fsm.ParseServiceKey(s)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const wantGroupSave = `-A -t 10.0.0.1:80 -s wrr -p 600
-a -t 10.0.0.1:80 -r 10.3.0.10:80 -g -w 3
-a -t 10.0.0.1:80 -r 10.4.0.11:8080 -m -w 2 -x 100
-A -t 10.0.0.2:80 -s wrr -p 600
-a -t 10.0.0.2:80 -r 10.3.0.10:80 -g -w 3
-a -t 10.0.0.2:80 -r 10.4.0.11:8080 -m -w 2 -x 100
-A -u 10.0.0.9:53 -s rr
-a -u 10.0.0.9:53 -r 10.3.0.53:53 -g -w 1
-A -f 7 -s wrr -p 600
-a -f 7 -r 10.3.0.10:80 -g -w 3
-a -f 7 -r 10.4.0.11:8080 -m -w 2 -x 100
#ipvsman group add tcp:10.0.0.1:80 fwmark:7 tcp:10.0.0.2:80
`

// -S writes every member as the kernels hold it, then the group's line;
// -R of that gives the same model back, one service with its group.
func TestSaveAndRestoreAGroup(t *testing.T) {
	cfg := groupConfig(t)
	var saved bytes.Buffer
	if err := FormatSave(&saved, cfg, true, nil); err != nil {
		t.Fatal(err)
	}
	diffText(t, saved.String(), wantGroupSave)
	ops, err := ParseRestore(strings.NewReader(saved.String()))
	if err != nil {
		t.Fatal(err)
	}
	if last := ops[len(ops)-1]; last.Kind != fsm.OpGroupAdd || len(ops) != 6 {
		t.Fatalf("ops %s", asJSON(ops))
	}
	restored, err := fsm.ApplyOps(fsm.NewConfig(), ops)
	if err != nil {
		t.Fatal(err)
	}
	if g, w := asJSON(restored), asJSON(cfg); g != w {
		t.Errorf("restored model differs\n got %s\nwant %s", g, w)
	}
	// -L lists every member as ipvsadm lists the kernel.
	var list bytes.Buffer
	if err := FormatList(&list, Header{Version: "1.2.1", Size: 4096}, cfg, nil, ListOptions{Numeric: true}, nil); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(list.String(), "  -> 10.3.0.10:80 "); n != 3 || !strings.Contains(list.String(), "FWM  7 wrr persistent 600") {
		t.Errorf("listing:\n%s", list.String())
	}
}

// A marker alone makes the group; a member whose lines differ from its
// service's, or that other lines edit, is refused with the line.
func TestRestoreGroupLines(t *testing.T) {
	base := "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.3.0.10 -g\n"
	ops, err := ParseRestore(strings.NewReader(base + "  #ipvsman group add tcp:10.0.0.1:80 tcp:10.0.0.3:80\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := fsm.ApplyOps(fsm.NewConfig(), ops)
	if err != nil {
		t.Fatal(err)
	}
	if g := cfg.Services["tcp:10.0.0.1:80"].Group; len(g) != 1 || g[0].String() != "tcp:10.0.0.3:80" {
		t.Fatalf("group %v", g)
	}
	for _, c := range []struct{ in, want string }{
		{base + "-A -t 10.0.0.3:80 -s wlc\n-a -t 10.0.0.3:80 -r 10.3.0.10 -g\n#ipvsman group add tcp:10.0.0.1:80 tcp:10.0.0.3:80\n",
			"line 5: group member tcp:10.0.0.3:80: its -A and -a lines differ from those of service tcp:10.0.0.1:80"},
		{base + "-A -t 10.0.0.3:80 -s rr\n#ipvsman group add tcp:10.0.0.1:80 tcp:10.0.0.3:80\n",
			"line 4: group member tcp:10.0.0.3:80: its -A and -a lines differ"},
		{base + "-A -t 10.0.0.3:80 -s rr\n-e -t 10.0.0.3:80 -r 10.3.0.10 -g -w 2\n#ipvsman group add tcp:10.0.0.1:80 tcp:10.0.0.3:80\n",
			"line 4: service tcp:10.0.0.3:80: edit-server on a group member (line 5 makes it one)"},
		{base + "#ipvsman group add tcp:10.0.0.1:80\n", `line 3: "#ipvsman group add tcp:10.0.0.1:80": want #ipvsman group add SERVICE MEMBER...`},
		{base + "#ipvsman group add tcp:10.0.0.1:80 tcp:10.0.0.3\n", "line 3: group: service \"tcp:10.0.0.3\""},
		{base + "#ipvsman group add tcp:10.0.0.1:80 fwmark:3\n#ipvsman group add tcp:10.0.0.1:80 fwmark:3\n", "line 4: group member fwmark:3: also on line 3"},
	} {
		if _, err := ParseRestore(strings.NewReader(c.in)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("input\n%s: error %v, want %q", c.in, err, c.want)
		}
	}
	// Any other comment is still a comment.
	if ops, err := ParseRestore(strings.NewReader(base + "# ipvsman group add tcp:10.0.0.1:80 tcp:10.0.0.3:80\n")); err != nil || len(ops) != 2 {
		t.Fatalf("a plain comment: %v %s", err, asJSON(ops))
	}
}
