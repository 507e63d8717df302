package check

import (
	"testing"
	"time"
)

func TestPace(t *testing.T) {
	const timeout = 500 * time.Millisecond
	fast, slow := 10*time.Millisecond, 400*time.Millisecond
	now := time.Unix(0, 0)
	p := newPace(1024)
	window := func(f func()) int {
		f()
		now = now.Add(paceWindow)
		if !p.adjust(now) {
			t.Fatal("a window passed without an adjustment")
		}
		return p.limit()
	}
	p.adjust(now) // the first window starts here
	if p.adjust(now.Add(paceWindow - time.Millisecond)) {
		t.Fatal("adjusted before the window's end")
	}
	// The slow start: from the floor, doubled by each window the bound
	// held checks back, to the ceiling; not holding back meanwhile.
	if got := window(func() {}); got != paceFloor || p.holding() {
		t.Fatalf("quiet first window: bound %d (holding %v), want the floor %d", got, p.holding(), paceFloor)
	}
	for want := 2 * paceFloor; want <= 1024; want *= 2 {
		if got := window(func() { p.saturated = true; p.observe(false, false, fast, timeout) }); got != want || p.holding() {
			t.Fatalf("slow start: bound %d (holding %v), want %d", got, p.holding(), want)
		}
	}
	if got := window(func() { p.saturated = true }); got != 1024 {
		t.Fatalf("slow start past the ceiling: bound %d, want 1024", got)
	}
	if got := window(func() { p.observe(true, false, timeout, timeout) }); got != 768 || !p.holding() {
		t.Fatalf("a server that answered timed out: bound %d (holding %v), want 768, holding", got, p.holding())
	}
	// After bad news, growth is additive.
	if got := window(func() { p.saturated = true; p.observe(false, false, fast, timeout) }); got != 768+768/16 {
		t.Fatalf("saturated, answers fast: bound %d, want %d", got, 768+768/16)
	}
	// A rack goes dead: its first timeouts are news, the next are not.
	before := p.limit()
	if got := window(func() { p.saturated = true; p.observe(true, false, timeout, timeout) }); got != before-before/4 {
		t.Fatalf("a server that answered timed out: bound %d, want %d", got, before-before/4)
	}
	before = p.limit()
	if got := window(func() {
		p.saturated = true
		for range 100 {
			p.observe(true, true, timeout, timeout)
		}
		p.observe(false, false, fast, timeout)
	}); got <= before {
		t.Fatalf("only servers that were timing out time out: bound %d, want more than %d", got, before)
	}
	// Most answers late: down, though nothing timed out.
	before = p.limit()
	if got := window(func() {
		for i := range 10 {
			p.observe(false, false, map[bool]time.Duration{true: slow, false: fast}[i < 6], timeout)
		}
	}); got != before-before/4 {
		t.Fatalf("6 of 10 answers late: bound %d, want %d", got, before-before/4)
	}
	before = p.limit()
	if got := window(func() {
		for range paceSample - 1 {
			p.observe(false, false, slow, timeout)
		}
	}); got != before {
		t.Fatalf("%d late answers (too few to tell): bound %d, want %d", paceSample-1, got, before)
	}
	for range 100 {
		window(func() { p.observe(true, false, timeout, timeout) })
	}
	if p.limit() != paceFloor {
		t.Fatalf("bound %d after bad news for long, want the floor %d", p.limit(), paceFloor)
	}
	for range 1000 {
		window(func() { p.saturated = true })
	}
	if p.limit() != 1024 || p.holding() {
		t.Fatalf("bound %d (holding %v) after growing for long, want the ceiling 1024, not holding", p.limit(), p.holding())
	}
}
