package failover

import (
	"testing"
	"time"
)

func ms(v ...int) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x) * time.Millisecond
	}
	return out
}

func TestPercentileNearestRank(t *testing.T) {
	for _, c := range []struct {
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{nil, 50, 0},
		{ms(7), 50, 7 * time.Millisecond},
		{ms(7), 100, 7 * time.Millisecond},
		// Unsorted input; rank = ceil(p/100 * n).
		{ms(40, 10, 30, 20), 50, 20 * time.Millisecond},  // rank 2
		{ms(40, 10, 30, 20), 51, 30 * time.Millisecond},  // rank 3
		{ms(40, 10, 30, 20), 90, 40 * time.Millisecond},  // rank 4
		{ms(40, 10, 30, 20), 100, 40 * time.Millisecond}, // rank 4
		{ms(40, 10, 30, 20), 1, 10 * time.Millisecond},   // rank 1
		// The classic example: 15 20 35 40 50.
		{ms(15, 20, 35, 40, 50), 30, 20 * time.Millisecond},
		{ms(15, 20, 35, 40, 50), 40, 20 * time.Millisecond},
		{ms(15, 20, 35, 40, 50), 50, 35 * time.Millisecond},
		{ms(15, 20, 35, 40, 50), 100, 50 * time.Millisecond},
		// 20 samples, p90 is the 18th.
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20), 90, 18 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20), 50, 10 * time.Millisecond},
	} {
		if got := Percentile(c.in, c.p); got != c.want {
			t.Errorf("Percentile(%v, %v) = %v, want %v", c.in, c.p, got, c.want)
		}
	}
}

func TestPercentileLeavesInputAlone(t *testing.T) {
	in := ms(3, 1, 2)
	Percentile(in, 50)
	if in[0] != 3*time.Millisecond || in[1] != time.Millisecond {
		t.Fatalf("input reordered: %v", in)
	}
}

func TestSummarizeAndRatio(t *testing.T) {
	s := Summarize(ms(300, 100, 200))
	if s.N != 3 || s.P50 != 200*time.Millisecond || s.P90 != 300*time.Millisecond || s.Max != 300*time.Millisecond {
		t.Fatalf("got %+v", s)
	}
	if got := Ratio(3*time.Second, 2*time.Second); got != "1.50" {
		t.Fatalf("Ratio = %s", got)
	}
	if got := Ratio(time.Second, 0); got != "n/a" {
		t.Fatalf("Ratio by zero = %s", got)
	}
	if got := MS(1499 * time.Microsecond); got != 1 {
		t.Fatalf("MS = %d", got)
	}
}

func TestLongestOutage(t *testing.T) {
	at := func(ms int) time.Time { return time.Unix(0, 0).Add(time.Duration(ms) * time.Millisecond) }
	r := func(start int, ok bool) Result { return Result{Start: at(start), End: at(start + 50), OK: ok} }
	rs := []Result{r(0, true), r(10, false), r(20, false), r(30, true), r(40, false), r(50, false), r(60, false), r(70, true)}
	if got := LongestOutage(rs); got != 70*time.Millisecond { // 40 .. 60+50
		t.Errorf("LongestOutage = %s, want 70ms", got)
	}
	if got := LongestOutage(rs[:1]); got != 0 {
		t.Errorf("no failures: %s", got)
	}
	if got := LongestOutage([]Result{r(0, false)}); got != 50*time.Millisecond {
		t.Errorf("one failure: %s", got)
	}
}
