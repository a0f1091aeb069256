package ledger

import "context"

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
