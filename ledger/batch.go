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

// Batch is one run of one manifest.
type Batch struct {
	ID             string
	ManifestName   string
	ManifestSHA256 string
	CreatedAt      time.Time
	Options        string           // JSON, as given by the runner
	RowCount       int              // rows in the manifest
	Totals         map[string]int64 // upper-case currency → minor units (control totals)
	// LoadedAt is when every row of the manifest was in the ledger (see
	// LoadRows); zero while the rows are still being loaded, when no row of
	// the batch may be started.
	LoadedAt time.Time
}

const batchColumns = `id, manifest_name, manifest_sha256, created_at, options, row_count, totals, loaded_at`

// CreateBatch records b. It is idempotent: if a batch with b.ID exists with
// the same manifest SHA-256, that batch is returned with created false; with
// a different SHA-256 the error wraps ErrManifestChanged.
func (db *DB) CreateBatch(ctx context.Context, b Batch) (Batch, bool, error) {
	if b.ID == "" {
		return Batch{}, false, fmt.Errorf("create batch: empty id: %w", ErrInvalidChange)
	}
	if b.CreatedAt.IsZero() {
		b.CreatedAt = db.now()
	}
	b.CreatedAt = b.CreatedAt.UTC()
	totals, err := encodeTotals(b.Totals)
	if err != nil {
		return Batch{}, false, fmt.Errorf("create batch %s: %w", b.ID, err)
	}
	if b.Options == "" {
		b.Options = "{}"
	}
	if !json.Valid([]byte(b.Options)) {
		return Batch{}, false, fmt.Errorf("batch %s: options are not JSON: %w", b.ID, ErrInvalidChange)
	}
	tx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return Batch{}, false, fmt.Errorf("create batch %s: %w", b.ID, err)
	}
	defer tx.Rollback()
	// Runners on several hosts creating one batch at once take turns: the
	// first creates it, the others find it (PostgreSQL).
	if err := db.d.lockKey(ctx, tx, "batch:"+b.ID); err != nil {
		return Batch{}, false, fmt.Errorf("create batch %s: %w", b.ID, err)
	}
	old, err := findBatch(ctx, tx, b.ID)
	switch {
	case err == nil:
		if old.ManifestSHA256 != b.ManifestSHA256 {
			return Batch{}, false, fmt.Errorf("batch %s was made from a manifest with SHA-256 %s, this one has %s: %w — "+
				"use another batch id, or rerun the batch with the corrected manifest",
				b.ID, old.ManifestSHA256, b.ManifestSHA256, ErrManifestChanged)
		}
		return old, false, nil
	case !errors.Is(err, ErrNotFound):
		return Batch{}, false, fmt.Errorf("create batch %s: %w", b.ID, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO batches (`+batchColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)`,
		b.ID, b.ManifestName, b.ManifestSHA256, fmtTime(b.CreatedAt), b.Options, b.RowCount, totals); err != nil {
		return Batch{}, false, fmt.Errorf("create batch %s: %w", b.ID, err)
	}
	detail := fmt.Sprintf("manifest %s sha256 %s, %d rows", b.ManifestName, b.ManifestSHA256, b.RowCount)
	if err := insertEvent(ctx, tx, Event{BatchID: b.ID, Reason: "batch_created", Detail: detail, At: db.now()}); err != nil {
		return Batch{}, false, fmt.Errorf("create batch %s: %w", b.ID, err)
	}
	if err := db.commit(tx); err != nil {
		return Batch{}, false, fmt.Errorf("create batch %s: %w", b.ID, err)
	}
	b.Totals = normTotals(b.Totals)
	b.LoadedAt = time.Time{}
	return b, true, nil
}

// UpdateBatch replaces the options, manifest name and SHA-256, row count and
// totals of an existing batch (a rerun with a corrected manifest) and
// records the change as an event. Returns ErrNotFound if there is no such
// batch.
func (db *DB) UpdateBatch(ctx context.Context, b Batch) error {
	totals, err := encodeTotals(b.Totals)
	if err != nil {
		return fmt.Errorf("update batch %s: %w", b.ID, err)
	}
	if b.Options == "" {
		b.Options = "{}"
	}
	if !json.Valid([]byte(b.Options)) {
		return fmt.Errorf("batch %s: options are not JSON: %w", b.ID, ErrInvalidChange)
	}
	tx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("update batch %s: %w", b.ID, err)
	}
	defer tx.Rollback()
	old, err := findBatch(ctx, tx, b.ID)
	if err != nil {
		return fmt.Errorf("update batch %s: %w", b.ID, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE batches SET manifest_name = ?, manifest_sha256 = ?, options = ?, row_count = ?, totals = ? WHERE id = ?`,
		b.ManifestName, b.ManifestSHA256, b.Options, b.RowCount, totals, b.ID); err != nil {
		return fmt.Errorf("update batch %s: %w", b.ID, err)
	}
	detail := fmt.Sprintf("manifest %s sha256 %s → %s sha256 %s; rows %d → %d",
		old.ManifestName, old.ManifestSHA256, b.ManifestName, b.ManifestSHA256, old.RowCount, b.RowCount)
	if old.Options != b.Options {
		detail += fmt.Sprintf("; options %s → %s", old.Options, b.Options)
	}
	if err := insertEvent(ctx, tx, Event{BatchID: b.ID, Reason: "batch_updated", Detail: detail, At: db.now()}); err != nil {
		return fmt.Errorf("update batch %s: %w", b.ID, err)
	}
	if err := db.commit(tx); err != nil {
		return fmt.Errorf("update batch %s: %w", b.ID, err)
	}
	return nil
}

// Batch returns the batch with id. Returns ErrNotFound if there is none.
func (db *DB) Batch(ctx context.Context, id string) (Batch, error) {
	b, err := findBatch(ctx, db.rdb, id)
	if err != nil {
		return Batch{}, fmt.Errorf("batch %s: %w", id, err)
	}
	return b, nil
}

// Batches returns every batch, newest first.
func (db *DB) Batches(ctx context.Context) ([]Batch, error) {
	rs, err := db.rdb.QueryContext(ctx, `SELECT `+batchColumns+` FROM batches ORDER BY `+db.d.batchOrder)
	if err != nil {
		return nil, fmt.Errorf("batches: %w", err)
	}
	defer rs.Close()
	var out []Batch
	for rs.Next() {
		b, err := scanBatch(rs)
		if err != nil {
			return nil, fmt.Errorf("batches: %w", err)
		}
		out = append(out, b)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("batches: %w", err)
	}
	return out, nil
}

// querier is what *sql.DB, *sql.Tx and *sql.Conn offer for reading.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// dbtx is a connection inside a write transaction: a *sql.Tx, or the
// group-commit writer's *sql.Conn between its BEGIN and COMMIT.
type dbtx interface {
	querier
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

func findBatch(ctx context.Context, q querier, id string) (Batch, error) {
	b, err := scanBatch(q.QueryRowContext(ctx, `SELECT `+batchColumns+` FROM batches WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Batch{}, ErrNotFound
	}
	return b, err
}

type scanner interface{ Scan(dest ...any) error }

func scanBatch(s scanner) (Batch, error) {
	var b Batch
	var created, loaded sql.NullString
	var totals string
	if err := s.Scan(&b.ID, &b.ManifestName, &b.ManifestSHA256, &created, &b.Options, &b.RowCount, &totals, &loaded); err != nil {
		return Batch{}, err
	}
	b.CreatedAt, b.LoadedAt = parseTime(created), parseTime(loaded)
	if err := json.Unmarshal([]byte(totals), &b.Totals); err != nil {
		return Batch{}, fmt.Errorf("batch %s totals: %w", b.ID, err)
	}
	return b, nil
}

func normTotals(t map[string]int64) map[string]int64 {
	out := make(map[string]int64, len(t))
	for k, v := range t {
		out[strings.ToUpper(k)] += v
	}
	return out
}

func encodeTotals(t map[string]int64) (string, error) {
	b, err := json.Marshal(normTotals(t))
	if err != nil {
		return "", fmt.Errorf("totals: %w", err)
	}
	return string(b), nil
}
