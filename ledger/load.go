package ledger

import (
	"context"
	"errors"
	"fmt"
	"iter"
)

// defaultLoadChunk is how many rows LoadRows writes per transaction: a few
// milliseconds of write lock, however large the manifest.
const defaultLoadChunk = 2000

// LoadRows loads the rows of a batch from its manifest in transactions of a
// few thousand rows, so that the ledger's write lock is never held for long:
// a runner paying another batch, or `payouts serve` storing webhooks, keeps
// writing meanwhile. The sequence is read outside every transaction.
//
// Loading is resumable. Rows already in the batch are kept; a load that
// stops midway (a crash, an error yielded by the sequence, ctx) leaves the
// batch not loaded, holding the rows of the chunks committed so far (none,
// for a manifest that fits in one chunk: the rows read since the last
// chunk are only checked, so that an invalid or repeated row is reported
// before the sequence's error), and
// the next load of the same manifest completes it. Until then none of the
// batch's rows may be started (Batch.LoadedAt is zero). A row left by an
// earlier load that differs from the sequence's row of the same reference
// (the manifest changed while that load read it) is replaced, with a
// "reloaded" event, if it is still planned and was never attempted;
// otherwise the error wraps ErrConflict.
//
// When the sequence ends without error and the batch then holds exactly
// want rows, the batch is marked loaded (a "loaded" event); more rows than
// that (rows of a changed manifest that its final version lacks) is an
// error wrapping ErrConflict, and the batch stays not loaded. A batch that
// is already loaded is left as it is and the sequence is not read.
//
// Returns how many rows were new, or an error wrapping ErrNotFound if the
// batch does not exist, ErrInvalidChange for an invalid or repeated row.
func (db *DB) LoadRows(ctx context.Context, batchID string, rows iter.Seq2[Row, error], want int) (n int, err error) {
	defer func() {
		if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			// Cut short by the caller (SIGINT): say so, rather than what
			// the cancelled statement said ("statement is closed"). The
			// chunk in flight was rolled back; the next run completes it.
			err = fmt.Errorf("load rows of batch %s: %w (%v)", batchID, ctx.Err(), err)
		}
	}()
	b, err := findBatch(ctx, db.rdb, batchID)
	if err != nil {
		return 0, fmt.Errorf("load rows of batch %s: %w", batchID, err)
	}
	if !b.LoadedAt.IsZero() {
		return 0, nil
	}
	lastID, err := maxRowID(ctx, db.rdb)
	if err != nil {
		return 0, fmt.Errorf("load rows of batch %s: %w", batchID, err)
	}
	buf := make([]Row, 0, db.loadChunk)
	flush := func() error {
		added, err := db.loadRows(ctx, batchID, lastID, buf, true)
		n += added
		buf = buf[:0]
		return err
	}
	for r, err := range rows {
		if err != nil {
			// The rows read since the last chunk are not written, but an
			// invalid or repeated one among them is the error to report.
			if _, rerr := db.loadRows(ctx, batchID, lastID, buf, false); rerr != nil {
				return n, rerr
			}
			return n, fmt.Errorf("load rows of batch %s: %w", batchID, err)
		}
		if buf = append(buf, r); len(buf) == db.loadChunk {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := flush(); err != nil {
		return n, err
	}
	if err := db.sealBatch(ctx, batchID, want); err != nil {
		return n, err
	}
	return n, nil
}

// loadRows writes one chunk of rows in one transaction, or only checks
// them (and writes nothing) if commit is false; see LoadRows.
func (db *DB) loadRows(ctx context.Context, batchID string, lastID int64, rows []Row, commit bool) (int, error) {
	if len(rows) == 0 {
		return 0, nil
	}
	tx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("load rows of batch %s: %w", batchID, err)
	}
	defer tx.Rollback()
	ins, err := db.newRowInserter(ctx, tx, batchID, lastID)
	if err != nil {
		return 0, fmt.Errorf("load rows of batch %s: %w", batchID, err)
	}
	defer ins.close()
	n := 0
	for _, r := range rows {
		added, existing, err := ins.insert(ctx, r)
		if err == nil && !added {
			err = ins.reconcile(ctx, existing, r)
		}
		if err != nil {
			return 0, fmt.Errorf("load rows of batch %s: %w", batchID, err)
		}
		if added {
			n++
		}
	}
	if !commit {
		return 0, nil
	}
	if err := db.commit(tx); err != nil {
		return 0, fmt.Errorf("load rows of batch %s: %w", batchID, err)
	}
	return n, nil
}

// reconcile makes the existing row id of a batch being loaded say what r
// says, if an earlier load recorded it differently.
func (ri *rowInserter) reconcile(ctx context.Context, id int64, r Row) error {
	r, err := cleanRow(r)
	if err != nil {
		return fmt.Errorf("line %d (%s): %w", r.Line, r.Reference, err)
	}
	var old Row
	var attempt int
	err = ri.tx.QueryRowContext(ctx, `SELECT line, amount, currency, recipient_name, email, description,
		card_bin, card_last4, card_fingerprint, state, attempt FROM rows WHERE id = ?`, id).
		Scan(&old.Line, &old.Amount, &old.Currency, &old.RecipientName, &old.Email, &old.Description,
			&old.CardBIN, &old.CardLast4, &old.CardFingerprint, &old.State, &attempt)
	if err != nil {
		return fmt.Errorf("line %d (%s): %w", r.Line, r.Reference, err)
	}
	if old.Line == r.Line && old.Amount == r.Amount && old.Currency == r.Currency && old.RecipientName == r.RecipientName &&
		old.Email == r.Email && old.Description == r.Description && old.CardBIN == r.CardBIN &&
		old.CardLast4 == r.CardLast4 && old.CardFingerprint == r.CardFingerprint {
		return nil
	}
	if old.State != StatePlanned || attempt != 0 {
		return fmt.Errorf("line %d: reference %s is recorded differently and is already %s: %w", r.Line, r.Reference, old.State, ErrConflict)
	}
	if _, err := ri.tx.ExecContext(ctx, `UPDATE rows SET line = ?, amount = ?, currency = ?, recipient_name = ?, email = ?,
		description = ?, card_bin = ?, card_last4 = ?, card_fingerprint = ?, updated_at = ? WHERE id = ?`,
		r.Line, r.Amount, r.Currency, r.RecipientName, r.Email, r.Description, r.CardBIN, r.CardLast4,
		r.CardFingerprint, ri.now, id); err != nil {
		return fmt.Errorf("line %d (%s): %w", r.Line, r.Reference, err)
	}
	detail := fmt.Sprintf("line %d, %d %s: an earlier load read another version of the manifest (line %d, %d %s)",
		r.Line, r.Amount, r.Currency, old.Line, old.Amount, old.Currency)
	return insertEvent(ctx, ri.tx, Event{BatchID: ri.batchID, RowID: id, From: StatePlanned, To: StatePlanned,
		Reason: "reloaded", Detail: detail, At: ri.at})
}

// sealBatch marks a batch loaded once it holds exactly want rows.
func (db *DB) sealBatch(ctx context.Context, batchID string, want int) error {
	tx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("seal batch %s: %w", batchID, err)
	}
	defer tx.Rollback()
	var have int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM rows WHERE batch_id = ?`, batchID).Scan(&have); err != nil {
		return fmt.Errorf("seal batch %s: %w", batchID, err)
	}
	if have != want {
		return fmt.Errorf("batch %s holds %d rows, its manifest %d — rows were loaded from a version of the manifest that changed while it was read; run it under another --batch id: %w",
			batchID, have, want, ErrConflict)
	}
	now := db.now()
	if _, err := tx.ExecContext(ctx, `UPDATE batches SET loaded_at = ? WHERE id = ? AND loaded_at IS NULL`, fmtTime(now), batchID); err != nil {
		return fmt.Errorf("seal batch %s: %w", batchID, err)
	}
	if err := insertEvent(ctx, tx, Event{BatchID: batchID, Reason: "loaded", Detail: fmt.Sprintf("%d rows", have), At: now}); err != nil {
		return fmt.Errorf("seal batch %s: %w", batchID, err)
	}
	if err := db.commit(tx); err != nil {
		return fmt.Errorf("seal batch %s: %w", batchID, err)
	}
	return nil
}
