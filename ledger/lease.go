package ledger

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/payouts/payouts/internal/pan"
)

// Owner identifies a runner process.
type Owner struct {
	Host    string
	PID     int
	Command string // what it runs, e.g. "payouts run payroll.csv"
}

// CurrentOwner describes this process running command.
func CurrentOwner(command string) Owner {
	host, err := os.Hostname()
	if err != nil {
		host = "unknown"
	}
	return Owner{Host: host, PID: os.Getpid(), Command: command}
}

// Lease is the right to run one batch. Keep it alive with Heartbeat more
// often than its TTL and Release it when done.
type Lease struct {
	db      *DB
	batchID string
	owner   Owner
	token   string
}

// BatchID returns the batch the lease is for.
func (l *Lease) BatchID() string { return l.batchID }

// Owner returns the process that holds the lease.
func (l *Lease) Owner() Owner { return l.owner }

// AcquireLease takes the runner lease of a batch for o. A lease that is
// free, held by a process on this host that no longer exists, or whose
// heartbeat is older than ttl is taken at once (a takeover is recorded as
// an event of the batch). Otherwise it fails with a *LeaseHeldError
// (ErrLeaseHeld) naming the holder.
func (db *DB) AcquireLease(ctx context.Context, batchID string, o Owner, ttl time.Duration) (*Lease, error) {
	o.Command = pan.Scrub(o.Command)
	token, err := newToken()
	if err != nil {
		return nil, fmt.Errorf("acquire lease on %s: %w", batchID, err)
	}
	tx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("acquire lease on %s: %w", batchID, err)
	}
	defer tx.Rollback()
	// Two processes taking a free lease at once take turns (PostgreSQL;
	// SQLite's write transaction holds the file already).
	if err := db.d.lockKey(ctx, tx, "lease:"+batchID); err != nil {
		return nil, fmt.Errorf("acquire lease on %s: %w", batchID, err)
	}
	now := db.now()
	var held Owner
	var heartbeat sql.NullString
	err = tx.QueryRowContext(ctx, `SELECT host, pid, command, heartbeat_at FROM leases WHERE batch_id = ?`, batchID).
		Scan(&held.Host, &held.PID, &held.Command, &heartbeat)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO leases (batch_id, host, pid, command, token, acquired_at, heartbeat_at)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, batchID, o.Host, o.PID, o.Command, token, fmtTime(now), fmtTime(now)); err != nil {
			return nil, fmt.Errorf("acquire lease on %s: %w", batchID, err)
		}
	case err != nil:
		return nil, fmt.Errorf("acquire lease on %s: %w", batchID, err)
	default:
		hb := parseTime(heartbeat)
		var why string
		switch {
		case held.Host == o.Host && !processAlive(held.PID):
			why = "its process has exited"
		case now.Sub(hb) > ttl:
			why = fmt.Sprintf("its last heartbeat is %s old", now.Sub(hb).Round(time.Second))
		default:
			return nil, &LeaseHeldError{BatchID: batchID, Owner: held, Heartbeat: hb, TTL: ttl}
		}
		if _, err := tx.ExecContext(ctx, `UPDATE leases SET host = ?, pid = ?, command = ?, token = ?, acquired_at = ?, heartbeat_at = ?
			WHERE batch_id = ?`, o.Host, o.PID, o.Command, token, fmtTime(now), fmtTime(now), batchID); err != nil {
			return nil, fmt.Errorf("acquire lease on %s: %w", batchID, err)
		}
		// The batch may not exist yet if its previous runner died before
		// creating it; then there is nothing to audit.
		if _, err := findBatch(ctx, tx, batchID); err == nil {
			detail := fmt.Sprintf("lease taken over by pid %d on %s (%s) from pid %d on %s (%s): %s",
				o.PID, o.Host, o.Command, held.PID, held.Host, held.Command, why)
			if err := insertEvent(ctx, tx, Event{BatchID: batchID, Reason: "lease_takeover", Detail: detail, At: now}); err != nil {
				return nil, fmt.Errorf("acquire lease on %s: %w", batchID, err)
			}
		}
	}
	if err := db.commit(tx); err != nil {
		// The COMMIT may have reached the database although its answer
		// did not reach us (a cancelled context, a dropped connection):
		// the lease would then stay held in our name by a process that is
		// alive and believes it has none. Its token is ours alone, so
		// dropping it is safe whether or not the commit happened.
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if _, derr := db.wdb.ExecContext(dctx, `DELETE FROM leases WHERE batch_id = ? AND token = ?`, batchID, token); derr != nil {
			err = fmt.Errorf("%w (and dropping the lease in case the commit happened: %v)", err, derr)
		}
		return nil, fmt.Errorf("acquire lease on %s: %w", batchID, err)
	}
	return &Lease{db: db, batchID: batchID, owner: o, token: token}, nil
}

// Heartbeat tells other runners the lease holder is alive. Returns
// ErrLeaseLost if the lease was taken over: the caller must stop.
func (l *Lease) Heartbeat(ctx context.Context) error {
	res, err := l.db.wdb.ExecContext(ctx, `UPDATE leases SET heartbeat_at = ? WHERE batch_id = ? AND token = ?`,
		fmtTime(l.db.now()), l.batchID, l.token)
	if err != nil {
		return fmt.Errorf("heartbeat lease on %s: %w", l.batchID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("heartbeat lease on %s: %w", l.batchID, ErrLeaseLost)
	}
	return nil
}

// Release gives the lease up. Returns ErrLeaseLost if it had been taken
// over.
func (l *Lease) Release(ctx context.Context) error {
	res, err := l.db.wdb.ExecContext(ctx, `DELETE FROM leases WHERE batch_id = ? AND token = ?`, l.batchID, l.token)
	if err != nil {
		return fmt.Errorf("release lease on %s: %w", l.batchID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("release lease on %s: %w", l.batchID, ErrLeaseLost)
	}
	return nil
}

func newToken() (string, error) {
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}
