package ledger_test

import (
	"context"
	"errors"
	"io/fs"
	"net/url"
	"path"
	"strings"
	"testing"

	"github.com/payouts/payouts/internal/pgtest"
	"github.com/payouts/payouts/ledger"
)

// TestMigrationsPaired: every schema version exists for both backends,
// under the same name, so a migration added for SQLite alone (or
// PostgreSQL alone) fails here until its twin is written (docs/ledger.md,
// "Adding a migration").
func TestMigrationsPaired(t *testing.T) {
	names := func(dir string) map[string]bool {
		out := map[string]bool{}
		ms, err := fs.Glob(ledger.SchemaFS(), dir+"/*.sql")
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range ms {
			out[path.Base(m)] = true
		}
		return out
	}
	sqlite, postgres := names("schema"), names("schema/postgres")
	if len(sqlite) == 0 {
		t.Fatal("no SQLite migrations found")
	}
	for n := range sqlite {
		if !postgres[n] {
			t.Errorf("schema/%s has no PostgreSQL twin: write schema/postgres/%s (see docs/ledger.md)", n, n)
		}
	}
	for n := range postgres {
		if !sqlite[n] {
			t.Errorf("schema/postgres/%s has no SQLite twin schema/%s", n, n)
		}
	}
}

// TestPostgresMustExist: only `payouts init` makes the tables; every other
// command refuses a database without them, and says so without the
// password.
func TestPostgresMustExist(t *testing.T) {
	loc := withPassword(t, pgtest.NewSchema(t))
	ctx := context.Background()
	_, err := ledger.Open(ctx, loc, ledger.MustExist())
	if !errors.Is(err, ledger.ErrNoLedger) {
		t.Fatalf("MustExist on an empty schema: got %v, want ErrNoLedger", err)
	}
	if strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error shows the password: %v", err)
	}
	db, err := ledger.Open(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(db.Path(), "hunter2") || db.Backend() != ledger.BackendPostgres {
		t.Errorf("Path() = %q, Backend() = %q", db.Path(), db.Backend())
	}
	db.Close()
	db, err = ledger.Open(ctx, loc, ledger.MustExist())
	if err != nil {
		t.Fatalf("MustExist after create: %v", err)
	}
	db.Close()
}

// withPassword adds a password to a trust-auth URL: the server ignores
// it, the ledger must never print it.
func withPassword(t *testing.T, loc string) string {
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "hunter2")
	return u.String()
}

// TestPostgresDurableSessions: the ledger's sessions commit durably
// whatever the server's default, and reads go through read-only sessions.
func TestPostgresDurableSessions(t *testing.T) {
	loc := pgtest.NewSchema(t)
	ctx := context.Background()
	raw := rawOpen(t, pgtest.Get(t).URL)
	if _, err := raw.Exec(`ALTER SYSTEM SET synchronous_commit = off`); err != nil {
		t.Skipf("cannot change the server's default: %v", err)
	}
	defer raw.Exec(`ALTER SYSTEM RESET synchronous_commit`)
	defer raw.Exec(`SELECT pg_reload_conf()`)
	if _, err := raw.Exec(`SELECT pg_reload_conf()`); err != nil {
		t.Fatal(err)
	}
	db, err := ledger.Open(ctx, loc)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if got, err := ledger.WriterSetting(ctx, db, "synchronous_commit"); err != nil || got != "on" {
		t.Errorf("writer synchronous_commit: got %q, %v; want on", got, err)
	}
	if got, err := ledger.ReaderSetting(ctx, db, "default_transaction_read_only"); err != nil || got != "on" {
		t.Errorf("reader default_transaction_read_only: got %q, %v; want on", got, err)
	}
}
