package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

const (
	maxConns    = 10_000 // one file descriptor each
	maxDuration = time.Hour
)

// echoResult is the JSON line printed by the echo client.
type echoResult struct {
	Conns    int            `json:"conns"`
	Survived int            `json:"survived"`
	Broken   int            `json:"broken"`
	MaxGapMS int64          `json:"max_gap_ms"`
	ByServer map[string]int `json:"by_server"`
	Errors   []string       `json:"errors"`
}

func echoCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("echo", flag.ContinueOnError)
	addr := fs.String("addr", "", "echo server ADDR:PORT (required)")
	conns := fs.Int("conns", 1, "number of concurrent long-lived connections")
	interval := fs.Duration("interval", 100*time.Millisecond, "pause between lines on each connection")
	duration := fs.Duration("duration", 0, "how long each connection keeps sending (required)")
	timeout := fs.Duration("timeout", 2*time.Second, "connect deadline, and how long to wait for the last replies after --duration")
	srcs := addSourceFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	src, err := srcs()
	if err != nil {
		return err
	}
	if src.from != 0 {
		return fmt.Errorf("%w: echo: --src-ports is for http only", errUsage)
	}
	if *addr == "" {
		return fmt.Errorf("%w: echo: --addr is required", errUsage)
	}
	if *conns < 1 || *conns > maxConns {
		return fmt.Errorf("%w: echo: --conns must be between 1 and %d", errUsage, maxConns)
	}
	if *duration <= 0 || *duration > maxDuration || *interval <= 0 || *timeout <= 0 {
		return fmt.Errorf("%w: echo: --duration must be in (0, %s], --interval and --timeout > 0", errUsage, maxDuration)
	}
	res := echoRun(ctx, *addr, *conns, *interval, *duration, *timeout, src)
	return writeJSON(stdout, res)
}

// connStats is what one connection saw.
type connStats struct {
	server string        // from the first reply; "" if none came
	maxGap time.Duration // longest wait between consecutive replies
	err    error         // nil: every line was echoed, in order, on one connection
}

// echoRun opens n connections at once and runs each until duration has
// passed, then waits up to timeout for the replies still in flight.
func echoRun(ctx context.Context, addr string, n int, interval, duration, timeout time.Duration, src sources) *echoResult {
	end := time.Now().Add(duration)
	stats := make([]connStats, n)
	var wg sync.WaitGroup
	for i := range stats {
		wg.Add(1)
		go func() {
			defer wg.Done()
			stats[i] = echoConn(ctx, src.dialer(i, timeout), addr, interval, end)
		}()
	}
	wg.Wait()

	res := &echoResult{Conns: n, ByServer: map[string]int{}, Errors: []string{}}
	var maxGap time.Duration
	for _, st := range stats {
		if st.server != "" {
			res.ByServer[st.server]++
		}
		maxGap = max(maxGap, st.maxGap)
		if st.err != nil {
			res.Broken++
			res.Errors = addError(res.Errors, st.err)
			continue
		}
		res.Survived++
	}
	res.MaxGapMS = maxGap.Milliseconds()
	return res
}

// echoConn runs one connection. A writer sends "1\n", "2\n", ... every
// interval until end, then half-closes; the reader checks each reply is
// "NAME: seq" for the next seq. The two are decoupled on purpose: during a
// failover the network may swallow packets for a second, TCP retransmits
// them, and the replies then arrive late in a burst. That is a gap, not a
// broken connection. The connection is broken only if the stack reports an
// error (a reset, typically from a director that knows nothing of it), a
// reply is wrong, or not every line has been echoed when the server closes
// its side or end+timeout passes.
func echoConn(ctx context.Context, d *net.Dialer, addr string, interval time.Duration, end time.Time) (st connStats) {
	timeout := d.Timeout
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		st.err = err
		return st
	}
	tc := c.(*net.TCPConn)
	_ = c.SetReadDeadline(end.Add(timeout))

	start := time.Now()
	var sent atomic.Int64
	werr := make(chan error, 1)
	go func() { werr <- echoWrite(ctx, tc, interval, end, &sent) }()

	st.server, st.maxGap, err = echoRead(c, start, &sent)
	// Closing unblocks a writer still waiting for its next tick after the
	// reader gave up.
	c.Close()
	if wErr := <-werr; err == nil && wErr != nil {
		err = wErr
	}
	st.err = err
	return st
}

// echoWrite sends numbered lines until end, then half-closes the connection
// so that the server, having echoed everything, closes its side and the
// reader sees EOF.
func echoWrite(ctx context.Context, c *net.TCPConn, interval time.Duration, end time.Time, sent *atomic.Int64) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	stop := time.NewTimer(time.Until(end))
	defer stop.Stop()
	for seq := int64(1); ; seq++ {
		// Count before writing: the reply can arrive before Write returns.
		sent.Store(seq)
		_ = c.SetWriteDeadline(end.Add(interval))
		if _, err := fmt.Fprintf(c, "%d\n", seq); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		select {
		case <-tick.C:
		case <-stop.C:
			return closeWrite(c)
		case <-ctx.Done():
			return closeWrite(c)
		}
	}
}

func closeWrite(c *net.TCPConn) error {
	if err := c.CloseWrite(); err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("close write: %w", err)
	}
	return nil
}

// echoRead reads replies until EOF or an error and reports the server name,
// the longest gap between replies (the first one measured from start), and
// nil only if every line sent was echoed in order.
func echoRead(c net.Conn, start time.Time, sent *atomic.Int64) (server string, maxGap time.Duration, err error) {
	r := bufio.NewReaderSize(c, 4096)
	last := start
	var got int64
	for {
		line, err := readLine(r)
		if errors.Is(err, io.EOF) {
			if n := sent.Load(); got != n {
				return server, maxGap, fmt.Errorf("server closed after %d of %d replies", got, n)
			}
			return server, maxGap, nil
		}
		if err != nil {
			return server, maxGap, fmt.Errorf("after %d of %d replies: %w", got, sent.Load(), err)
		}
		now := time.Now()
		maxGap = max(maxGap, now.Sub(last))
		last = now
		name, seq, ok := strings.Cut(line, ": ")
		if !ok {
			return server, maxGap, fmt.Errorf("malformed reply %q", line)
		}
		if server == "" {
			server = name
		}
		if name != server {
			return server, maxGap, fmt.Errorf("reply from %q on a connection to %q", name, server)
		}
		if seq != strconv.FormatInt(got+1, 10) {
			return server, maxGap, fmt.Errorf("reply %q, want line %d", line, got+1)
		}
		got++
	}
}
