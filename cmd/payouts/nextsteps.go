package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
)

// exitOf is the exit code of a command that drove a batch (DESIGN.md): 0
// when every row succeeded (or was skipped as already paid), and also when
// the only rows left are held for approval as asked (hold mode); 1 when
// rows failed, were cancelled, or are still pending.
func exitOf(res batch.Result) int {
	if res.OK() {
		return ExitOK
	}
	c := res.Counts
	if !res.Interrupted && res.Held > 0 && res.Held == c[ledger.StateAwaitingConfirm] &&
		c[ledger.StateSucceeded]+c[ledger.StateSkipped]+res.Held == c.Total() {
		return ExitOK
	}
	return ExitPartial
}

// nextSteps ends a command's output with what to do next, as commands to
// copy: resume an interrupted run, approve held rows before their confirm
// deadline, rerun failed rows, look at mismatches, decide rows in review,
// let in-flight rows finish.
func (a *App) nextSteps(ctx context.Context, w io.Writer, db *ledger.DB, res batch.Result) error {
	id, c := res.Batch.ID, res.Counts
	var steps []string
	if res.Interrupted {
		steps = append(steps, fmt.Sprintf("Interrupted. The ledger holds every row's state; to resume, run the same command again (batch %s).", id))
	}
	if held := c[ledger.StateAwaitingConfirm]; res.Held > 0 && held > 0 {
		deadline, err := confirmDeadlineOf(ctx, db, id)
		if err != nil {
			return err
		}
		by := "within " + confirmDeadline
		if !deadline.IsZero() {
			by = "by " + clock(deadline) + ", or Pike cancels them"
		}
		steps = append(steps, fmt.Sprintf("%s waiting for approval; approve %s: `payouts approve --batch %s` (or `payouts reject --batch %s`).", rowsN(held), by, id, id))
	}
	if n := c[ledger.StateFailed] + c[ledger.StateCancelled]; n > 0 {
		steps = append(steps, fmt.Sprintf("%s failed or cancelled: fix what the reasons above say, then `payouts rerun --batch %s` pays them again (pass the corrected manifest as its argument if you changed a row).", rowsN(n), id))
	}
	if n := c[ledger.StateMismatch]; n > 0 {
		steps = append(steps, fmt.Sprintf("%s cancelled because Pike's session did not match the row: check them, then `payouts rerun --batch %s --include-mismatch`.", rowsN(n), id))
	}
	if n := c[ledger.StateReview]; n > 0 {
		steps = append(steps, fmt.Sprintf("%s needing a person: check with Pike what happened, then `payouts decide --batch %s --reference REF --outcome paid|not-paid --note TEXT`.", rowsN(n), id))
	}
	notSent := c[ledger.StatePlanned]
	if inFlight := c.Open() - notSent - c[ledger.StateAwaitingConfirm]*boolInt(res.Held > 0); inFlight > 0 {
		steps = append(steps, fmt.Sprintf("%s still in flight at Pike (outcome not known yet). Keep `payouts serve` running, or run the same command again, to finish them (never pay them by hand); `payouts status --batch %s` shows them.", rowsN(inFlight), id))
	}
	if notSent > 0 && !res.Interrupted {
		steps = append(steps, fmt.Sprintf("%s not sent to Pike: the log says why (is Pike reachable at --pike-url?). Run the same command again to send them.", rowsN(notSent)))
	}
	if len(steps) == 0 && res.OK() {
		steps = append(steps, fmt.Sprintf("Every row is paid. `payouts report --batch %s --output report.csv` writes the reconciliation report.", id))
	}
	if len(steps) > 0 {
		fmt.Fprintln(w)
	}
	for _, s := range steps {
		fmt.Fprintln(w, "Next: "+s)
	}
	return nil
}

// rowsN is "1 row" or "N rows".
func rowsN(n int) string {
	if n == 1 {
		return "1 row"
	}
	return fmt.Sprintf("%d rows", n)
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// confirmDeadlineOf is when Pike starts cancelling the batch's rows held
// for approval: ConfirmDeadline after the first of them became ready to
// confirm (zero when none waits).
func confirmDeadlineOf(ctx context.Context, db *ledger.DB, batchID string) (time.Time, error) {
	var first time.Time
	for r, err := range db.Rows(ctx, batchID, ledger.StateAwaitingConfirm) {
		if err != nil {
			return time.Time{}, fmt.Errorf("rows awaiting confirmation: %w", err)
		}
		if first.IsZero() || r.UpdatedAt.Before(first) {
			first = r.UpdatedAt
		}
	}
	if first.IsZero() {
		return first, nil
	}
	return first.Add(pike.ConfirmDeadline), nil
}

// summaryRecord emits, with JSON logs, the command's outcome as one final
// record: the batch, rows and sums per state and currency, the exit code.
func (a *App) summaryRecord(ctx context.Context, db *ledger.DB, res batch.Result, code int) {
	log := a.jsonLogger()
	if log == nil {
		return
	}
	lines, err := db.Summary(ctx, res.Batch.ID)
	if err != nil {
		log.Error("summary", "batch", res.Batch.ID, "err", err)
		return
	}
	counts := map[string]int{}
	sums := map[string]map[string]string{}
	for _, l := range lines {
		counts[string(l.State)] += l.Count
		if sums[string(l.State)] == nil {
			sums[string(l.State)] = map[string]string{}
		}
		sums[string(l.State)][l.Currency] = manifest.FormatAmount(l.Amount, l.Currency)
	}
	log.Info("summary", "batch", res.Batch.ID, "rows", res.Counts.Total(), "counts", counts, "sums", sums,
		"held", res.Held, "interrupted", res.Interrupted, "exit_code", code)
}
