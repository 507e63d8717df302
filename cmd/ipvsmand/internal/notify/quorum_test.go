package notify

import (
	"fmt"
	"testing"
)

func TestQuorums(t *testing.T) {
	before := map[string]bool{"tcp:10.0.0.1:80": true, "tcp:10.0.0.2:80": false, "tcp:10.0.0.3:80": true, "tcp:10.0.0.4:80": false}
	after := map[string]bool{
		"tcp:10.0.0.1:80": false, // lost
		"tcp:10.0.0.2:80": true,  // gained
		"tcp:10.0.0.3:80": true,  // unchanged
		// 10.0.0.4 removed: nothing
		"tcp:10.0.0.5:80": false, // new, starts without it
		"tcp:10.0.0.6:80": true,  // new, starts with it: nothing
	}
	var got []string
	for _, e := range Quorums(before, after, func(k string) string { return "why " + k }) {
		got = append(got, fmt.Sprintf("%s %s %s", e.Kind, e.Service, e.Reason))
	}
	want := []string{
		"quorum-down tcp:10.0.0.1:80 why tcp:10.0.0.1:80",
		"quorum-up tcp:10.0.0.2:80 why tcp:10.0.0.2:80",
		"quorum-down tcp:10.0.0.5:80 why tcp:10.0.0.5:80",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("events:\n%q\nwant\n%q", got, want)
	}
}
