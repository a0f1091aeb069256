package batch_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/payouts/payouts/internal/pgtest"
	"github.com/payouts/payouts/ledger"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// backends are the ledger engines the fault matrix, the money tests and
// the model run on.
var backends = []ledger.Backend{ledger.BackendSQLite, ledger.BackendPostgres}

// forEachBackend runs f as a subtest per backend; inside it the harness
// opens a ledger of that backend. A PostgreSQL subtest skips when no
// PostgreSQL is available (internal/pgtest), and fails instead under
// PAYOUTS_TEST_POSTGRES_REQUIRED=1 (CI).
func forEachBackend(t *testing.T, f func(t *testing.T)) {
	for _, b := range backends {
		t.Run(string(b), f)
	}
}

// backendOf returns the backend of the forEachBackend subtest t is (or is
// under); SQLite outside forEachBackend.
func backendOf(t testing.TB) ledger.Backend {
	parts := strings.Split(t.Name(), "/")
	if len(parts) > 1 && parts[1] == string(ledger.BackendPostgres) {
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
