package migrate

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/ipvsman/ipvsman/fsm"
)

// keepalived's SMTP_CHECK (its older host block too), retry with
// delay_before_retry, bindto, bind_port, fwmark and digest map onto the
// checks ipvsman has for them.
func TestKeepalivedChecksProtocol(t *testing.T) {
	res := ka(t, `
virtual_server 10.0.0.25 25 {
    protocol TCP
    delay_loop 10
    real_server 10.0.1.1 25 {
        SMTP_CHECK {
            connect_timeout 3
            retry 2
            delay_before_retry 2
            helo_name lb.example.com
            bindto 10.0.0.2
            bind_port 6025
            fwmark 7
        }
    }
    real_server 10.0.1.2 25 {
        SMTP_CHECK {
            host {
                connect_ip 10.0.1.22
                connect_port 2525
                bindto 10.0.0.3
            }
            host {
                connect_ip 10.0.1.23
            }
            bind_if eth0
        }
    }
}
virtual_server 10.0.0.80 80 {
    protocol TCP
    real_server 10.0.2.1 80 {
        HTTP_GET {
            url {
                path /index.html
                digest 9b3a0c85a887a256d6939da88aabd8cd
            }
            retry 0
        }
    }
}
`)
	svc := res.Config.Services["tcp:10.0.0.25:25"]
	got := *svc.Servers["10.0.1.1:25"].Check
	want := fsm.HealthCheck{Type: "smtp", IntervalMS: 10000, TimeoutMS: 3000, Rise: 1, Fall: 3, RetryDelayMS: 2000, Helo: "lb.example.com",
		Source: netip.MustParseAddr("10.0.0.2"), SourcePort: 6025, FWMark: 7}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("SMTP_CHECK = %+v\nwant %+v", got, want)
	}
	host := *svc.Servers["10.0.1.2:25"].Check
	if host.Address != netip.MustParseAddr("10.0.1.22") || host.Port != 2525 || host.Source != netip.MustParseAddr("10.0.0.3") ||
		host.Fall != 2 || host.RetryDelayMS != 1000 {
		t.Errorf("SMTP_CHECK with host blocks = %+v; want the first host, fall 2 (retry 1 by default), retry_delay 1s (keepalived's default)", host)
	}
	if !hasItem(res, "host", "the first host is used") || !hasItem(res, "bind_if", "not to an interface") {
		t.Errorf("unmapped: %v; want the second host and bind_if listed", res.Unmapped)
	}
	// One server: its check is the service's.
	web := res.Config.Services["tcp:10.0.0.80:80"].Check
	if web == nil {
		t.Fatalf("HTTP_GET not imported: %v", res.Unmapped)
	}
	if web.Digest != "9b3a0c85a887a256d6939da88aabd8cd" || web.Path != "/index.html" || web.Fall != 1 || web.RetryDelayMS != 0 {
		t.Errorf("HTTP_GET with digest, retry 0 = %+v", web)
	}
	if hasItem(res, "digest", "") || hasItem(res, "delay_before_retry", "") || hasItem(res, "SMTP_CHECK", "") || hasItem(res, "fwmark", "") {
		t.Errorf("mapped keywords listed as unmapped: %v", res.Unmapped)
	}
}

// ldirectord's negotiate checks of ftp, smtp, pop, imap, nntp, mysql and
// sip map onto the nearest real exchange; ldap, pgsql and radius, which
// need a login or a secret, onto a connect check; each says what it
// leaves out.
func TestLdirectordNegotiateServices(t *testing.T) {
	for _, tc := range []struct {
		service, proto    string
		typ, send, expect string
	}{
		{"ftp", "tcp", "tcp", "", `^220[ -]`},
		{"smtp", "tcp", "smtp", "", ""},
		{"submission", "tcp", "smtp", "", ""},
		{"pop", "tcp", "tcp", "", `^\+OK`},
		{"pops", "tcp", "tls", "", `^\+OK`},
		{"imap", "tcp", "tcp", "", `^\* OK`},
		{"imaps", "tcp", "tls", "", `^\* OK`},
		{"nntp", "tcp", "tcp", "", `^20[01][ -]`},
		{"mysql", "tcp", "tcp", "", `(?s)^.{3}\x00\x0a`},
		{"sip", "udp", "udp", "OPTIONS sip:", `^SIP/2\.0 [1-6][0-9][0-9] `},
		{"sip", "tcp", "tcp", "", ""},
		{"ldap", "tcp", "tcp", "", ""},
		{"pgsql", "tcp", "tcp", "", ""},
		{"radius", "udp", "icmp", "", ""},
	} {
		res, err := FromLdirectord("l.cf", []byte("virtual=10.0.0.1:1000\n\treal=10.0.1.1:1000 gate\n\tprotocol="+tc.proto+"\n\tchecktype=negotiate\n\tservice="+tc.service+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		svc := res.Config.Services[tc.proto+":10.0.0.1:1000"]
		if svc == nil || svc.Check == nil {
			t.Fatalf("%s/%s: no check imported: %v", tc.service, tc.proto, res.Unmapped)
		}
		c := svc.Check
		if c.Type != tc.typ || c.Expect != tc.expect || (tc.send == "") != (c.Send == "") || len(c.Send) < len(tc.send) || c.Send[:len(tc.send)] != tc.send {
			t.Errorf("%s/%s: check %+v, want type %s, send %q..., expect %q", tc.service, tc.proto, c, tc.typ, tc.send, tc.expect)
		}
		if !hasItem(res, "service", "imported as") {
			t.Errorf("%s/%s: no note saying what was imported: %v", tc.service, tc.proto, res.Unmapped)
		}
		if err := fsm.ValidateHealthCheck("check", c); err != nil {
			t.Errorf("%s/%s: %v", tc.service, tc.proto, err)
		}
	}
}
