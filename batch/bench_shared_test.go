package batch_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/internal/pgtest"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

// BenchmarkSharedRunners measures rows/s of 1, 2 and 3 runners sharing one
// batch on PostgreSQL, each with its own ledger handle and its own Pike
// client (at most 8 requests in flight each), against a sandbox answering
// every call after 20 ms. The runners are goroutines of one process on
// this machine, not processes on several hosts: they share its CPU (RSA
// signing) as separate hosts would not.
//
//	go test -run XXX -bench SharedRunners -benchtime 1x ./batch/
func BenchmarkSharedRunners(b *testing.B) {
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("runners=%d", n), func(b *testing.B) {
			for range b.N {
				benchShared(b, n, 200)
			}
		})
	}
}

func benchShared(b *testing.B, n, rows int) {
	b.StopTimer()
	tb := b
	h := newBenchHarness(tb)
	path := h.manifest("bench.csv", sharedRows(rows)...)
	dbs := []*ledger.DB{h.db}
	for len(dbs) < n {
		dbs = append(dbs, h.openAgain())
	}
	clients := make([]batch.Pike, n)
	for i := range clients {
		c, err := pike.NewClient(h.pikeSrv.URL, "test-project", partnerKey, pike.WithMaxInFlight(8),
			pike.WithRetryPolicy(pike.RetryPolicy{MaxAttempts: 4, BaseDelay: 5 * time.Millisecond, MaxDelay: 50 * time.Millisecond}))
		if err != nil {
			b.Fatal(err)
		}
		clients[i] = c
	}
	b.StartTimer()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, db := range dbs {
		wg.Go(func() {
			var res batch.Result
			res, errs[i] = h.sharedRun(context.Background(), db, clients[i], path, 5*time.Second)
			if errs[i] == nil && !res.OK() {
				errs[i] = fmt.Errorf("counts %v", res.Counts)
			}
		})
	}
	wg.Wait()
	el := time.Since(start)
	b.StopTimer()
	for i, err := range errs {
		if err != nil {
			b.Fatalf("runner %d: %v", i, err)
		}
	}
	b.ReportMetric(float64(rows)/el.Seconds(), "rows/s")
}

// newBenchHarness is a harness on a fresh PostgreSQL schema, with every
// API call answered after 20 ms.
func newBenchHarness(b *testing.B) *harness {
	b.Helper()
	return newHarnessAt(b, sandbox.Config{Faults: sandbox.Faults{Latency: 20 * time.Millisecond}}, nil, pgtest.NewSchema(b))
}
