package batch

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"sync"
	"testing"

	"github.com/payouts/payouts/ledger"
)

// TestCountsStayExactWhileRecounting moves rows while the counts are
// recounted from the ledger over and over: a move that lands between a
// recount's read and its adoption must be neither lost nor counted twice,
// or a run waits for rows that are done (or stops before rows that are
// not).
func TestCountsStayExactWhileRecounting(t *testing.T) {
	ctx := context.Background()
	db, err := ledger.Open(ctx, filepath.Join(t.TempDir(), "payouts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const n = 600
	if _, _, err := db.CreateBatch(ctx, ledger.Batch{ID: "b1", ManifestName: "m.csv", ManifestSHA256: "00", RowCount: n}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.InsertRows(ctx, "b1", func(yield func(ledger.Row, error) bool) {
		for i := range n {
			if !yield(ledger.Row{BatchID: "b1", Line: i + 2, Reference: fmt.Sprintf("R-%d", i), Amount: 100, Currency: "RUB",
				RecipientName: "Иванов Иван", CardBIN: "424242", CardLast4: "4242"}, nil) {
				return
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	e := NewEngine(db, nil, "b1", Config{})
	e.callCtx = ctx
	if _, err := e.countsNow(ctx, true); err != nil {
		t.Fatal(err)
	}

	var rows []ledger.Row
	for r, err := range db.Rows(ctx, "b1") {
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r)
	}
	stop := make(chan struct{})
	var recounts sync.WaitGroup
	recounts.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := e.countsNow(ctx, true); err != nil {
				t.Error(err)
				return
			}
		}
	})
	var movers sync.WaitGroup
	for w := range 8 {
		movers.Go(func() {
			for i := w; i < len(rows); i += 8 {
				if _, err := e.apply(rows[i], ledger.Change{To: ledger.StateSkipped, Reason: "test"}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	movers.Wait()
	close(stop)
	recounts.Wait()

	mem, err := e.countsNow(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range ledger.States() {
		want := 0
		if s == ledger.StateSkipped {
			want = n
		}
		if mem[s] != want {
			t.Fatalf("counts in memory %v, want %d rows skipped and none elsewhere", mem, n)
		}
	}
	if got, _ := CountsOf(ctx, db, "b1"); !maps.Equal(got, Counts{ledger.StateSkipped: n}) {
		t.Fatalf("ledger counts %v", got)
	}
}

// TestWorkersServeRowsInFlightFirst: with a row to start and a webhook to
// apply both waiting, a free worker takes the webhook. Over and over, so a
// random choice between the two would be caught.
func TestWorkersServeRowsInFlightFirst(t *testing.T) {
	e := NewEngine(nil, nil, "b1", Config{})
	e.urgent = make(chan func(), 1)
	e.work = make(chan func(), 1)
	var got []string
	for range 100 {
		e.work <- func() { got = append(got, "start") }
		e.urgent <- func() { got = append(got, "webhook") }
		for range 2 {
			f, ok := e.next()
			if !ok {
				t.Fatal("engine reported stopped")
			}
			f()
		}
		if got[0] != "webhook" || got[1] != "start" {
			t.Fatalf("worker order %v, want the webhook before the new row", got)
		}
		got = got[:0]
	}
	close(e.stopped)
	if _, ok := e.next(); ok {
		t.Fatal("next after stop returned a job")
	}
}

// TestJobCountIdle: Drain's signal is closed exactly while no job is in
// flight, across several rounds of work.
func TestJobCountIdle(t *testing.T) {
	var c jobCount
	closed := func() bool {
		select {
		case <-c.idle():
			return true
		default:
			return false
		}
	}
	for round := range 3 {
		if !closed() {
			t.Fatalf("round %d: no job in flight, got idle open, want closed", round)
		}
		c.add(1)
		c.add(1)
		ch := c.idle()
		c.add(-1)
		if closed() {
			t.Fatalf("round %d: one job in flight, got idle closed, want open", round)
		}
		c.add(-1)
		select {
		case <-ch:
		default:
			t.Fatalf("round %d: the channel taken while busy is still open after the last job finished", round)
		}
	}
}
