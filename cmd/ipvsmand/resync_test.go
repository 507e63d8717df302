package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestCheckResyncNamesTheFlagAndTheValue(t *testing.T) {
	if err := checkResync(10*time.Second, 1); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
	for _, c := range []struct {
		period time.Duration
		cpu    float64
		want   string
	}{
		{0, 1, "--resync 0s"},
		{-time.Second, 1, "--resync -1s"},
		{time.Second, 0, "--resync-cpu 0"},
		{time.Second, 150, "--resync-cpu 150"},
		{time.Second, math.NaN(), "--resync-cpu NaN"},
	} {
		err := checkResync(c.period, c.cpu)
		if err == nil || !strings.HasPrefix(err.Error(), c.want+":") {
			t.Errorf("checkResync(%v, %v) = %v, want an error starting %q", c.period, c.cpu, err, c.want+":")
		}
	}
}
