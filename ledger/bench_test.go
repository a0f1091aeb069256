package ledger_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/payouts/payouts/internal/pgtest"
	"github.com/payouts/payouts/ledger"
)

// benchDir is where benchmark ledgers live: LEDGER_BENCH_DIR, or a
// temporary directory. Point it at the disk the ledger will really use.
func benchDir(b *testing.B) string {
	if d := os.Getenv("LEDGER_BENCH_DIR"); d != "" {
		dir, err := os.MkdirTemp(d, "ledger-bench-")
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { os.RemoveAll(dir) })
		return dir
	}
	return b.TempDir()
}

// benchLocation is a fresh benchmark ledger: a file in benchDir, or a
// schema of the test PostgreSQL with LEDGER_BENCH_BACKEND=postgres.
func benchLocation(b *testing.B) string {
	if os.Getenv("LEDGER_BENCH_BACKEND") == "postgres" {
		return pgtest.NewSchema(b)
	}
	return filepath.Join(benchDir(b), "bench.db")
}

// BenchmarkApply measures durable transitions per second (synchronous=FULL):
// callers goroutines each drive their own row round the crash cycle.
// "tx-per-change" turns group commit off (WithMaxGroup(1)): one transaction
// and one fsync per transition.
func BenchmarkApply(b *testing.B) {
	for _, bc := range []struct {
		name     string
		callers  int
		maxGroup int
	}{
		{"tx-per-change/callers=1", 1, 1},
		{"tx-per-change/callers=64", 64, 1},
		{"group/callers=1", 1, 1024},
		{"group/callers=16", 16, 1024},
		{"group/callers=64", 64, 1024},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ctx := context.Background()
			opts := []ledger.Option{ledger.WithMaxGroup(bc.maxGroup)}
			if os.Getenv("LEDGER_BENCH_NOSYNC") != "" {
				opts = append(opts, ledger.WithSyncNormal())
			}
			db, err := ledger.Open(ctx, benchLocation(b), opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			refs := make([]string, bc.callers)
			for i := range refs {
				refs[i] = fmt.Sprintf("R%d", i)
			}
			rows := newBatch(b, db, "bench", refs...)
			var left atomic.Int64
			left.Store(int64(b.N))
			b.ResetTimer()
			var wg sync.WaitGroup
			for _, r := range rows {
				wg.Go(func() {
					for left.Add(-1) >= 0 {
						c := step(r, crashCycle[r.State])
						if c.To == ledger.StateCreated {
							c.SessionID = fmt.Sprintf("ps_%d_%d", r.ID, r.Attempt)
						}
						next, err := db.Apply(ctx, c)
						if err != nil {
							b.Error(err)
							return
						}
						r = next
					}
				})
			}
			wg.Wait()
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transitions/s")
			if st := db.WriterStats(); st.Commits > 0 {
				b.ReportMetric(float64(st.Writes)/float64(st.Commits), "writes/commit")
			}
		})
	}
}

// BenchmarkFsync is the floor under every durable commit: one 4 KiB write
// and fsync on the benchmark disk.
func BenchmarkFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(benchDir(b), "fsync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for i := 0; b.Loop(); i++ {
		if _, err := f.WriteAt(buf, int64(i%256)*4096); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkInsertRows measures the bulk insert of a manifest (one
// transaction, streamed): ns/op is per row.
func BenchmarkInsertRows(b *testing.B) {
	ctx := context.Background()
	db, err := ledger.Open(ctx, filepath.Join(benchDir(b), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	if _, _, err := db.CreateBatch(ctx, ledger.Batch{ID: "big", ManifestSHA256: "s"}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	n, err := db.InsertRows(ctx, "big", func(yield func(ledger.Row, error) bool) {
		for i := range b.N {
			if !yield(testRow(i+2, fmt.Sprintf("EMP-%07d", i)), nil) {
				return
			}
		}
	})
	if err != nil || n != b.N {
		b.Fatalf("got %d, %v; want %d", n, err, b.N)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
