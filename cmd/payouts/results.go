package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/internal/pan"
	"github.com/payouts/payouts/ledger"
)

// countsLine renders counts as "succeeded 12 · failed 1 · awaiting_confirm 3".
func countsLine(c batch.Counts) string {
	var parts []string
	for _, s := range ledger.States() {
		if n := c[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", s, n))
		}
	}
	return strings.Join(parts, " · ")
}

// finish prints the outcome of a run (or rerun/approve/reject), writes the
// report if asked, and returns the exit status: 0 when every row succeeded,
// 1 when some failed, were cancelled, or are still pending.
func (a *App) finish(ctx context.Context, db *ledger.DB, res batch.Result, reportPath, reportFmt string, excel bool) error {
	ctx = context.WithoutCancel(ctx)
	if err := printBatchSummary(ctx, a.Stdout, db, res.Batch.ID); err != nil {
		return err
	}
	if reportPath != "" {
		if err := writeReportFile(ctx, db, res.Batch.ID, reportPath, reportFmt, excel); err != nil {
			return err
		}
		fmt.Fprintf(a.Stdout, "report written to %s\n", reportPath)
	}
	code := exitOf(res)
	if err := a.nextSteps(ctx, a.Stdout, db, res); err != nil {
		return err
	}
	a.summaryRecord(ctx, db, res, code)
	if code == ExitOK {
		return nil
	}
	return &ExitError{Code: code}
}

// attentionStates are the final states printBatchSummary lists row by row:
// rows a person must act on.
var attentionStates = []ledger.State{ledger.StateFailed, ledger.StateCancelled, ledger.StateMismatch, ledger.StateReview}

// openStates are the states of rows not finished yet.
var openStates = []ledger.State{ledger.StatePlanned, ledger.StateCreating, ledger.StateCreated, ledger.StateStarting,
	ledger.StateAwaitingConfirm, ledger.StateConfirming, ledger.StateCancelling, ledger.StateConfirmed, ledger.StateUnknown}

// maxListed is how many rows each list of printBatchSummary shows.
const maxListed = 20

// printBatchSummary prints counts and sums per state and currency, the
// control totals, and the rows needing attention.
func printBatchSummary(ctx context.Context, w io.Writer, db *ledger.DB, batchID string) error {
	b, err := db.Batch(ctx, batchID)
	if err != nil {
		return fmt.Errorf("batch %s: %w", batchID, err)
	}
	lines, err := db.Summary(ctx, batchID)
	if err != nil {
		return fmt.Errorf("summary of batch %s: %w", batchID, err)
	}
	fmt.Fprintf(w, "Batch %s  (%s, %d rows, created %s UTC)\n", b.ID, b.ManifestName, b.RowCount, b.CreatedAt.UTC().Format("2006-01-02 15:04:05"))
	sort.SliceStable(lines, func(i, j int) bool {
		if lines[i].State != lines[j].State {
			return stateOrder(lines[i].State) < stateOrder(lines[j].State)
		}
		return lines[i].Currency < lines[j].Currency
	})
	succeeded := map[string]int64{}
	fmt.Fprintf(w, "  %-17s %-4s %7s %20s\n", "state", "cur", "rows", "amount")
	for _, l := range lines {
		fmt.Fprintf(w, "  %-17s %-4s %7d %20s\n", l.State, l.Currency, l.Count, money(l.Amount, l.Currency))
		if l.State == ledger.StateSucceeded {
			succeeded[l.Currency] += l.Amount
		}
	}
	// Control totals from aggregates only: status stays instant on a
	// million-row batch (the report adds what was submitted).
	curs := map[string]bool{}
	for _, m := range []map[string]int64{b.Totals, succeeded} {
		for c := range m {
			curs[c] = true
		}
	}
	for _, c := range slices.Sorted(maps.Keys(curs)) {
		fmt.Fprintf(w, "  %-17s %-4s %28s of %s in the manifest\n", "paid", c, money(succeeded[c], c), money(b.Totals[c], c))
	}

	if err := listRows(ctx, w, db, batchID, "Rows needing attention", attentionStates, func(r ledger.Row) string {
		why := r.FailureCode
		if d := pan.Scrub(r.FailureDescription); d != "" {
			why += ": " + truncate(d, 80)
		}
		return why
	}); err != nil {
		return err
	}
	held := batch.ParseBatchOptions(b.Options).Confirm == batch.ConfirmHold
	return listRows(ctx, w, db, batchID, "Rows not finished", openStates, func(r ledger.Row) string {
		if r.State == ledger.StateAwaitingConfirm && held {
			return "held for approval: `payouts approve --batch " + batchID + "` (or reject)"
		}
		return openReason(r)
	})
}

// listRows prints up to maxListed rows of the batch in states, each with
// why(row), under a title with their number; nothing when there are none.
func listRows(ctx context.Context, w io.Writer, db *ledger.DB, batchID, title string, states []ledger.State, why func(ledger.Row) string) error {
	total, err := db.CountRows(ctx, batchID, states...)
	if err != nil {
		return fmt.Errorf("count rows: %w", err)
	}
	if total == 0 {
		return nil
	}
	fmt.Fprintf(w, "%s (%d):\n", title, total)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	n := 0
	for r, err := range db.Rows(ctx, batchID, states...) {
		if err != nil {
			return fmt.Errorf("list rows: %w", err)
		}
		if n == maxListed {
			break
		}
		n++
		fmt.Fprintf(tw, "  line %d\t%s\t%s\t%s %s\t%s\n", r.Line, pan.Scrub(r.Reference), r.State,
			money(r.Amount, r.Currency), r.Currency, why(r))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if total > n {
		fmt.Fprintf(w, "  … and %d more: `payouts report --batch %s` lists every row\n", total-n, batchID)
	}
	return nil
}

// openReason says what an unfinished row waits for.
func openReason(r ledger.Row) string {
	switch r.State {
	case ledger.StatePlanned:
		return "not sent to Pike yet"
	case ledger.StateAwaitingConfirm:
		return "ready to confirm: the runner confirms it once checked (run the same command again or keep `payouts serve` running)"
	case ledger.StateCreated, ledger.StateConfirmed:
		return "in flight at Pike, no final result yet"
	}
	return "outcome of the last call to Pike not known yet: run the same command again or keep `payouts serve` running; never pay it by hand"
}

func stateOrder(s ledger.State) int {
	for i, x := range ledger.States() {
		if x == s {
			return i
		}
	}
	return len(ledger.States())
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// dryRun prints what a run would pay without sending or writing anything:
// each row goes through batch.WouldSkip, the engine's own rule, and a
// ledger error stops the dry run (exit 3) rather than read as "would pay".
func (a *App) dryRun(ctx context.Context, path string, mopts manifest.Options, batchID string, lf *ledgerFlag, cfg batch.Config) error {
	db, err := lf.open(ctx, a, nil)
	switch {
	case err == nil:
		defer db.Close()
	case errors.Is(err, errNoLedger):
		fmt.Fprintf(a.Stdout, "No ledger at %s yet (`payouts init` creates it): nothing is known to be paid already.\n", lf.display())
	default:
		return err
	}
	pay := map[string]int64{}
	payRows, shown := 0, 0
	var skipped, done []string
	var ledgerErr error
	_, err = manifest.ReadFile(path, mopts, func(r manifest.Row) error {
		if db != nil {
			skip, err := batch.WouldSkip(ctx, db, batchID, r.Reference, cfg)
			switch {
			case err != nil:
				ledgerErr = fmt.Errorf("dry run, line %d: %w; nothing was sent", r.Line, err)
				return ledgerErr
			case skip != nil && skip.PaidElsewhere:
				skipped = append(skipped, fmt.Sprintf("line %d %s: already paid in batch %s", r.Line, r.Reference, skip.Row.BatchID))
				return nil
			case skip != nil:
				done = append(done, fmt.Sprintf("line %d %s: already %s in batch %s", r.Line, r.Reference, skip.Row.State, batchID))
				return nil
			}
		}
		pay[r.Currency] += r.Amount
		payRows++
		if shown < 50 {
			shown++
			fmt.Fprintf(a.Stdout, "  would pay  line %-5d %-24s %14s %s  card %s  %s\n", r.Line, r.Reference, money(r.Amount, r.Currency), r.Currency, r.Card.Mask(), r.RecipientName)
		}
		return nil
	})
	if ledgerErr != nil {
		return ledgerErr // infrastructure (exit 3), not a refusal of the file
	}
	if err != nil {
		return a.manifestRefusal(path, err)
	}
	if payRows > shown {
		fmt.Fprintf(a.Stdout, "  … and %d more rows\n", payRows-shown)
	}
	for _, s := range append(done, skipped...) {
		fmt.Fprintln(a.Stdout, "  skip       "+s)
	}
	fmt.Fprintf(a.Stdout, "Dry run of batch %s (%s flow, confirm %s): would pay %d rows", batchID, cfg.Flow, cfg.Confirm, payRows)
	curs := make([]string, 0, len(pay))
	for c := range pay {
		curs = append(curs, c)
	}
	sort.Strings(curs)
	for _, c := range curs {
		fmt.Fprintf(a.Stdout, "; %s %s", money(pay[c], c), c)
	}
	fmt.Fprintf(a.Stdout, "; skip %d. Nothing was sent and nothing was written.\n", len(skipped)+len(done))
	return nil
}
