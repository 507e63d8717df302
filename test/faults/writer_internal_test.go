package faults

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ipvsman/ipvsman/cluster/api"
	"github.com/ipvsman/ipvsman/test/harness"
)

// TestWritersOfSuccessiveRunsNeverRepeatAServer: a scenario run again on
// the same cluster starts a new Writer; it must not write a real server an
// earlier one wrote, which the cluster refuses as "already exists".
func TestWritersOfSuccessiveRunsNeverRepeatAServer(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req api.OpsRequest
		if r.URL.Path != "/v1/ops" || json.NewDecoder(r.Body).Decode(&req) != nil {
			http.Error(w, "unexpected request "+r.URL.Path, http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, op := range req.Ops {
			if op.Server != nil {
				seen[op.Server.Key()]++
			}
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	for run := 1; run <= 2; run++ {
		w := StartWriter([]string{srv.URL}, "token-for-the-test", srv.Client(), "10.0.0.10:80", time.Millisecond)
		harness.Eventually(t, 10*time.Second, fmt.Sprintf("run %d: 20 writes acknowledged by the fake API", run), func() (bool, string) {
			return len(w.Acked()) >= 20, fmt.Sprintf("%d acknowledged", len(w.Acked()))
		})
		w.Stop()
	}
	for rs, n := range seen {
		if n > 1 {
			t.Errorf("real server %s written %d times by successive runs' writers", rs, n)
		}
	}
}
