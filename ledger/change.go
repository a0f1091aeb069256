package ledger

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Change moves one row from From to To (compare-and-set) and records the
// event, atomically. See Apply.
type Change struct {
	RowID int64
	// From is the state the row must be in; otherwise Apply fails with a
	// *ConflictError and writes nothing. To may equal From for a non-final
	// state: a note (to record a payout id, say) that still writes an event.
	From, To State
	// Reason is a short machine word: "create_ok", "webhook_ready_to_confirm",
	// "status", "rerun", ...
	Reason string
	// Detail is human text; it is PAN-scrubbed before it is stored.
	Detail string
	// NewAttempt, when non-nil, opens attempt Row.Attempt+1 with these
	// idempotency keys (method → key) and makes it live. Required when
	// entering creating from planned, refused anywhere else.
	NewAttempt map[string]string
	// SessionID sets the live attempt's Pike session id. It is unique over
	// the ledger (ErrDuplicateSession) and, once set, never changes
	// (ErrConflict).
	SessionID string
	// PayoutID sets the live attempt's payout id; once set it never changes.
	PayoutID string
	// Failure sets the row's and the live attempt's failure code and
	// description; a zero Failure clears them. Nil leaves them alone.
	Failure *Failure
	// RiskKey is the risk key taken when entering creating; "" means the
	// row's ReferenceKey, so that two spellings of one reference can never
	// both be in flight or paid. An operator override appends "#" and a
	// suffix of its own; any other key is ErrInvalidChange.
	RiskKey string
	// Rerun must be set to move a failed, cancelled, mismatch or skipped row
	// back to planned, and only then. A row any of whose attempts succeeded
	// is never planned again (ErrPaid).
	Rerun bool
	// Operator names the person whose decision takes a row out of review;
	// required there (see NeedsOperator) and refused anywhere else.
	Operator string
	// Amend replaces the row's payout details; allowed only with
	// From == To == planned or with a rerun. The event records old → new.
	Amend *Amendment
	// Claim fences the change (PostgreSQL, several runners on one batch):
	// it is written only if this owner holds an unexpired claim on the row
	// (ClaimRows), else ErrClaimLost. Without it, a row another runner
	// holds a claim on is refused with ErrClaimed. See claim.go.
	Claim string
}

// Failure is a failure code and description, from Pike or from the runner.
type Failure struct{ Code, Description string }

// Amendment holds the payout details a rerun with a corrected manifest may
// replace. It never holds a card number: only BIN, last4 and fingerprint.
type Amendment struct {
	Amount          int64
	Currency        string
	RecipientName   string
	Email           string
	Description     string
	CardBIN         string
	CardLast4       string
	CardFingerprint string
}

// Apply applies c and returns the row after it. It returns only once the
// change and its event are durable (group commit). Errors: ErrNotFound,
// *ConflictError (ErrConflict), ErrIllegalTransition, ErrInvalidChange,
// *ReferenceBusyError (ErrReferenceBusy), ErrDuplicateSession, ErrClosed;
// in every error case nothing was written. If ctx ends before the writer
// took the change, nothing is written and ctx's error is returned.
func (db *DB) Apply(ctx context.Context, c Change) (Row, error) {
	if err := checkChange(c); err != nil {
		return Row{}, fmt.Errorf("row %d %s → %s: %w", c.RowID, c.From, c.To, err)
	}
	var r Row
	j := newJob(func(ctx context.Context, tx dbtx) (err error) {
		r, err = db.applyTx(ctx, tx, c)
		return err
	})
	if err := db.w.do(ctx, j); err != nil {
		return Row{}, fmt.Errorf("row %d %s → %s: %w", c.RowID, c.From, c.To, err)
	}
	return r, nil
}

// ApplyAll applies the changes in order, each on its own (one failing does
// not stop the others), and returns when all are durable or failed. rows[i]
// and errs[i] are the outcome of cs[i], as for Apply.
func (db *DB) ApplyAll(ctx context.Context, cs []Change) ([]Row, []error) {
	rows := make([]Row, len(cs))
	errs := make([]error, len(cs))
	jobs := make([]*job, 0, len(cs))
	idx := make([]int, 0, len(cs))
	for i, c := range cs {
		if err := checkChange(c); err != nil {
			errs[i] = fmt.Errorf("row %d %s → %s: %w", c.RowID, c.From, c.To, err)
			continue
		}
		jobs = append(jobs, newJob(func(ctx context.Context, tx dbtx) error {
			r, err := db.applyTx(ctx, tx, c)
			rows[i] = r
			return err
		}))
		idx = append(idx, i)
	}
	if len(jobs) == 0 {
		return rows, errs
	}
	_ = db.w.do(ctx, jobs...)
	for k, j := range jobs {
		i := idx[k]
		if j.err != nil {
			rows[i] = Row{}
			errs[i] = fmt.Errorf("row %d %s → %s: %w", cs[i].RowID, cs[i].From, cs[i].To, j.err)
		}
	}
	return rows, errs
}

// checkChange validates c against the state machine without the database.
func checkChange(c Change) error {
	if !c.From.Valid() || !c.To.Valid() {
		return fmt.Errorf("unknown state: %w", ErrIllegalTransition)
	}
	if c.From == c.To {
		if c.From.Final() {
			return fmt.Errorf("%s is final: %w", c.From, ErrIllegalTransition)
		}
	} else if !CanTransition(c.From, c.To) {
		return ErrIllegalTransition
	}
	rerun := NeedsRerun(c.From, c.To)
	if rerun && !c.Rerun {
		return fmt.Errorf("leaving %s needs an explicit rerun: %w", c.From, ErrIllegalTransition)
	}
	if c.Rerun && !rerun {
		return fmt.Errorf("rerun is only for failed, cancelled, mismatch or skipped → planned: %w", ErrInvalidChange)
	}
	operator := NeedsOperator(c.From, c.To)
	if operator && strings.TrimSpace(c.Operator) == "" {
		return fmt.Errorf("leaving review needs an operator's decision: %w", ErrIllegalTransition)
	}
	if !operator && c.Operator != "" {
		return fmt.Errorf("an operator decision is only for leaving review: %w", ErrInvalidChange)
	}
	// A new attempt starts from planned; unknown → creating resends the
	// live attempt's init with its own keys.
	entersCreating := c.To == StateCreating && c.From == StatePlanned
	if entersCreating && c.NewAttempt == nil {
		return fmt.Errorf("entering creating from planned needs NewAttempt: %w", ErrInvalidChange)
	}
	if !entersCreating && c.NewAttempt != nil {
		return fmt.Errorf("NewAttempt only when entering creating from planned: %w", ErrInvalidChange)
	}
	for m, k := range c.NewAttempt {
		if m == "" || k == "" {
			return fmt.Errorf("empty idempotency key method or value: %w", ErrInvalidChange)
		}
	}
	if !entersCreating && c.RiskKey != "" {
		return fmt.Errorf("RiskKey only when entering creating: %w", ErrInvalidChange)
	}
	if c.Amend != nil && !rerun && !(c.From == StatePlanned && c.To == StatePlanned) {
		return fmt.Errorf("amend only a planned row or on a rerun: %w", ErrInvalidChange)
	}
	if c.Reason == "" {
		return fmt.Errorf("empty reason: %w", ErrInvalidChange)
	}
	return nil
}

// applyTx does the work of one change inside the writer's transaction.
func (db *DB) applyTx(ctx context.Context, tx dbtx, c Change) (Row, error) {
	now := db.now()
	r, err := findRowLocked(ctx, tx, db.d, c.RowID)
	if err != nil {
		return Row{}, err
	}
	if err := db.checkClaim(ctx, tx, r.ID, c.Claim); err != nil {
		return Row{}, err
	}
	if r.State != c.From {
		return Row{}, &ConflictError{RowID: r.ID, Expected: c.From, Current: r.State}
	}
	var notes []string
	n := r.Attempt
	if c.NewAttempt != nil {
		paid, err := rowPaid(ctx, tx, r.ID)
		if err != nil {
			return Row{}, err
		}
		if paid {
			return Row{}, fmt.Errorf("row %d (%s): %w", r.ID, r.Reference, ErrPaid)
		}
		n++
		keys, err := json.Marshal(c.NewAttempt)
		if err != nil {
			return Row{}, fmt.Errorf("attempt keys: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO attempts (row_id, n, keys, state, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
			r.ID, n, string(keys), string(c.To), fmtTime(now), fmtTime(now)); err != nil {
			return Row{}, fmt.Errorf("open attempt %d: %w", n, err)
		}
		notes = append(notes, fmt.Sprintf("attempt %d opened", n))
	}
	if n == 0 && (c.SessionID != "" || c.PayoutID != "") {
		return Row{}, fmt.Errorf("row %d has no attempt to hold a session or payout id: %w", r.ID, ErrInvalidChange)
	}
	if c.Amend != nil {
		note, err := amendRow(ctx, tx, r, *c.Amend)
		if err != nil {
			return Row{}, err
		}
		if note != "" {
			notes = append(notes, note)
		}
	}

	// Risk key: taken when entering creating, dropped when no money can
	// move, kept otherwise, and kept for good once any attempt of the row
	// succeeded: the reference is paid, and stays so in every batch.
	riskOp, riskKey := 0, ""
	if c.From != c.To {
		riskOp = riskKeyEffect(c.To)
		if riskOp > 0 && c.From != StatePlanned {
			riskOp = 0 // a resend keeps the key its attempt took
		}
		if riskOp < 0 {
			paid, err := rowPaid(ctx, tx, r.ID)
			if err != nil {
				return Row{}, err
			}
			if paid && c.To == StatePlanned {
				return Row{}, fmt.Errorf("row %d (%s): %w", r.ID, r.Reference, ErrPaid)
			}
			if paid {
				riskOp = 0
			}
		}
		if riskOp > 0 {
			riskKey = c.RiskKey
			if riskKey == "" {
				riskKey = riskKeyOf(r)
			} else if base := riskKeyOf(r); riskKey != base && !strings.HasPrefix(riskKey, base+"#") {
				return Row{}, fmt.Errorf("risk key %q is neither the reference key %q nor an override of it: %w", riskKey, base, ErrInvalidChange)
			}
		}
	}
	var failure Failure
	setFailure := c.Failure != nil || c.NewAttempt != nil
	if c.Failure != nil {
		failure = Failure{Code: c.Failure.Code, Description: ScrubPAN(c.Failure.Description)}
	}
	finished := nullTime(now)
	if !c.To.Final() {
		finished = nil
	}
	// risk_key is only named when it changes: assigning it at all costs an
	// index update on every transition.
	riskSet := ""
	args := []any{string(c.To), n, fmtTime(now), finished}
	if riskOp != 0 {
		riskSet = "risk_key = ?, "
		args = append(args, nullString(riskKey))
	}
	args = append(args, setFailure, failure.Code, setFailure, failure.Description, r.ID, string(c.From))
	update := func() error {
		res, err := tx.ExecContext(ctx, `UPDATE rows SET state = ?, attempt = ?, updated_at = ?, finished_at = ?, `+riskSet+`
		failure_code = CASE WHEN ? THEN ? ELSE failure_code END,
		failure_description = CASE WHEN ? THEN ? ELSE failure_description END
		WHERE id = ? AND state = ?`, args...)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			// The row is locked (or the write lock held) since it was
			// read: this cannot happen, and must not pass silently.
			return &ConflictError{RowID: r.ID, Expected: c.From, Current: "changed meanwhile"}
		}
		return nil
	}
	if riskOp > 0 {
		// Only taking a risk key can break a unique index here.
		err = db.d.guard(ctx, tx, update)
	} else {
		err = update()
	}
	if isUnique(err) {
		return Row{}, referenceBusy(ctx, tx, riskKey)
	}
	var ce *ConflictError
	if errors.As(err, &ce) {
		return Row{}, err
	}
	if err != nil {
		return Row{}, fmt.Errorf("update row: %w", err)
	}

	if n > 0 {
		if err := db.updateAttempt(ctx, tx, r.ID, n, c, failure, NeedsRerun(c.From, c.To)); err != nil {
			return Row{}, err
		}
	}
	detail := c.Detail
	if c.Operator != "" {
		notes = append(notes, "decided by "+c.Operator)
	}
	if len(notes) > 0 {
		detail = strings.Join(append([]string{c.Detail}, notes...), "; ")
		detail = strings.TrimPrefix(detail, "; ")
	}
	if err := insertEvent(ctx, tx, Event{BatchID: r.BatchID, RowID: r.ID, Attempt: n, From: c.From, To: c.To,
		Reason: c.Reason, Detail: detail, At: now}); err != nil {
		return Row{}, err
	}
	if c.Amend != nil {
		return findRow(ctx, tx, r.ID)
	}
	// The row after the change, without reading it back (the writer is the
	// hot path); TestApplyReturnsStoredRow holds this to what is stored.
	stamp := parseTime(sql.NullString{String: fmtTime(now), Valid: true}) // as stored
	r.State, r.UpdatedAt, r.FinishedAt = c.To, stamp, time.Time{}
	if c.To.Final() {
		r.FinishedAt = stamp
	}
	switch riskOp {
	case 1:
		r.RiskKey = riskKey
	case -1:
		r.RiskKey = ""
	}
	if setFailure {
		r.FailureCode, r.FailureDescription = failure.Code, failure.Description
	}
	if n != r.Attempt {
		r.Attempt, r.SessionID, r.PayoutID = n, "", ""
	}
	if c.SessionID != "" {
		r.SessionID = c.SessionID
	}
	if c.PayoutID != "" {
		r.PayoutID = c.PayoutID
	}
	return r, nil
}

// riskKeyOf is the risk key a row takes by default: its reference's key
// (refid.Key), so that two spellings of one reference can never both be in
// flight or paid.
func riskKeyOf(r Row) string { return r.ReferenceKey }

// rowPaid reports whether any attempt of the row succeeded.
func rowPaid(ctx context.Context, tx dbtx, rowID int64) (bool, error) {
	var paid bool
	if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM attempts WHERE row_id = ? AND state = 'succeeded')`, rowID).Scan(&paid); err != nil {
		return false, fmt.Errorf("attempts of row %d: %w", rowID, err)
	}
	return paid, nil
}

// updateAttempt mirrors the change onto the live attempt n. A rerun leaves
// the attempt in its final state: the attempt is over, the row starts anew.
func (db *DB) updateAttempt(ctx context.Context, tx dbtx, rowID int64, n int, c Change, f Failure, rerun bool) error {
	session, payout := c.SessionID, c.PayoutID
	if session != "" || payout != "" {
		var oldSession, oldPayout string
		if err := tx.QueryRowContext(ctx, `SELECT coalesce(session_id, ''), coalesce(payout_id, '') FROM attempts WHERE row_id = ? AND n = ?`,
			rowID, n).Scan(&oldSession, &oldPayout); err != nil {
			return fmt.Errorf("attempt %d of row %d: %w", n, rowID, err)
		}
		if session != "" && oldSession != "" && oldSession != session {
			return fmt.Errorf("attempt %d of row %d already has session %s, not %s: %w", n, rowID, oldSession, session, ErrConflict)
		}
		if payout != "" && oldPayout != "" && oldPayout != payout {
			return fmt.Errorf("attempt %d of row %d already has payout %s, not %s: %w", n, rowID, oldPayout, payout, ErrConflict)
		}
	}
	state := string(c.To)
	if rerun {
		state = string(c.From)
	}
	setFailure := c.Failure != nil
	// An attempt Pike reported paid stays succeeded whatever the row does.
	update := func() error {
		_, err := tx.ExecContext(ctx, `UPDATE attempts SET state = CASE WHEN state = 'succeeded' THEN state ELSE ? END, updated_at = ?,
		session_id = coalesce(?, session_id), payout_id = coalesce(?, payout_id),
		failure_code = CASE WHEN ? THEN ? ELSE failure_code END,
		failure_description = CASE WHEN ? THEN ? ELSE failure_description END
		WHERE row_id = ? AND n = ?`,
			state, fmtTime(db.now()), nullString(session), nullString(payout),
			setFailure, f.Code, setFailure, f.Description, rowID, n)
		return err
	}
	var err error
	if session != "" {
		// Only a session id can break a unique index here.
		err = db.d.guard(ctx, tx, update)
	} else {
		err = update()
	}
	if isUnique(err) {
		var otherRow int64
		var otherBatch string
		_ = tx.QueryRowContext(ctx, `SELECT a.row_id, r.batch_id FROM attempts a JOIN rows r ON r.id = a.row_id WHERE a.session_id = ?`,
			session).Scan(&otherRow, &otherBatch)
		return fmt.Errorf("session %s is already recorded for batch %s row %d: %w", session, otherBatch, otherRow, ErrDuplicateSession)
	}
	if err != nil {
		return fmt.Errorf("update attempt %d of row %d: %w", n, rowID, err)
	}
	return nil
}

// amendRow replaces a row's payout details and describes what changed.
func amendRow(ctx context.Context, tx dbtx, r Row, a Amendment) (string, error) {
	a, err := cleanAmendment(a)
	if err != nil {
		return "", err
	}
	var diff []string
	if a.Amount != r.Amount || a.Currency != r.Currency {
		diff = append(diff, fmt.Sprintf("amount %d %s → %d %s", r.Amount, r.Currency, a.Amount, a.Currency))
	}
	if a.RecipientName != r.RecipientName {
		diff = append(diff, fmt.Sprintf("recipient %q → %q", r.RecipientName, a.RecipientName))
	}
	if a.Email != r.Email {
		diff = append(diff, fmt.Sprintf("email %q → %q", r.Email, a.Email))
	}
	if a.Description != r.Description {
		diff = append(diff, fmt.Sprintf("description %q → %q", r.Description, a.Description))
	}
	if a.CardBIN != r.CardBIN || a.CardLast4 != r.CardLast4 || a.CardFingerprint != r.CardFingerprint {
		diff = append(diff, fmt.Sprintf("card %s…%s → %s…%s", r.CardBIN, r.CardLast4, a.CardBIN, a.CardLast4))
	}
	if len(diff) == 0 {
		return "", nil
	}
	if _, err := tx.ExecContext(ctx, `UPDATE rows SET amount = ?, currency = ?, recipient_name = ?, email = ?, description = ?,
		card_bin = ?, card_last4 = ?, card_fingerprint = ? WHERE id = ?`,
		a.Amount, a.Currency, a.RecipientName, a.Email, a.Description, a.CardBIN, a.CardLast4, a.CardFingerprint, r.ID); err != nil {
		return "", fmt.Errorf("amend row %d: %w", r.ID, err)
	}
	return "amended: " + strings.Join(diff, ", "), nil
}

// cleanAmendment checks payout details and scrubs their free text.
func cleanAmendment(a Amendment) (Amendment, error) {
	if a.Amount <= 0 {
		return a, fmt.Errorf("amount %d is not positive: %w", a.Amount, ErrInvalidChange)
	}
	a.Currency = strings.ToUpper(a.Currency)
	if len(a.Currency) != 3 || strings.Trim(a.Currency, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") != "" {
		return a, fmt.Errorf("currency %q is not an ISO 4217 code: %w", a.Currency, ErrInvalidChange)
	}
	if a.CardBIN != "" && (!allDigits(a.CardBIN) || len(a.CardBIN) < 6 || len(a.CardBIN) > 8) {
		return a, fmt.Errorf("card BIN is not 6–8 digits: %w", ErrInvalidChange)
	}
	if a.CardLast4 != "" && (!allDigits(a.CardLast4) || len(a.CardLast4) != 4) {
		return a, fmt.Errorf("card last4 is not 4 digits: %w", ErrInvalidChange)
	}
	// A fingerprint is a hex HMAC (64 characters for SHA-256); anything as
	// short as a card number is refused, so a PAN can never land here.
	if a.CardFingerprint != "" && (!isHex(a.CardFingerprint) || len(a.CardFingerprint) < 32) {
		return a, fmt.Errorf("card fingerprint is not a hex HMAC: %w", ErrInvalidChange)
	}
	a.RecipientName = ScrubPAN(a.RecipientName)
	a.Email = ScrubPAN(a.Email)
	a.Description = ScrubPAN(a.Description)
	return a, nil
}

// referenceBusy names the row that holds the risk key.
func referenceBusy(ctx context.Context, tx dbtx, key string) error {
	e := &ReferenceBusyError{RiskKey: key}
	err := tx.QueryRowContext(ctx, `SELECT batch_id, id, line, state FROM rows WHERE risk_key = ?`, key).
		Scan(&e.BatchID, &e.RowID, &e.Line, &e.State)
	if err != nil {
		return fmt.Errorf("reference %q: %w (holder: %w)", key, ErrReferenceBusy, err)
	}
	return e
}
