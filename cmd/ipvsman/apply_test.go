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

// fakeApply is an API that answers every apply with its diff against an
// empty table and records the requests.
func fakeApply(t *testing.T) (url string, got *[]api.ApplyRequest) {
	t.Helper()
	var reqs []api.ApplyRequest
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/config" {
			http.Error(w, "unexpected "+r.Method+" "+r.URL.Path, http.StatusNotFound)
			return
		}
		var req api.ApplyRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		reqs = append(reqs, req)
		_ = json.NewEncoder(w).Encode(api.ApplyResponse{Diff: fsm.DiffConfig(fsm.NewConfig(), req.Config), Result: fsm.Result{Version: 3, Changed: true}})
	}))
	t.Cleanup(srv.Close)
	return srv.URL, &reqs
}

// apply -f - reads the topology from standard input: the line form, or
// the YAML form with --yaml (what export prints, so that export | edit |
// apply works), and the history's reason names it.
func TestApplyFromStandardInput(t *testing.T) {
	url, got := fakeApply(t)
	line := `Web:t:10.0.0.1:80 ["web1-2:10.3.0.10+:8080"] (-m -swrr)` + "\n"
	out, errOut, err := runCLI(line, "--api", url, "--token", "x", "apply", "-f", "-")
	if err != nil || errOut != "" {
		t.Fatalf("apply -f -: %v, stderr %q", err, errOut)
	}
	if len(*got) != 1 {
		t.Fatalf("%d requests, want 1", len(*got))
	}
	req := (*got)[0]
	svc := req.Config.Services["tcp:10.0.0.1:80"]
	if svc == nil || len(svc.Servers) != 2 || svc.Scheduler != "wrr" || req.Reason != "apply standard input" {
		t.Fatalf("request: reason %q, config %+v; want tcp:10.0.0.1:80 wrr with 2 servers, reason \"apply standard input\"", req.Reason, req.Config.Services)
	}
	if !strings.HasSuffix(out, "committed as version 3\n") {
		t.Errorf("stdout %q: want the diff and the version", out)
	}

	yaml := "services:\n  - {protocol: udp, address: 10.0.0.2, port: 53, servers: [{address: 10.3.0.20}]}\n"
	if _, _, err := runCLI(yaml, "--api", url, "--token", "x", "apply", "--yaml", "-f", "-"); err != nil {
		t.Fatalf("apply --yaml -f -: %v", err)
	}
	if len(*got) != 2 || (*got)[1].Config.Services["udp:10.0.0.2:53"] == nil {
		t.Fatalf("apply --yaml -f -: requests %+v, want udp:10.0.0.2:53", *got)
	}
}

// A bad topology, from a file or standard input, is refused before
// anything is sent, each problem named once by its input and line.
func TestApplyBadInputNamesItOnce(t *testing.T) {
	url, got := fakeApply(t)
	bad := `X:t:10.0.0.1:80 ["a:10.0.0.x"]` + "\n"
	file := filepath.Join(t.TempDir(), "lb.topo")
	if err := os.WriteFile(file, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"apply", "-f", "-"}, `standard input: line 1: real server "a:10.0.0.x": address "10.0.0.x": not an IP address`},
		{[]string{"apply", "-f", file}, file + `: line 1: real server "a:10.0.0.x": address "10.0.0.x": not an IP address`},
		{[]string{"apply", "--yaml", "-f", "-"}, "standard input: line 1: "},
		{[]string{"apply", "-f", filepath.Join(t.TempDir(), "none.topo")}, "none.topo"},
		{[]string{"apply"}, "-f FILE: missing"},
	} {
		_, _, err := runCLI(bad, append([]string{"--api", url, "--token", "x"}, c.args...)...)
		if err == nil || !strings.HasPrefix(err.Error(), c.want) && !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.args, err, c.want)
		}
		if err != nil && strings.Count(err.Error(), "line 1:") > 1 {
			t.Errorf("%q: %v: the input is named more than once", c.args, err)
		}
	}
	if len(*got) != 0 {
		t.Errorf("bad input sent %d requests to the cluster", len(*got))
	}
}

// ipvsman -h shows ipvsadm's options as well as the subcommands: the
// language is parsed before cobra sees the line, so cobra's own help alone
// would leave it out.
func TestHelpShowsIpvsadmOptions(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"help"}} {
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 0 {
			t.Fatalf("%q: exit %d, stderr %q", args, code, errOut.String())
		}
		for _, want := range []string{"--add-service     -A", "--masquerading -m", "--set tcp tcpfin udp", "--tun-type", "Available Commands:", "cluster ", "apply ", "--token-file"} {
			if !strings.Contains(out.String(), want) {
				t.Errorf("%q: help lacks %q:\n%s", args, want, out.String())
			}
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"cluster", "--help"}, &out, &errOut); code != 0 || strings.Contains(out.String(), "--add-service") {
		t.Errorf("cluster --help: exit %d; a subcommand's help shows its own usage, not ipvsadm's:\n%s", code, out.String())
	}
}
