package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/payouts/payouts/internal/pan"
)

// Errors of the console's tables (users, sessions, console batches).
var (
	// ErrExists means a user or console batch with that name already exists.
	ErrExists = errors.New("already exists")
	// ErrFourEyes means a person would approve what she asked for herself
	// (her own upload or rerun).
	ErrFourEyes = errors.New("four eyes: the person who asked for it cannot approve it")
)

// AuditEntry is one line of the console's append-only audit log: who did
// what, when and from where.
type AuditEntry struct {
	ID         int64
	At         time.Time
	Actor      string // console user name, or "cli:<os user>"
	RemoteAddr string // the client's address; "" for the CLI
	Action     string // short machine word: login, login_failed, upload, approve, ...
	BatchID    string // "" when not about a batch
	Detail     string // human text, PAN-scrubbed
}

// Audit appends e to the audit log. At defaults to now; Detail is
// PAN-scrubbed.
func (db *DB) Audit(ctx context.Context, e AuditEntry) error {
	tx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer tx.Rollback()
	if err := db.insertAudit(ctx, tx, e); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// insertAudit appends e inside tx.
func (db *DB) insertAudit(ctx context.Context, tx *sql.Tx, e AuditEntry) error {
	if e.Action == "" || e.Actor == "" {
		return fmt.Errorf("audit: empty action or actor: %w", ErrInvalidChange)
	}
	if e.At.IsZero() {
		e.At = db.now()
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO audit_log (at, actor, remote_addr, action, batch_id, detail) VALUES (?, ?, ?, ?, ?, ?)`,
		fmtTime(e.At), pan.Scrub(e.Actor), pan.Scrub(e.RemoteAddr), e.Action, e.BatchID, pan.Scrub(e.Detail))
	if err != nil {
		return fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return nil
}

// AuditFilter selects audit log entries.
type AuditFilter struct {
	BatchID  string // "" = every entry
	BeforeID int64  // > 0: only entries older than this id (paging)
	Limit    int    // 0 = 200
}

// AuditLog returns audit entries, newest first.
func (db *DB) AuditLog(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	if f.Limit <= 0 {
		f.Limit = 200
	}
	q := `SELECT id, at, actor, remote_addr, action, batch_id, detail FROM audit_log WHERE 1 = 1`
	var args []any
	if f.BatchID != "" {
		q += ` AND batch_id = ?`
		args = append(args, f.BatchID)
	}
	if f.BeforeID > 0 {
		q += ` AND id < ?`
		args = append(args, f.BeforeID)
	}
	q += ` ORDER BY id DESC LIMIT ?`
	args = append(args, f.Limit)
	rs, err := db.rdb.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	defer rs.Close()
	var out []AuditEntry
	for rs.Next() {
		var e AuditEntry
		var at sql.NullString
		if err := rs.Scan(&e.ID, &at, &e.Actor, &e.RemoteAddr, &e.Action, &e.BatchID, &e.Detail); err != nil {
			return nil, fmt.Errorf("audit log: %w", err)
		}
		e.At = parseTime(at)
		out = append(out, e)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	return out, nil
}
