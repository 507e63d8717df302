package failover

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/test/lab/topo"
)

// Defaults for StartPoller: a request every 10 ms resolves a failover to
// about that, and 50 ms is ten round trips on a bridge yet short enough
// that requests black-holed by a dead holder give up quickly.
const (
	PollEvery   = 10 * time.Millisecond
	PollTimeout = 50 * time.Millisecond
)

// Result is one request of the poller, as `labtool poll` reported it.
type Result struct {
	Start, End time.Time // wall clock, comparable with time.Now in this process
	OK         bool
	Server     string // who answered, when OK
	Err        string // why not, otherwise
}

// Poller is a running `labtool poll` and what it has reported so far. Its
// stdout goes to a log file (topo.Start) that a goroutine tails: the file,
// unlike the Proc's in-memory copy, is not capped, and an hour of polling is
// a few megabytes.
type Poller struct {
	proc     *topo.Proc
	timeout  time.Duration
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	mu       sync.Mutex
	results  []Result // in the order labtool wrote them: by End, nearly
	changed  chan struct{}
	finished bool // the process has exited and its output is all read
	junk     int  // lines that were not results (stderr, a usage error)
	readErr  error
}

// StartPoller starts `labtool poll --url url` in node's namespace and
// begins parsing its output. every and timeout are labtool's --every and
// --timeout (0: PollEvery, PollTimeout). It is stopped by Stop or at the
// end of the test.
func StartPoller(t testing.TB, tp *topo.Topology, labtool, node, url string, every, timeout time.Duration) *Poller {
	t.Helper()
	if every <= 0 {
		every = PollEvery
	}
	if timeout <= 0 {
		timeout = PollTimeout
	}
	proc := tp.Start(node, labtool, "poll", "--url", url, "--every", every.String(), "--timeout", timeout.String())
	f, err := os.Open(proc.LogPath)
	if err != nil {
		t.Fatalf("poller: %v", err)
	}
	p := &Poller{proc: proc, timeout: timeout, stop: make(chan struct{}), done: make(chan struct{}), changed: make(chan struct{})}
	go func() {
		defer close(p.done)
		defer f.Close()
		p.tail(f)
	}()
	t.Cleanup(func() { _ = p.Stop() })
	return p
}

// tailEvery is how often the tail looks for new output once it has caught
// up: well below the poll period, so results are seen as they happen.
const tailEvery = 2 * time.Millisecond

func (p *Poller) tail(f *os.File) {
	tick := time.NewTicker(tailEvery)
	defer tick.Stop()
	buf := make([]byte, 64<<10)
	var partial []byte
	for {
		n, err := f.Read(buf)
		if n > 0 {
			partial = p.parse(append(partial, buf[:n]...))
			continue
		}
		if err != nil && err != io.EOF {
			p.finish(err)
			return
		}
		select {
		case <-tick.C:
		case <-p.proc.Done():
			// The Proc closes its file before Done: what is there is all.
			for {
				n, _ := f.Read(buf)
				if n == 0 {
					break
				}
				partial = p.parse(append(partial, buf[:n]...))
			}
			p.finish(nil)
			return
		case <-p.stop:
			p.finish(nil)
			return
		}
	}
}

// parse consumes every complete line of data and returns the rest.
func (p *Poller) parse(data []byte) []byte {
	var got []Result
	junk := 0
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		line := data[:i]
		data = data[i+1:]
		var l struct {
			StartNS int64  `json:"start_ns"`
			EndNS   int64  `json:"end_ns"`
			OK      bool   `json:"ok"`
			Server  string `json:"server"`
			Err     string `json:"err"`
		}
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &l) != nil || l.StartNS == 0 {
			junk++
			continue
		}
		got = append(got, Result{Start: time.Unix(0, l.StartNS), End: time.Unix(0, l.EndNS), OK: l.OK, Server: l.Server, Err: l.Err})
	}
	if len(got) > 0 || junk > 0 {
		p.mu.Lock()
		p.results = append(p.results, got...)
		p.junk += junk
		close(p.changed)
		p.changed = make(chan struct{})
		p.mu.Unlock()
	}
	// A copy, so that the caller's append does not grow a slice of buf.
	return append([]byte(nil), data...)
}

func (p *Poller) finish(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finished = true
	p.readErr = err
	close(p.changed)
	p.changed = make(chan struct{})
}

// Stop sends labtool SIGTERM, waits for the requests in flight to end and
// for their lines to be read. Safe to call more than once.
func (p *Poller) Stop() error {
	p.proc.Stop()
	err := p.proc.Wait(p.timeout + 10*time.Second)
	if err != nil {
		// A SIGTERM'ed labtool exits 0; anything else is worth reporting,
		// but the results read so far stay usable.
		_ = p.proc.Kill()
	}
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.stopOnce.Do(func() { close(p.stop) })
		<-p.done
	}
	return err
}

// Priority sets every thread of labtool to SCHED_RR at prio, or back to
// SCHED_OTHER for 0 (`chrt -a -p`; threads it starts later inherit it).
func (p *Poller) Priority(prio int) error { return SetPriority(p.proc.Pid(), prio) }

// SetPriority sets every thread of process pid to SCHED_RR at prio, or
// back to SCHED_OTHER for 0 (`chrt -a -p`; threads it starts later
// inherit it).
func SetPriority(pid, prio int) error {
	args := []string{"-a", "-o", "-p", "0", strconv.Itoa(pid)}
	if prio > 0 {
		args = []string{"-a", "-r", "-p", strconv.Itoa(prio), strconv.Itoa(pid)}
	}
	if out, err := exec.Command("chrt", args...).CombinedOutput(); err != nil {
		return fmt.Errorf("chrt %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// from returns the index of the first result that can have started at or
// after t. Results are written in order of completion, which is the order
// of End up to scheduling noise; a margin of one timeout plus a second
// covers that noise many times over.
func (p *Poller) from(t time.Time) int {
	cut := t.Add(-p.timeout - time.Second)
	return sort.Search(len(p.results), func(i int) bool { return !p.results[i].End.Before(cut) })
}

// wait calls check with the results under the lock until it returns true,
// the poller has finished, or deadline passes; it reports whether check
// succeeded.
func (p *Poller) wait(deadline time.Time, check func(rs []Result) bool) bool {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		p.mu.Lock()
		ok := check(p.results)
		changed, finished := p.changed, p.finished
		p.mu.Unlock()
		if ok {
			return true
		}
		if finished {
			return false
		}
		select {
		case <-changed:
		case <-timer.C:
			return false
		}
	}
}

// FirstOKAfter waits until deadline for a successful answer to a request
// started at or after t, and returns the earliest such answer's end and
// server. This is the failover metric: the client has service again.
func (p *Poller) FirstOKAfter(t, deadline time.Time) (end time.Time, server string, ok bool) {
	return p.FirstOKFromOther(t, deadline, "")
}

// FirstOKFromOther is FirstOKAfter ignoring answers from server not (""
// ignores none). A planned hand-over needs it: the old holder may answer
// until it lets go, and what is measured is when the new one answers.
func (p *Poller) FirstOKFromOther(t, deadline time.Time, not string) (end time.Time, server string, ok bool) {
	ok = p.wait(deadline, func(rs []Result) bool {
		found := false
		for _, r := range rs[p.from(t):] {
			if r.OK && !r.Start.Before(t) && (not == "" || r.Server != not) && (!found || r.End.Before(end)) {
				end, server, found = r.End, r.Server, true
			}
		}
		return found
	})
	return end, server, ok
}

// WaitStreak waits until deadline for n answers in a row, all from server
// ("" : any one server), to requests started at or after t; "in a row"
// is in the order labtool reported them, and any failure in between starts
// the count again. It returns the server.
func (p *Poller) WaitStreak(t time.Time, n int, server string, deadline time.Time) (string, bool) {
	var got string
	ok := p.wait(deadline, func(rs []Result) bool {
		run, who := 0, ""
		for _, r := range rs[p.from(t):] {
			if r.Start.Before(t) {
				continue
			}
			if !r.OK || (server != "" && r.Server != server) || (who != "" && r.Server != who) {
				run, who = 0, ""
				if r.OK && server == "" {
					run, who = 1, r.Server
				}
				continue
			}
			run, who = run+1, r.Server
			if run >= n {
				got = who
				return true
			}
		}
		return false
	})
	return got, ok
}

// Count returns how many requests started in [from, to) have been
// reported, and how many of them failed.
func (p *Poller) Count(from, to time.Time) (total, failed int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, r := range p.results[p.from(from):] {
		if r.Start.Before(from) || !r.Start.Before(to) {
			continue
		}
		total++
		if !r.OK {
			failed++
		}
	}
	return total, failed
}

// Results returns a copy of the results for requests started in [from, to).
func (p *Poller) Results(from, to time.Time) []Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []Result
	for _, r := range p.results[p.from(from):] {
		if !r.Start.Before(from) && r.Start.Before(to) {
			out = append(out, r)
		}
	}
	return out
}

// Health describes the poller itself, for failure messages: results so
// far, lines that were not results, and whether labtool is still running.
func (p *Poller) Health() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	state := "running"
	if p.finished {
		state = fmt.Sprintf("finished (read error: %v)", p.readErr)
	}
	return fmt.Sprintf("%d results, %d other lines, %s; output starts:\n%.600s", len(p.results), p.junk, state, p.proc.Output())
}
