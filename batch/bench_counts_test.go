package batch_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/payouts/payouts/ledger"
)

// BenchmarkBatchCounts is the cost of counting a batch's rows per state
// in the ledger (ledger.DB.Summary, behind batch.Engine.Counts and the
// run's "is it done" check), by batch size. It grows with the batch: the
// engine asked for it ten times a second while waiting for results until
// e1ba323, which now keeps the counts in memory and recounts with a pause
// that grows with this cost. %core-at-10/s is what the old polling cost:
//
//	go test -run '^$' -bench BatchCounts ./batch/
func BenchmarkBatchCounts(b *testing.B) {
	for _, n := range []int{10_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("rows=%d", n), func(b *testing.B) {
			if testing.Short() && n > 10_000 {
				b.Skip("large batch; not under -short")
			}
			ctx := context.Background()
			db, err := ledger.Open(ctx, filepath.Join(b.TempDir(), "counts.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if _, _, err := db.CreateBatch(ctx, ledger.Batch{ID: "big", ManifestSHA256: "s", RowCount: n}); err != nil {
				b.Fatal(err)
			}
			_, err = db.InsertRows(ctx, "big", func(yield func(ledger.Row, error) bool) {
				for i := range n {
					r := ledger.Row{Line: i + 2, Reference: fmt.Sprintf("EMP-%08d", i), Amount: 150000, Currency: "RUB",
						RecipientName: "Ivan Petrov", CardBIN: "424242", CardLast4: "4242", CardFingerprint: strings.Repeat("ab", 32)}
					if !yield(r, nil) {
						return
					}
				}
			})
			if err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				lines, err := db.Summary(ctx, "big")
				if err != nil || len(lines) == 0 {
					b.Fatalf("summary: %v, %v", lines, err)
				}
			}
			// Share of one core that ten counts a second would take.
			b.ReportMetric(100*10*b.Elapsed().Seconds()/float64(b.N), "%core-at-10/s")
		})
	}
}
