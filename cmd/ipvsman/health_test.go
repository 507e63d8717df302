package main

import (
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/director/health"
	"github.com/ipvsman/ipvsman/fsm"
)

func TestPrintHealth(t *testing.T) {
	now := time.Unix(1000, 0)
	var b strings.Builder
	err := printHealth(&b, []health.Status{
		{Service: "tcp:10.0.0.10:80", Server: "10.0.0.21:80", Type: "http", Target: "10.0.0.21:80", Health: fsm.HealthDown,
			Detail: "HTTP 503", Latency: 1500 * time.Microsecond, At: now.Add(-2 * time.Second), Checks: 7},
		{Service: "tcp:10.0.0.10:80", Server: "10.0.0.22:80", Type: "http", Target: "10.0.0.22:8080", Health: fsm.HealthUnknown},
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(b.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%q", b.String())
	}
	for i, want := range [][]string{
		{"tcp:10.0.0.10:80", "10.0.0.21:80", "down", "fail (HTTP 503)", "1.5ms", "7", "2s"},
		{"10.0.0.22:8080", "unknown", "-"},
	} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("line %d %q lacks %q", i+1, lines[i+1], w)
			}
		}
	}
}
