package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/payouts/payouts/internal/pan"
)

// Event is one entry of the append-only audit log: a state transition or a
// notable fact.
type Event struct {
	ID      int64
	BatchID string
	RowID   int64 // 0: about the whole batch
	Attempt int   // the attempt it concerns, 0 if none
	From    State // "" when not a transition
	To      State
	Reason  string // short machine word
	Detail  string // human text, PAN-scrubbed
	At      time.Time
}

// AddEvent appends e to the audit log (group-committed: durable when it
// returns). Detail is PAN-scrubbed; At defaults to now. Returns ErrNotFound
// if the batch or the row (in that batch) does not exist.
func (db *DB) AddEvent(ctx context.Context, e Event) error {
	if e.Reason == "" {
		return fmt.Errorf("add event: empty reason: %w", ErrInvalidChange)
	}
	if (e.From != "" && !e.From.Valid()) || (e.To != "" && !e.To.Valid()) {
		return fmt.Errorf("add event: unknown state: %w", ErrInvalidChange)
	}
	j := newJob(func(ctx context.Context, tx dbtx) error {
		if e.At.IsZero() {
			e.At = db.now()
		}
		if _, err := findBatch(ctx, tx, e.BatchID); err != nil {
			return fmt.Errorf("batch %s: %w", e.BatchID, err)
		}
		if e.RowID != 0 {
			var batch string
			err := tx.QueryRowContext(ctx, `SELECT batch_id FROM rows WHERE id = ?`, e.RowID).Scan(&batch)
			if errors.Is(err, sql.ErrNoRows) || (err == nil && batch != e.BatchID) {
				return fmt.Errorf("row %d of batch %s: %w", e.RowID, e.BatchID, ErrNotFound)
			}
			if err != nil {
				return err
			}
		}
		return insertEvent(ctx, tx, e)
	})
	if err := db.w.do(ctx, j); err != nil {
		return fmt.Errorf("add event: %w", err)
	}
	return nil
}

// insertEvent appends e inside tx, scrubbing its text.
func insertEvent(ctx context.Context, tx dbtx, e Event) error {
	var row any
	if e.RowID != 0 {
		row = e.RowID
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO events (batch_id, row_id, attempt, from_state, to_state, reason, detail, at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		e.BatchID, row, e.Attempt, string(e.From), string(e.To), pan.Scrub(e.Reason), pan.Scrub(e.Detail), fmtTime(e.At))
	if err != nil {
		return fmt.Errorf("insert event: %w", err)
	}
	return nil
}

// Reasons of the batch-level events that record a person's decision about
// held payouts (payouts approve / reject, or the console). Their Detail
// names the person.
const (
	ReasonApprove = "approve"
	ReasonReject  = "reject"
)

// Events returns the audit log of a batch (rowID 0) or of one of its rows,
// oldest first.
func (db *DB) Events(ctx context.Context, batchID string, rowID int64) ([]Event, error) {
	if rowID != 0 {
		return db.queryEvents(ctx, `WHERE row_id = ? AND batch_id = ?`, rowID, batchID)
	}
	return db.queryEvents(ctx, `WHERE batch_id = ?`, batchID)
}

// Decisions returns the batch-level approve and reject events of a batch,
// oldest first: who decided about its held payouts, and when.
func (db *DB) Decisions(ctx context.Context, batchID string) ([]Event, error) {
	return db.queryEvents(ctx, `WHERE batch_id = ? AND row_id IS NULL AND reason IN (?, ?)`, batchID, ReasonApprove, ReasonReject)
}

// queryEvents returns the events a WHERE clause selects, oldest first.
func (db *DB) queryEvents(ctx context.Context, where string, args ...any) ([]Event, error) {
	rs, err := db.rdb.QueryContext(ctx, `SELECT id, batch_id, coalesce(row_id, 0), attempt, from_state, to_state, reason, detail, at
		FROM events `+where+` ORDER BY id`, args...)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	defer rs.Close()
	var out []Event
	for rs.Next() {
		var e Event
		var at sql.NullString
		if err := rs.Scan(&e.ID, &e.BatchID, &e.RowID, &e.Attempt, &e.From, &e.To, &e.Reason, &e.Detail, &at); err != nil {
			return nil, fmt.Errorf("events: %w", err)
		}
		e.At = parseTime(at)
		out = append(out, e)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return out, nil
}
