package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// maxBody bounds what the HTTP client reads: the lab servers send a name.
const maxBody = 4096

func httpCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("http", flag.ContinueOnError)
	rawURL := fs.String("url", "", "URL to GET (required)")
	count := fs.Int("count", 1, "number of requests, each on a fresh connection")
	timeout := fs.Duration("timeout", 2*time.Second, "deadline for each request, connect included")
	interval := fs.Duration("interval", 0, "pause between requests")
	srcs := addSourceFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *rawURL == "" {
		return fmt.Errorf("%w: http: --url is required", errUsage)
	}
	src, err := srcs()
	if err != nil {
		return err
	}
	if err := checkCount("count", *count); err != nil {
		return err
	}
	if *timeout <= 0 || *interval < 0 {
		return fmt.Errorf("%w: http: --timeout must be > 0 and --interval >= 0", errUsage)
	}
	req, err := http.NewRequest(http.MethodGet, *rawURL, nil)
	if err != nil {
		return fmt.Errorf("%w: http: %w", errUsage, err)
	}
	res := httpRun(ctx, req, *count, *timeout, *interval, src)
	return writeJSON(stdout, res)
}

// httpRun makes count sequential requests. Keep-alives are off so that every
// request is a new TCP connection, which IPVS schedules afresh; proxies from
// the environment are ignored because the lab addresses are always direct.
// With fixed source ports (src), the result also names the server each
// source tuple reached ("" for a failure).
func httpRun(ctx context.Context, req *http.Request, count int, timeout, interval time.Duration, src sources) *result {
	res := newResult()
	if src.from != 0 {
		res.Tuples = map[string]string{}
	}
	for i := 0; i < count; i++ {
		if i > 0 && !pause(ctx, interval) {
			break
		}
		client, done := httpClient(src, i, timeout)
		name, err := httpOnce(ctx, client, req)
		done()
		if la, ok := src.local(i); ok && res.Tuples != nil {
			res.Tuples[la.String()] = name
		}
		if err != nil {
			res.failure(err)
			continue
		}
		res.success(name)
	}
	return res
}

// httpClient is request i's client: its own transport, so that its dial
// uses request i's source (keep-alives are off, so nothing is lost). done
// closes the connection at once: the transport closes it from another
// goroutine a moment after the body is read, and a fixed source tuple
// dialed again before that would find it still in use.
func httpClient(src sources, i int, timeout time.Duration) (client *http.Client, done func()) {
	dial := src.dialContext(i, timeout)
	var mu sync.Mutex
	var conns []net.Conn
	tr := &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := dial(ctx, network, addr)
			if err == nil {
				mu.Lock()
				conns = append(conns, c)
				mu.Unlock()
			}
			return c, err
		},
	}
	return &http.Client{Transport: tr, Timeout: timeout}, func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			_ = c.Close()
		}
	}
}

func httpOnce(ctx context.Context, client *http.Client, req *http.Request) (string, error) {
	resp, err := client.Do(req.Clone(ctx))
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return "", fmt.Errorf("reading body: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("status %s", resp.Status)
	}
	name := strings.TrimSpace(string(body))
	if name == "" {
		// Not a lab server (its body is the name): fall back to the header,
		// and count an anonymous answer as a failure rather than a server.
		name = resp.Header.Get("X-Real-Server")
	}
	if name == "" {
		return "", fmt.Errorf("empty answer (no body, no X-Real-Server)")
	}
	return name, nil
}

func dnsCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("dns", flag.ContinueOnError)
	server := fs.String("server", "", "DNS server ADDR[:PORT], port 53 if omitted (required)")
	count := fs.Int("count", 1, "number of TXT queries, each from a fresh socket")
	timeout := fs.Duration("timeout", time.Second, "deadline for each query")
	interval := fs.Duration("interval", 0, "pause between queries")
	qname := fs.String("qname", "lab.", "name to ask for")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *server == "" {
		return fmt.Errorf("%w: dns: --server is required", errUsage)
	}
	if err := checkCount("count", *count); err != nil {
		return err
	}
	if *timeout <= 0 || *interval < 0 {
		return fmt.Errorf("%w: dns: --timeout must be > 0 and --interval >= 0", errUsage)
	}
	addr := *server
	if _, _, err := net.SplitHostPort(addr); err != nil {
		addr = net.JoinHostPort(strings.Trim(addr, "[]"), "53")
	}
	res := dnsRun(ctx, addr, dns.Fqdn(*qname), *count, *timeout, *interval)
	return writeJSON(stdout, res)
}

// dnsRun sends count TXT queries over UDP. dns.Client dials a new socket per
// Exchange, so every query has a new source port and IPVS schedules it as a
// new connection.
func dnsRun(ctx context.Context, addr, qname string, count int, timeout, interval time.Duration) *result {
	client := &dns.Client{Net: "udp", Timeout: timeout}
	res := newResult()
	for i := 0; i < count; i++ {
		if i > 0 && !pause(ctx, interval) {
			break
		}
		name, err := dnsOnce(ctx, client, addr, qname)
		if err != nil {
			res.failure(err)
			continue
		}
		res.success(name)
	}
	return res
}

func dnsOnce(ctx context.Context, client *dns.Client, addr, qname string) (string, error) {
	m := new(dns.Msg)
	m.SetQuestion(qname, dns.TypeTXT)
	reply, _, err := client.ExchangeContext(ctx, m, addr)
	if err != nil {
		return "", err
	}
	if reply.Rcode != dns.RcodeSuccess {
		return "", fmt.Errorf("rcode %s", dns.RcodeToString[reply.Rcode])
	}
	for _, rr := range reply.Answer {
		if txt, ok := rr.(*dns.TXT); ok && len(txt.Txt) > 0 {
			return strings.Join(txt.Txt, ""), nil
		}
	}
	return "", fmt.Errorf("no TXT record in the answer")
}

// pause waits d, or returns false if ctx ends first (SIGTERM): the client
// then stops and still prints what it has.
func pause(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
