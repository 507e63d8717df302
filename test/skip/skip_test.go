package skip

import (
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// recorder is a testing.TB that notes how the test would have ended.
type recorder struct {
	testing.TB
	fatal, skipped string
}

func (r *recorder) Helper()                           {}
func (r *recorder) Skip(args ...any)                  { r.skipped = args[0].(string) }
func (r *recorder) Fatalf(format string, args ...any) { r.fatal = format }

func TestSkipIsAFailureWhenForbidden(t *testing.T) {
	t.Setenv(Env, "1")
	r := &recorder{TB: t}
	Now(r, "needs root (SCHED_RR)")
	if r.fatal == "" || r.skipped != "" {
		t.Fatalf("with %s=1: fatal %q, skipped %q; want a failure and no skip", Env, r.fatal, r.skipped)
	}
}

func TestSkipIsASkipOtherwise(t *testing.T) {
	for _, v := range []string{"", "0", "yes"} {
		t.Setenv(Env, v)
		r := &recorder{TB: t}
		Nowf(r, "no kernel header: %s", "x")
		if r.fatal != "" || r.skipped != "no kernel header: x" {
			t.Fatalf("with %s=%q: fatal %q, skipped %q; want the skip with its reason", Env, v, r.fatal, r.skipped)
		}
	}
}

// pending are the files with a skip of their own that another change owns;
// each must still hold one, so that the list shrinks as they move over.
var pending = map[string]bool{}

var rawSkip = regexp.MustCompile(`\.(Skip|Skipf|SkipNow)\(`)

// Every skip in the module goes through this package, so that CI's
// IPVSMAN_NO_SKIP=1 reaches all of them.
func TestEverySkipGoesThroughThisPackage(t *testing.T) {
	root := "../.."
	files := 0
	seen := map[string]bool{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && strings.HasPrefix(d.Name(), ".") && path != root {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") {
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		if rel == "test/skip/skip.go" || rel == "test/skip/skip_test.go" {
			return nil
		}
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if rawSkip.Match(b) {
			seen[rel] = true
			if !pending[rel] {
				t.Errorf("%s skips with testing's own Skip: use skip.Now, which CI turns into a failure", rel)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("walked %d Go files under %s: not the module", files, root)
	}
	for f := range pending {
		if !seen[f] {
			t.Errorf("%s no longer skips on its own: remove it from pending", f)
		}
	}
}
