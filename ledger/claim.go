package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Claims let several runners share one batch of a PostgreSQL ledger: each
// runner claims open rows in chunks and works only on rows it holds. A
// claim has an owner (a random token per runner process) and an expiry on
// the database's clock, renewed by the owner's heartbeat (RenewClaims).
// A claim that expired (its runner died or stalled) is taken over by the
// next runner that claims rows; the row is then in whatever state the dead
// runner left it, and an intent state found at rest goes through unknown
// and session/status exactly as after a crash.
//
// Every change of a row made with Change.Claim set is fenced: the ledger
// refuses it with ErrClaimLost unless that owner holds an unexpired claim on
// the row. A change without Claim (a command that does not share rows:
// approve, reject, serve) is refused with ErrClaimed while another runner
// holds an unexpired claim on the row. Claiming a row and changing it both
// lock the row, so a claim cannot change hands between a change's check
// and its commit.
//
// SQLite ledgers keep one runner per batch (the lease): the claim methods
// return ErrNotShared there.

// ErrNotShared: the ledger is SQLite, whose batches have one runner each.
var ErrNotShared = errors.New("claims need a PostgreSQL ledger: a SQLite ledger has one runner per batch")

// NewClaimOwner returns a fresh owner token for a runner process: its host
// and pid (for people reading the ledger) and a random part (so a restarted
// process with the same pid is another owner).
func NewClaimOwner(o Owner) (string, error) {
	t, err := newToken()
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("%s:%d:%s", o.Host, o.PID, t[:12]), nil
}

// ClaimRows claims up to n open rows of the batch for owner, in manifest
// order from line fromLine on: rows nobody claimed and rows whose claim
// expired (owner's own live claims are RenewClaims' business). Rows another
// transaction has locked are skipped, not waited for. Each claim expires
// ttl after the database's clock. It returns the rows claimed, in line
// order, and how many of them were taken over from another owner.
func (db *DB) ClaimRows(ctx context.Context, batchID, owner string, fromLine, n int, ttl time.Duration) (rows []Row, takenOver int, err error) {
	if db.d.backend != BackendPostgres {
		return nil, 0, ErrNotShared
	}
	if owner == "" || n <= 0 {
		return nil, 0, fmt.Errorf("claim rows: empty owner or no rows asked: %w", ErrInvalidChange)
	}
	open := make([]string, 0, len(states))
	for _, s := range states {
		if !s.Final() && s != StateReview {
			open = append(open, "'"+string(s)+"'")
		}
	}
	tx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("claim rows of %s: %w", batchID, err)
	}
	defer tx.Rollback()
	rs, err := tx.QueryContext(ctx, `WITH free AS (
			SELECT r.id, k.owner AS old_owner FROM rows r LEFT JOIN claims k ON k.row_id = r.id
			WHERE r.batch_id = ? AND r.line >= ? AND r.state IN (`+strings.Join(open, ", ")+`)
				AND (k.row_id IS NULL OR k.expires_at < clock_timestamp())
			ORDER BY r.line, r.id LIMIT ?
			FOR UPDATE OF r SKIP LOCKED),
		taken AS (
			INSERT INTO claims (row_id, batch_id, owner, expires_at, claimed_at)
			SELECT id, ?, ?, clock_timestamp() + make_interval(secs => ?), clock_timestamp() FROM free
			-- free was read from the statement's snapshot: a claim made by a
			-- runner that committed meanwhile is seen only here, on the
			-- latest version of the claim, and wins.
			ON CONFLICT (row_id) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at,
				claimed_at = excluded.claimed_at
				WHERE claims.expires_at < clock_timestamp()
			RETURNING row_id)
		SELECT f.id, coalesce(f.old_owner, '') FROM free f JOIN taken t ON t.row_id = f.id`,
		batchID, fromLine, n, batchID, owner, ttl.Seconds())
	if err != nil {
		return nil, 0, fmt.Errorf("claim rows of %s: %w", batchID, err)
	}
	type claimed struct {
		id  int64
		old string
	}
	var got []claimed
	for rs.Next() {
		var c claimed
		if err := rs.Scan(&c.id, &c.old); err != nil {
			rs.Close()
			return nil, 0, fmt.Errorf("claim rows of %s: %w", batchID, err)
		}
		got = append(got, c)
	}
	if err := rs.Close(); err != nil {
		return nil, 0, fmt.Errorf("claim rows of %s: %w", batchID, err)
	}
	now := db.now()
	for _, c := range got {
		r, err := findRow(ctx, tx, c.id)
		if err != nil {
			return nil, 0, fmt.Errorf("claim rows of %s: row %d: %w", batchID, c.id, err)
		}
		rows = append(rows, r)
		if c.old != "" && c.old != owner {
			takenOver++
			if err := insertEvent(ctx, tx, Event{BatchID: batchID, RowID: r.ID, Attempt: r.Attempt, Reason: "claim_takeover",
				Detail: fmt.Sprintf("claimed by %s in %s: the claim of %s expired", owner, r.State, c.old), At: now}); err != nil {
				return nil, 0, fmt.Errorf("claim rows of %s: %w", batchID, err)
			}
		}
	}
	if err := db.commit(tx); err != nil {
		return nil, 0, fmt.Errorf("claim rows of %s: %w", batchID, err)
	}
	sortRowsByLine(rows)
	return rows, takenOver, nil
}

func sortRowsByLine(rows []Row) {
	for i := 1; i < len(rows); i++ {
		for j := i; j > 0 && (rows[j].Line < rows[j-1].Line || rows[j].Line == rows[j-1].Line && rows[j].ID < rows[j-1].ID); j-- {
			rows[j], rows[j-1] = rows[j-1], rows[j]
		}
	}
}

// RenewClaims pushes the expiry of every unexpired claim owner holds in the
// batch to ttl after the database's clock (the heartbeat) and returns how
// many it renewed. An expired claim is not renewed: it may have been taken
// over already, and its owner must stop touching the row.
func (db *DB) RenewClaims(ctx context.Context, batchID, owner string, ttl time.Duration) (int, error) {
	if db.d.backend != BackendPostgres {
		return 0, ErrNotShared
	}
	res, err := db.wdb.ExecContext(ctx, `UPDATE claims SET expires_at = clock_timestamp() + make_interval(secs => ?)
		WHERE batch_id = ? AND owner = ? AND expires_at >= clock_timestamp()`, ttl.Seconds(), batchID, owner)
	if err != nil {
		return 0, fmt.Errorf("renew claims on %s: %w", batchID, err)
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// ReleaseClaims gives up every claim owner holds in the batch, so other
// runners take its rows at once instead of after the expiry.
func (db *DB) ReleaseClaims(ctx context.Context, batchID, owner string) error {
	if db.d.backend != BackendPostgres {
		return ErrNotShared
	}
	if _, err := db.wdb.ExecContext(ctx, `DELETE FROM claims WHERE batch_id = ? AND owner = ?`, batchID, owner); err != nil {
		return fmt.Errorf("release claims on %s: %w", batchID, err)
	}
	return nil
}

// ClaimableRows counts the open rows of the batch nobody holds an
// unexpired claim on.
func (db *DB) ClaimableRows(ctx context.Context, batchID string) (int, error) {
	if db.d.backend != BackendPostgres {
		return 0, ErrNotShared
	}
	var n int
	err := db.rdb.QueryRowContext(ctx, `SELECT count(*) FROM rows r LEFT JOIN claims k ON k.row_id = r.id
		WHERE r.batch_id = ? AND r.state NOT IN ('succeeded', 'failed', 'cancelled', 'mismatch', 'skipped', 'review')
			AND (k.row_id IS NULL OR k.expires_at < clock_timestamp())`, batchID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("claimable rows of %s: %w", batchID, err)
	}
	return n, nil
}

// checkClaim is the fence of a change inside its transaction, with the row
// locked: see the package's claims comment above.
func (db *DB) checkClaim(ctx context.Context, tx dbtx, rowID int64, claim string) error {
	if db.d.backend != BackendPostgres {
		if claim != "" {
			return ErrNotShared
		}
		return nil
	}
	var owner string
	var valid bool
	err := tx.QueryRowContext(ctx, `SELECT owner, expires_at >= clock_timestamp() FROM claims WHERE row_id = ?`, rowID).Scan(&owner, &valid)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		if claim != "" {
			return fmt.Errorf("row %d is claimed by nobody, not %s: %w", rowID, claim, ErrClaimLost)
		}
		return nil
	case err != nil:
		return fmt.Errorf("claim of row %d: %w", rowID, err)
	case claim == "":
		if valid {
			return fmt.Errorf("row %d is claimed by runner %s: %w", rowID, owner, ErrClaimed)
		}
		return nil
	case owner != claim:
		return fmt.Errorf("row %d was taken over by runner %s: %w", rowID, owner, ErrClaimLost)
	case !valid:
		return fmt.Errorf("the claim of %s on row %d expired: %w", claim, rowID, ErrClaimLost)
	}
	return nil
}
