package batch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"iter"
	"path/filepath"
	"time"

	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/internal/pan"
	"github.com/payouts/payouts/ledger"
)

// BatchIDFor is the default batch id of a manifest: the first 16 hex
// digits of its SHA-256, so the same file run twice is the same batch.
//
// About one hash in 2,200 starts with 13 or more decimal digits that pass
// the card-number check (1eb2465596692783): the ledger would mask them in
// every stored webhook's metadata, and no webhook would match its row. Such
// a hash gives the next 16 hex digits that hold no card number instead; the
// same file still always gets the same id.
func BatchIDFor(manifestSHA256 string) string {
	if len(manifestSHA256) <= 16 {
		return manifestSHA256
	}
	for i := 0; i+16 <= len(manifestSHA256); i += 16 {
		if id := manifestSHA256[i : i+16]; CheckBatchID(id) == nil {
			return id
		}
	}
	// Four windows in a row with a card number: a letter in the middle
	// leaves no run of 13 digits.
	return manifestSHA256[:8] + "x" + manifestSHA256[9:16]
}

// ErrBatchID is returned for a batch id that cannot be used.
var ErrBatchID = errors.New("invalid batch id")

// CheckBatchID refuses a batch id that holds a card number by pan's rule,
// whole or in the 16 characters sent in every session's metadata (RowKey):
// card numbers are never stored, so the ledger would mask it in every
// stored webhook and the confirm check would find every session's metadata
// changed. The error wraps ErrBatchID and does not show the id.
func CheckBatchID(id string) error {
	if pan.Contains(id) || pan.Contains(ledger.RowKeyBatch(id)) {
		return fmt.Errorf("%w: it looks like a card number; card numbers are never stored, so it would be masked in every stored webhook — use a batch id without 13 to 19 digits in a row or in groups that pass the card-number (Luhn) check, e.g. put a letter among the digits", ErrBatchID)
	}
	return nil
}

// BatchOptions are the choices fixed when a batch is created. A resumed
// run keeps the batch's flow whatever its flags say, because the way an
// unknown row is resolved depends on the flow its attempts were made with.
type BatchOptions struct {
	Flow    Flow        `json:"flow"`
	Confirm ConfirmMode `json:"confirm"`
}

// ParseBatchOptions decodes a batch's stored options.
func ParseBatchOptions(s string) BatchOptions {
	var o BatchOptions
	_ = json.Unmarshal([]byte(s), &o)
	if o.Flow == "" {
		o.Flow = FlowTwoStep
	}
	if o.Confirm == "" {
		o.Confirm = ConfirmAuto
	}
	return o
}

// ErrManifestChanged is returned when a manifest changed between the
// validation pass and a later pass over it. It is manifest.ErrChanged, so
// errors.Is matches either name.
var ErrManifestChanged = manifest.ErrChanged

// ErrNotLoaded is returned for a batch whose rows are not all in the ledger
// yet (an earlier run stopped while loading them): only a run of its own
// manifest completes it.
var ErrNotLoaded = errors.New("batch not completely loaded")

// Prepare creates (or reopens) the batch of a validated manifest and loads
// its rows, streaming the file a second time, in short transactions (see
// ledger.DB.LoadRows) so that it never locks out a runner of another batch.
// Rows already in the batch are left as they are, which is what makes
// running the same manifest again a resume; a batch already loaded is not
// read again. summary is the result of the validation pass; if the file no
// longer has the same SHA-256, the batch is left not loaded (none of its
// rows can be started) and the next run of the manifest completes it.
//
// The caller holds the batch's lease: two loads of one batch at once would
// take each other's rows for repeated references.
func Prepare(ctx context.Context, store Store, path string, opts manifest.Options, summary manifest.Summary, batchID string, fp *Fingerprinter, bo BatchOptions) (ledger.Batch, bool, error) {
	return PrepareSource(ctx, store, FileSource(path), opts, summary, batchID, fp, bo)
}

// PrepareSource is Prepare reading the manifest from src.
func PrepareSource(ctx context.Context, store Store, src Source, opts manifest.Options, summary manifest.Summary, batchID string, fp *Fingerprinter, bo BatchOptions) (ledger.Batch, bool, error) {
	if batchID == "" {
		batchID = BatchIDFor(summary.SHA256)
	}
	if err := CheckBatchID(batchID); err != nil {
		return ledger.Batch{}, false, err
	}
	name := src.Name()
	if pan.Contains(filepath.Base(name)) {
		// The path is kept in the ledger (rerun reads the file again). Only
		// the file's own name is judged: digits of directories (temporary
		// ones, say) joined across a slash can pass the check by chance.
		return ledger.Batch{}, false, fmt.Errorf("%w: the manifest's file name holds a card number, which is never stored — rename the file", ErrBatchID)
	}
	optJSON, err := json.Marshal(bo)
	if err != nil {
		return ledger.Batch{}, false, fmt.Errorf("encode batch options: %w", err)
	}
	b, created, err := store.CreateBatch(ctx, ledger.Batch{
		ID: batchID, ManifestName: name, ManifestSHA256: summary.SHA256,
		Options: string(optJSON), RowCount: summary.Rows, Totals: summary.Totals,
	})
	if err != nil {
		return ledger.Batch{}, false, fmt.Errorf("create batch %s: %w", batchID, err)
	}
	if !b.LoadedAt.IsZero() {
		return b, created, nil
	}
	rows := func(yield func(ledger.Row, error) bool) {
		stop := errors.New("stop")
		err := src.Reread(opts, summary.SHA256, func(mr manifest.Row) error {
			if !yield(ledgerRow(batchID, mr, fp), nil) {
				return stop
			}
			return nil
		})
		switch {
		case errors.Is(err, stop):
		case errors.Is(err, manifest.ErrChanged):
			yield(ledger.Row{}, fmt.Errorf("%w — run again", err))
		case err != nil:
			yield(ledger.Row{}, fmt.Errorf("read manifest: %w", err))
		}
	}
	if _, err := store.LoadRows(ctx, batchID, iter.Seq2[ledger.Row, error](rows), summary.Rows); err != nil {
		return b, created, fmt.Errorf("load rows of batch %s: %w", batchID, err)
	}
	if b, err = store.Batch(ctx, batchID); err != nil {
		return ledger.Batch{}, false, err
	}
	return b, created, nil
}

// ledgerRow is the ledger's record of a manifest row: everything but the
// card number, of which only BIN, last4 and a keyed fingerprint are kept.
func ledgerRow(batchID string, mr manifest.Row, fp *Fingerprinter) ledger.Row {
	r := ledger.Row{
		BatchID: batchID, Line: mr.Line, Reference: mr.Reference,
		Amount: mr.Amount, Currency: mr.Currency,
		RecipientName: mr.RecipientName, Email: mr.Email, Description: mr.Description,
		CardBIN: mr.Card.BIN(), CardLast4: mr.Card.Last4(),
	}
	if fp != nil {
		r.CardFingerprint = fp.Fingerprint(mr.Card)
	}
	return r
}

// Feed streams the manifest once more and hands every row that still has
// something to do to the engine: rows not started yet are started (the
// card number is kept in memory only until the payout is started), rows in
// flight are resolved with session/status first. It returns when every row
// was handed on, or ctx ended.
func (e *Engine) Feed(ctx context.Context, path string, opts manifest.Options, sha256 string) error {
	return e.FeedSource(ctx, FileSource(path), opts, sha256)
}

// FeedSource is Feed reading the manifest from src.
func (e *Engine) FeedSource(ctx context.Context, src Source, opts manifest.Options, sha256 string) error {
	stop := errors.New("stop")
	// Each row is matched to its ledger row by reference, and its card to
	// the recorded fingerprint, so this pass needs no duplicate check (and
	// no memory growing with the file for one): Reread.
	err := src.Reread(opts, sha256, func(mr manifest.Row) error {
		if ctx.Err() != nil || e.paused.Load() {
			return stop
		}
		row, err := e.store.RowByReference(e.wctx(), e.batchID, mr.Reference)
		if errors.Is(err, ledger.ErrNotFound) {
			return fmt.Errorf("line %d: reference %q is not in batch %s", mr.Line, mr.Reference, e.batchID)
		}
		if err != nil {
			return fmt.Errorf("read row %s: %w", mr.Reference, err)
		}
		return e.take(ctx, row, mr.Card, stop)
	})
	if errors.Is(err, stop) {
		return ctx.Err()
	}
	if errors.Is(err, manifest.ErrChanged) {
		return err
	}
	if err != nil {
		return fmt.Errorf("feed manifest: %w", err)
	}
	return nil
}

// take hands one row to the engine.
func (e *Engine) take(ctx context.Context, row ledger.Row, card manifest.PAN, stop error) error {
	switch row.State {
	case ledger.StateSucceeded, ledger.StateFailed, ledger.StateCancelled, ledger.StateMismatch,
		ledger.StateSkipped, ledger.StateReview:
		return nil
	case ledger.StateAwaitingConfirm, ledger.StateConfirmed, ledger.StateCancelling:
		e.schedule(row.ID, 0) // resume: ask Pike first
		return nil
	}
	e.setPAN(row.ID, card)
	id := row.ID
	// A row caught mid-flight by an earlier run is resolved before new rows start.
	urgent := row.State != ledger.StatePlanned
	if !e.submit(ctx, func() { e.advance(id, nil, fromStatus) }, urgent) {
		return stop
	}
	return nil
}

// Adopt hands the engine every row of its batch that is still open,
// without card numbers: rows in flight are resolved and driven to the end;
// rows not yet started stay as they are (only a run with the manifest can
// start them). Used by approve, reject and serve.
func (e *Engine) Adopt(ctx context.Context) error {
	for row, err := range e.store.Rows(e.wctx(), e.batchID, openStates...) {
		if err != nil {
			return fmt.Errorf("list open rows: %w", err)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		switch row.State {
		case ledger.StatePlanned, ledger.StateCreated:
			continue
		case ledger.StateAwaitingConfirm:
			if e.only != nil && !e.only[row.ID] {
				// Not this approval's: it stays held, unread.
				e.mu.Lock()
				e.held[row.ID] = true
				e.mu.Unlock()
				continue
			}
		}
		e.schedule(row.ID, 0)
	}
	return nil
}

// openStates are the states of rows that still have something to do.
var openStates = []ledger.State{
	ledger.StatePlanned, ledger.StateCreating, ledger.StateCreated, ledger.StateStarting,
	ledger.StateAwaitingConfirm, ledger.StateConfirming, ledger.StateCancelling,
	ledger.StateConfirmed, ledger.StateUnknown,
}

// Counts is the number of rows per state.
type Counts map[ledger.State]int

// Total is the number of rows counted.
func (c Counts) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// Open is the number of rows that still have something to do.
func (c Counts) Open() int {
	n := 0
	for _, s := range openStates {
		n += c[s]
	}
	return n
}

// Counts returns the number of rows of the engine's batch per state, as
// counted in the ledger.
func (e *Engine) Counts(ctx context.Context) (Counts, error) {
	return e.countsNow(ctx, true)
}

// Held is the number of rows held for approval (hold mode).
func (e *Engine) Held() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.held)
}

// Wait waits until no row of the batch has anything left to do now (rows
// held for approval count as done), ctx ends, or wait passes. progress, if
// set, is called about every second with the current counts.
func (e *Engine) Wait(ctx context.Context, wait time.Duration, progress func(Counts)) (Counts, error) {
	var watch func(Progress)
	if progress != nil {
		watch = func(p Progress) { progress(p.Counts) }
	}
	return e.WaitProgress(ctx, wait, watch)
}

// WaitProgress is Wait calling progress, if set, about every second with
// the engine's Progress: the counts and what the open rows wait for.
func (e *Engine) WaitProgress(ctx context.Context, wait time.Duration, progress func(Progress)) (Counts, error) {
	var deadline <-chan time.Time
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	var lastProgress time.Time
	for {
		c, err := e.countsNow(e.wctx(), false)
		if ledger.IsConnectionError(err) {
			c, err = nil, nil // the database is away: wait for it
			if !sleepCtx(ctx, 200*time.Millisecond) {
				return c, ctx.Err()
			}
			continue
		}
		if err != nil {
			return c, err
		}
		if err := e.Err(); err != nil {
			return c, err
		}
		if progress != nil && time.Since(lastProgress) >= time.Second {
			progress(e.progress(c))
			lastProgress = time.Now()
		}
		if c.Open()-e.Held()-e.stuck(c) <= 0 {
			// Confirm with the ledger itself before declaring the batch done.
			if c, err = e.countsNow(e.wctx(), true); ledger.IsConnectionError(err) {
				continue
			} else if err != nil {
				return c, err
			}
			if c.Open()-e.Held()-e.stuck(c) <= 0 {
				if progress != nil {
					progress(e.progress(c))
				}
				return c, nil
			}
		}
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-deadline:
			return c, nil
		case <-tick.C:
		}
	}
}

// stuck counts rows this engine cannot move at all: not yet started and
// without a card number (approve, reject and serve never start rows).
func (e *Engine) stuck(c Counts) int {
	e.mu.Lock()
	n := len(e.pans)
	e.mu.Unlock()
	if n > 0 {
		return 0
	}
	return c[ledger.StatePlanned] + c[ledger.StateCreated]
}

// Skip is why a run would not start a manifest row as a new payout.
type Skip struct {
	// Row is what stops it: the row's own row in the batch, already past
	// planned (in flight or finished), or, when PaidElsewhere, the row of
	// another batch that paid the same reference.
	Row           ledger.Row
	PaidElsewhere bool
}

// WouldSkip returns why a run of batch batchID with cfg would not start the
// manifest row with reference, or nil if it would pay it, by the engine's
// own rules: rows past planned are resumed, not started (Feed), and a
// reference already paid elsewhere is skipped as already_paid (begin). It
// writes nothing, for a dry run. A reference not in the batch yet would be
// paid; any other ledger error is returned, never taken for "would pay".
func WouldSkip(ctx context.Context, store Store, batchID, reference string, cfg Config) (*Skip, error) {
	row, err := store.RowByReference(ctx, batchID, reference)
	switch {
	case err == nil && row.State != ledger.StatePlanned:
		return &Skip{Row: row}, nil
	case err != nil && !errors.Is(err, ledger.ErrNotFound):
		return nil, fmt.Errorf("read row %s: %w", reference, err)
	}
	other, found, err := paidElsewhere(ctx, store, reference, batchID, cfg)
	if err != nil {
		return nil, err
	}
	if found {
		return &Skip{Row: other, PaidElsewhere: true}, nil
	}
	return nil, nil
}

// paidElsewhere returns the row of another batch that already paid
// reference (in any spelling), unless cfg.AllowRepeatReference: the engine
// skips such a row as already_paid instead of paying it twice.
func paidElsewhere(ctx context.Context, store Store, reference, batchID string, cfg Config) (ledger.Row, bool, error) {
	if cfg.AllowRepeatReference {
		return ledger.Row{}, false, nil
	}
	other, found, err := store.SucceededElsewhere(ctx, reference, batchID)
	if err != nil {
		return ledger.Row{}, false, fmt.Errorf("check reference %s: %w", reference, err)
	}
	return other, found, nil
}

// sleepCtx sleeps d, or less if ctx ends; it reports whether ctx is alive.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}
