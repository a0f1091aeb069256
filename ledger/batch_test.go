package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"strings"
	"testing"

	"github.com/payouts/payouts/ledger"
)

func TestCreateBatchIdempotent(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		b := ledger.Batch{ID: "2026-11", ManifestName: "payroll.csv", ManifestSHA256: "aaa", RowCount: 3,
			Options: `{"confirm":"auto"}`, Totals: map[string]int64{"rub": 450000}}
		got, created, err := db.CreateBatch(ctx, b)
		if err != nil || !created {
			t.Fatalf("first create: got created %v, %v; want true", created, err)
		}
		if got.Totals["RUB"] != 450000 || got.CreatedAt.IsZero() {
			t.Errorf("got totals %v created_at %v, want RUB 450000 and a time", got.Totals, got.CreatedAt)
		}
		again, created, err := db.CreateBatch(ctx, b)
		if err != nil || created {
			t.Fatalf("same manifest again: got created %v, %v; want false, nil", created, err)
		}
		if again.ManifestSHA256 != "aaa" || again.RowCount != 3 || again.Options != b.Options || again.Totals["RUB"] != 450000 {
			t.Errorf("got %+v, want the stored batch", again)
		}
		b.ManifestSHA256 = "bbb"
		if _, _, err := db.CreateBatch(ctx, b); !errors.Is(err, ledger.ErrManifestChanged) {
			t.Errorf("changed manifest: got %v, want ErrManifestChanged", err)
		}
		stored, err := db.Batch(ctx, "2026-11")
		if err != nil || stored.ManifestSHA256 != "aaa" {
			t.Errorf("after refused create: got %q, %v; want aaa", stored.ManifestSHA256, err)
		}
		if _, err := db.Batch(ctx, "nope"); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("unknown batch: got %v, want ErrNotFound", err)
		}
		if _, _, err := db.CreateBatch(ctx, ledger.Batch{ID: "x", Options: "{not json"}); !errors.Is(err, ledger.ErrInvalidChange) {
			t.Errorf("bad options: got %v, want ErrInvalidChange", err)
		}

		// A rerun with a corrected manifest updates the batch and says so.
		b.ManifestName, b.RowCount = "payroll-fixed.csv", 4
		if err := db.UpdateBatch(ctx, b); err != nil {
			t.Fatal(err)
		}
		stored, _ = db.Batch(ctx, "2026-11")
		if stored.ManifestSHA256 != "bbb" || stored.RowCount != 4 || stored.ManifestName != "payroll-fixed.csv" {
			t.Errorf("after update: got %+v", stored)
		}
		evs, _ := db.Events(ctx, "2026-11", 0)
		if len(evs) != 2 || evs[0].Reason != "batch_created" || evs[1].Reason != "batch_updated" || !strings.Contains(evs[1].Detail, "aaa → payroll-fixed.csv sha256 bbb") {
			t.Errorf("got events %+v, want batch_created then batch_updated aaa → bbb", evs)
		}
		if err := db.UpdateBatch(ctx, ledger.Batch{ID: "nope"}); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("update unknown: got %v, want ErrNotFound", err)
		}
	})
}

func TestBatchesNewestFirst(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		for _, id := range []string{"b1", "b2", "b3"} {
			if _, _, err := db.CreateBatch(ctx, ledger.Batch{ID: id, ManifestSHA256: id}); err != nil {
				t.Fatal(err)
			}
		}
		bs, err := db.Batches(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, b := range bs {
			ids = append(ids, b.ID)
		}
		if got := strings.Join(ids, ","); got != "b3,b2,b1" {
			t.Errorf("got %s, want b3,b2,b1", got)
		}
	})
}

func TestInsertRowsResume(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		newBatch(t, db, "b", "R1", "R2", "R3")
		r2, _ := db.RowByReference(ctx, "b", "R2")
		walkTo(t, db, r2, ledger.StateCreating)

		// The whole manifest again, with R2 changed: existing rows stay as they are.
		changed := testRow(3, "R2")
		changed.Amount = 1
		n, err := db.InsertRows(ctx, "b", seqOf(testRow(2, "R1"), changed, testRow(4, "R3"), testRow(5, "R4"), testRow(6, "R5")))
		if err != nil || n != 2 {
			t.Fatalf("got %d new, %v; want 2", n, err)
		}
		got, _ := db.RowByReference(ctx, "b", "R2")
		if got.Amount != 150000 || got.State != ledger.StateCreating {
			t.Errorf("existing row touched: got %d %s, want 150000 creating", got.Amount, got.State)
		}
		if c, _ := db.CountRows(ctx, "b"); c != 5 {
			t.Errorf("got %d rows, want 5", c)
		}
		r4, _ := db.RowByReference(ctx, "b", "R4")
		evs, _ := db.Events(ctx, "b", r4.ID)
		if len(evs) != 1 || evs[0].Reason != "inserted" || evs[0].To != ledger.StatePlanned || r4.State != ledger.StatePlanned {
			t.Errorf("new row: got state %s events %+v, want planned with one inserted event", r4.State, evs)
		}
		if _, err := db.InsertRows(ctx, "nope", seqOf(testRow(2, "X"))); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("unknown batch: got %v, want ErrNotFound", err)
		}
	})
}

func TestInsertRowsAllOrNothing(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		if _, _, err := db.CreateBatch(ctx, ledger.Batch{ID: "b", ManifestSHA256: "s"}); err != nil {
			t.Fatal(err)
		}
		boom := errors.New("manifest line 4: broken")
		failing := func(yield func(ledger.Row, error) bool) {
			if !yield(testRow(2, "R1"), nil) || !yield(testRow(3, "R2"), nil) {
				return
			}
			yield(ledger.Row{}, boom)
		}
		bad := testRow(3, "R2")
		bad.Amount = -5
		tests := []struct {
			name string
			seq  iter.Seq2[ledger.Row, error]
			want error
		}{
			{"yielded error", failing, boom},
			{"negative amount", seqOf(testRow(2, "R1"), bad), ledger.ErrInvalidChange},
			{"empty reference", seqOf(testRow(2, "R1"), testRow(3, "")), ledger.ErrInvalidChange},
			{"reference twice", seqOf(testRow(2, "R1"), testRow(3, "R2"), testRow(4, "R1")), ledger.ErrInvalidChange},
			{"card number as last4", seqOf(ledger.Row{Line: 2, Reference: "R", Amount: 1, Currency: "RUB", CardLast4: "4242424242424242"}), ledger.ErrInvalidChange},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				n, err := db.InsertRows(ctx, "b", tt.seq)
				if !errors.Is(err, tt.want) || n != 0 {
					t.Errorf("got %d, %v; want 0, %v", n, err, tt.want)
				}
				if c, _ := db.CountRows(ctx, "b"); c != 0 {
					t.Errorf("got %d rows after a failed insert, want 0", c)
				}
				if evs, _ := db.Events(ctx, "b", 0); len(evs) != 1 {
					t.Errorf("got %d events after a failed insert, want 1 (batch_created)", len(evs))
				}
			})
		}
	})
}

// TestRowsStreamsInPages reads a batch larger than one page, in manifest
// line order, filtered by state, while changing rows under the iterator.
func TestRowsStreamsInPages(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t, ledger.WithSyncNormal())
		ctx := context.Background()
		if _, _, err := db.CreateBatch(ctx, ledger.Batch{ID: "big", ManifestSHA256: "s"}); err != nil {
			t.Fatal(err)
		}
		const n = 1300
		gen := func(yield func(ledger.Row, error) bool) {
			for i := n - 1; i >= 0; i-- { // inserted backwards: order must come from line
				if !yield(testRow(i+2, fmt.Sprintf("R%05d", i)), nil) {
					return
				}
			}
		}
		if got, err := db.InsertRows(ctx, "big", gen); err != nil || got != n {
			t.Fatalf("InsertRows: got %d, %v; want %d", got, err, n)
		}
		line, count := 0, 0
		for r, err := range db.Rows(ctx, "big") {
			if err != nil {
				t.Fatal(err)
			}
			if r.Line <= line {
				t.Fatalf("line %d after %d: not in order", r.Line, line)
			}
			line = r.Line
			count++
			if count%3 == 0 { // move rows while iterating
				if _, err := db.Apply(ctx, ledger.Change{RowID: r.ID, From: ledger.StatePlanned, To: ledger.StateSkipped, Reason: "test"}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if count != n {
			t.Errorf("got %d rows, want %d", count, n)
		}
		skipped := 0
		for r, err := range db.Rows(ctx, "big", ledger.StateSkipped, ledger.StateFailed) {
			if err != nil {
				t.Fatal(err)
			}
			if r.State != ledger.StateSkipped {
				t.Fatalf("got state %s, want skipped", r.State)
			}
			skipped++
		}
		if skipped != n/3 {
			t.Errorf("got %d skipped rows, want %d", skipped, n/3)
		}
		if c, _ := db.CountRows(ctx, "big", ledger.StatePlanned); c != n-n/3 {
			t.Errorf("CountRows(planned): got %d, want %d", c, n-n/3)
		}
		// Stopping early is fine.
		for range db.Rows(ctx, "big") {
			break
		}
	})
}

func TestSummary(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		if _, _, err := db.CreateBatch(ctx, ledger.Batch{ID: "b", ManifestSHA256: "s"}); err != nil {
			t.Fatal(err)
		}
		eur := testRow(4, "R3")
		eur.Currency, eur.Amount = "EUR", 999
		if _, err := db.InsertRows(ctx, "b", seqOf(testRow(2, "R1"), testRow(3, "R2"), eur)); err != nil {
			t.Fatal(err)
		}
		r1, _ := db.RowByReference(ctx, "b", "R1")
		walkTo(t, db, r1, ledger.StateSucceeded)
		got, err := db.Summary(ctx, "b")
		if err != nil {
			t.Fatal(err)
		}
		want := []ledger.SummaryLine{
			{State: ledger.StatePlanned, Currency: "EUR", Count: 1, Amount: 999},
			{State: ledger.StatePlanned, Currency: "RUB", Count: 1, Amount: 150000},
			{State: ledger.StateSucceeded, Currency: "RUB", Count: 1, Amount: 150000},
		}
		if len(got) != len(want) {
			t.Fatalf("got %+v, want %+v", got, want)
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("line %d: got %+v, want %+v", i, got[i], want[i])
			}
		}
	})
}
