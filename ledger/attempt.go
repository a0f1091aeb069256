package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// Attempt is one try at paying a row: one Pike session.
type Attempt struct {
	ID                 int64
	RowID              int64
	N                  int // 1, 2, ... within the row
	SessionID          string
	PayoutID           string
	Keys               map[string]string // method → idempotency key, reused on every retry
	State              State             // the row's state while live; its last state once superseded
	FailureCode        string
	FailureDescription string
	CreatedAt          time.Time
	UpdatedAt          time.Time
}

const attemptColumns = `a.id, a.row_id, a.n, coalesce(a.session_id, ''), coalesce(a.payout_id, ''), a.keys, a.state,
	a.failure_code, a.failure_description, a.created_at, a.updated_at`

func scanAttempt(s scanner, extra ...any) (Attempt, error) {
	var a Attempt
	var keys string
	var created, updated sql.NullString
	dest := append([]any{&a.ID, &a.RowID, &a.N, &a.SessionID, &a.PayoutID, &keys, &a.State,
		&a.FailureCode, &a.FailureDescription, &created, &updated}, extra...)
	if err := s.Scan(dest...); err != nil {
		return Attempt{}, err
	}
	if err := json.Unmarshal([]byte(keys), &a.Keys); err != nil {
		return Attempt{}, fmt.Errorf("attempt %d keys: %w", a.ID, err)
	}
	a.CreatedAt, a.UpdatedAt = parseTime(created), parseTime(updated)
	return a, nil
}

// AttemptBySession returns the attempt with the Pike session id and its row.
// Returns ErrNotFound if no attempt has that session.
func (db *DB) AttemptBySession(ctx context.Context, sessionID string) (Attempt, Row, error) {
	if sessionID == "" {
		return Attempt{}, Row{}, fmt.Errorf("session %q: %w", sessionID, ErrNotFound)
	}
	a, err := scanAttempt(db.rdb.QueryRowContext(ctx, `SELECT `+attemptColumns+` FROM attempts a WHERE a.session_id = ?`, sessionID))
	if errors.Is(err, sql.ErrNoRows) {
		err = ErrNotFound
	}
	if err != nil {
		return Attempt{}, Row{}, fmt.Errorf("session %s: %w", sessionID, err)
	}
	r, err := findRow(ctx, db.rdb, a.RowID)
	if err != nil {
		return Attempt{}, Row{}, fmt.Errorf("session %s: row %d: %w", sessionID, a.RowID, err)
	}
	return a, r, nil
}

// Attempts returns the attempts of a row, first to last.
func (db *DB) Attempts(ctx context.Context, rowID int64) ([]Attempt, error) {
	rs, err := db.rdb.QueryContext(ctx, `SELECT `+attemptColumns+` FROM attempts a WHERE a.row_id = ? ORDER BY a.n`, rowID)
	if err != nil {
		return nil, fmt.Errorf("attempts of row %d: %w", rowID, err)
	}
	defer rs.Close()
	var out []Attempt
	for rs.Next() {
		a, err := scanAttempt(rs)
		if err != nil {
			return nil, fmt.Errorf("attempts of row %d: %w", rowID, err)
		}
		out = append(out, a)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("attempts of row %d: %w", rowID, err)
	}
	return out, nil
}

// SetAttemptOutcome records what Pike later said about a superseded
// attempt (one that is no longer the row's live attempt) and writes an
// event. It never changes the row. Group-committed. Returns ErrNotFound for
// an unknown attempt, ErrConflict for the live attempt (use Apply), and
// ErrIllegalTransition if the attempt already succeeded and state differs.
func (db *DB) SetAttemptOutcome(ctx context.Context, attemptID int64, state State, f Failure, reason, detail string) error {
	if !state.Valid() {
		return fmt.Errorf("attempt %d outcome: unknown state %q: %w", attemptID, state, ErrIllegalTransition)
	}
	if reason == "" {
		return fmt.Errorf("attempt %d outcome: empty reason: %w", attemptID, ErrInvalidChange)
	}
	j := newJob(func(ctx context.Context, tx dbtx) error {
		var n, live int
		var rowID int64
		var batchID string
		var old State
		err := tx.QueryRowContext(ctx, `SELECT a.n, a.row_id, a.state, r.attempt, r.batch_id
			FROM attempts a JOIN rows r ON r.id = a.row_id WHERE a.id = ?`, attemptID).Scan(&n, &rowID, &old, &live, &batchID)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if n == live {
			return fmt.Errorf("attempt %d is the live attempt of row %d, change it with Apply: %w", n, rowID, ErrConflict)
		}
		if old == StateSucceeded && state != StateSucceeded {
			return fmt.Errorf("attempt %d of row %d succeeded: %w", n, rowID, ErrIllegalTransition)
		}
		now := db.now()
		if _, err := tx.ExecContext(ctx, `UPDATE attempts SET state = ?, failure_code = ?, failure_description = ?, updated_at = ? WHERE id = ?`,
			string(state), f.Code, ScrubPAN(f.Description), fmtTime(now), attemptID); err != nil {
			return err
		}
		return insertEvent(ctx, tx, Event{BatchID: batchID, RowID: rowID, Attempt: n, From: old, To: state,
			Reason: reason, Detail: detail, At: now})
	})
	if err := db.w.do(ctx, j); err != nil {
		return fmt.Errorf("attempt %d outcome: %w", attemptID, err)
	}
	return nil
}
