package migrate

import (
	"fmt"
	"strings"
	"testing"
)

// An ipvsadm -S file is applied as one batch: the cost of an import grows
// with the table, not with its square (each line once cloned the service
// it touched).
func TestFromIpvsadmIsLinear(t *testing.T) {
	var b strings.Builder
	b.WriteString("-A -t 10.0.0.1:80 -s wlc\n")
	for i := range 5000 {
		fmt.Fprintf(&b, "-a -t 10.0.0.1:80 -r 10.%d.%d.%d:80 -g -w 1\n", 3+i/62500, i/250%250, i%250)
	}
	data := []byte(b.String())
	var servers int
	allocs := testing.AllocsPerRun(1, func() {
		res, err := FromIpvsadm("save", data)
		if err != nil {
			t.Fatal(err)
		}
		servers = len(res.Config.Services["tcp:10.0.0.1:80"].Servers)
	})
	if servers != 5000 {
		t.Fatalf("imported %d real servers, want 5000", servers)
	}
	// Linear: a few hundred allocations a line. One clone of the service
	// per line is 12.5 million map entries copied.
	if allocs > 2_000_000 {
		t.Fatalf("import of 5,000 lines: %.0f allocations, want well under 2,000,000", allocs)
	}
	t.Logf("import of 5,001 lines: %.0f allocations", allocs)
}
