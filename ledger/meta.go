package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
)

// metaFingerprintKeyID is the meta key holding the id of the key the
// ledger's card fingerprints are made with.
const metaFingerprintKeyID = "fingerprint_key_id"

// FingerprintKeyID returns the id of the key the ledger's card fingerprints
// are made with (the key itself is never in the ledger), or "" if none is
// recorded: a ledger made by a payouts that derived the key from the
// partner private key.
func (db *DB) FingerprintKeyID(ctx context.Context) (string, error) {
	id, err := getMeta(ctx, db.rdb, metaFingerprintKeyID)
	if err != nil {
		return "", fmt.Errorf("fingerprint key id: %w", err)
	}
	return id, nil
}

// AdoptFingerprintKey records id as the ledger's fingerprint key. It is
// idempotent for the id already recorded. Returns an error wrapping
// ErrConflict if another id is recorded, or ErrLegacyFingerprints if none
// is and the ledger already has rows (their fingerprints were made with
// another key: see MigrateFingerprints).
func (db *DB) AdoptFingerprintKey(ctx context.Context, id string) error {
	tx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("adopt fingerprint key: %w", err)
	}
	defer tx.Rollback()
	if err := db.d.lockKey(ctx, tx, "meta"); err != nil {
		return fmt.Errorf("adopt fingerprint key: %w", err)
	}
	switch old, err := getMeta(ctx, tx, metaFingerprintKeyID); {
	case err != nil:
		return fmt.Errorf("adopt fingerprint key: %w", err)
	case old == id:
		return nil
	case old != "":
		return fmt.Errorf("the ledger's fingerprint key is %s, not %s: %w", old, id, ErrConflict)
	}
	var rows int
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM rows`).Scan(&rows); err != nil {
		return fmt.Errorf("adopt fingerprint key: %w", err)
	}
	if rows > 0 {
		return fmt.Errorf("adopt fingerprint key: %d rows were fingerprinted with the partner key: %w", rows, ErrLegacyFingerprints)
	}
	if err := setMeta(ctx, tx, metaFingerprintKeyID, id); err != nil {
		return fmt.Errorf("adopt fingerprint key: %w", err)
	}
	if err := db.commit(tx); err != nil {
		return fmt.Errorf("adopt fingerprint key: %w", err)
	}
	return nil
}

// UnfinishedBatch is a batch with rows that are not final.
type UnfinishedBatch struct {
	ID   string
	Rows int
}

// UnfinishedRowsError is returned by MigrateFingerprints while rows are
// not final. It wraps ErrUnfinishedRows.
type UnfinishedRowsError struct {
	Batches []UnfinishedBatch
}

// Error implements error.
func (e *UnfinishedRowsError) Error() string {
	parts := make([]string, len(e.Batches))
	for i, b := range e.Batches {
		parts[i] = fmt.Sprintf("batch %s: %d rows", b.ID, b.Rows)
	}
	return "rows not finished yet: " + strings.Join(parts, ", ")
}

// Unwrap returns ErrUnfinishedRows.
func (e *UnfinishedRowsError) Unwrap() error { return ErrUnfinishedRows }

// MigrateFingerprints moves a ledger whose fingerprints were made with the
// partner key (no key id recorded) to the key id: the fingerprints of its
// rows are cleared (an event per batch says so) and id is recorded, in one
// transaction. Only rows that are final or in review may lose their
// fingerprint, since none of them is started again except by a rerun,
// which records a new one; it refuses with an *UnfinishedRowsError while
// any other row exists. It is
// idempotent for the id already recorded; another recorded id is an error
// wrapping ErrConflict. Returns how many fingerprints were cleared.
func (db *DB) MigrateFingerprints(ctx context.Context, id string) (int, error) {
	tx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("migrate fingerprints: %w", err)
	}
	defer tx.Rollback()
	if err := db.d.lockKey(ctx, tx, "meta"); err != nil {
		return 0, fmt.Errorf("migrate fingerprints: %w", err)
	}
	switch old, err := getMeta(ctx, tx, metaFingerprintKeyID); {
	case err != nil:
		return 0, fmt.Errorf("migrate fingerprints: %w", err)
	case old == id:
		return 0, nil
	case old != "":
		return 0, fmt.Errorf("the ledger's fingerprint key is %s, not %s: %w", old, id, ErrConflict)
	}
	// A row in review is never started again either: only an operator or
	// Pike moves it, to a final state.
	final := make([]any, 0, len(states))
	for _, s := range states {
		if s.Final() || s == StateReview {
			final = append(final, string(s))
		}
	}
	open, err := rowsPerBatch(ctx, tx, `state NOT IN (`+placeholders(len(final))+`)`, final...)
	if err != nil {
		return 0, fmt.Errorf("migrate fingerprints: %w", err)
	}
	if len(open) > 0 {
		return 0, &UnfinishedRowsError{Batches: open}
	}
	batches, err := rowsPerBatch(ctx, tx, `card_fingerprint <> ''`)
	if err != nil {
		return 0, fmt.Errorf("migrate fingerprints: %w", err)
	}
	n := 0
	now := db.now()
	for _, b := range batches {
		if _, err := tx.ExecContext(ctx, `UPDATE rows SET card_fingerprint = '' WHERE batch_id = ? AND card_fingerprint <> ''`, b.ID); err != nil {
			return 0, fmt.Errorf("migrate fingerprints: %w", err)
		}
		detail := fmt.Sprintf("card fingerprints of %d rows cleared: they were made with the partner key; new fingerprints use key %s", b.Rows, id)
		if err := insertEvent(ctx, tx, Event{BatchID: b.ID, Reason: "fingerprints_cleared", Detail: detail, At: now}); err != nil {
			return 0, fmt.Errorf("migrate fingerprints: %w", err)
		}
		n += b.Rows
	}
	if err := setMeta(ctx, tx, metaFingerprintKeyID, id); err != nil {
		return 0, fmt.Errorf("migrate fingerprints: %w", err)
	}
	if err := db.commit(tx); err != nil {
		return 0, fmt.Errorf("migrate fingerprints: %w", err)
	}
	return n, nil
}

// rowsPerBatch counts the rows matching where in each batch that has any.
func rowsPerBatch(ctx context.Context, q querier, where string, args ...any) ([]UnfinishedBatch, error) {
	rs, err := q.QueryContext(ctx, `SELECT batch_id, count(*) FROM rows WHERE `+where+` GROUP BY batch_id ORDER BY batch_id`, args...)
	if err != nil {
		return nil, err
	}
	defer rs.Close()
	var out []UnfinishedBatch
	for rs.Next() {
		var b UnfinishedBatch
		if err := rs.Scan(&b.ID, &b.Rows); err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rs.Err()
}

// getMeta returns the value of key, "" if it is not set.
func getMeta(ctx context.Context, q querier, key string) (string, error) {
	var v string
	err := q.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", nil
	}
	return v, err
}

func setMeta(ctx context.Context, tx dbtx, key, value string) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO meta (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, value)
	return err
}
