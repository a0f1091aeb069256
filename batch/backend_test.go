package batch_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/payouts/payouts/internal/pgtest"
	"github.com/payouts/payouts/ledger"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// forEachBackend runs f once per ledger engine (pgtest.ForEachBackend).
func forEachBackend(t *testing.T, f func(t *testing.T)) { pgtest.ForEachBackend(t, f) }

// backendOf returns the engine of the forEachBackend subtest t is (or is
// under); SQLite outside forEachBackend.
func backendOf(t testing.TB) ledger.Backend {
	if pgtest.UnderPostgres(t) {
		return ledger.BackendPostgres
	}
	return ledger.BackendSQLite
}

// ledgerLocation is where t's harness keeps its ledger: payouts.db in dir,
// or a fresh PostgreSQL schema.
func ledgerLocation(t testing.TB, dir string) string {
	t.Helper()
	if backendOf(t) == ledger.BackendPostgres {
		return pgtest.NewSchema(t)
	}
	return filepath.Join(dir, "payouts.db")
}

// pgtestServer returns the test PostgreSQL if this test binary started it
// (and so may restart it), else skips.
func pgtestServer(t *testing.T) *pgtest.Server {
	srv := pgtest.Get(t)
	if !srv.Own() {
		t.Skip("the PostgreSQL server was given by " + pgtest.EnvURL + ": this test restarts the server it starts itself")
	}
	return srv
}
