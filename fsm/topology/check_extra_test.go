package topology

import (
	"bytes"
	"net/netip"
	"reflect"
	"strings"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

// The check keys ChecksProtocol added: read, and written back by an export
// that reads back the same.
func TestYAMLChecksProtocolKeys(t *testing.T) {
	in := `
services:
  - name: Mail
    protocol: tcp
    address: 10.0.0.25
    port: 25
    check: {type: smtp, helo: director.example.com, retry_delay: 500ms, fall: 3, source: 10.0.0.2, source_port: 6025, fwmark: 7}
    servers:
      - {address: 10.3.0.25}
      - {address: 10.3.0.26, check: {type: tcp, expect: '^220[ -]', send: "NOOP\r\n"}}
  - name: Web
    protocol: tcp
    address: 10.0.0.1
    port: 443
    check: {type: https, digest: 9e107d9d372bb6826bd81d3542a419d6, ca_file: /etc/ipvsman/web-ca.pem, expiry_margin: 168h}
    servers:
      - {address: 10.3.0.10, check: {type: tls, sni: www.example.com, expiry_margin: 720h, expect: '^\* OK'}}
`
	cfg := mustYAML(t, in)
	mail := cfg.Services["tcp:10.0.0.25:25"]
	want := fsm.HealthCheck{Type: "smtp", Fall: 3, Helo: "director.example.com", RetryDelayMS: 500,
		Source: netip.MustParseAddr("10.0.0.2"), SourcePort: 6025, FWMark: 7, IntervalMS: 0}
	if !reflect.DeepEqual(*mail.Check, want) {
		t.Errorf("Mail check = %+v\nwant %+v", *mail.Check, want)
	}
	if c := mail.Servers["10.3.0.26:25"].Check; c == nil || c.Expect != `^220[ -]` || c.Send != "NOOP\r\n" {
		t.Errorf("banner check = %+v", c)
	}
	web := cfg.Services["tcp:10.0.0.1:443"]
	if c := web.Check; c.Digest != "9e107d9d372bb6826bd81d3542a419d6" || c.CAFile != "/etc/ipvsman/web-ca.pem" || c.ExpiryMarginS != 7*86400 {
		t.Errorf("Web check = %+v", c)
	}
	if c := web.Servers["10.3.0.10:443"].Check; c.Type != "tls" || c.ExpiryMarginS != 30*86400 || c.SNI != "www.example.com" {
		t.Errorf("tls check = %+v", c)
	}
	out, err := MarshalYAML(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"retry_delay: 500ms", "source: 10.0.0.2", "source_port: 6025", "fwmark: 7", "helo: director.example.com",
		"expiry_margin: 168h0m0s", "ca_file: /etc/ipvsman/web-ca.pem", "digest: 9e107d9d372bb6826bd81d3542a419d6"} {
		if !strings.Contains(string(out), w) {
			t.Errorf("export lacks %q:\n%s", w, out)
		}
	}
	back, err := ParseYAML(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("export does not read back: %v\n%s", err, out)
	}
	if jsonOf(t, back) != jsonOf(t, cfg) {
		t.Errorf("export reads back otherwise:\n%s\nwant\n%s", jsonOf(t, back), jsonOf(t, cfg))
	}
}

func TestYAMLChecksProtocolKeyErrors(t *testing.T) {
	head := "services:\n  - name: S\n    protocol: tcp\n    address: 10.0.0.1\n    port: 80\n    check:\n      type: tcp\n"
	for _, tc := range []struct{ in, want string }{
		{head + "      retry_delay: 5ms\n", `line 8: services[0].check: service "S": service tcp:10.0.0.1:80 check retry_delay_ms 5: out of range 10-3600000`},
		{head + "      retry_delay: soon\n", `line 8: services[0].check: service "S": retry_delay "soon": want a duration`},
		{head + "      source: 10.0.0.x\n", `line 8: services[0].check: service "S": source "10.0.0.x": not an IP address`},
		{head + "      source_port: 0\n", `line 8: services[0].check: service "S": source_port 0: want 1-65535`},
		{head + "      fwmark: -1\n", `line 8: services[0].check: service "S": fwmark -1: want 1-4294967295`},
		{head + "      expiry_margin: 30d\n", `line 8: services[0].check: service "S": expiry_margin "30d": want a duration such as 720h`},
		{head + "      expiry_margin: 1h\n", `line 8: services[0].check: service "S": service tcp:10.0.0.1:80 check expiry_margin_s 3600: only for tls and https checks`},
		{head + "      digest: abc\n", `line 8: services[0].check: service "S": service tcp:10.0.0.1:80 check digest "abc": only for http and https checks`},
		{head + "      helo: x\n", `line 8: services[0].check: service "S": service tcp:10.0.0.1:80 check helo "x": only for smtp checks`},
		{head + "      expect: +OK\n", `line 8: services[0].check: service "S": service tcp:10.0.0.1:80 check expect "+OK": error parsing regexp`},
	} {
		_, err := ParseYAML(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s\nerror: %v\nwant: %s", tc.in, err, tc.want)
		}
	}
}
