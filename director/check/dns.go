package check

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
	"github.com/miekg/dns"
)

func init() { Register("dns", newDNS) }

// dnsChecker asks one question over UDP or TCP and judges the response
// code and, optionally, whether some answer record's text contains Answer.
type dnsChecker struct {
	net    string
	opts   sockOpts
	query  dns.Msg // template: copied per check with a fresh ID
	rcode  int
	answer string
}

func newDNS(c fsm.HealthCheck, _ Options) (Checker, error) {
	qtype, ok := dns.StringToType[strings.ToUpper(cmp.Or(c.QType, "A"))]
	if !ok {
		return nil, fmt.Errorf("qtype %q: unknown", c.QType)
	}
	rcode, ok := dns.StringToRcode[strings.ToUpper(cmp.Or(c.RCode, "NOERROR"))]
	if !ok {
		return nil, fmt.Errorf("rcode %q: unknown", c.RCode)
	}
	network := cmp.Or(c.Proto, "udp")
	if network != "udp" && network != "tcp" {
		return nil, fmt.Errorf("proto %q: want udp or tcp", c.Proto)
	}
	d := &dnsChecker{
		net:    network,
		opts:   newSockOpts(c),
		rcode:  rcode,
		answer: c.Answer,
	}
	d.query.SetQuestion(dns.Fqdn(c.Query), qtype)
	return d, nil
}

func (d *dnsChecker) Check(ctx context.Context, target netip.AddrPort) Result {
	start := time.Now()
	fail := func(err error) Result {
		return Result{Latency: time.Since(start), Detail: describe(ctx, err)}
	}
	conn, err := d.opts.dial(ctx, d.net, target)
	if err != nil {
		return Result{Latency: time.Since(start), Detail: describeSocket(ctx, d.opts, err)}
	}
	defer conn.Close()
	defer watch(ctx, conn)()
	m := d.query // the Question slice is shared and only read
	m.Id = dns.Id()
	// The exchange is done here rather than by dns.Client, whose own
	// deadlines would override the cancellation set by watch.
	co := &dns.Conn{Conn: conn, UDPSize: dns.DefaultMsgSize}
	if err := co.WriteMsg(&m); err != nil {
		return fail(err)
	}
	var r *dns.Msg
	for {
		if r, err = co.ReadMsg(); err != nil {
			return fail(err)
		}
		if r.Id == m.Id {
			break
		}
		if d.net == "tcp" {
			return fail(dns.ErrId)
		}
		// UDP: a late reply to an earlier query; wait for ours.
	}
	res := Result{Latency: time.Since(start), Detail: "rcode " + rcodeName(r.Rcode)}
	if r.Rcode != d.rcode {
		res.Detail += ", want " + rcodeName(d.rcode)
		return res
	}
	if d.answer != "" {
		found := false
		for _, rr := range r.Answer {
			if strings.Contains(rr.String(), d.answer) {
				found = true
				break
			}
		}
		if !found {
			res.Detail = clip(fmt.Sprintf("%s, no answer contains %q (%d answers)", res.Detail, d.answer, len(r.Answer)))
			return res
		}
	}
	res.OK = true
	return res
}

func rcodeName(rc int) string {
	if s, ok := dns.RcodeToString[rc]; ok {
		return s
	}
	return strconv.Itoa(rc)
}
