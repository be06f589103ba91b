package main

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// op is one request of a scenario. worker is the client running it and i the
// scenario-wide sequence number of the operation, unique within a run.
type op func(ctx context.Context, worker int, i int64) error

// loadResult is what a closed-loop run measured.
type loadResult struct {
	ops      int
	errors   int
	firstErr error
	elapsed  time.Duration
	lat      []time.Duration // sorted
}

// sequence numbers operations across every run of one scenario, so that
// warm-up and measurement never repeat an i (creates use it for unique names).
type sequence struct{ n atomic.Int64 }

func (s *sequence) next() int64 { return s.n.Add(1) - 1 }

// runLoad runs clients closed-loop workers, each issuing op back to back,
// until d has passed or maxOps operations have started (0: no limit).
func runLoad(ctx context.Context, clients int, d time.Duration, maxOps int64, seq *sequence, fn op) loadResult {
	var (
		wg       sync.WaitGroup
		started  atomic.Int64
		mu       sync.Mutex
		res      loadResult
		begin    = time.Now()
		deadline = begin.Add(d)
	)
	for w := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			lat := make([]time.Duration, 0, 1024)
			errs := 0
			var first error
			for ctx.Err() == nil && time.Now().Before(deadline) {
				if maxOps > 0 && started.Add(1) > maxOps {
					break
				}
				t0 := time.Now()
				err := fn(ctx, w, seq.next())
				lat = append(lat, time.Since(t0))
				if err != nil {
					errs++
					if first == nil {
						first = err
					}
				}
			}
			mu.Lock()
			res.lat = append(res.lat, lat...)
			res.errors += errs
			if res.firstErr == nil {
				res.firstErr = first
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(begin)
	res.ops = len(res.lat)
	slices.Sort(res.lat)
	return res
}

// percentile returns the nearest-rank q-quantile (0 < q ≤ 1) of sorted, in ms.
func percentile(sorted []time.Duration, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted))+0.999999) - 1
	i = max(0, min(i, len(sorted)-1))
	return float64(sorted[i]) / float64(time.Millisecond)
}

func (r loadResult) opsPerSec() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.ops) / r.elapsed.Seconds()
}
