package screening_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keywatch/keywatch/internal/apitest"
	"github.com/keywatch/keywatch/screening"
)

// BenchmarkScreen measures screening decisions through the HTTP API on a
// real Redis with the test policy set (sanctioned and mixer list-match,
// two thresholds), 16 concurrent clients. Each decision is a fresh request
// id: evaluation, the wallet's freeze check, the decision record, an audit
// entry, and an intent (allow) or a hold (hold). The store-get baseline is
// one Redis round trip from the same clients, measured in the same run.
func BenchmarkScreen(b *testing.B) {
	f := setup(b)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	var seq atomic.Int64
	run := func(b *testing.B, to, asset string, want screening.Decision) {
		lat := newLatencies(b.N)
		b.SetParallelism(8) // 8 × GOMAXPROCS clients
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				id := fmt.Sprintf("bench-%d", seq.Add(1))
				body, _ := json.Marshal(req(id, "treasury-hot", to, asset, "1"))
				r, _ := http.NewRequest("POST", f.base+"/v1/screen", bytes.NewReader(body))
				r.Header.Set("Authorization", "Bearer "+apitest.Tokens["svc"])
				start := time.Now()
				resp, err := client.Do(r)
				if err != nil {
					b.Error(err)
					return
				}
				var a screening.Answer
				err = json.NewDecoder(resp.Body).Decode(&a)
				resp.Body.Close()
				lat.add(time.Since(start))
				if err != nil || a.Decision != want {
					b.Errorf("%s: %v %+v", id, err, a)
					return
				}
			}
		})
		b.StopTimer()
		lat.report(b)
	}
	b.Run("allow", func(b *testing.B) { run(b, apitest.Vendor, "USDC", screening.Allow) })
	b.Run("hold", func(b *testing.B) { run(b, apitest.Mixer, "ETH", screening.Hold) })
	b.Run("baseline-store-get", func(b *testing.B) {
		lat := newLatencies(b.N)
		b.SetParallelism(8)
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				start := time.Now()
				_, _ = f.st.Get(context.Background(), "bench:absent")
				lat.add(time.Since(start))
			}
		})
		b.StopTimer()
		lat.report(b)
	})
}

type latencies struct {
	mu sync.Mutex
	d  []time.Duration
	t0 time.Time
}

func newLatencies(n int) *latencies {
	return &latencies{d: make([]time.Duration, 0, n), t0: time.Now()}
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

func (l *latencies) report(b *testing.B) {
	elapsed := time.Since(l.t0)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.d) == 0 {
		return
	}
	slices.Sort(l.d)
	p := func(q float64) time.Duration { return l.d[min(len(l.d)-1, int(q*float64(len(l.d))))] }
	b.ReportMetric(float64(len(l.d))/elapsed.Seconds(), "decisions/s")
	b.ReportMetric(float64(p(0.50).Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(p(0.99).Microseconds())/1000, "p99-ms")
}
