package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// pollLine is one finished request of `labtool poll`. The times are wall
// clock unix nanoseconds, not durations: the failover benchmark correlates
// them with a crash it caused from another process on the same host.
type pollLine struct {
	StartNS int64  `json:"start_ns"`
	EndNS   int64  `json:"end_ns"`
	OK      bool   `json:"ok"`
	Server  string `json:"server,omitempty"`
	Err     string `json:"err,omitempty"`
}

func pollCmd(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("poll", flag.ContinueOnError)
	rawURL := fs.String("url", "", "URL to GET (required)")
	every := fs.Duration("every", 10*time.Millisecond, "start one request this often, whether or not earlier ones have finished")
	timeout := fs.Duration("timeout", 50*time.Millisecond, "total deadline of each request, connect and body included")
	duration := fs.Duration("duration", 0, "stop starting requests after this long (0: until SIGTERM or SIGINT)")
	srcs := addSourceFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	src, err := srcs()
	if err != nil {
		return err
	}
	if src.from != 0 {
		return fmt.Errorf("%w: poll: --src-ports is for http only", errUsage)
	}
	if *rawURL == "" {
		return fmt.Errorf("%w: poll: --url is required", errUsage)
	}
	if *every <= 0 || *timeout <= 0 || *duration < 0 {
		return fmt.Errorf("%w: poll: --every and --timeout must be > 0, --duration >= 0", errUsage)
	}
	req, err := http.NewRequest(http.MethodGet, *rawURL, nil)
	if err != nil {
		return fmt.Errorf("%w: poll: %w", errUsage, err)
	}
	return pollRun(ctx, req, *every, *timeout, *duration, src, stdout)
}

// pollRun starts a request every `every` until ctx ends or duration passes,
// then waits for the requests in flight (each bounded by timeout) and
// returns once every line is written. Each request runs in its own
// goroutine: during a failover most of them hang until their deadline, and
// a sequential loop would then sample the VIP only once per timeout.
func pollRun(ctx context.Context, req *http.Request, every, timeout, duration time.Duration, src sources, stdout io.Writer) error {
	tr := &http.Transport{
		Proxy:             nil,
		DisableKeepAlives: true, // a new connection per request: the VIP's holder answers, not an old socket
		DialContext:       (&net.Dialer{Timeout: timeout}).DialContext,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: timeout}

	// One writer owns stdout, so lines never interleave; the buffer lets a
	// burst of requests that end together (a VIP coming back) finish
	// without waiting on each other's writes.
	lines := make(chan pollLine, 1024)
	writeErr := make(chan error, 1)
	go func() { writeErr <- writeLines(stdout, lines) }()

	var stop <-chan time.Time
	if duration > 0 {
		t := time.NewTimer(duration)
		defer t.Stop()
		stop = t.C
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	var wg sync.WaitGroup
loop:
	for i := 0; ; i++ {
		c, done := client, func() {}
		if len(src.addrs) > 0 {
			c, done = httpClient(src, i, timeout)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := pollOnce(c, req, timeout)
			done()
			lines <- l
		}()
		select {
		case <-tick.C:
		case <-stop:
			break loop
		case <-ctx.Done():
			break loop
		}
	}
	wg.Wait()
	close(lines)
	return <-writeErr
}

// pollOnce makes one request. Its context is not the command's: a request
// in flight when SIGTERM arrives still ends by its own deadline and is
// reported, so the last lines of a run are as honest as the others.
func pollOnce(client *http.Client, req *http.Request, timeout time.Duration) pollLine {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	name, err := httpOnce(ctx, client, req)
	l := pollLine{StartNS: start.UnixNano(), EndNS: time.Now().UnixNano(), OK: err == nil, Server: name}
	if err != nil {
		l.Err = describe(err)
	}
	return l
}

// writeLines writes each line with one Write call as it comes. stdout is
// unbuffered (an *os.File), so each line reaches the reader at once; a
// failed write is remembered but the channel is still drained, or the
// request goroutines would block forever.
func writeLines(w io.Writer, lines <-chan pollLine) error {
	var first error
	for l := range lines {
		if first != nil {
			continue
		}
		b, err := json.Marshal(l)
		if err != nil {
			first = err
			continue
		}
		if _, err := w.Write(append(b, '\n')); err != nil {
			first = err
		}
	}
	return first
}
