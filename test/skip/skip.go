// Package skip is the one way a test steps aside when the machine lacks
// what it needs (root, a program, a kernel header, a socket type). Where
// IPVSMAN_NO_SKIP=1 is set, as CI sets it, a skip is a failure instead: CI
// machines are built to have everything, so a test that would skip there
// means the suite proved less than it claims.
//
// It imports nothing of the module, so unit tests of any package and the
// harnesses under test/ can use it without crossing the package lines.
package skip

import (
	"fmt"
	"os"
	"testing"
)

// Env names the variable that turns every skip into a failure.
const Env = "IPVSMAN_NO_SKIP"

// Forbidden reports whether skips are failures in this run.
func Forbidden() bool { return os.Getenv(Env) == "1" }

// Now skips the test with the reason, or fails it with the same reason
// when skips are forbidden.
func Now(t testing.TB, reason string) {
	t.Helper()
	if Forbidden() {
		t.Fatalf("%s (a skip here is a failure: %s=1)", reason, Env)
		return // Fatalf ends the test; a recording TB in this package's tests does not
	}
	t.Skip(reason)
}

// Nowf is Now with a formatted reason.
func Nowf(t testing.TB, format string, args ...any) {
	t.Helper()
	Now(t, fmt.Sprintf(format, args...))
}
