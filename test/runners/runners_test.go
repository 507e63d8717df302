// Package runners holds the tests of the shell runners themselves: each
// must fail when it ran nothing, since a runner that passes empty proves
// nothing while saying it did.
package runners

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// run runs a command in dir, outside any git repository above it, and
// returns its output and whether it exited 0.
func run(t *testing.T, dir string, env []string, name string, args ...string) (string, bool) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"GIT_CEILING_DIRECTORIES=" + filepath.Dir(dir)}, env...)...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if _, exited := err.(*exec.ExitError); err != nil && !exited {
		t.Fatalf("%s: %v", name, err)
	}
	return out.String(), err == nil
}

func script(t *testing.T, rel string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", rel))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		t.Fatal(err)
	}
	return p
}

// writeFiles creates files (path → content) under dir.
func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, c := range files {
		if err := os.MkdirAll(filepath.Join(dir, filepath.Dir(p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(c), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// gitRepo makes dir a git repository whose index holds files.
func gitRepo(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	writeFiles(t, dir, files)
	if out, ok := run(t, dir, nil, "git", "init", "-q"); !ok {
		t.Fatalf("git init: %s", out)
	}
	if len(files) > 0 {
		if out, ok := run(t, dir, nil, "git", "add", "."); !ok {
			t.Fatalf("git add: %s", out)
		}
	}
	return dir
}

func TestLabCountFailsWhenNothingRan(t *testing.T) {
	count := script(t, "lab/count.sh")
	for _, c := range []struct {
		name, output string
		status       string
		ok           bool
		summary      string
	}{
		{"no output at all", "", "0", false, "lab: 0 passed, 0 failed"},
		{"a filter that matches nothing", "testing: warning: no tests to run\nPASS\n", "0", false, "lab: 0 passed, 0 failed"},
		{"one test passed", "=== RUN   TestPlain\n--- PASS: TestPlain (1.00s)\nPASS\n", "0", true, "lab: 1 passed, 0 failed"},
		{"one test failed", "--- PASS: TestA (1.00s)\n--- FAIL: TestB (1.00s)\nFAIL\n", "1", false, "lab: 1 passed, 1 failed"},
		{"the VM died", "--- PASS: TestA (1.00s)\n", "137", false, "lab: 1 passed, 1 failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"output.txt": c.output})
			out, ok := run(t, dir, nil, "bash", "-c", `. "$1"; lab_count output.txt "$2"`, "lab", count, c.status)
			if ok != c.ok || !strings.Contains(out, c.summary) {
				t.Fatalf("exit 0: %v, want %v; output %q, want it to hold %q", ok, c.ok, out, c.summary)
			}
		})
	}
}

func TestFuzzFailsWhenItFuzzedNothing(t *testing.T) {
	fuzz := script(t, "fuzz.sh")
	env := []string{"GO=false", "FUZZTIME=1s"} // nothing here may reach go
	for _, c := range []struct {
		name string
		dir  func() string
		says string
	}{
		{"git ls-files fails", func() string { return t.TempDir() }, "git ls-files failed"},
		{"no test files", func() string { return gitRepo(t, nil) }, "listed no test files"},
		{"no fuzz target", func() string {
			return gitRepo(t, map[string]string{"a/a_test.go": "package a\n\nimport \"testing\"\n\nfunc TestA(t *testing.T) {}\n"})
		}, "no fuzz target found"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, ok := run(t, c.dir(), env, "sh", fuzz)
			if ok || !strings.Contains(out, c.says) {
				t.Fatalf("exit 0: %v, want a failure saying %q; output:\n%s", ok, c.says, out)
			}
		})
	}
}

func TestLintFailsWhenItCheckedNothing(t *testing.T) {
	lint := script(t, "lint.sh")
	for _, c := range []struct {
		name string
		dir  func() string
		says string
	}{
		{"git ls-files fails", func() string { return t.TempDir() }, "git ls-files failed"},
		{"no Go files", func() string { return gitRepo(t, map[string]string{"README": "x\n"}) }, "listed no Go files"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, ok := run(t, c.dir(), []string{"GO=false"}, "bash", lint)
			if ok || !strings.Contains(out, c.says) {
				t.Fatalf("exit 0: %v, want a failure saying %q; output:\n%s", ok, c.says, out)
			}
		})
	}
}

// A file behind a build tag is vetted: a vet finding in it fails lint, and
// without the finding lint passes, naming the tag sets it vetted.
func TestLintVetsEveryBuildTag(t *testing.T) {
	lint := script(t, "lint.sh")
	files := func(arg string) map[string]string {
		return map[string]string{
			"go.mod":   "module example.com/m\n\ngo 1.22\n",
			"a.go":     "package m\n\nfunc A() int { return 1 }\n",
			"bench.go": "//go:build lab && labbench\n\npackage m\n\nimport \"fmt\"\n\nfunc B() { fmt.Printf(\"%d\\n\", " + arg + ") }\n",
			"next.go":  "//go:build !next\n\npackage m\n",
		}
	}
	out, ok := run(t, gitRepo(t, files(`"not a number"`)), nil, "bash", lint)
	if ok || !strings.Contains(out, "-tags lab,labbench") {
		t.Fatalf("a vet finding behind lab && labbench: exit 0: %v, want a failure under -tags lab,labbench; output:\n%s", ok, out)
	}
	out, ok = run(t, gitRepo(t, files("1")), nil, "bash", lint)
	if !ok || !strings.Contains(out, "vetted under 2 tag sets") {
		t.Fatalf("clean files: exit 0: %v, want a pass over 2 tag sets (default, lab,labbench); output:\n%s", ok, out)
	}
}

// e2e.sh itself, with the VM and the build stubbed: the lab binary's
// output decides, a run of nothing fails, and CI's no-skip variable
// reaches the VM's environment.
func TestE2EFailsWhenNoLabTestRan(t *testing.T) {
	e2e, err := os.ReadFile(script(t, "lab/e2e.sh"))
	if err != nil {
		t.Fatal(err)
	}
	count, err := os.ReadFile(script(t, "lab/count.sh"))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, output string
		ok           bool
	}{
		{"a filter that matches nothing", "testing: warning: no tests to run\nPASS\n", false},
		{"one test passed", "--- PASS: TestPlainIPVSInTheLab (3.00s)\nPASS\n", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			repo := t.TempDir()
			writeFiles(t, repo, map[string]string{
				"test/lab/e2e.sh":   string(e2e),
				"test/lab/count.sh": string(count),
				"test/lab/build.sh": "lab_build() { mkdir -p \"$1\"; }\n",
				// The VM: prints what the lab binary would, and the variable
				// it would see.
				"test/lab/vm/run.sh": "#!/bin/sh\necho \"no_skip=$LAB_ENV_IPVSMAN_NO_SKIP\"\nprintf '%s' \"$LAB_OUTPUT\"\n",
			})
			if err := os.Chmod(filepath.Join(repo, "test/lab/vm/run.sh"), 0o755); err != nil {
				t.Fatal(err)
			}
			env := []string{"LAB_WORK=" + filepath.Join(repo, ".lab"), "LAB_OUTPUT=" + c.output, "IPVSMAN_NO_SKIP=1"}
			out, ok := run(t, repo, env, "bash", filepath.Join(repo, "test/lab/e2e.sh"), "-test.run", "NoSuchTest")
			if ok != c.ok {
				t.Fatalf("exit 0: %v, want %v; output:\n%s", ok, c.ok, out)
			}
			if !strings.Contains(out, "no_skip=1") {
				t.Fatalf("IPVSMAN_NO_SKIP did not reach the VM's environment; output:\n%s", out)
			}
		})
	}
}

// make faults with a filter that matches no scenario fails, although the
// test binary ran nothing that could fail.
func TestFaultsFailsWhenNoScenarioRan(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	out, ok := run(t, root, []string{"FAULTS_RUNS=1"}, "go", "test", "-count=1", "-run", "^NoSuchScenario$", "./test/faults/")
	if ok || !strings.Contains(out, "faults: no scenario ran") {
		t.Fatalf("exit 0: %v, want a failure saying no scenario ran; output:\n%s", ok, out)
	}
}

// TestTiersFailsWhenGivenNoTierOrAFailingOne: make test's runner refuses to
// run nothing, stops at the first tier that fails, and names it.
func TestTiersFailsWhenGivenNoTierOrAFailingOne(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"Makefile": "good:\n\t@echo good ran\nbad:\n\t@exit 3\nnever:\n\t@echo never ran\n"})
	tiers := script(t, "tiers.sh")
	if out, ok := run(t, dir, nil, "bash", tiers); ok || !strings.Contains(out, "no tier given") {
		t.Errorf("no tiers: exit 0 or no reason:\n%s", out)
	}
	out, ok := run(t, dir, nil, "bash", tiers, "good", "bad", "never")
	if ok || !strings.Contains(out, "good ran") || strings.Contains(out, "never ran") || !strings.Contains(out, "make test: bad failed") {
		t.Errorf("a failing tier: exit 0, went on, or not named:\n%s", out)
	}
	out, ok = run(t, dir, nil, "bash", tiers, "good")
	if !ok || !strings.Contains(out, "make test: all tiers passed in 0m0") || !strings.Contains(out, "(good ") {
		t.Errorf("one passing tier:\n%s", out)
	}
}
