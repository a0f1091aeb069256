package batch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/ledger"
)

// RerunOptions configure Rerun and PlanRerun.
type RerunOptions struct {
	BatchID string
	// Manifest is the (possibly corrected) manifest; "" = the file the batch
	// was created from. Its rows are matched to the batch's by reference.
	Manifest string
	// Source, when set, is read instead of the file at Manifest (the
	// console's corrected upload, held in memory).
	Source          Source
	ManifestOptions manifest.Options
	// IncludeMismatch also retries rows cancelled because their session did
	// not match (off by default: a mismatch deserves a look first).
	IncludeMismatch bool
	// Check, when set, is given the plan under the batch's lease before
	// anything is written or sent; an error from it stops the rerun with
	// nothing done (the safety caps of `payouts rerun`).
	Check func(RerunPlan) error
	// Config.Confirm is the rerun's confirm mode. Hold is recorded in the
	// batch's options when the batch was not held, so that `payouts serve`
	// holds the rerun's rows too.
	SettleOptions
}

// RerunPlan says what a rerun does to each row of its manifest.
type RerunPlan struct {
	Retried []RerunChange // rows given a new attempt, with the manifest's corrections
	Pending []ledger.Row  // rows never attempted: the rerun starts them as recorded
	// Resumed lists rows in flight (unknown, created, started, confirmed...):
	// not retried, but the rerun carries them on with their cards as
	// recorded, so they may be paid by it and count against its caps.
	Resumed []ledger.Row
	Kept    []ledger.Row // review, final rows, mismatches without IncludeMismatch: listed, not retried
	// NotApplied lists the manifest's corrections for rows that are not
	// retried, each with why. A rerun with any refuses to start
	// (ErrCorrectionsNotApplied): a correction is never silently dropped.
	NotApplied []RerunChange
}

// RerunChange is one row of a rerun with what the manifest changes in it.
type RerunChange struct {
	Row      ledger.Row
	Amount   int64    // what the new attempt pays, in Currency's minor units
	Currency string   // (the corrected values)
	Changes  []string // "amount 1500.00 RUB → 1600.00 RUB", "card 424242…4242 → 555555…4444", ...
	Why      string   // for NotApplied: why the row is not retried

	fresh ledger.Row // the manifest's version of the row
}

// Totals is what the rerun pays per currency, if every retried, pending
// and resumed row succeeds: the corrected amounts of retried rows, the
// recorded amounts of the others.
func (p RerunPlan) Totals() map[string]int64 {
	t := map[string]int64{}
	for _, c := range p.Retried {
		t[c.Currency] += c.Amount
	}
	for _, r := range append(slices.Clip(p.Pending), p.Resumed...) {
		t[r.Currency] += r.Amount
	}
	return t
}

// Errors of Rerun.
var (
	// ErrNotInBatch is returned when a rerun manifest has references the batch does not.
	ErrNotInBatch = errors.New("reference not in batch")
	// ErrCorrectionsNotApplied is returned when the manifest corrects rows
	// the rerun does not retry (RerunPlan.NotApplied lists them).
	ErrCorrectionsNotApplied = errors.New("corrections for rows that are not retried")
)

// PlanRerun says what Rerun would do, without taking the batch's lease,
// writing or sending anything (`payouts rerun --dry-run`). Card changes are
// found with o.Config.Fingerprinter. The error wraps
// ErrCorrectionsNotApplied when Rerun would refuse for that reason.
func PlanRerun(ctx context.Context, store Store, o RerunOptions) (RerunPlan, error) {
	b, path, err := rerunBatch(ctx, store, o)
	if err != nil {
		return RerunPlan{}, err
	}
	return planRerun(ctx, store, b.ID, o.source(path), o, o.Config.Fingerprinter)
}

// Rerun gives a new attempt (a new Pike session, new idempotency keys) to
// every row of a batch whose last attempt failed or was cancelled
// definitively, taking corrections (amount, card, name...) from the
// manifest for those rows, then pays them like a run. It first plans the
// whole rerun under the batch's lease: a correction for a row that is not
// retried (ErrCorrectionsNotApplied) or a refusal from o.Check stops it
// with nothing written or sent. Succeeded rows are never sent again;
// review and unknown rows are listed, not retried.
func Rerun(ctx context.Context, store Store, pk Pike, o RerunOptions) (Result, RerunPlan, error) {
	var plan RerunPlan
	b, path, err := rerunBatch(ctx, store, o)
	if err != nil {
		return Result{}, plan, err
	}
	src := o.source(path)
	summary, err := src.Read(o.ManifestOptions, nil)
	if err != nil {
		return Result{}, plan, err
	}
	cfg := o.Config.withDefaults()
	bo := ParseBatchOptions(b.Options)
	cfg.Flow = bo.Flow

	res := Result{Batch: b}
	err = withEngine(ctx, store, pk, b.ID, cfg, o.Owner, o.LeaseTTL, o.Intake, func(ctx context.Context, e *Engine) error {
		if plan, err = planRerun(ctx, store, b.ID, src, o, cfg.Fingerprinter); err != nil {
			return err
		}
		if o.Check != nil {
			if err := o.Check(plan); err != nil {
				return err
			}
		}
		if cfg.Confirm == ConfirmHold && bo.Confirm != ConfirmHold {
			if err := holdBatch(ctx, store, b, bo); err != nil {
				return err
			}
		}
		retried := plan.Retried[:0]
		for _, c := range plan.Retried {
			next, err := e.retry(c)
			if errors.Is(err, ledger.ErrPaid) {
				// An earlier attempt of the row succeeded (news that arrived
				// after it failed): the reference is paid and is never paid
				// again.
				plan.Kept = append(plan.Kept, c.Row)
				continue
			}
			if err != nil {
				return err
			}
			c.Row = next
			retried = append(retried, c)
		}
		plan.Retried = retried
		if err := e.FeedSource(ctx, src, o.ManifestOptions, summary.SHA256); err != nil {
			return err
		}
		c, err := e.WaitProgress(ctx, o.Wait, watchOf(o.Progress, o.Watch))
		res.Counts, res.Held = c, e.Held()
		return err
	})
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		res.Interrupted, err = true, nil
	}
	if c, cerr := CountsOf(context.WithoutCancel(ctx), store, b.ID); cerr == nil {
		res.Counts = c
	}
	return res, plan, err
}

// source is the rerun's manifest: o.Source, or the file at path.
func (o RerunOptions) source(path string) Source {
	if o.Source != nil {
		return o.Source
	}
	return FileSource(path)
}

// rerunBatch returns the batch of a rerun and the manifest to read, after
// checking the batch can be rerun and the manifest adds no row to it.
func rerunBatch(ctx context.Context, store Store, o RerunOptions) (ledger.Batch, string, error) {
	b, err := store.Batch(ctx, o.BatchID)
	if err != nil {
		return ledger.Batch{}, "", fmt.Errorf("batch %s: %w", o.BatchID, err)
	}
	if b.LoadedAt.IsZero() {
		return ledger.Batch{}, "", fmt.Errorf("batch %s: %w: an earlier run stopped while loading its rows — run `payouts run %s` again to complete it first; nothing was sent",
			b.ID, ErrNotLoaded, b.ManifestName)
	}
	path := o.Manifest
	if path == "" {
		path = b.ManifestName
	}
	// Every reference of the manifest must be a row of the batch: a rerun
	// never adds rows (a new manifest is a new batch).
	var missing []error
	if _, err := o.source(path).Read(o.ManifestOptions, func(mr manifest.Row) error {
		if _, err := store.RowByReference(ctx, b.ID, mr.Reference); errors.Is(err, ledger.ErrNotFound) {
			if len(missing) < 20 {
				missing = append(missing, fmt.Errorf("line %d: %w: %q is not in batch %s — a new row belongs in a new manifest", mr.Line, ErrNotInBatch, mr.Reference, b.ID))
			}
		} else if err != nil {
			return err
		}
		return nil
	}); err != nil {
		return ledger.Batch{}, "", err
	}
	if len(missing) > 0 {
		return ledger.Batch{}, "", errors.Join(missing...)
	}
	return b, path, nil
}

// planRerun reads the manifest and decides what happens to each row,
// writing nothing.
func planRerun(ctx context.Context, store Store, batchID string, src Source, o RerunOptions, fp *Fingerprinter) (RerunPlan, error) {
	var plan RerunPlan
	_, err := src.Read(o.ManifestOptions, func(mr manifest.Row) error {
		row, err := store.RowByReference(ctx, batchID, mr.Reference)
		if err != nil {
			return fmt.Errorf("row %s: %w", mr.Reference, err)
		}
		fresh := ledgerRow(batchID, mr, fp)
		c := RerunChange{Row: row, Amount: fresh.Amount, Currency: fresh.Currency, Changes: rowChanges(row, fresh)}
		why := ""
		switch row.State {
		case ledger.StateFailed, ledger.StateCancelled:
		case ledger.StateMismatch:
			if !o.IncludeMismatch {
				why = "cancelled for a mismatch: pass --include-mismatch to retry it"
			}
		case ledger.StatePlanned:
			why = "never attempted: it is paid as recorded when the batch runs; a correction applies only to a row whose attempt failed"
		case ledger.StateSucceeded:
			why = "already paid: a payment is never changed or sent again; pay a difference under a new reference in a new manifest"
		case ledger.StateSkipped:
			why = "skipped: its reference was paid in another batch"
		case ledger.StateReview:
			why = "in review: it needs a person (Pike support) and is never retried"
		case ledger.StateUnknown:
			why = "its last call's outcome is not known yet: let `payouts serve` or a run resolve it first"
		default:
			why = "in flight at Pike: its outcome must be known first (`payouts status --batch " + batchID + "`)"
		}
		switch {
		case why != "" && len(c.Changes) > 0:
			c.Why = why
			plan.NotApplied = append(plan.NotApplied, c)
		case row.State == ledger.StatePlanned:
			plan.Pending = append(plan.Pending, row)
		case why != "" && slices.Contains(openStates, row.State):
			plan.Resumed = append(plan.Resumed, row)
		case why != "" && row.State != ledger.StateSucceeded && row.State != ledger.StateSkipped:
			plan.Kept = append(plan.Kept, row)
		case why == "":
			c.fresh = fresh
			plan.Retried = append(plan.Retried, c)
		}
		return nil
	})
	if err != nil {
		return RerunPlan{}, err
	}
	if len(plan.NotApplied) > 0 {
		return plan, fmt.Errorf("batch %s: %d rows: %w; nothing was sent", batchID, len(plan.NotApplied), ErrCorrectionsNotApplied)
	}
	return plan, nil
}

// retry moves a planned rerun's row back to planned for a new attempt,
// with the manifest's corrections.
func (e *Engine) retry(c RerunChange) (ledger.Row, error) {
	row, fresh := c.Row, c.fresh
	ch := ledger.Change{To: ledger.StatePlanned, Reason: "rerun", Rerun: true, Failure: &ledger.Failure{},
		Detail: fmt.Sprintf("rerun after %s (%s)", row.State, row.FailureCode)}
	// A row whose fingerprint was cleared (a ledger moved off partner-key
	// fingerprints) gets the manifest's card's, so the new attempt is
	// checked like any other.
	if len(c.Changes) > 0 || row.CardFingerprint == "" {
		ch.Amend = &ledger.Amendment{Amount: fresh.Amount, Currency: fresh.Currency, RecipientName: fresh.RecipientName,
			Email: fresh.Email, Description: fresh.Description, CardBIN: fresh.CardBIN, CardLast4: fresh.CardLast4,
			CardFingerprint: fresh.CardFingerprint}
	}
	if len(c.Changes) > 0 {
		ch.Detail += "; corrected: " + strings.Join(c.Changes, "; ")
	}
	unlock := e.locks.lock(row.ID)
	defer unlock()
	return e.apply(row, ch)
}

// holdBatch records hold as the batch's confirm mode.
func holdBatch(ctx context.Context, store Store, b ledger.Batch, bo BatchOptions) error {
	bo.Confirm = ConfirmHold
	opts, err := json.Marshal(bo)
	if err != nil {
		return fmt.Errorf("encode batch options: %w", err)
	}
	b.Options = string(opts)
	if err := store.UpdateBatch(ctx, b); err != nil {
		return fmt.Errorf("hold batch %s: %w", b.ID, err)
	}
	return nil
}

// rowChanges lists what differs between a ledger row and its corrected
// manifest version. Cards are compared by fingerprint (by BIN and last four
// when the row's fingerprint was cleared, or there is no fingerprinter)
// and shown masked.
func rowChanges(old, fresh ledger.Row) []string {
	var out []string
	if old.Amount != fresh.Amount || old.Currency != fresh.Currency {
		out = append(out, fmt.Sprintf("amount %s %s → %s %s", manifest.FormatAmount(old.Amount, old.Currency), old.Currency, manifest.FormatAmount(fresh.Amount, fresh.Currency), fresh.Currency))
	}
	cardChanged := old.CardFingerprint != fresh.CardFingerprint
	if old.CardFingerprint == "" || fresh.CardFingerprint == "" {
		cardChanged = old.CardBIN != fresh.CardBIN || old.CardLast4 != fresh.CardLast4
	}
	if cardChanged {
		out = append(out, fmt.Sprintf("card %s…%s → %s…%s", old.CardBIN, old.CardLast4, fresh.CardBIN, fresh.CardLast4))
	}
	if old.RecipientName != fresh.RecipientName {
		out = append(out, fmt.Sprintf("recipient_name %q → %q", old.RecipientName, fresh.RecipientName))
	}
	if old.Email != fresh.Email {
		out = append(out, fmt.Sprintf("email %q → %q", old.Email, fresh.Email))
	}
	if old.Description != fresh.Description {
		out = append(out, "description changed")
	}
	return out
}
