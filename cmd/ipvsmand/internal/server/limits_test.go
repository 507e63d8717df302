package server

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/fsm"
)

func TestWriteLimiterBucket(t *testing.T) {
	now := time.Unix(0, 0)
	w := newWriteLimiter(Limits{WritesPerSecond: 2, WriteBurst: 3}, func() time.Time { return now })
	for i := range 3 {
		if ok, _ := w.allow("10.0.0.5"); !ok {
			t.Fatalf("write %d of the burst refused", i+1)
		}
	}
	ok, wait := w.allow("10.0.0.5")
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("4th write at once: ok=%v wait=%v, want refused, 500ms", ok, wait)
	}
	if ok, _ := w.allow("10.0.0.6"); !ok {
		t.Fatal("another client shares the first one's bucket")
	}
	now = now.Add(500 * time.Millisecond)
	if ok, _ := w.allow("10.0.0.5"); !ok {
		t.Fatal("refused after the wait it was told")
	}
	if ok, _ := w.allow("10.0.0.5"); ok {
		t.Fatal("a second write within the same half second")
	}
	now = now.Add(time.Hour)
	for i := range 3 {
		if ok, _ := w.allow("10.0.0.5"); !ok {
			t.Fatalf("after an idle hour, write %d refused: the bucket holds at most the burst, but all of it", i+1)
		}
	}
	if newWriteLimiter(Limits{}, time.Now) != nil {
		t.Fatal("no rate: a limiter")
	}
}

func TestSizeLimits(t *testing.T) {
	c := fsm.NewConfig()
	for _, k := range []string{"tcp:10.0.0.1:80", "tcp:10.0.0.2:80"} {
		c.Services[k] = &fsm.Service{Servers: map[string]*fsm.RealServer{"a": {}, "b": {}}}
	}
	for _, tc := range []struct {
		l    Limits
		want string
	}{
		{Limits{}, ""},
		{Limits{MaxServices: 2, MaxRealServers: 4}, ""},
		{Limits{MaxServices: 1}, "services: 2 would exceed the limit of 1 (--max-services)"},
		{Limits{MaxRealServers: 3}, "real servers: 4 would exceed the limit of 3 (--max-real-servers)"},
	} {
		err := tc.l.checkSize(c)
		if (err == nil) != (tc.want == "") || err != nil && err.Error() != tc.want {
			t.Errorf("%+v: %v, want %q", tc.l, err, tc.want)
		}
	}
}

// TestLimitsThroughTheAPI: over the rate a client gets 429 and nothing is
// written; a write that would pass the size limits is refused before the
// log, naming the count and the flag.
func TestLimitsThroughTheAPI(t *testing.T) {
	srv, n := leaderAPIWith(t, Limits{WritesPerSecond: 0.001, WriteBurst: 2, MaxServices: 1})
	version := func() (v uint64) {
		n.View(func(st *fsm.State, _ uint64) { v = st.Version })
		return v
	}
	add := func(addr string) string {
		return `{"ops":[{"kind":"add-service","service":{"key":{"protocol":"tcp","address":"` + addr + `","port":80},"scheduler":"rr"}}]}`
	}
	if code, body := call(t, srv, http.MethodPost, "/v1/ops", adminToken, add("10.0.0.1")); code != http.StatusOK {
		t.Fatalf("first write: %d %s", code, body)
	}
	code, body := call(t, srv, http.MethodPost, "/v1/ops", adminToken, add("10.0.0.2"))
	if code != http.StatusBadRequest || !strings.Contains(body, "services: 2 would exceed the limit of 1 (--max-services)") {
		t.Fatalf("second service: %d %s", code, body)
	}
	before := version()
	code, body = call(t, srv, http.MethodPost, "/v1/ops", adminToken, add("10.0.0.3"))
	if code != http.StatusTooManyRequests || !strings.Contains(body, `"kind":"rate-limited"`) || !strings.Contains(body, "--max-writes-per-second") {
		t.Fatalf("third write within the burst of 2: %d %s", code, body)
	}
	if code, _ := call(t, srv, http.MethodGet, "/v1/config", adminToken, ""); code != http.StatusOK {
		t.Fatalf("reads are not limited: %d", code)
	}
	if v := version(); v != before {
		t.Fatalf("a refused write changed the configuration: %d -> %d", before, v)
	}
}
