package ledger

import (
	"context"
	"io/fs"
)

// WriterPragma reads a pragma on the writer's connection, which outside
// code cannot reach.
func WriterPragma(ctx context.Context, db *DB, name string) (string, error) {
	var v string
	err := db.wdb.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v)
	return v, err
}

// RawExec runs a statement on the writer's connection, bypassing the
// ledger's own checks: tests use it to prove the schema's triggers hold.
func (db *DB) RawExec(ctx context.Context, query string, args ...any) (int64, error) {
	res, err := db.wdb.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// SchemaFS exposes the embedded migrations.
func SchemaFS() fs.FS { return schemaFS }

// WriterSetting reads a PostgreSQL setting on a writer connection.
func WriterSetting(ctx context.Context, db *DB, name string) (string, error) {
	var v string
	err := db.wdb.QueryRowContext(ctx, "SELECT current_setting($1)", name).Scan(&v)
	return v, err
}

// ReaderSetting reads a PostgreSQL setting on a reader connection.
func ReaderSetting(ctx context.Context, db *DB, name string) (string, error) {
	var v string
	err := db.rdb.QueryRowContext(ctx, "SELECT current_setting($1)", name).Scan(&v)
	return v, err
}
