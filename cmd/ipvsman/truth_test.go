package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// --timeout is a global flag wherever it stands: after ipvsadm's arguments
// and before a subcommand alike. It once ended the ipvsadm arguments'
// parse ("unexpected argument") and sent "--timeout 5s cluster status" to
// ipvsadm's parser.
func TestTimeoutAnywhereOnTheLine(t *testing.T) {
	for _, c := range []struct {
		args    []string
		ipvsadm bool
		rest    []string
	}{
		{[]string{"-L", "-n", "--timeout", "5s"}, true, []string{"-L", "-n"}},
		{[]string{"--timeout=5s", "-L", "-n"}, true, []string{"-L", "-n"}},
		{[]string{"-R", "--allow-empty", "--timeout", "5s"}, true, []string{"-R"}},
		{[]string{"--timeout", "5s", "cluster", "status"}, false, []string{"cluster", "status"}},
		{[]string{"-L", "--timeout", "-n", "--timeout", "5s"}, true, []string{"-L", "--timeout", "-n"}},
		{[]string{"--timeout", "5s", "-L", "--timeout"}, true, []string{"-L", "--timeout"}},
	} {
		g := &globals{}
		ipvsadm, rest, err := g.split(c.args)
		if err != nil {
			t.Fatalf("%q: %v", c.args, err)
		}
		if ipvsadm != c.ipvsadm || !slices.Equal(rest, c.rest) || g.timeout != 5*time.Second {
			t.Errorf("%q: ipvsadm %v rest %q timeout %s, want %v %q 5s", c.args, ipvsadm, rest, g.timeout, c.ipvsadm, c.rest)
		}
	}
	if _, _, err := (&globals{}).split([]string{"-L", "--timeout=soon"}); err == nil || !strings.Contains(err.Error(), `--timeout "soon"`) {
		t.Errorf("a bad duration: %v, want an error naming the flag and the value", err)
	}
	// The subcommand sees it through cobra.
	root := rootCmd(&globals{})
	root.SetArgs([]string{"--timeout", "5s", "version"})
	if err := root.Execute(); err != nil {
		t.Errorf("--timeout before a subcommand: %v", err)
	}
}

// An import that converts nothing is an error and applies nothing: an
// ipvsadm -S file saved without -n (every line "# not imported") once
// replaced the table with an empty one and exited 0.
func TestImportOfNothingIsAnError(t *testing.T) {
	dir := t.TempDir()
	named := filepath.Join(dir, "rules.save")
	if err := os.WriteFile(named, []byte("-A -t www.example.com:http -s wlc\n-a -t www.example.com:http -r web1.example.com:http -g -w 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "keepalived.conf")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{
		{"import", "--from", "ipvsadm", named},
		{"import", "--dry-run", "--from", "ipvsadm", named},
		{"import", "--from", "keepalived", empty},
	} {
		// No cluster is reachable: the error must come before any write.
		_, _, err := runCLI("", append([]string{"--api", "127.0.0.1:1", "--token", "t0123456789abcdef"}, args...)...)
		if err == nil || !strings.Contains(err.Error(), "nothing converted") || !strings.Contains(err.Error(), "nothing applied") {
			t.Errorf("%q: %v, want \"nothing converted ... nothing applied\"", args, err)
		}
	}
}
