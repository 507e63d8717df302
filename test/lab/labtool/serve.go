package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/miekg/dns"
)

const (
	// echoIdle closes an echo connection that has sent nothing for this long:
	// long enough for any failover test, short enough that an abandoned
	// connection does not live forever.
	echoIdle = 10 * time.Minute
	// ioTimeout bounds every single write and every HTTP request the servers
	// handle, so a peer that stops reading cannot pin a goroutine.
	ioTimeout = 10 * time.Second
	// maxLine bounds one echo line; the echo client sends a few bytes.
	maxLine = 64 << 10
)

func serveCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	var cfg serveConfig
	fs.StringVar(&cfg.name, "name", "", "server name reported to clients (required)")
	fs.StringVar(&cfg.httpAddr, "http", ":80", "HTTP listen address (empty: none)")
	fs.StringVar(&cfg.echoAddr, "echo", ":7", "TCP line-echo listen address (empty: none)")
	fs.StringVar(&cfg.dnsAddr, "dns", ":53", "UDP DNS listen address (empty: none)")
	fs.StringVar(&cfg.httpPorts, "http-ports", "", "also serve HTTP on every port FROM-TO, on --http's address (make bench-health)")
	fs.StringVar(&cfg.statsAddr, "stats", "", `address answering {"http_requests":N}, the requests served so far (empty: none)`)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if cfg.name == "" {
		return fmt.Errorf("%w: serve: --name is required", errUsage)
	}
	if cfg.httpPorts != "" {
		if _, _, err := parsePortRange(cfg.httpPorts); err != nil {
			return fmt.Errorf("%w: serve: --http-ports: %w", errUsage, err)
		}
	}
	s, err := startServers(cfg)
	if err != nil {
		return err
	}
	for _, a := range s.addrs() {
		fmt.Fprintf(stderr, "listening %s\n", a)
	}
	// The caller (topo.StartRealServers) waits for this line: every listener
	// is bound and the DNS server has set its socket options by now.
	fmt.Fprintln(stdout, "ready")
	<-ctx.Done()
	s.close()
	return nil
}

type serveConfig struct {
	name, httpAddr, echoAddr, dnsAddr string
	// httpPorts ("FROM-TO" or "PORT") adds an HTTP listener on each port,
	// on httpAddr's host: thousands of health-check targets in one process.
	httpPorts string
	// statsAddr serves the request counter, which the benchmarks read to
	// count the checks a checker made, the same way for every checker.
	statsAddr string
}

// parsePortRange reads "FROM-TO" or a single "PORT", 1-65535, FROM <= TO.
func parsePortRange(s string) (from, to uint16, err error) {
	lo, hi, found := strings.Cut(s, "-")
	if !found {
		hi = lo
	}
	a, errA := strconv.ParseUint(lo, 10, 16)
	b, errB := strconv.ParseUint(hi, 10, 16)
	if errA != nil || errB != nil || a == 0 || b < a {
		return 0, 0, fmt.Errorf("%q is not a port range FROM-TO within 1-65535", s)
	}
	return uint16(a), uint16(b), nil
}

// servers is a running set of listeners; the tests start one on loopback.
type servers struct {
	name string
	http *http.Server
	httpLn,
	echoLn net.Listener
	rangeLns  []net.Listener // --http-ports, in port order
	rangeDesc string         // "HOST:FROM-TO", for the listening line
	stats     *http.Server
	statsLn   net.Listener
	requests  atomic.Uint64 // HTTP requests answered (the stats server's own not counted)
	dns       *dns.Server
	dnsPC     net.PacketConn

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// startServers binds every configured listener before returning, so that
// "ready" is true when it is printed. Empty addresses are skipped. Addresses
// like ":80" bind the wildcard, which is what lets a direct-routing real
// server answer on the VIP it holds on lo.
//
// On error, whatever was bound is closed again (s is not the named result,
// which `return nil, err` would clear before the deferred close).
func startServers(cfg serveConfig) (_ *servers, err error) {
	s := &servers{name: cfg.name, conns: map[net.Conn]struct{}{}}
	defer func() {
		if err != nil {
			s.close()
		}
	}()
	var lns []net.Listener
	if cfg.httpAddr != "" {
		if s.httpLn, err = net.Listen("tcp", cfg.httpAddr); err != nil {
			return nil, err
		}
		lns = append(lns, s.httpLn)
	}
	if cfg.httpPorts != "" {
		if err = s.listenRange(cfg.httpAddr, cfg.httpPorts); err != nil {
			return nil, err
		}
		lns = append(lns, s.rangeLns...)
	}
	if len(lns) > 0 {
		s.http = newHTTPServer(http.HandlerFunc(s.serveHTTP))
		// Serve returns ErrServerClosed when close is called: nothing to report.
		for _, ln := range lns {
			go func() { _ = s.http.Serve(ln) }()
		}
	}
	if cfg.statsAddr != "" {
		if s.statsLn, err = net.Listen("tcp", cfg.statsAddr); err != nil {
			return nil, err
		}
		s.stats = newHTTPServer(http.HandlerFunc(s.serveStats))
		go func() { _ = s.stats.Serve(s.statsLn) }()
	}
	if cfg.echoAddr != "" {
		if s.echoLn, err = net.Listen("tcp", cfg.echoAddr); err != nil {
			return nil, err
		}
		s.wg.Add(1)
		go s.acceptEcho()
	}
	if cfg.dnsAddr != "" {
		if err = s.startDNS(cfg.dnsAddr); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ioTimeout,
		ReadTimeout:       ioTimeout,
		WriteTimeout:      ioTimeout,
		IdleTimeout:       ioTimeout,
	}
}

// listenRange binds every port of spec on httpAddr's host ("" or ":80":
// every address). One listener per port, served by the one HTTP server.
func (s *servers) listenRange(httpAddr, spec string) error {
	from, to, err := parsePortRange(spec)
	if err != nil {
		return err
	}
	host := ""
	if httpAddr != "" {
		if host, _, err = net.SplitHostPort(httpAddr); err != nil {
			return fmt.Errorf("--http %q: %w", httpAddr, err)
		}
	}
	raiseFileLimit(uint64(to-from) + 1)
	for p := int(from); p <= int(to); p++ {
		ln, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			return fmt.Errorf("--http-ports %s: %w", spec, err)
		}
		s.rangeLns = append(s.rangeLns, ln)
	}
	s.rangeDesc = fmt.Sprintf("%s-%d", s.rangeLns[0].Addr(), to)
	return nil
}

// raiseFileLimit makes room for n more descriptors, best effort: root may
// raise the hard limit (4096 in the lab VM) too. Listening fails with
// "too many open files" if this was not enough.
func raiseFileLimit(n uint64) {
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) != nil {
		return
	}
	want := n + 1024 // and the connections being served
	if lim.Cur >= want {
		return
	}
	_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: want, Max: max(lim.Max, want)})
}

// serveStats answers the request counter as {"http_requests":N}.
func (s *servers) serveStats(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	fmt.Fprintf(w, "{\"http_requests\":%d}\n", s.requests.Load())
}

func (s *servers) serveHTTP(w http.ResponseWriter, _ *http.Request) {
	s.requests.Add(1)
	w.Header().Set("X-Real-Server", s.name)
	w.Header().Set("Content-Type", "text/plain")
	fmt.Fprintf(w, "%s\n", s.name)
}

// startDNS serves TXT queries on an already bound UDP socket. It waits for
// miekg/dns to report that it has started: only then has it turned on
// IP_PKTINFO, which it needs to answer from the address the query was sent
// to (the VIP on a direct-routing real server) rather than from the address
// the routing table would pick.
func (s *servers) startDNS(addr string) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	s.dnsPC = pc
	started := make(chan struct{})
	failed := make(chan error, 1)
	s.dns = &dns.Server{
		PacketConn:        pc,
		Handler:           dns.HandlerFunc(s.serveDNS),
		ReadTimeout:       ioTimeout,
		WriteTimeout:      ioTimeout,
		NotifyStartedFunc: func() { close(started) },
	}
	go func() { failed <- s.dns.ActivateAndServe() }()
	select {
	case <-started:
		return nil
	case err := <-failed:
		return fmt.Errorf("dns server on %s: %w", addr, err)
	case <-time.After(ioTimeout):
		return fmt.Errorf("dns server on %s did not start within %s", addr, ioTimeout)
	}
}

// serveDNS answers every TXT question with the server's name; other
// question types get an empty NOERROR answer.
func (s *servers) serveDNS(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	for _, q := range req.Question {
		if q.Qtype != dns.TypeTXT {
			continue
		}
		m.Answer = append(m.Answer, &dns.TXT{
			Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeTXT, Class: dns.ClassINET},
			Txt: []string{s.name},
		})
	}
	_ = w.WriteMsg(m) // a lost reply is the client's failure to count
}

func (s *servers) acceptEcho() {
	defer s.wg.Done()
	for {
		c, err := s.echoLn.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Temporary failures (EMFILE and the like): keep serving the
			// connections we have rather than exiting.
			time.Sleep(10 * time.Millisecond)
			continue
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go s.echo(c)
	}
}

// echo answers each line with "NAME: line". Connections are long-lived by
// design (the failover tests keep them open across a director switch), so
// only an idle limit applies.
func (s *servers) echo(c net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
		c.Close()
	}()
	r := bufio.NewReaderSize(c, 4096)
	prefix := s.name + ": "
	for {
		_ = c.SetReadDeadline(time.Now().Add(echoIdle))
		line, err := readLine(r)
		if err != nil {
			return
		}
		_ = c.SetWriteDeadline(time.Now().Add(ioTimeout))
		if _, err := io.WriteString(c, prefix+line+"\n"); err != nil {
			return
		}
	}
}

// readLine reads one line without its newline, refusing lines over maxLine.
func readLine(r *bufio.Reader) (string, error) {
	var buf []byte
	for {
		part, isPrefix, err := r.ReadLine()
		if err != nil {
			return "", err
		}
		buf = append(buf, part...)
		if len(buf) > maxLine {
			return "", fmt.Errorf("line longer than %d bytes", maxLine)
		}
		if !isPrefix {
			return string(buf), nil
		}
	}
}

func (s *servers) addrs() []string {
	var out []string
	if s.httpLn != nil {
		out = append(out, "http "+s.httpLn.Addr().String())
	}
	if len(s.rangeLns) > 0 {
		out = append(out, fmt.Sprintf("http %s (%d ports)", s.rangeDesc, len(s.rangeLns)))
	}
	if s.statsLn != nil {
		out = append(out, "stats "+s.statsLn.Addr().String())
	}
	if s.echoLn != nil {
		out = append(out, "echo "+s.echoLn.Addr().String())
	}
	if s.dnsPC != nil {
		out = append(out, "dns "+s.dnsPC.LocalAddr().String())
	}
	return out
}

// close stops every listener and open echo connection and waits for the
// echo goroutines, so that an in-process test leaks nothing.
func (s *servers) close() {
	// Closing a listener twice (the servers close theirs too) is harmless;
	// closing it here covers a server that failed before it started.
	for _, h := range []*http.Server{s.http, s.stats} {
		if h != nil {
			_ = h.Close()
		}
	}
	if s.dns != nil {
		_ = s.dns.Shutdown()
	}
	for _, c := range []io.Closer{s.httpLn, s.echoLn, s.statsLn, s.dnsPC} {
		if c != nil {
			_ = c.Close()
		}
	}
	for _, ln := range s.rangeLns {
		_ = ln.Close()
	}
	s.mu.Lock()
	for c := range s.conns {
		_ = c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}
