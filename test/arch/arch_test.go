// Package arch holds the test that keeps the packages inside the lines the
// architecture draws: the replicated model, the Raft node, the kernel side
// and the VIP side know nothing of each other, so each can be read, tested
// and changed alone, and the operator's CLI links none of the server's
// modules. Only the daemon's wiring under cmd/ipvsmand may know every part.
package arch

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"sort"
	"strings"
	"testing"
)

const module = "github.com/ipvsman/ipvsman"

// pkg is what the rules need of one package: its module-relative path, what
// it imports (with its tests) and everything it links.
type pkg struct {
	Path    string
	Imports []string // direct imports of the package (not of its tests)
	Deps    []string // transitive dependencies of the package itself
}

// apart lists the trees that must not depend on each other, each with the
// trees it must never reach.
var apart = map[string][]string{
	"fsm":      {"cluster", "director", "vip", "cmd", "test"},
	"cluster":  {"director", "vip", "cmd", "test"},
	"director": {"cluster", "vip", "cmd", "test"},
	"vip":      {"cluster", "director", "cmd", "test"},
}

// cli is the operator's program; serverSide names the modules only the
// daemon needs (Raft, its stores, gossip, netlink, ARP).
const cli = "cmd/ipvsman"

var serverSide = []string{
	"github.com/hashicorp/raft",
	"github.com/hashicorp/raft-boltdb",
	"go.etcd.io/bbolt",
	"github.com/hashicorp/memberlist",
	"github.com/mdlayher/genetlink",
	"github.com/mdlayher/netlink",
	"github.com/mdlayher/arp",
	"github.com/vishvananda/netlink",
}

// within reports whether path is tree or below it.
func within(path, tree string) bool {
	return path == tree || strings.HasPrefix(path, tree+"/")
}

// violations returns one line per dependency that crosses the lines.
func violations(pkgs []pkg) []string {
	var out []string
	for _, p := range pkgs {
		for tree, never := range apart {
			if !within(p.Path, tree) {
				continue
			}
			for _, d := range p.Deps {
				for _, n := range never {
					if within(d, n) {
						out = append(out, fmt.Sprintf("%s depends on %s (%s must not reach %s)", p.Path, d, tree, n))
					}
				}
			}
		}
		// Unit tests may share test/harness's waits with deadlines; no
		// program may link the test harness.
		if !within(p.Path, "test") {
			for _, d := range p.Imports {
				if within(d, "test") {
					out = append(out, fmt.Sprintf("%s imports %s (only tests import test/)", p.Path, d))
				}
			}
		}
		if within(p.Path, cli) {
			for _, d := range p.Deps {
				for _, s := range serverSide {
					if d == s || strings.HasPrefix(d, s+"/") {
						out = append(out, fmt.Sprintf("%s links %s (the CLI links no server-side module)", p.Path, d))
					}
				}
			}
		}
	}
	sort.Strings(out)
	return out
}

// load lists the module's packages with go list; paths inside the module
// are made relative to it.
func load(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command("go", "list", "-tags", "next", "-json=ImportPath,Imports,Deps", module+"/...")
	cmd.Dir = "../.."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v: %s", err, stderr.String())
	}
	rel := func(s string) string { return strings.TrimPrefix(strings.TrimPrefix(s, module), "/") }
	rels := func(ss ...[]string) []string {
		var r []string
		for _, l := range ss {
			for _, s := range l {
				r = append(r, rel(s))
			}
		}
		return r
	}
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for dec.More() {
		var p struct {
			ImportPath                               string
			Imports, TestImports, XTestImports, Deps []string
		}
		if err := dec.Decode(&p); err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs = append(pkgs, pkg{Path: rel(p.ImportPath), Imports: rels(p.Imports), Deps: rels(p.Deps)})
	}
	return pkgs
}

func TestPackagesKeepTheirLines(t *testing.T) {
	pkgs := load(t)
	seen := map[string]bool{}
	for _, p := range pkgs {
		seen[p.Path] = true
	}
	// A listing that lost the packages would pass for the wrong reason.
	for _, want := range []string{"fsm", "cluster", "director", "vip", cli, "cmd/ipvsmand"} {
		if !seen[want] {
			t.Fatalf("go list did not list %s (listed %d packages)", want, len(pkgs))
		}
	}
	for _, v := range violations(pkgs) {
		t.Error(v)
	}
}

// TestViolationsAreFound plants one crossing of each kind so that a rule
// which never fires cannot pass unnoticed.
func TestViolationsAreFound(t *testing.T) {
	planted := []pkg{
		{Path: "cluster/api", Deps: []string{"fsm", "director"}},
		{Path: "director", Deps: []string{"director/ipvsnl", "vip"}},
		{Path: "vip", Deps: []string{"cluster/pki"}},
		{Path: "fsm/migrate", Deps: []string{"fsm", "cmd/ipvsman"}},
		{Path: "cmd/ipvsmand", Imports: []string{"test/harness"}},
		{Path: cli, Deps: []string{"github.com/hashicorp/raft", "github.com/spf13/cobra"}},
		// Allowed: the daemon's wiring knows every part, tests import test/.
		{Path: "cmd/ipvsmand", Deps: []string{"cluster", "director", "vip"}},
		{Path: "test/faults", Imports: []string{"test/harness"}, Deps: []string{"cluster/api"}},
	}
	got := violations(planted)
	want := []string{
		"cluster/api depends on director (cluster must not reach director)",
		"cmd/ipvsman links github.com/hashicorp/raft (the CLI links no server-side module)",
		"cmd/ipvsmand imports test/harness (only tests import test/)",
		"director depends on vip (director must not reach vip)",
		"fsm/migrate depends on cmd/ipvsman (fsm must not reach cmd)",
		"vip depends on cluster/pki (vip must not reach cluster)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("violations of the planted graph:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
