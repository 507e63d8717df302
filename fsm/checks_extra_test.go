package fsm

import (
	"encoding/json"
	"net/netip"
	"strings"
	"testing"
)

func TestValidateChecksProtocolFields(t *testing.T) {
	src := netip.MustParseAddr("10.0.0.5")
	good := []HealthCheck{
		{Type: "tcp", Expect: `^220 `},
		{Type: "tcp", Send: "PING\r\n", Expect: `^\+PONG`},
		{Type: "tls", SNI: "www.example.com", CAFile: "/etc/ssl/ca.pem", ExpiryMarginS: 7 * 86400},
		{Type: "tls", Insecure: true, Expect: `^\* OK`},
		{Type: "smtp", Helo: "director1.example.com"},
		{Type: "smtp", Helo: "[10.0.0.1]"},
		{Type: "http", Digest: "9E107D9D372BB6826BD81D3542A419D6"},
		{Type: "https", Digest: "9e107d9d372bb6826bd81d3542a419d6", ExpiryMarginS: 3600},
		{Type: "tcp", Fall: 3, RetryDelayMS: 500},
		{Type: "http", Source: src, SourcePort: 6000, FWMark: 7},
		{Type: "udp", Send: "x", FWMark: 1},
		{Type: "dns", Query: "example.com.", Source: src},
	}
	for _, c := range good {
		if err := ValidateHealthCheck("check", &c); err != nil {
			t.Errorf("%+v: %v", c, err)
		}
	}
	bad := []struct {
		c    HealthCheck
		want string
	}{
		{HealthCheck{Type: "tcp", Expect: "+OK"}, `check expect "+OK": error parsing regexp`},
		{HealthCheck{Type: "http", Digest: "abc"}, `check digest "abc": want the MD5 of the body: 32 hex digits`},
		{HealthCheck{Type: "http", Digest: "zz107d9d372bb6826bd81d3542a419d6"}, `check digest "zz107d9d372bb6826bd81d3542a419d6": want the MD5`},
		{HealthCheck{Type: "tcp", Digest: "9e107d9d372bb6826bd81d3542a419d6"}, `check digest "9e107d9d372bb6826bd81d3542a419d6": only for http and https checks`},
		{HealthCheck{Type: "tls", CAFile: "ca.pem"}, `check ca_file "ca.pem": want an absolute path`},
		{HealthCheck{Type: "tls", CAFile: "/ca.pem", Insecure: true}, `check ca_file "/ca.pem": insecure skips the verification`},
		{HealthCheck{Type: "http", CAFile: "/ca.pem"}, `check ca_file "/ca.pem": only for tls and https checks`},
		{HealthCheck{Type: "tcp", ExpiryMarginS: 60}, `check expiry_margin_s 60: only for tls and https checks`},
		{HealthCheck{Type: "tls", ExpiryMarginS: maxExpiryMarginS + 1}, `check expiry_margin_s 316224001: out of range`},
		{HealthCheck{Type: "smtp", Helo: "a b"}, `check helo "a b": want a domain name`},
		{HealthCheck{Type: "smtp", Helo: "x\r\nRCPT TO:<a@b>"}, `check helo "x\r\nRCPT TO:<a@b>": want a domain name`},
		{HealthCheck{Type: "tcp", Helo: "x"}, `check helo "x": only for smtp checks`},
		{HealthCheck{Type: "smtp", Expect: "^250"}, `use a tcp check for send and expect`},
		{HealthCheck{Type: "tcp", RetryDelayMS: 5}, "check retry_delay_ms 5: out of range 10-3600000"},
		{HealthCheck{Type: "icmp", Source: src}, "check source 10.0.0.5: not for icmp checks"},
		{HealthCheck{Type: "exec", Command: []string{"x"}, FWMark: 3}, "check fwmark 3: not for exec checks"},
		{HealthCheck{Type: "tcp", Source: netip.MustParseAddr("224.0.0.1")}, "check source 224.0.0.1: not a unicast address"},
	}
	for _, b := range bad {
		err := ValidateHealthCheck("check", &b.c)
		if err == nil || !strings.Contains(err.Error(), b.want) {
			t.Errorf("%+v: %v, want %q", b.c, err, b.want)
		}
	}
}

// Every field ChecksProtocol added makes a configuration need it: an
// older member would drop the field from its model and run another check.
func TestConfigNeedsChecksProtocol(t *testing.T) {
	key := ServiceKey{Protocol: TCP, Address: netip.MustParseAddr("10.0.0.10"), Port: 80}
	rs := &RealServer{Address: netip.MustParseAddr("10.3.0.1"), Port: 80}
	svc := &Service{Key: key, Scheduler: "rr", Servers: map[string]*RealServer{rs.Key(): rs}}
	c := NewConfig()
	c.Services[key.String()] = svc
	for _, hc := range []HealthCheck{
		{Type: "tls"}, {Type: "smtp"}, {Type: "tcp", Expect: "^220"}, {Type: "tcp", Send: "x"},
		{Type: "http", Digest: "9e107d9d372bb6826bd81d3542a419d6"}, {Type: "https", CAFile: "/ca.pem"},
		{Type: "https", ExpiryMarginS: 1}, {Type: "tcp", RetryDelayMS: 100},
		{Type: "tcp", Source: netip.MustParseAddr("10.0.0.1")}, {Type: "tcp", SourcePort: 1}, {Type: "tcp", FWMark: 1},
		{Type: "tls", Alpha: true},
	} {
		rs.Check = &hc
		if need, what := c.Needs(); need != ChecksProtocol || !strings.Contains(what, "real server 10.3.0.1:80 of service tcp:10.0.0.10:80 check ") {
			t.Errorf("%+v: needs %d (%s), want %d", hc, need, what, ChecksProtocol)
		}
	}
	// What older protocols knew needs no more than before.
	for hc, want := range map[*HealthCheck]int{
		{Type: "udp", Send: "x", Expect: "y"}: BaseCommandProtocol,
		{Type: "http", Body: "ok"}:            BaseCommandProtocol,
		{Type: "tcp", Alpha: true}:            AlphaProtocol,
	} {
		rs.Check = hc
		if need, what := c.Needs(); need != want {
			t.Errorf("%+v: needs %d (%s), want %d", hc, need, what, want)
		}
	}
}

// A model written before ChecksProtocol reads back unchanged, and the new
// fields are left out of the JSON when unused, so an unchanged
// configuration encodes to the same bytes as before.
func TestCheckJSONBackwardCompatible(t *testing.T) {
	old := `{"type":"https","interval_ms":1000,"rise":1,"fall":2,"address":"10.0.0.9","port":8443,"sni":"a.example","insecure":true}`
	var hc HealthCheck
	if err := json.Unmarshal([]byte(old), &hc); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(hc)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != old {
		t.Errorf("re-encoded:\n%s\nwant\n%s", b, old)
	}
	full := HealthCheck{Type: "http", Digest: "9e107d9d372bb6826bd81d3542a419d6", RetryDelayMS: 250,
		Source: netip.MustParseAddr("10.0.0.5"), SourcePort: 6000, FWMark: 9}
	b, _ = json.Marshal(full)
	var back HealthCheck
	if err := json.Unmarshal(b, &back); err != nil || !equalCheck(&full, &back) {
		t.Errorf("round trip of %s: %+v, %v", b, back, err)
	}
	back.FWMark = 10
	if equalCheck(&full, &back) {
		t.Error("equalCheck ignores fwmark: configurations sharing would merge different checks")
	}
}
