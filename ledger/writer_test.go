package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/ledger"
)

// TestGroupCommitConcurrent: many callers at once, each driving its own
// row through a whole payout; every change lands exactly once.
func TestGroupCommitConcurrent(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		const n = 64
		refs := make([]string, n)
		for i := range refs {
			refs[i] = fmt.Sprintf("R%02d", i)
		}
		rows := newBatch(t, db, "b", refs...)
		var wg sync.WaitGroup
		for _, r := range rows {
			wg.Go(func() { walkTo(t, db, r, ledger.StateSucceeded) })
		}
		wg.Wait()
		if c, _ := db.CountRows(ctx, "b", ledger.StateSucceeded); c != n {
			t.Errorf("got %d succeeded rows, want %d", c, n)
		}
		for _, r := range rows {
			evs, _ := db.Events(ctx, "b", r.ID)
			if want := 1 + len(pathTo[ledger.StateSucceeded]); len(evs) != want {
				t.Errorf("row %s: got %d events, want %d", r.Reference, len(evs), want)
			}
		}
	})
}

// TestCancelledCallersTellTheTruth: callers whose context ends at random
// moments get an error exactly when their change was not written, and a
// change is never half-written (state without event or the reverse).
func TestCancelledCallersTellTheTruth(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		const n = 200
		refs := make([]string, n)
		for i := range refs {
			refs[i] = fmt.Sprintf("R%03d", i)
		}
		rows := newBatch(t, db, "b", refs...)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i, r := range rows {
			wg.Go(func() {
				cctx, cancel := context.WithTimeout(ctx, time.Duration(rand.IntN(3000))*time.Microsecond)
				defer cancel()
				_, errs[i] = db.Apply(cctx, ledger.Change{RowID: r.ID, From: ledger.StatePlanned, To: ledger.StateSkipped,
					Reason: "test", Detail: r.Reference})
			})
		}
		wg.Wait()
		written, refused := 0, 0
		for i, r := range rows {
			now, _ := db.Row(ctx, r.ID)
			evs, _ := db.Events(ctx, "b", r.ID)
			moved := now.State == ledger.StateSkipped
			logged := len(evs) == 2 && evs[1].Detail == r.Reference
			if moved != logged {
				t.Errorf("row %s half-written: state %s, %d events", r.Reference, now.State, len(evs))
			}
			switch {
			case errs[i] == nil && !moved:
				t.Errorf("row %s: Apply returned nil but nothing was written", r.Reference)
			case errs[i] != nil && moved:
				t.Errorf("row %s: Apply returned %v but the change was written", r.Reference, errs[i])
			case errs[i] != nil && !errors.Is(errs[i], context.DeadlineExceeded):
				t.Errorf("row %s: got %v, want a deadline error", r.Reference, errs[i])
			}
			if moved {
				written++
			} else {
				refused++
			}
		}
		t.Logf("%d written, %d withdrawn", written, refused)
	})
}

func TestApplyCancelledContext(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		r := newBatch(t, db, "b", "R")[0]
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := db.Apply(ctx, step(r, ledger.StateSkipped)); !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
		if now, _ := db.Row(context.Background(), r.ID); now.State != ledger.StatePlanned {
			t.Errorf("got %s, want planned", now.State)
		}
	})
}

// TestCloseFlushes: Close while callers are writing; each caller learns
// whether its change is durable, and the reopened ledger agrees.
func TestCloseFlushes(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		ctx := context.Background()
		path := newLocation(t)
		db, err := ledger.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		const n = 100
		refs := make([]string, n)
		for i := range refs {
			refs[i] = fmt.Sprintf("R%03d", i)
		}
		rows := newBatch(t, db, "b", refs...)
		errs := make([]error, n)
		var wg sync.WaitGroup
		var calling atomic.Int32
		for i, r := range rows {
			wg.Go(func() {
				calling.Add(1)
				_, errs[i] = db.Apply(ctx, step(r, ledger.StateSkipped))
			})
		}
		poll.Until(t, "half the callers writing", func() bool { return calling.Load() >= n/2 })
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		if _, err := db.Apply(ctx, step(rows[0], ledger.StateSkipped)); !errors.Is(err, ledger.ErrClosed) {
			t.Errorf("after Close: got %v, want ErrClosed", err)
		}
		db, err = ledger.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		for i, r := range rows {
			now, _ := db.Row(ctx, r.ID)
			switch {
			case errs[i] == nil && now.State != ledger.StateSkipped:
				t.Errorf("row %s: Apply returned nil, reopened ledger has %s", r.Reference, now.State)
			case errs[i] != nil && (now.State != ledger.StatePlanned || !errors.Is(errs[i], ledger.ErrClosed)):
				t.Errorf("row %s: Apply returned %v, reopened ledger has %s", r.Reference, errs[i], now.State)
			}
		}
	})
}
