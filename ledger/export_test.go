package ledger

import "context"

// WriterPragma reads a pragma on the writer's connection, which outside
// code cannot reach.
func WriterPragma(ctx context.Context, db *DB, name string) (string, error) {
	var v string
	err := db.wdb.QueryRowContext(ctx, "PRAGMA "+name).Scan(&v)
	return v, err
}
