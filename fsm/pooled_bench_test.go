package fsm

import (
	"bytes"
	"fmt"
	"testing"
	"time"
)

// BenchmarkSnapshotHistory reports the size and the encode and decode
// times of a snapshot whose history holds HistoryLimit versions of one
// service, each changing one real server's weight, in the plain and the
// pooled encodings. Run:
// go test ./fsm -run '^$' -bench SnapshotHistory -benchtime 1x -timeout 30m
func BenchmarkSnapshotHistory(b *testing.B) {
	for _, servers := range []int{10_000, 100_000} {
		b.Run(fmt.Sprintf("1x%d", servers), func(b *testing.B) {
			s := NewState()
			restoreRounds(b, s, restoreTable(1, servers), 0)
			weightEdits(b, s, HistoryLimit-1)
			for range b.N {
				for _, enc := range []struct {
					name   string
					encode func(*bytes.Buffer) error
				}{
					{"plain", func(w *bytes.Buffer) error { return s.Encode(w) }},
					{"pooled", func(w *bytes.Buffer) error { return s.EncodePooled(w) }},
				} {
					var w bytes.Buffer
					began := time.Now()
					if err := enc.encode(&w); err != nil {
						b.Fatal(err)
					}
					encoded := time.Since(began)
					began = time.Now()
					if _, err := UnmarshalState(w.Bytes()); err != nil {
						b.Fatal(err)
					}
					decoded := time.Since(began)
					b.ReportMetric(float64(w.Len())/(1<<20), enc.name+"-MB")
					b.ReportMetric(encoded.Seconds(), enc.name+"-encode-s")
					b.ReportMetric(decoded.Seconds(), enc.name+"-decode-s")
				}
			}
		})
	}
}
