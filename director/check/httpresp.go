package check

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"hash"
	"io"
	"math"
	"strconv"
)

// response judges an HTTP answer as its bytes arrive. It does no I/O: a
// driver reads into space() and reports each read to fed, so the same
// judgement serves the checker's goroutine (Check) and the event loop
// (loop_linux.go). Both read one answer per connection.
type response struct {
	h    *httpChecker
	head []byte // the status line and headers; scratch once they are read
	n    int    // bytes in head
	// body holds the judged part of the body (h.body != nil); nil when
	// nothing judges it and its bytes go to head, as scratch.
	body   []byte
	bodyAt int // where the body starts in head; -1 until the head is read
	code   int
	want   int // Content-Length, or -1
	got    int // body bytes read, up to limit
	// limit is the body bytes to read: maxRead, or fewer by
	// Content-Length; with a digest, the whole body (Content-Length, else
	// up to the server's close).
	limit  int
	digest hash.Hash // the body's MD5 so far; nil without a digest
	last   []byte    // where the last read went (space), for the digest

	// The outcome, once judged.
	judged bool
	ok     bool
	detail string // "HTTP nnn", or the start of one ("HTTP 200, body: ")
	err    error  // a failure the driver describes (it knows timeouts)
	// draining: judged, and the server is given closeWait to close first
	// (see awaitClose); drained counts reads since.
	draining bool
	drained  int
	done     bool // nothing more to read
}

func (h *httpChecker) newResponse(head, body []byte) response {
	return response{h: h, head: head, body: body, bodyAt: -1, want: -1}
}

// space is where the next read goes: the judged body's buffer while it
// has room, else the head's, as scratch (never past limit, so that a
// digest covers the body and nothing after it).
func (p *response) space() []byte {
	switch {
	case p.bodyAt < 0:
		return p.head[p.n:]
	case p.draining:
		return p.head
	case p.body != nil && p.got < len(p.body):
		p.last = p.body[p.got:min(len(p.body), p.limit)]
	default:
		p.last = p.head[:min(len(p.head), p.limit-p.got)]
	}
	return p.last
}

// fed takes the outcome of one read of m bytes into space(); it reports
// whether the answer is finished (done), judged or not.
func (p *response) fed(m int, err error) bool {
	switch {
	case p.draining:
		p.drained++
		p.done = err != nil || p.drained >= 4 // a few stray bytes at most
	case p.bodyAt < 0:
		p.n += m
		p.readHead(err)
	default:
		if p.digest != nil {
			p.digest.Write(p.last[:m])
		}
		p.got += m
		p.readBody(err)
	}
	return p.done
}

func (p *response) readHead(err error) {
	i := bytes.Index(p.head[:p.n], []byte("\r\n\r\n"))
	switch {
	case i >= 0:
		p.bodyAt = i + 4
	case err == io.EOF && p.n > 0:
		// Headers cut short by a close: the status line still decides.
		p.bodyAt = p.n
	case err != nil:
		p.fail("", err)
		return
	case p.n == len(p.head):
		p.fail("", fmt.Errorf("response headers over %d bytes", len(p.head)))
		return
	default:
		return
	}
	code, perr := statusCode(p.head[:p.n])
	if perr != nil {
		p.fail("", perr)
		return
	}
	p.code, p.detail = code, statusDetail(code)
	if !p.h.accepted(code) {
		p.judged, p.done = true, true
		return
	}
	if p.h.method == "HEAD" || code == 204 || code == 304 || code/100 == 1 {
		p.ok, p.judged = true, true
		p.drain(err)
		return
	}
	p.want = contentLength(p.head[:p.bodyAt])
	p.limit = maxRead
	switch {
	case p.h.digest != "" && p.want >= 0:
		p.limit = p.want
	case p.h.digest != "":
		p.limit = math.MaxInt // to the close
	case p.want >= 0:
		p.limit = min(p.limit, p.want)
	}
	// The body's first bytes came with the head.
	extra := p.head[p.bodyAt:p.n]
	extra = extra[:min(len(extra), p.limit)]
	if p.body != nil {
		copy(p.body, extra)
	}
	if p.h.digest != "" {
		p.digest = md5.New()
		p.digest.Write(extra)
	}
	p.got = len(extra)
	p.readBody(err)
}

// readBody judges once the body is read through: EOF, Content-Length or
// maxRead bytes, whichever comes first.
func (p *response) readBody(err error) {
	switch {
	case err == io.EOF && p.want >= 0 && p.got < p.want:
		p.fail(p.detail+", body: ", io.ErrUnexpectedEOF)
		return
	case err != nil && err != io.EOF:
		p.fail(p.detail+", body: ", err)
		return
	case err == nil && p.got < p.limit:
		return
	}
	p.judged = true
	switch {
	case p.body != nil && !p.h.body.Match(p.body[:min(p.got, len(p.body))]):
		p.detail += ", body does not match"
	case p.digest != nil:
		var sum [md5.Size]byte
		if got := hex.EncodeToString(p.digest.Sum(sum[:0])); got != p.h.digest {
			p.detail += ", body digest " + got + " does not match"
		} else {
			p.ok = true
			p.detail += ", digest matches"
		}
	default:
		p.ok = true
	}
	if p.want >= 0 {
		p.drain(err)
	} else {
		p.done = true // read to EOF, or maxRead of a body without end
	}
}

// drain starts waiting for the server's close after a complete answer,
// unless it has closed already.
func (p *response) drain(err error) {
	if err != nil {
		p.done = true
		return
	}
	p.draining = true
}

func (p *response) fail(prefix string, err error) {
	p.judged, p.done, p.detail, p.err = true, true, prefix, err
}

// statusCode parses "HTTP/1.x NNN ...".
func statusCode(b []byte) (int, error) {
	line, _, _ := bytes.Cut(b, []byte("\r\n"))
	if len(line) < 12 || !bytes.HasPrefix(line, []byte("HTTP/")) || line[8] != ' ' {
		return 0, fmt.Errorf("not an HTTP response: %q", clip(string(line)))
	}
	code, err := strconv.Atoi(string(line[9:12]))
	if err != nil || (len(line) > 12 && line[12] != ' ') {
		return 0, fmt.Errorf("not an HTTP status line: %q", clip(string(line)))
	}
	return code, nil
}

// contentLength is the header's value, or -1 without one.
func contentLength(head []byte) int {
	for line := range bytes.SplitSeq(head, []byte("\r\n")) {
		name, value, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("Content-Length")) {
			if n, err := strconv.Atoi(string(bytes.TrimSpace(value))); err == nil && n >= 0 {
				return n
			}
		}
	}
	return -1
}
