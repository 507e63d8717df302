package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
)

const migrateData = "../../fsm/migrate/testdata/"

// runCLI runs ipvsman with args and stdin, returning stdout, stderr and
// the error main would print.
func runCLI(stdin string, args ...string) (string, string, error) {
	root := rootCmd(&globals{})
	root.SetArgs(args)
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetIn(strings.NewReader(stdin))
	err := root.Execute()
	return out.String(), errb.String(), err
}

// TestImportDryRun: the topology goes to stdout exactly as the golden
// file of the migrate package has it, the unmapped items to stderr, and no
// cluster is needed (no --api, no token).
func TestImportDryRun(t *testing.T) {
	for _, f := range []string{"ldirectord/web.cf", "keepalived/web/keepalived.conf", "ipvsadm/save.txt"} {
		file := migrateData + f
		out, errOut, err := runCLI("", "import", "--dry-run", file)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		want, err := os.ReadFile(file + ".golden.yaml")
		if err != nil {
			t.Fatal(err)
		}
		if out != string(want) {
			t.Errorf("%s: stdout\n%s\nwant\n%s", f, out, want)
		}
		items, err := os.ReadFile(file + ".unmapped")
		if err != nil {
			t.Fatal(err)
		}
		var wantErr strings.Builder
		for _, l := range strings.Split(strings.TrimSuffix(string(items), "\n"), "\n") {
			// the golden items name the file relative to testdata
			wantErr.WriteString("# not imported: " + migrateData + l + "\n")
		}
		if errOut != wantErr.String() {
			t.Errorf("%s: stderr\n%s\nwant\n%s", f, errOut, wantErr.String())
		}
	}
}

func TestImportDryRunIpvsadmOutputAndStdin(t *testing.T) {
	in := "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 2\n"
	out, errOut, err := runCLI(in, "import", "--dry-run", "-o", "ipvsadm", "-")
	if err != nil || out != in || errOut != "" {
		t.Errorf("stdin import: out %q err %q, %v; want %q", out, errOut, err, in)
	}
	_, _, err = runCLI("hello\n", "import", "--dry-run", "-")
	if err == nil || !strings.Contains(err.Error(), "--from") {
		t.Errorf("undetectable input: %v; want an error naming --from", err)
	}
	out, _, err = runCLI("virtual=10.0.0.1:80\n\treal=10.0.1.1:80 masq\n", "import", "--dry-run", "--from", "ldirectord", "-")
	if err != nil || !strings.Contains(out, "10.0.1.1") {
		t.Errorf("--from ldirectord: %q, %v", out, err)
	}
	if _, _, err = runCLI(in, "import", "--dry-run", "--from", "haproxy", "-"); err == nil || !strings.Contains(err.Error(), `"haproxy"`) {
		t.Errorf("--from haproxy: %v", err)
	}
	if _, _, err = runCLI(in, "import", "--dry-run", "-o", "topo", "-"); err == nil || !strings.Contains(err.Error(), "topo") {
		t.Errorf("-o topo: %v", err)
	}
}

// TestImportStrict: an unmapped item fails the command, prints nothing on
// stdout and sends nothing to the cluster; a clean file passes.
func TestImportStrict(t *testing.T) {
	var got []api.ApplyRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req api.ApplyRequest
		_ = json.NewDecoder(r.Body).Decode(&req)
		got = append(got, req)
		_ = json.NewEncoder(w).Encode(api.ApplyResponse{Diff: fsm.DiffConfig(fsm.NewConfig(), req.Config), Result: fsm.Result{Version: 7, Changed: true}})
	}))
	t.Cleanup(srv.Close)
	for _, dry := range []bool{true, false} {
		args := []string{"--api", srv.URL, "--token", "x", "import", "--strict", migrateData + "ldirectord/mail.cf"}
		if dry {
			args = append(args, "--dry-run")
		}
		out, errOut, err := runCLI("", args...)
		if err == nil || !strings.Contains(err.Error(), "--strict: 3 items") || out != "" || !strings.Contains(errOut, "# not imported: ") {
			t.Errorf("dry %v: out %q err %v stderr %q", dry, out, err, errOut)
		}
	}
	if len(got) != 0 {
		t.Errorf("--strict sent %d requests to the cluster", len(got))
	}
	clean := filepath.Join(t.TempDir(), "rules")
	if err := os.WriteFile(clean, []byte("-A -f 7 -6 -s sh -b sh-port\n-a -f 7 -6 -r [2001:db8::7]:0 -i -w 3\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, err := runCLI("", "--api", srv.URL, "--token", "x", "import", "--strict", "--reason", "from lb1", clean)
	if err != nil || errOut != "" {
		t.Fatalf("clean import: %v %q", err, errOut)
	}
	if len(got) != 1 || got[0].Reason != "from lb1" || got[0].DryRun || got[0].Config.Services["fwmark6:7"] == nil {
		t.Fatalf("request: %+v", got)
	}
	if !strings.Contains(out, "fwmark6:7") || !strings.HasSuffix(out, "committed as version 7\n") {
		t.Errorf("stdout %q: want the diff and the version", out)
	}
}
