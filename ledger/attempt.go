package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/payouts/payouts/internal/pan"
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

// SetAttemptOutcome records what Pike later said about an attempt the
// row's state machine no longer follows: a superseded attempt, or the live
// attempt of a row that ended failed, cancelled, mismatch or skipped (or
// sits in review), and writes an event. A success also makes the row hold
// its reference's risk key again, for good (a paid row never gives it up);
// otherwise it never changes the row. Group-committed. Returns ErrNotFound
// for an unknown attempt, ErrConflict for the live attempt of a row still
// in flight (use Apply), and ErrIllegalTransition if the attempt already
// succeeded and state differs.
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
		var old, rowState State
		err := tx.QueryRowContext(ctx, `SELECT a.n, a.row_id, a.state, r.attempt, r.batch_id, r.state
			FROM attempts a JOIN rows r ON r.id = a.row_id WHERE a.id = ?`+db.d.forUpdate, attemptID).Scan(&n, &rowID, &old, &live, &batchID, &rowState)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if n == live && !(rowState.Final() && rowState != StateSucceeded) && rowState != StateReview {
			return fmt.Errorf("attempt %d is the live attempt of row %d (%s), change it with Apply: %w", n, rowID, rowState, ErrConflict)
		}
		if old == StateSucceeded && state != StateSucceeded {
			return fmt.Errorf("attempt %d of row %d succeeded: %w", n, rowID, ErrIllegalTransition)
		}
		now := db.now()
		if _, err := tx.ExecContext(ctx, `UPDATE attempts SET state = ?, failure_code = ?, failure_description = ?, updated_at = ? WHERE id = ?`,
			string(state), f.Code, pan.Scrub(f.Description), fmtTime(now), attemptID); err != nil {
			return err
		}
		if state == StateSucceeded {
			note, err := retakeRiskKey(ctx, tx, db.d, rowID)
			if err != nil {
				return err
			}
			detail = strings.TrimPrefix(detail+"; "+note, "; ")
		}
		return insertEvent(ctx, tx, Event{BatchID: batchID, RowID: rowID, Attempt: n, From: old, To: state,
			Reason: reason, Detail: detail, At: now})
	})
	if err := db.w.do(ctx, j); err != nil {
		return fmt.Errorf("attempt %d outcome: %w", attemptID, err)
	}
	return nil
}

// retakeRiskKey makes a paid row hold its reference's risk key again, so
// that no row of any batch can pay the reference while it holds it, which
// is for ever. If another row holds the key meanwhile (a second payment in
// flight or made), the note says so and the key stays where it is.
func retakeRiskKey(ctx context.Context, tx dbtx, d dialect, rowID int64) (string, error) {
	r, err := findRowLocked(ctx, tx, d, rowID)
	if err != nil {
		return "", err
	}
	if r.RiskKey != "" {
		return "", nil
	}
	key := riskKeyOf(r)
	err = d.guard(ctx, tx, func() error {
		_, err := tx.ExecContext(ctx, `UPDATE rows SET risk_key = ? WHERE id = ? AND risk_key IS NULL`, key, rowID)
		return err
	})
	if isUnique(err) {
		var holder string
		_ = tx.QueryRowContext(ctx, `SELECT batch_id || ' line ' || line FROM rows WHERE risk_key = ?`, key).Scan(&holder)
		return fmt.Sprintf("the reference's risk key is held by %s: a second payment may be in flight or made", holder), nil
	}
	if err != nil {
		return "", fmt.Errorf("retake risk key of row %d: %w", rowID, err)
	}
	return "the row holds its reference's risk key again", nil
}
