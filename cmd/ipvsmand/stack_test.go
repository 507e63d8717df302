package main

import (
	"context"
	"slices"
	"testing"
)

func TestStackUnwindsNewestFirstAndClosesOnce(t *testing.T) {
	var s stack
	var got []string
	closed := func(name string) func(context.Context) {
		return func(context.Context) { got = append(got, name) }
	}
	s.push("a", closed("a"))
	b := s.push("b", closed("b"))
	s.push("c", closed("c"))
	b.close(context.Background())
	s.unwind(context.Background())
	s.unwind(context.Background())
	(*closer)(nil).close(context.Background())
	if want := []string{"b", "c", "a"}; !slices.Equal(got, want) {
		t.Errorf("closed %v, want %v", got, want)
	}
}

func TestStartStopsAndAwaits(t *testing.T) {
	returned := false
	stop := start(func(ctx context.Context) {
		<-ctx.Done()
		returned = true
	})
	stop(context.Background())
	if !returned {
		t.Error("the closer returned before the goroutine did")
	}
}
