package main

import (
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/fsm"
)

func TestPrintHealth(t *testing.T) {
	now := time.Unix(1000, 0)
	var b strings.Builder
	err := printHealth(&b, []api.CheckStatus{
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

func TestListWithHealth(t *testing.T) {
	list := `IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.10:80 rr
  -> 10.0.0.21:80                 Route   1      0          0         
  -> 10.0.0.22:80                 Route   0      0          0         
FWM  7 IPv6 rr
  -> [fd00::21]:80                Route   1      0          0         
`
	at := time.Unix(1, 0)
	got := annotateHealth(list, []api.CheckStatus{
		{Service: "tcp:10.0.0.10:80", Server: "10.0.0.22:80", Health: fsm.HealthDown, Detail: "connection refused", Latency: 2 * time.Millisecond, At: at},
		{Service: "tcp:10.0.0.10:80", Server: "10.0.0.21:80", Health: fsm.HealthUp, OK: true, Latency: 1500 * time.Microsecond, At: at},
		{Service: "fwmark6:7", Server: "[fd00::21]:80", Health: fsm.HealthUnknown},
	})
	lines := strings.Split(got, "\n")
	for i, want := range map[int]string{
		2: "InActConn  Health  Last  Latency",
		4: "0  up  ok  1.5ms",
		5: "0  down  fail:connection_refused  2.0ms",
		7: "0  unknown  -  -",
	} {
		if !strings.HasSuffix(strings.TrimRight(lines[i], " "), want) && !strings.HasSuffix(lines[i], want) {
			t.Errorf("line %d = %q, want it to end with %q", i, lines[i], want)
		}
	}
	if _, ok := takeHealthFlag([]string{"-L", "-n"}); ok {
		t.Error("no --health found --health")
	}
	if a, ok := takeHealthFlag([]string{"-L", "--health", "-n"}); !ok || strings.Join(a, " ") != "-L -n" {
		t.Errorf("takeHealthFlag = %v %v", a, ok)
	}
}
