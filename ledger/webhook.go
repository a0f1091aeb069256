package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/payouts/payouts/internal/pan"
)

// Webhook is one webhook delivery as received from Pike.
type Webhook struct {
	ID            int64
	Type          string
	SessionID     string
	SessionStatus string
	PayoutStatus  string
	BodySHA256    string // hex of the raw body as received, computed by the caller; the dedupe key
	Body          []byte // stored PAN-scrubbed
	Verified      bool
	Applied       bool
	Result        string // what applying it did
	ReceivedAt    time.Time
}

const webhookColumns = `w.id, w.type, w.session_id, w.session_status, w.payout_status, w.body_sha256, w.body,
	w.verified, w.applied, w.result, w.received_at`

func scanWebhook(s scanner) (Webhook, error) {
	var w Webhook
	var at sql.NullString
	if err := s.Scan(&w.ID, &w.Type, &w.SessionID, &w.SessionStatus, &w.PayoutStatus, &w.BodySHA256, &w.Body,
		&w.Verified, &w.Applied, &w.Result, &at); err != nil {
		return Webhook{}, err
	}
	w.ReceivedAt = parseTime(at)
	return w, nil
}

// RecordWebhook stores w unless a webhook with the same BodySHA256 is
// already stored, and reports whether it is new. It returns once the
// webhook is durable (group commit), so the caller may then acknowledge it.
// A verified delivery of a body first stored unverified upgrades the stored
// one to verified and counts as new: a forged copy sent first cannot hide
// the genuine webhook.
func (db *DB) RecordWebhook(ctx context.Context, w Webhook) (Webhook, bool, error) {
	if w.BodySHA256 == "" {
		return Webhook{}, false, fmt.Errorf("record webhook: empty body sha256: %w", ErrInvalidChange)
	}
	if w.ReceivedAt.IsZero() {
		w.ReceivedAt = db.now()
	}
	body := scrubWebhookBody(w.Body)
	var out Webhook
	var isNew bool
	j := newJob(func(ctx context.Context, tx dbtx) error {
		// Insert first: two receivers of one webhook (two serve processes
		// behind a load balancer) never both insert it, and never fail on
		// the unique body hash either.
		var id int64
		err := tx.QueryRowContext(ctx, `INSERT INTO webhooks (type, session_id, session_status, payout_status, body_sha256,
			body, verified, applied, result, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (body_sha256) DO NOTHING RETURNING id`,
			w.Type, w.SessionID, w.SessionStatus, w.PayoutStatus, w.BodySHA256, body, boolInt(w.Verified), boolInt(w.Applied),
			pan.Scrub(w.Result), fmtTime(w.ReceivedAt)).Scan(&id)
		if err == nil {
			out, err = scanWebhook(tx.QueryRowContext(ctx, `SELECT `+webhookColumns+` FROM webhooks w WHERE w.id = ?`, id))
			isNew = true
			if err == nil {
				err = db.notifyWebhook(ctx, tx)
			}
			return err
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		old, err := scanWebhook(tx.QueryRowContext(ctx, `SELECT `+webhookColumns+` FROM webhooks w WHERE w.body_sha256 = ?`+db.d.forUpdate, w.BodySHA256))
		if err != nil {
			return err
		}
		out, isNew = old, false
		if w.Verified && !old.Verified {
			if _, err := tx.ExecContext(ctx, `UPDATE webhooks SET verified = 1 WHERE id = ?`, old.ID); err != nil {
				return err
			}
			out.Verified, isNew = true, true
			return db.notifyWebhook(ctx, tx)
		}
		return nil
	})
	if err := db.w.do(ctx, j); err != nil {
		return Webhook{}, false, fmt.Errorf("record webhook: %w", err)
	}
	return out, isNew, nil
}

// PendingWebhooks returns up to limit webhooks not yet applied with an ID
// above afterID, in ID order, whose session is an attempt of the batch or is
// unknown to the ledger (it may be about to become known: a webhook can
// overtake the response that carries the session id).
func (db *DB) PendingWebhooks(ctx context.Context, batchID string, afterID int64, limit int) ([]Webhook, error) {
	if limit <= 0 {
		limit = 100
	}
	out, err := db.queryWebhooks(ctx, `SELECT `+webhookColumns+` FROM webhooks w
		LEFT JOIN attempts a ON a.session_id = w.session_id
		LEFT JOIN rows r ON r.id = a.row_id
		WHERE w.applied = 0 AND w.id > ? AND (a.id IS NULL OR r.batch_id = ?)
		ORDER BY w.id LIMIT ?`, afterID, batchID, limit)
	if err != nil {
		return nil, fmt.Errorf("pending webhooks: %w", err)
	}
	return out, nil
}

// MarkWebhookApplied records that the webhook was applied and what it did
// (group-committed). Returns ErrNotFound if there is no such webhook.
func (db *DB) MarkWebhookApplied(ctx context.Context, id int64, result string) error {
	j := newJob(func(ctx context.Context, tx dbtx) error {
		res, err := tx.ExecContext(ctx, `UPDATE webhooks SET applied = 1, result = ? WHERE id = ?`, pan.Scrub(result), id)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return ErrNotFound
		}
		return nil
	})
	if err := db.w.do(ctx, j); err != nil {
		return fmt.Errorf("mark webhook %d applied: %w", id, err)
	}
	return nil
}

// WebhooksForSession returns the webhooks about a session, oldest first.
func (db *DB) WebhooksForSession(ctx context.Context, sessionID string) ([]Webhook, error) {
	out, err := db.queryWebhooks(ctx, `SELECT `+webhookColumns+` FROM webhooks w WHERE w.session_id = ? ORDER BY w.id`, sessionID)
	if err != nil {
		return nil, fmt.Errorf("webhooks for session %s: %w", sessionID, err)
	}
	return out, nil
}

// UnmatchedWebhooks returns the webhooks received since the given time whose
// session no attempt in the ledger has, oldest first (for the report).
func (db *DB) UnmatchedWebhooks(ctx context.Context, since time.Time) ([]Webhook, error) {
	out, err := db.queryWebhooks(ctx, `SELECT `+webhookColumns+` FROM webhooks w
		WHERE w.received_at >= ? AND NOT EXISTS (SELECT 1 FROM attempts a WHERE a.session_id = w.session_id)
		ORDER BY w.id`, fmtTime(since))
	if err != nil {
		return nil, fmt.Errorf("unmatched webhooks: %w", err)
	}
	return out, nil
}

func (db *DB) queryWebhooks(ctx context.Context, query string, args ...any) ([]Webhook, error) {
	rs, err := db.rdb.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []Webhook
	for rs.Next() {
		w, err := scanWebhook(rs)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rs.Err()
}

// boolInt stores a flag as 0 or 1, the same on both backends.
func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// notifyWebhook tells the runners of a PostgreSQL ledger, at commit, that
// a webhook was stored (see ListenWebhooks).
func (db *DB) notifyWebhook(ctx context.Context, tx dbtx) error {
	if db.d.backend != BackendPostgres {
		return nil
	}
	_, err := tx.ExecContext(ctx, `SELECT pg_notify('`+webhookChannel+`', '')`)
	return err
}
