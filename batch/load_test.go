package batch_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike/sandbox"
)

// TestSecondRunOfLargeBatchLeavesTheRunnerAlone starts a second run of a
// large manifest (another process: its own ledger connection) while the
// first is paying it. The second must be refused for the lease before it
// writes anything, so the first never waits on its write lock: the first
// runner's ledger gives up on a lock after 250 ms here, less than a second
// run needs to go over 30,000 rows (about 0.5 s for the inserts alone on
// the machine this was written on).
func TestSecondRunOfLargeBatchLeavesTheRunnerAlone(t *testing.T) {
	h := newHarness(t, sandbox.Config{Faults: sandbox.Faults{Latency: 2 * time.Millisecond}})
	// No webhooks: the harness would store them through a third ledger
	// connection. Results come from polling; the two runs are the only
	// writers.
	h.sb.SetWebhookURL("")
	const n = 30000
	rows := make([]row, n)
	for i := range rows {
		rows[i] = row{ref: fmt.Sprintf("BIG-%05d", i), amount: "10", card: sandbox.CardMir}
	}
	path := h.manifest("big.csv", rows...)
	mopts := manifest.Options{AllowDuplicates: true}
	sum, err := manifest.ReadFile(path, mopts, nil)
	if err != nil {
		t.Fatal(err)
	}
	ledgerPath := filepath.Join(h.dir, "payouts.db")
	first, err := ledger.Open(context.Background(), ledgerPath, ledger.WithBusyTimeout(250*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	second, err := ledger.Open(context.Background(), ledgerPath)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()

	opts := func(owner string) batch.RunOptions {
		return batch.RunOptions{Manifest: path, ManifestOptions: mopts, Summary: sum, Config: h.config(),
			Owner: ledger.CurrentOwner(owner)}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	type outcome struct {
		res batch.Result
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		res, err := batch.Run(ctx, first, h.client, opts("payouts run (first)"))
		done <- outcome{res, err}
	}()
	// Wait until the first runner is paying: rows succeed and it writes.
	id := batch.BatchIDFor(sum.SHA256)
	for {
		if c, _ := h.db.CountRows(context.Background(), id, ledger.StateSucceeded); c >= 20 {
			break
		}
		select {
		case o := <-done:
			t.Fatalf("the first run ended before the test began: %v (%v)", o.err, o.res.Counts)
		case <-time.After(5 * time.Millisecond):
		}
	}

	_, err = batch.Run(context.Background(), second, h.client, opts("payouts run (second)"))
	var held *ledger.LeaseHeldError
	if !errors.As(err, &held) {
		t.Fatalf("second run: got %v, want a LeaseHeldError naming the first runner", err)
	}
	if held.Owner.Command != "payouts run (first)" {
		t.Errorf("second run: the error names %q, want the first runner", held.Owner.Command)
	}

	// The first runner was not disturbed: it stops when asked, without error.
	cancel()
	o := <-done
	if o.err != nil {
		t.Fatalf("first run: got %v, want no error (interrupted)", o.err)
	}
	if !o.res.Interrupted {
		t.Errorf("first run: got %v, want it interrupted by the test", o.res.Counts)
	}
	if o.res.Counts.Total() != n {
		t.Errorf("got %d rows in the batch, want %d", o.res.Counts.Total(), n)
	}
}

// crashingLoad is the ledger with a load that dies after a number of rows,
// like a run killed while it loads a manifest.
type crashingLoad struct {
	*ledger.DB
	after int
}

var errKilled = errors.New("killed while loading")

func (c crashingLoad) LoadRows(ctx context.Context, batchID string, rows iter.Seq2[ledger.Row, error], want int) (int, error) {
	return c.DB.LoadRows(ctx, batchID, func(yield func(ledger.Row, error) bool) {
		i := 0
		for r, err := range rows {
			if i == c.after {
				yield(ledger.Row{}, errKilled)
				return
			}
			if !yield(r, err) {
				return
			}
			i++
		}
	}, want)
}

// TestRunKilledWhileLoadingIsCompletedByTheNextRun: a run that dies while
// it loads the manifest leaves a batch that pays nothing and cannot be
// rerun, until the next run of the manifest loads the missing rows and
// pays every row once.
func TestRunKilledWhileLoadingIsCompletedByTheNextRun(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	db, err := ledger.Open(context.Background(), filepath.Join(h.dir, "payouts.db"), ledger.WithLoadChunk(4))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows []row
	var refs []string
	for i := range 10 {
		ref := fmt.Sprintf("LD-%02d", i)
		rows = append(rows, row{ref: ref, amount: "10", card: sandbox.CardVisa})
		refs = append(refs, ref)
	}
	path := h.manifest("m.csv", rows...)
	mopts := manifest.Options{AllowDuplicates: true}
	sum, err := manifest.ReadFile(path, mopts, nil)
	if err != nil {
		t.Fatal(err)
	}
	opts := batch.RunOptions{Manifest: path, ManifestOptions: mopts, Summary: sum, Config: h.config(), Wait: 20 * time.Second}
	res, err := batch.Run(context.Background(), crashingLoad{db, 6}, h.client, opts)
	if !errors.Is(err, errKilled) {
		t.Fatalf("killed load: got %v, want %v", err, errKilled)
	}
	if c, _ := db.CountRows(context.Background(), res.Batch.ID); c != 4 {
		t.Fatalf("got %d rows after the killed load, want one chunk (4)", c)
	}
	h.expectPaid()
	_, _, err = batch.Rerun(context.Background(), db, h.client, batch.RerunOptions{BatchID: res.Batch.ID,
		SettleOptions: batch.SettleOptions{Config: h.config(), Wait: 5 * time.Second}})
	if !errors.Is(err, batch.ErrNotLoaded) {
		t.Errorf("rerun of a half-loaded batch: got %v, want ErrNotLoaded", err)
	}
	h.expectPaid()

	res, err = batch.Run(context.Background(), db, h.client, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Counts[ledger.StateSucceeded]; got != 10 {
		t.Fatalf("after the next run got %v, want 10 succeeded", res.Counts)
	}
	h.expectPaid(refs...)
}

// TestRerunRefusesCorrectionsItCannotApply: a corrected amount for a row
// never attempted (a batch whose run stopped before it) used to be dropped
// while the rerun paid the row as recorded. The rerun now refuses, naming
// the row and why, and pays nothing.
func TestRerunRefusesCorrectionsItCannotApply(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	path := h.manifest("m.csv", row{ref: "P-1", amount: "10", card: sandbox.CardMir}, row{ref: "P-2", amount: "20", card: sandbox.CardVisa})
	sum, err := manifest.ReadFile(path, manifest.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := batch.Prepare(context.Background(), h.db, path, manifest.Options{}, sum, "", h.fp, batch.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	fixed := h.manifest("fixed.csv", row{ref: "P-1", amount: "15", card: sandbox.CardMir}, row{ref: "P-2", amount: "20", card: sandbox.CardVisa})
	h.amounts["P-1"] = 1000 // what is recorded, and will be paid
	_, plan, err := batch.Rerun(context.Background(), h.db, h.client, batch.RerunOptions{BatchID: b.ID, Manifest: fixed,
		SettleOptions: batch.SettleOptions{Config: h.config(), Wait: 10 * time.Second, Intake: h.intake}})
	if !errors.Is(err, batch.ErrCorrectionsNotApplied) {
		t.Fatalf("got %v, want ErrCorrectionsNotApplied", err)
	}
	if len(plan.NotApplied) != 1 || plan.NotApplied[0].Row.Reference != "P-1" || !strings.Contains(plan.NotApplied[0].Why, "never attempted") ||
		plan.NotApplied[0].Changes[0] != "amount 10.00 RUB → 15.00 RUB" {
		t.Fatalf("got not applied %+v, want P-1's amount 10.00 → 15.00, never attempted", plan.NotApplied)
	}
	h.expectStates(b.ID, map[string]ledger.State{"P-1": ledger.StatePlanned, "P-2": ledger.StatePlanned})
	h.expectPaid()

	// Without the correction, the rerun starts both rows as recorded.
	_, plan, err = batch.Rerun(context.Background(), h.db, h.client, batch.RerunOptions{BatchID: b.ID,
		SettleOptions: batch.SettleOptions{Config: h.config(), Wait: 10 * time.Second, Intake: h.intake}})
	if err != nil || len(plan.Pending) != 2 || plan.Totals()["RUB"] != 3000 {
		t.Fatalf("rerun of the batch's own file: got %v, %d pending, totals %v; want 2 pending, RUB 3000", err, len(plan.Pending), plan.Totals())
	}
	h.expectPaid("P-1", "P-2")
}
