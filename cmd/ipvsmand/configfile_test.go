package main

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestConfigArgs(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "ipvsmand.conf")
	text := `# this node
--node-id=d1
--log-level debug
raft-addr = 192.0.2.11:7000
notify-leader = "logger -t ipvsman leader $IPVSMAN_NODE"
ipvs-exclusive

  track-address=10.0.0.1
`
	if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := configArgs(file)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"--node-id=d1", "--log-level=debug", "--raft-addr=192.0.2.11:7000", "--notify-leader=logger -t ipvsman leader $IPVSMAN_NODE", "--ipvs-exclusive", "--track-address=10.0.0.1"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("args:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	for _, bad := range []struct{ text, want string }{
		{"config = other.conf\n", "cannot name another"},
		{"= value\n", `line 1: "= value"`},
	} {
		if err := os.WriteFile(file, []byte(bad.text), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := configArgs(file); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: error %v, want one saying %q", bad.text, err, bad.want)
		}
	}
	if _, err := configArgs(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Errorf("a missing file: %v", err)
	}
}

// TestExampleConfigNamesRealFlags: every setting examples/ipvsmand.conf
// shows, commented out, is a flag of the daemon and parses, and the file
// as shipped (all commented) sets nothing.
func TestExampleConfigNamesRealFlags(t *testing.T) {
	const example = "../../examples/ipvsmand.conf"
	b, err := os.ReadFile(example)
	if err != nil {
		t.Fatal(err)
	}
	if _, values, err := loadOptions(nil, example); err != nil {
		t.Fatal(err)
	} else if _, defaults, _ := loadOptions(nil, ""); !maps.Equal(values, defaults) {
		t.Error("the example as shipped changes settings")
	}
	var lines []string
	for _, l := range strings.Split(string(b), "\n") {
		if s, ok := strings.CutPrefix(l, "#"); ok && s != "" && !strings.HasPrefix(s, " ") {
			lines = append(lines, s)
		}
	}
	if len(lines) < 5 {
		t.Fatalf("only %d settings shown", len(lines))
	}
	file := filepath.Join(t.TempDir(), "uncommented.conf")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := loadOptions(nil, file); err != nil {
		t.Errorf("the settings the example shows: %v", err)
	}
}
