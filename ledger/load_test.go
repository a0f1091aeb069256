package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"testing"
	"time"

	"github.com/payouts/payouts/ledger"
)

// numbered yields n rows R0000..; fail, when not nil, is yielded instead of
// the row at index failAt.
func numbered(n, failAt int, fail error) iter.Seq2[ledger.Row, error] {
	return func(yield func(ledger.Row, error) bool) {
		for i := range n {
			if fail != nil && i == failAt {
				yield(ledger.Row{}, fail)
				return
			}
			if !yield(testRow(i+2, fmt.Sprintf("R%04d", i)), nil) {
				return
			}
		}
	}
}

// TestLoadRowsLetsOtherWritersIn: while a big manifest is being loaded,
// another process's write gets the lock at once, at every point of the load.
func TestLoadRowsLetsOtherWritersIn(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		path := newLocation(t)
		db, err := ledger.Open(context.Background(), path, ledger.WithLoadChunk(50))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		other, err := ledger.Open(context.Background(), path, ledger.WithBusyTimeout(time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		ctx := context.Background()
		if _, _, err := db.CreateBatch(ctx, ledger.Batch{ID: "big", ManifestSHA256: "s", RowCount: 200}); err != nil {
			t.Fatal(err)
		}
		rows := func(yield func(ledger.Row, error) bool) {
			for i, err := range numbered(200, 0, nil) {
				if i.Line%17 == 0 { // now and then, mid-chunk and between chunks
					id := fmt.Sprintf("other-%d", i.Line)
					if _, _, err := other.CreateBatch(ctx, ledger.Batch{ID: id, ManifestSHA256: "o"}); err != nil {
						t.Errorf("another writer during the load (line %d): %v", i.Line, err)
					}
				}
				if !yield(i, err) {
					return
				}
			}
		}
		n, err := db.LoadRows(ctx, "big", rows, 200)
		if err != nil || n != 200 {
			t.Fatalf("LoadRows: got %d, %v; want 200", n, err)
		}
		if b, _ := db.Batch(ctx, "big"); b.LoadedAt.IsZero() {
			t.Error("batch not marked loaded")
		}
	})
}

// TestLoadRowsResumes: a load that stops midway leaves a batch that is not
// loaded, holding whole chunks; the next load completes it, every row once.
func TestLoadRowsResumes(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t, ledger.WithLoadChunk(10))
		ctx := context.Background()
		if _, _, err := db.CreateBatch(ctx, ledger.Batch{ID: "b", ManifestSHA256: "s", RowCount: 35}); err != nil {
			t.Fatal(err)
		}
		crash := errors.New("killed")
		if _, err := db.LoadRows(ctx, "b", numbered(35, 25, crash), 35); !errors.Is(err, crash) {
			t.Fatalf("interrupted load: got %v, want %v", err, crash)
		}
		if c, _ := db.CountRows(ctx, "b"); c != 20 {
			t.Errorf("after the interrupted load got %d rows, want the 2 whole chunks (20)", c)
		}
		if b, _ := db.Batch(ctx, "b"); !b.LoadedAt.IsZero() {
			t.Fatal("a half-loaded batch is marked loaded")
		}
		n, err := db.LoadRows(ctx, "b", numbered(35, 0, nil), 35)
		if err != nil || n != 15 {
			t.Fatalf("second load: got %d new, %v; want 15", n, err)
		}
		if b, _ := db.Batch(ctx, "b"); b.LoadedAt.IsZero() {
			t.Error("completed batch not marked loaded")
		}
		inserted := 0
		evs, _ := db.Events(ctx, "b", 0)
		for _, e := range evs {
			if e.Reason == "inserted" {
				inserted++
			}
		}
		if inserted != 35 {
			t.Errorf("got %d inserted events, want one per row (35)", inserted)
		}

		// A loaded batch is not read again.
		read := false
		if _, err := db.LoadRows(ctx, "b", func(func(ledger.Row, error) bool) { read = true }, 35); err != nil || read {
			t.Errorf("load of a loaded batch: err %v, read %v; want nil and not read", err, read)
		}
	})
}

// TestLoadRowsCorrectsAnEarlierRead: rows recorded by a load that read
// another version of the manifest are made to match the final version
// while they were never attempted; rows the final version lacks keep the
// batch from being loaded.
func TestLoadRowsCorrectsAnEarlierRead(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t, ledger.WithLoadChunk(2))
		ctx := context.Background()
		if _, _, err := db.CreateBatch(ctx, ledger.Batch{ID: "b", ManifestSHA256: "s", RowCount: 3}); err != nil {
			t.Fatal(err)
		}
		changed := testRow(3, "R2")
		changed.Amount = 1
		if _, err := db.LoadRows(ctx, "b", seqOf(testRow(2, "R1"), changed, testRow(4, "R3"), testRow(5, "EXTRA")), 3); !errors.Is(err, ledger.ErrConflict) {
			t.Fatalf("load with a row too many: got %v, want ErrConflict", err)
		}
		if _, err := db.LoadRows(ctx, "b", seqOf(testRow(2, "R1"), testRow(3, "R2"), testRow(4, "R3")), 3); !errors.Is(err, ledger.ErrConflict) {
			t.Fatalf("load leaving a row of another version: got %v, want ErrConflict", err)
		}
		if b, _ := db.Batch(ctx, "b"); !b.LoadedAt.IsZero() {
			t.Fatal("a batch holding a row its manifest lacks is marked loaded")
		}
		r2, err := db.RowByReference(ctx, "b", "R2")
		if err != nil || r2.Amount != 150000 {
			t.Errorf("R2: got amount %d (%v), want the final version's 150000", r2.Amount, err)
		}
		evs, _ := db.Events(ctx, "b", r2.ID)
		if len(evs) != 2 || evs[1].Reason != "reloaded" {
			t.Errorf("R2 events: got %+v, want inserted then reloaded", evs)
		}

		// A row already attempted is never rewritten.
		if _, _, err := db.CreateBatch(ctx, ledger.Batch{ID: "c", ManifestSHA256: "s", RowCount: 1}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.InsertRows(ctx, "c", seqOf(testRow(2, "C1"))); err != nil {
			t.Fatal(err)
		}
		c1, _ := db.RowByReference(ctx, "c", "C1")
		walkTo(t, db, c1, ledger.StateCreating)
		other := testRow(2, "C1")
		other.Amount = 7
		if _, err := db.LoadRows(ctx, "c", seqOf(other), 1); !errors.Is(err, ledger.ErrConflict) {
			t.Errorf("load rewriting a row in flight: got %v, want ErrConflict", err)
		}
		if c1, _ = db.RowByReference(ctx, "c", "C1"); c1.Amount != 150000 {
			t.Errorf("row in flight rewritten: amount %d", c1.Amount)
		}
	})
}
