package ledger_test

import (
	"context"
	"errors"
	"iter"
	"testing"

	"github.com/payouts/payouts/ledger"
)

// TestLoadRowsInterruptedSaysSo: a load cut short by the caller reports
// the cancellation (a run interrupted while loading is an interruption,
// not an infrastructure error), and marks nothing loaded.
func TestLoadRowsInterruptedSaysSo(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		newBatch(t, db, "cut")
		rows := func(yield func(ledger.Row, error) bool) {
			for i := range 10 {
				if i == 3 {
					cancel()
				}
				if !yield(ledger.Row{BatchID: "cut", Line: i + 2, Reference: "R" + string(rune('A'+i)), Amount: 100, Currency: "RUB",
					RecipientName: "A B"}, nil) {
					return
				}
			}
		}
		_, err := db.LoadRows(ctx, "cut", iter.Seq2[ledger.Row, error](rows), 10)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("got %v, want an error wrapping context.Canceled", err)
		}
		got, ferr := db.Batch(context.Background(), "cut")
		if ferr != nil {
			t.Fatal(ferr)
		}
		if !got.LoadedAt.IsZero() {
			t.Errorf("an interrupted load marked the batch loaded")
		}
	})
}
