package main

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

// The flags of the checks ChecksProtocol added reach the model as the
// topology file's keys do.
func TestCheckSetChecksProtocolFlags(t *testing.T) {
	f, run := checkFixture(t)
	for _, tc := range []struct {
		args []string
		want fsm.HealthCheck
	}{
		{[]string{"--type", "tcp", "--send", "NOOP", "--expect", "^250", "--fall", "3", "--retry-delay", "500ms"},
			fsm.HealthCheck{Type: "tcp", Send: "NOOP", Expect: "^250", Fall: 3, RetryDelayMS: 500}},
		{[]string{"--type", "smtp", "--helo", "director.example.com", "--check-source", "10.0.0.2", "--check-source-port", "6025", "--check-fwmark", "7"},
			fsm.HealthCheck{Type: "smtp", Helo: "director.example.com", Source: netip.MustParseAddr("10.0.0.2"), SourcePort: 6025, FWMark: 7}},
		{[]string{"--type", "tls", "--sni", "www.example.com", "--ca-file", "/etc/ipvsman/ca.pem", "--expiry-margin", "168h", "--expect", `^\* OK`},
			fsm.HealthCheck{Type: "tls", SNI: "www.example.com", CAFile: "/etc/ipvsman/ca.pem", ExpiryMarginS: 7 * 86400, Expect: `^\* OK`}},
		{[]string{"--type", "http", "--digest", "9e107d9d372bb6826bd81d3542a419d6"},
			fsm.HealthCheck{Type: "http", Digest: "9e107d9d372bb6826bd81d3542a419d6"}},
	} {
		if _, err := run(append([]string{"check", "set", "-t", "10.0.0.1:80"}, tc.args...)...); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if got := f.cfg.Services["tcp:10.0.0.1:80"].Check; got == nil || !reflect.DeepEqual(*got, tc.want) {
			t.Errorf("%q: check %+v\nwant %+v", tc.args, got, tc.want)
		}
	}
	sent := len(f.ops)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--type", "http", "--helo", "x"}, `--helo: only for smtp checks, not "http"`},
		{[]string{"--type", "tcp", "--digest", "9e107d9d372bb6826bd81d3542a419d6"}, `--digest: only for http and https checks, not "tcp"`},
		{[]string{"--type", "http", "--ca-file", "/ca.pem"}, `--ca-file: only for https and tls checks, not "http"`},
		{[]string{"--type", "tls", "--expiry-margin", "1500ms"}, "--expiry-margin 1.5s: want a positive whole number of seconds"},
		{[]string{"--type", "tcp", "--retry-delay", "0s"}, "--retry-delay 0s: want a positive duration"},
		{[]string{"--type", "tcp", "--check-source", "10.0.0.x"}, `--check-source "10.0.0.x": want a numeric`},
		{[]string{"--type", "icmp", "--check-source", "10.0.0.2"}, "check source 10.0.0.2: not for icmp checks"},
		{[]string{"--type", "tcp", "--check-fwmark", "0"}, "--check-fwmark 0: leave it out for the default"},
		{[]string{"--type", "tcp", "--expect", "+OK"}, `check expect "+OK": error parsing regexp`},
	} {
		_, err := run(append([]string{"check", "set", "-t", "10.0.0.1:80"}, tc.args...)...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v\nwant it to contain %q", tc.args, err, tc.want)
		}
	}
	if len(f.ops) != sent {
		t.Errorf("refused flags sent %d ops to the cluster", len(f.ops)-sent)
	}
}
