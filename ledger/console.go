package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ConsoleState is where a console batch stands in the four-eyes flow.
type ConsoleState string

// Console batch states: awaiting_approval → rejected | paying → done.
const (
	ConsoleAwaitingApproval ConsoleState = "awaiting_approval"
	ConsoleRejected         ConsoleState = "rejected"
	ConsolePaying           ConsoleState = "paying"
	ConsoleDone             ConsoleState = "done"
)

// What a console batch's pending request is.
const (
	PendingUpload = "upload"
	PendingRerun  = "rerun"
)

// ConsoleBatch is a ledger batch uploaded through the console: who
// uploaded it, who approved it, and where it stands. The batch's rows are
// the ledger's (Batch, Rows); the card numbers are not in the ledger at
// all (the console keeps the uploaded file encrypted beside it).
type ConsoleBatch struct {
	BatchID     string
	State       ConsoleState
	Pending     string // PendingUpload or PendingRerun
	FileName    string // as uploaded (PAN-free, checked by the caller)
	Options     string // manifest options as validated, JSON
	UploadedBy  string
	RequestedBy string // who asked for what is pending: the uploader, or a rerun's maker
	ApprovedBy  string
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

const consoleColumns = `batch_id, state, pending, file_name, options, uploaded_by, requested_by, approved_by, created_at, updated_at`

func scanConsole(s scanner) (ConsoleBatch, error) {
	var c ConsoleBatch
	var created, updated sql.NullString
	if err := s.Scan(&c.BatchID, &c.State, &c.Pending, &c.FileName, &c.Options, &c.UploadedBy, &c.RequestedBy, &c.ApprovedBy, &created, &updated); err != nil {
		return ConsoleBatch{}, err
	}
	c.CreatedAt, c.UpdatedAt = parseTime(created), parseTime(updated)
	return c, nil
}

// CreateConsoleBatch records c for an existing ledger batch, in state
// awaiting_approval, and audits the upload (e). Returns an error wrapping
// ErrExists if the batch already has a console record, ErrNotFound if the
// ledger batch does not exist.
func (db *DB) CreateConsoleBatch(ctx context.Context, c ConsoleBatch, e AuditEntry) error {
	if c.Options == "" {
		c.Options = "{}"
	}
	return db.userTx(ctx, "create console batch "+c.BatchID, func(tx *sql.Tx) error {
		if _, err := findBatch(ctx, tx, c.BatchID); err != nil {
			return err
		}
		if _, err := findConsole(ctx, tx, c.BatchID); err == nil {
			return ErrExists
		} else if !errors.Is(err, ErrNotFound) {
			return err
		}
		now := fmtTime(db.now())
		if _, err := tx.ExecContext(ctx, `INSERT INTO console_batches (`+consoleColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, ?)`,
			c.BatchID, string(ConsoleAwaitingApproval), PendingUpload, c.FileName, c.Options, c.UploadedBy, c.UploadedBy, now, now); err != nil {
			return err
		}
		e.BatchID = c.BatchID
		return db.insertAudit(ctx, tx, e)
	})
}

func findConsole(ctx context.Context, q querier, id string) (ConsoleBatch, error) {
	c, err := scanConsole(q.QueryRowContext(ctx, `SELECT `+consoleColumns+` FROM console_batches WHERE batch_id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return ConsoleBatch{}, ErrNotFound
	}
	return c, err
}

// ConsoleBatch returns the console record of batch id. Returns ErrNotFound
// if the batch was not uploaded through the console.
func (db *DB) ConsoleBatch(ctx context.Context, id string) (ConsoleBatch, error) {
	c, err := findConsole(ctx, db.rdb, id)
	if err != nil {
		return ConsoleBatch{}, fmt.Errorf("console batch %s: %w", id, err)
	}
	return c, nil
}

// ConsoleBatches returns every console record, by batch id.
func (db *DB) ConsoleBatches(ctx context.Context) (map[string]ConsoleBatch, error) {
	rs, err := db.rdb.QueryContext(ctx, `SELECT `+consoleColumns+` FROM console_batches`)
	if err != nil {
		return nil, fmt.Errorf("console batches: %w", err)
	}
	defer rs.Close()
	out := map[string]ConsoleBatch{}
	for rs.Next() {
		c, err := scanConsole(rs)
		if err != nil {
			return nil, fmt.Errorf("console batches: %w", err)
		}
		out[c.BatchID] = c
	}
	return out, rs.Err()
}

// ConsoleChange moves a console batch from one state to another.
type ConsoleChange struct {
	BatchID string
	From    ConsoleState
	To      ConsoleState
	// Approver, when set, is recorded as approved_by; it must be neither
	// the uploader nor the one who asked for the pending request
	// (ErrFourEyes).
	Approver string
	// Rerun, when set, makes this a rerun request by RequestedBy of a file
	// named FileName validated with Options; approved_by is cleared.
	Rerun       bool
	RequestedBy string
	FileName    string
	Options     string
	// Decision, when set, is also recorded as the batch's approve (To
	// paying) or reject event (see Decisions), in the same transaction.
	Decision string
}

// ChangeConsoleBatch applies ch if the batch is in state ch.From, and
// audits it (e), in one transaction. Returns an error wrapping ErrNotFound
// for an unknown batch, ErrConflict if it is in another state, ErrFourEyes
// if the approver asked for it herself.
func (db *DB) ChangeConsoleBatch(ctx context.Context, ch ConsoleChange, e AuditEntry) (ConsoleBatch, error) {
	var c ConsoleBatch
	err := db.userTx(ctx, "console batch "+ch.BatchID, func(tx *sql.Tx) error {
		var err error
		if c, err = findConsole(ctx, tx, ch.BatchID); err != nil {
			return err
		}
		if c.State != ch.From {
			return fmt.Errorf("%w: it is %s, not %s", ErrConflict, c.State, ch.From)
		}
		c.State = ch.To
		if ch.Rerun {
			c.Pending, c.RequestedBy, c.ApprovedBy, c.FileName, c.Options = PendingRerun, ch.RequestedBy, "", ch.FileName, ch.Options
		} else if ch.To == ConsoleDone && ch.From == ConsoleAwaitingApproval {
			c.Pending = PendingUpload // a rejected rerun: back to done
		}
		if ch.From == ConsoleAwaitingApproval && ch.To == ConsolePaying && ch.Approver == "" {
			return ErrFourEyes // an approval names its approver
		}
		if ch.Approver != "" {
			if ch.Approver == c.UploadedBy || ch.Approver == c.RequestedBy {
				return ErrFourEyes
			}
			c.ApprovedBy = ch.Approver
		}
		c.UpdatedAt = db.now()
		if _, err := tx.ExecContext(ctx, `UPDATE console_batches SET state = ?, pending = ?, requested_by = ?, approved_by = ?, file_name = ?, options = ?, updated_at = ? WHERE batch_id = ?`,
			string(c.State), c.Pending, c.RequestedBy, c.ApprovedBy, c.FileName, c.Options, fmtTime(c.UpdatedAt), c.BatchID); err != nil {
			return err
		}
		if ch.Decision != "" {
			reason := ReasonReject
			if ch.To == ConsolePaying {
				reason = ReasonApprove
			}
			if err := insertEvent(ctx, tx, Event{BatchID: c.BatchID, Reason: reason, Detail: ch.Decision, At: c.UpdatedAt}); err != nil {
				return err
			}
		}
		e.BatchID = c.BatchID
		return db.insertAudit(ctx, tx, e)
	})
	return c, err
}
