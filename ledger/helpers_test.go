package ledger_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"iter"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib" // "pgx", for rawOpen
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

// newLocation returns where a fresh ledger of t's backend lives: a file in
// a temporary directory, or a URL naming a fresh PostgreSQL schema.
func newLocation(t testing.TB) string {
	t.Helper()
	if backendOf(t) == ledger.BackendPostgres {
		return pgtest.NewSchema(t)
	}
	return filepath.Join(t.TempDir(), "ledger.db")
}

// rawOpen opens the database under a ledger location directly, past the
// package, closed at cleanup.
func rawOpen(t testing.TB, location string) *sql.DB {
	t.Helper()
	driver := "sqlite3"
	if ledger.IsPostgresURL(location) {
		driver = "pgx"
	}
	raw, err := sql.Open(driver, location)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	return raw
}

// openTest opens a fresh ledger of t's backend, closed at cleanup.
func openTest(t testing.TB, opts ...ledger.Option) *ledger.DB {
	t.Helper()
	db, err := ledger.Open(context.Background(), newLocation(t), opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// fingerprint stands in for the caller's HMAC of a card number.
func fingerprint(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// testRow is a valid manifest row.
func testRow(line int, ref string) ledger.Row {
	return ledger.Row{Line: line, Reference: ref, Amount: 150000, Currency: "RUB", RecipientName: "Ivan Petrov",
		CardBIN: "424242", CardLast4: "4242", CardFingerprint: fingerprint("4242424242424242")}
}

func seqOf(rows ...ledger.Row) iter.Seq2[ledger.Row, error] {
	return func(yield func(ledger.Row, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}
}

// newBatch creates a batch with one row per reference and returns the rows.
func newBatch(t testing.TB, db *ledger.DB, id string, refs ...string) []ledger.Row {
	t.Helper()
	ctx := context.Background()
	if _, _, err := db.CreateBatch(ctx, ledger.Batch{ID: id, ManifestName: id + ".csv", ManifestSHA256: "sha-" + id, RowCount: len(refs)}); err != nil {
		t.Fatalf("CreateBatch: %v", err)
	}
	var rows []ledger.Row
	for i, ref := range refs {
		rows = append(rows, testRow(i+2, ref))
	}
	if _, err := db.InsertRows(ctx, id, seqOf(rows...)); err != nil {
		t.Fatalf("InsertRows: %v", err)
	}
	out := make([]ledger.Row, 0, len(refs))
	for _, ref := range refs {
		r, err := db.RowByReference(ctx, id, ref)
		if err != nil {
			t.Fatalf("RowByReference: %v", err)
		}
		out = append(out, r)
	}
	return out
}

// pathTo is one legal way from planned to each state.
var pathTo = map[ledger.State][]ledger.State{
	ledger.StatePlanned:         nil,
	ledger.StateCreating:        {ledger.StateCreating},
	ledger.StateCreated:         {ledger.StateCreating, ledger.StateCreated},
	ledger.StateStarting:        {ledger.StateCreating, ledger.StateCreated, ledger.StateStarting},
	ledger.StateAwaitingConfirm: {ledger.StateCreating, ledger.StateCreated, ledger.StateStarting, ledger.StateAwaitingConfirm},
	ledger.StateConfirming:      {ledger.StateCreating, ledger.StateCreated, ledger.StateStarting, ledger.StateAwaitingConfirm, ledger.StateConfirming},
	ledger.StateCancelling:      {ledger.StateCreating, ledger.StateCreated, ledger.StateCancelling},
	ledger.StateConfirmed:       {ledger.StateCreating, ledger.StateCreated, ledger.StateStarting, ledger.StateConfirmed},
	ledger.StateSucceeded:       {ledger.StateCreating, ledger.StateCreated, ledger.StateStarting, ledger.StateSucceeded},
	ledger.StateFailed:          {ledger.StateCreating, ledger.StateFailed},
	ledger.StateCancelled:       {ledger.StateCreating, ledger.StateCreated, ledger.StateCancelled},
	ledger.StateMismatch:        {ledger.StateCreating, ledger.StateCreated, ledger.StateCancelling, ledger.StateMismatch},
	ledger.StateUnknown:         {ledger.StateCreating, ledger.StateUnknown},
	ledger.StateReview:          {ledger.StateCreating, ledger.StateCreated, ledger.StateStarting, ledger.StateReview},
	ledger.StateSkipped:         {ledger.StateSkipped},
}

// step builds the change from → to with what the ledger requires: a new
// attempt when entering creating, a session id when entering created.
func step(r ledger.Row, to ledger.State) ledger.Change {
	c := ledger.Change{RowID: r.ID, From: r.State, To: to, Reason: "test"}
	if to == ledger.StateCreating && r.State == ledger.StatePlanned {
		c.NewAttempt = map[string]string{"session/create": fmt.Sprintf("key-%d-%d", r.ID, r.Attempt+1)}
	}
	if to == ledger.StateCreated && r.SessionID == "" {
		c.SessionID = fmt.Sprintf("ps_%d_%d", r.ID, r.Attempt)
	}
	if ledger.NeedsRerun(r.State, to) {
		c.Rerun = true
	}
	if ledger.NeedsOperator(r.State, to) {
		c.Operator = "test operator"
	}
	return c
}

// walkTo moves a planned row to the state along pathTo.
func walkTo(t testing.TB, db *ledger.DB, r ledger.Row, to ledger.State) ledger.Row {
	t.Helper()
	for _, s := range pathTo[to] {
		var err error
		r, err = db.Apply(context.Background(), step(r, s))
		if err != nil {
			t.Fatalf("walk to %s: %v", to, err)
		}
	}
	return r
}
