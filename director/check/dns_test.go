package check

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/ipvsman/ipvsman/fsm"
)

// dnsZone answers ok.example A and txt.example TXT; anything else is
// NXDOMAIN.
func dnsZone(w dns.ResponseWriter, q *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(q)
	m.Authoritative = true
	name, qtype := q.Question[0].Name, q.Question[0].Qtype
	switch {
	case name == "ok.example." && qtype == dns.TypeA:
		rr, _ := dns.NewRR("ok.example. 60 IN A 192.0.2.10")
		m.Answer = append(m.Answer, rr)
	case name == "txt.example." && qtype == dns.TypeTXT:
		rr, _ := dns.NewRR(`txt.example. 60 IN TXT "v=health1"`)
		m.Answer = append(m.Answer, rr)
	case name == "ok.example." || name == "txt.example.":
		// the name exists, without records of that type: NOERROR, no answer
	default:
		m.Rcode = dns.RcodeNameError
	}
	w.WriteMsg(m)
}

// startDNS serves dnsZone on 127.0.0.1 over UDP and TCP.
func startDNS(t *testing.T) (udp, tcp netip.AddrPort) {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	for _, srv := range []*dns.Server{
		{PacketConn: pc, Handler: dns.HandlerFunc(dnsZone)},
		{Listener: l, Handler: dns.HandlerFunc(dnsZone)},
	} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan error, 1)
		go func() { done <- srv.ActivateAndServe() }()
		select {
		case <-started:
		case err := <-done:
			t.Fatalf("dns server: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("dns server did not start within 5s")
		}
		t.Cleanup(func() { srv.Shutdown() })
	}
	return addrPort(t, pc.LocalAddr()), addrPort(t, l.Addr())
}

func TestDNS(t *testing.T) {
	udp, tcp := startDNS(t)
	for _, tc := range []struct {
		name   string
		c      fsm.HealthCheck
		ok     bool
		detail string
	}{
		{"noerror", fsm.HealthCheck{Query: "ok.example"}, true, "rcode NOERROR"},
		{"answer", fsm.HealthCheck{Query: "ok.example.", Answer: "192.0.2.10"}, true, "rcode NOERROR"},
		{"answer mismatch", fsm.HealthCheck{Query: "ok.example", Answer: "192.0.2.99"}, false, `no answer contains "192.0.2.99"`},
		{"no answer of that type", fsm.HealthCheck{Query: "ok.example", QType: "AAAA", Answer: "2001:db8::1"}, false, "0 answers"},
		{"txt", fsm.HealthCheck{Query: "txt.example", QType: "TXT", Answer: "v=health1"}, true, "rcode NOERROR"},
		{"nxdomain", fsm.HealthCheck{Query: "missing.example"}, false, "rcode NXDOMAIN"},
		{"nxdomain expected", fsm.HealthCheck{Query: "missing.example", RCode: "NXDOMAIN"}, true, "rcode NXDOMAIN"},
		{"noerror not expected", fsm.HealthCheck{Query: "ok.example", RCode: "NXDOMAIN"}, false, "rcode NOERROR, want NXDOMAIN"},
	} {
		for _, proto := range []string{"udp", "tcp"} {
			t.Run(tc.name+"/"+proto, func(t *testing.T) {
				c := tc.c
				c.Type, c.Proto = "dns", proto
				target := udp
				if proto == "tcp" {
					target = tcp
				}
				r := check(t, build(t, c), target, 5*time.Second)
				wantResult(t, r, tc.ok, tc.detail)
			})
		}
	}
}

func TestDNSNoServer(t *testing.T) {
	t.Run("udp", func(t *testing.T) {
		r := check(t, build(t, fsm.HealthCheck{Type: "dns", Query: "ok.example"}), closedUDPPort(t), 5*time.Second)
		wantFail(t, r, "refused")
	})
	t.Run("tcp", func(t *testing.T) {
		r := check(t, build(t, fsm.HealthCheck{Type: "dns", Proto: "tcp", Query: "ok.example"}), closedTCPPort(t), 5*time.Second)
		wantFail(t, r, "refused")
	})
	t.Run("timeout", func(t *testing.T) {
		// A UDP socket that never answers.
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer pc.Close()
		r := check(t, build(t, fsm.HealthCheck{Type: "dns", Query: "ok.example"}), addrPort(t, pc.LocalAddr()), 100*time.Millisecond)
		wantFail(t, r, "timeout")
	})
}
