package batch

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/payouts/payouts/ledger"
)

// RerunOptions configure Rerun.
type RerunOptions struct {
	BatchID string
	// Manifest is the (possibly corrected) manifest; "" = the file the batch
	// was created from. Its rows are matched to the batch's by reference.
	Manifest        string
	ManifestOptions ManifestOptions
	// IncludeMismatch also retries rows cancelled because their session did
	// not match (off by default: a mismatch deserves a look first).
	IncludeMismatch bool
	SettleOptions
}

// RerunPlan says what a rerun did to each kind of row.
type RerunPlan struct {
	Retried []RerunChange // rows given a new attempt
	Kept    []ledger.Row  // review/unknown/in-flight rows: listed, never retried
	// Unchanged lists succeeded rows the corrected manifest changes: they
	// are never sent again.
	Unchanged []ledger.Row
}

// RerunChange is one row given a new attempt, with what the manifest changed.
type RerunChange struct {
	Row     ledger.Row
	Changes []string // "amount 1500.00 → 1600.00", "card 424242******4242 → 555555******4444", ...
}

// ErrNotInBatch is returned when a rerun manifest has references the batch does not.
var ErrNotInBatch = errors.New("reference not in batch")

// Rerun gives a new attempt (a new Pike session, new idempotency keys) to
// every row of a batch whose last attempt failed or was cancelled
// definitively, taking corrections (amount, card, name...) from the
// manifest for those rows only, then pays them like a run. Succeeded rows
// are never sent again; review and unknown rows are listed, not retried.
func Rerun(ctx context.Context, store Store, pk Pike, o RerunOptions) (Result, RerunPlan, error) {
	var plan RerunPlan
	b, err := store.Batch(ctx, o.BatchID)
	if err != nil {
		return Result{}, plan, fmt.Errorf("batch %s: %w", o.BatchID, err)
	}
	if b.LoadedAt.IsZero() {
		return Result{}, plan, fmt.Errorf("batch %s: %w: an earlier run stopped while loading its rows — run `payouts run %s` again to complete it first; nothing was sent",
			b.ID, ErrNotLoaded, b.ManifestName)
	}
	path := o.Manifest
	if path == "" {
		path = b.ManifestName
	}
	summary, err := ReadManifestFile(path, o.ManifestOptions, nil)
	if err != nil {
		return Result{}, plan, err
	}
	cfg := o.Config.withDefaults()
	cfg.Flow = ParseBatchOptions(b.Options).Flow
	// Every reference of the manifest must be a row of the batch: a rerun
	// never adds rows (a new manifest is a new batch).
	var missing []error
	if _, err := ReadManifestFile(path, o.ManifestOptions, func(mr ManifestRow) error {
		if _, err := store.RowByReference(ctx, b.ID, mr.Reference); errors.Is(err, ledger.ErrNotFound) {
			if len(missing) < 20 {
				missing = append(missing, fmt.Errorf("line %d: %w: %q is not in batch %s — a new row belongs in a new manifest", mr.Line, ErrNotInBatch, mr.Reference, b.ID))
			}
		} else if err != nil {
			return err
		}
		return nil
	}); err != nil {
		return Result{}, plan, err
	}
	if len(missing) > 0 {
		return Result{}, plan, errors.Join(missing...)
	}

	res := Result{Batch: b}
	err = withEngine(ctx, store, pk, b.ID, cfg, o.Owner, o.LeaseTTL, o.Intake, func(ctx context.Context, e *Engine) error {
		if _, err := ReadManifestFile(path, o.ManifestOptions, func(mr ManifestRow) error {
			return e.planRerun(ctx, mr, o.IncludeMismatch, &plan)
		}); err != nil {
			return err
		}
		if err := e.Feed(ctx, path, o.ManifestOptions, summary.SHA256); err != nil {
			return err
		}
		c, err := e.Wait(ctx, o.Wait, o.Progress)
		res.Counts, res.Held = c, e.Held()
		return err
	})
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		res.Interrupted, err = true, nil
	}
	if c, cerr := countsOf(context.WithoutCancel(ctx), store, b.ID); cerr == nil {
		res.Counts = c
	}
	return res, plan, err
}

// planRerun moves one row back to planned if its last attempt ended
// definitively without paying, applying the manifest's corrections.
func (e *Engine) planRerun(ctx context.Context, mr ManifestRow, includeMismatch bool, plan *RerunPlan) error {
	row, err := e.store.RowByReference(ctx, e.batchID, mr.Reference)
	if err != nil {
		return fmt.Errorf("row %s: %w", mr.Reference, err)
	}
	fresh := ledgerRow(e.batchID, mr, e.cfg.Fingerprinter)
	changes := rowChanges(row, fresh)
	switch row.State {
	case ledger.StateFailed, ledger.StateCancelled:
	case ledger.StateMismatch:
		if !includeMismatch {
			plan.Kept = append(plan.Kept, row)
			return nil
		}
	case ledger.StateSucceeded, ledger.StateSkipped:
		if len(changes) > 0 {
			plan.Unchanged = append(plan.Unchanged, row)
		}
		return nil
	case ledger.StatePlanned:
		return nil // never attempted yet: the feed will start it
	default:
		plan.Kept = append(plan.Kept, row)
		return nil
	}
	c := ledger.Change{To: ledger.StatePlanned, Reason: "rerun", Rerun: true, Failure: &ledger.Failure{},
		Detail: fmt.Sprintf("rerun after %s (%s)", row.State, row.FailureCode)}
	// A row whose fingerprint was cleared (a ledger moved off partner-key
	// fingerprints) gets the manifest's card's, so the new attempt is
	// checked like any other.
	if len(changes) > 0 || row.CardFingerprint == "" {
		c.Amend = &ledger.Amendment{Amount: fresh.Amount, Currency: fresh.Currency, RecipientName: fresh.RecipientName,
			Email: fresh.Email, Description: fresh.Description, CardBIN: fresh.CardBIN, CardLast4: fresh.CardLast4,
			CardFingerprint: fresh.CardFingerprint}
	}
	if len(changes) > 0 {
		c.Detail += "; corrected: " + strings.Join(changes, "; ")
	}
	unlock := e.locks.lock(row.ID)
	next, err := e.apply(row, c)
	unlock()
	if errors.Is(err, ledger.ErrPaid) {
		// An earlier attempt of the row succeeded (news that arrived after
		// it failed): the reference is paid and is never paid again.
		plan.Kept = append(plan.Kept, row)
		return nil
	}
	if err != nil {
		return err
	}
	plan.Retried = append(plan.Retried, RerunChange{Row: next, Changes: changes})
	return nil
}

// rowChanges lists what differs between a ledger row and its corrected
// manifest version. Cards are compared by fingerprint (by BIN and last four
// when the row's fingerprint was cleared) and shown masked.
func rowChanges(old, fresh ledger.Row) []string {
	var out []string
	if old.Amount != fresh.Amount || old.Currency != fresh.Currency {
		out = append(out, fmt.Sprintf("amount %s %s → %s %s", FormatAmount(old.Amount, old.Currency), old.Currency, FormatAmount(fresh.Amount, fresh.Currency), fresh.Currency))
	}
	cardChanged := old.CardFingerprint != fresh.CardFingerprint
	if old.CardFingerprint == "" {
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
