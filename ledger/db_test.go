package ledger_test

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/mattn/go-sqlite3"

	"github.com/payouts/payouts/ledger"
)

func TestOpenPragmas(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	tests := []struct{ pragma, want string }{
		{"synchronous", "2"}, // FULL: durable by default
		{"journal_mode", "wal"},
		{"foreign_keys", "1"},
		{"busy_timeout", "10000"},
	}
	for _, tt := range tests {
		got, err := ledger.WriterPragma(ctx, db, tt.pragma)
		if err != nil || got != tt.want {
			t.Errorf("PRAGMA %s: got %q, %v; want %q", tt.pragma, got, err, tt.want)
		}
	}
	relaxed := openTest(t, ledger.WithSyncNormal())
	if got, _ := ledger.WriterPragma(ctx, relaxed, "synchronous"); got != "1" {
		t.Errorf("WithSyncNormal: got synchronous %s, want 1", got)
	}
}

func TestFileMode0600(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "weird ?name#.db")
	ctx := context.Background()
	db, err := ledger.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	newBatch(t, db, "b", "R")
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatalf("%s: %v", filepath.Base(name), err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("%s: got mode %o, want 600", filepath.Base(name), got)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "weird ?name#.db") {
			t.Errorf("unexpected file %q: the path was not used as given", e.Name())
		}
	}
}

func TestOpenTightensMode(t *testing.T) {
	path := newLocation(t)
	if err := os.WriteFile(path, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := ledger.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fi, _ := os.Stat(path)
	if got := fi.Mode().Perm(); got != 0o600 {
		t.Errorf("got mode %o, want 600", got)
	}
}

// TestMigrateFromV1 builds a ledger the way the first released binary did
// (migration 1 only), stores data in it, and opens it with this binary.
func TestMigrateFromV1(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v1.db")
	v1, err := os.ReadFile("schema/0001_init.sql")
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		string(v1),
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT`,
		`INSERT INTO schema_migrations VALUES (1, '0001_init', '2026-01-01T00:00:00.000000000Z')`,
		`INSERT INTO batches (id, manifest_name, manifest_sha256, created_at, row_count) VALUES ('old', 'old.csv', 'abc', '2026-01-01T00:00:00.000000000Z', 1)`,
		`INSERT INTO rows (batch_id, line, reference, amount, currency, recipient_name, state, created_at, updated_at, risk_key, attempt)
			VALUES ('old', 2, 'EMP-9', 500, 'RUB', 'A B', 'created', '2026-01-01T00:00:00.000000000Z', '2026-01-01T00:00:00.000000000Z', 'EMP-9', 1)`,
		`INSERT INTO attempts (row_id, n, session_id, keys, state, created_at, updated_at)
			VALUES (1, 1, 'ps_old', '{"session/create":"k"}', 'created', '2026-01-01T00:00:00.000000000Z', '2026-01-01T00:00:00.000000000Z')`,
	} {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("building v1: %v", err)
		}
	}
	raw.Close()

	db, err := ledger.Open(ctx, path)
	if err != nil {
		t.Fatalf("open v1: %v", err)
	}
	a, r, err := db.AttemptBySession(ctx, "ps_old")
	if err != nil || r.Reference != "EMP-9" || r.State != ledger.StateCreated || a.Keys["session/create"] != "k" {
		t.Fatalf("v1 data after migration: got %+v %+v, %v", a, r, err)
	}
	if b, err := db.Batch(ctx, "old"); err != nil || b.LoadedAt.IsZero() {
		t.Errorf("a batch with all its rows, from before schema 4: got loaded at %v (%v), want loaded", b.LoadedAt, err)
	}
	if _, err := db.AcquireLease(ctx, "old", ledger.CurrentOwner("test"), time.Minute); err != nil {
		t.Errorf("lease (schema 2) on a migrated ledger: %v", err)
	}
	if _, err := db.Apply(ctx, ledger.Change{RowID: r.ID, From: ledger.StateCreated, To: ledger.StateStarting, Reason: "start"}); err != nil {
		t.Errorf("Apply on a migrated ledger: %v", err)
	}
	db.Close()

	raw, _ = sql.Open("sqlite3", path)
	defer raw.Close()
	var versions string
	if err := raw.QueryRow(`SELECT group_concat(version) FROM (SELECT version FROM schema_migrations ORDER BY version)`).Scan(&versions); err != nil {
		t.Fatal(err)
	}
	var all []string
	for v := 1; v <= ledger.SchemaVersion(); v++ {
		all = append(all, strconv.Itoa(v))
	}
	if want := strings.Join(all, ","); versions != want || ledger.SchemaVersion() < 4 {
		t.Errorf("got versions %s (binary knows %d), want %s", versions, ledger.SchemaVersion(), want)
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		ctx := context.Background()
		path := newLocation(t)
		db, err := ledger.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.RawExec(ctx, `INSERT INTO schema_migrations VALUES (99, '0099_future', '2030-01-01T00:00:00.000000000Z')`); err != nil {
			t.Fatal(err)
		}
		db.Close()
		_, err = ledger.Open(ctx, path)
		if !errors.Is(err, ledger.ErrSchemaTooNew) {
			t.Fatalf("got %v, want ErrSchemaTooNew", err)
		}
		if !strings.Contains(err.Error(), "upgrade payouts") || !strings.Contains(err.Error(), "99") {
			t.Errorf("message %q should give the version and say to upgrade payouts", err)
		}
	})
}

// TestMigrationsFrozen: a released migration must never change, or ledgers
// made by older binaries would differ from new ones. Add a new file instead.
func TestMigrationsFrozen(t *testing.T) {
	frozen := map[string]string{
		"0001_init.sql":          "bf7e6d53e721356718331d109638517d12c94e228381ef0f20ef117a79e7d40b",
		"0002_leases.sql":        "ecb878d771f5ac57bb6cb90f74c3e440576448c3e065973e3e2285a8b4cc9d46",
		"0005_reference_key.sql": "6b380be2f7181957b7a7b3d1496cc1c357980be0857ffc6bf7f1090d1030531c",
	}
	for name, want := range frozen {
		b, err := os.ReadFile(filepath.Join("schema", name))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != want {
			t.Errorf("%s: got sha256 %s, want %s (released migrations are frozen)", name, got, want)
		}
	}
}

// TestSchemaGuards: the schema itself refuses what must never happen, even
// to code that bypasses the package.
func TestSchemaGuards(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		ctx := context.Background()
		path := newLocation(t)
		db, err := ledger.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		walkTo(t, db, newBatch(t, db, "b", "R1")[0], ledger.StateSucceeded)
		// RawExec runs on the writer's connection (foreign keys on), past
		// every check of the package: only the schema stands in the way.
		for _, q := range []string{
			`UPDATE rows SET state = 'planned' WHERE reference = 'R1'`,
			`UPDATE events SET detail = 'rewritten'`,
			`DELETE FROM events`,
			// Each insert below is valid but for the one guard it tests (the
			// reference key is required since schema 3; R1's risk key is r1).
			`INSERT INTO rows (batch_id, line, reference, reference_key, amount, currency, recipient_name, state, created_at, updated_at, risk_key)
			VALUES ('b', 3, 'R2', 'r2', 5, 'RUB', 'x', 'creating', '', '', 'r1')`,
			`INSERT INTO rows (batch_id, line, reference, reference_key, amount, currency, recipient_name, state, created_at, updated_at)
			VALUES ('b', 3, 'R3', 'r3', 0, 'RUB', 'x', 'planned', '', '')`,
			`INSERT INTO rows (batch_id, line, reference, reference_key, amount, currency, recipient_name, state, created_at, updated_at)
			VALUES ('nope', 3, 'R4', 'r4', 5, 'RUB', 'x', 'planned', '', '')`,
			// Reference keys (schema 3): required, one per batch, fixed.
			`INSERT INTO rows (batch_id, line, reference, amount, currency, recipient_name, state, created_at, updated_at)
			VALUES ('b', 3, 'R5', 5, 'RUB', 'x', 'planned', '', '')`,
			`INSERT INTO rows (batch_id, line, reference, reference_key, amount, currency, recipient_name, state, created_at, updated_at)
			VALUES ('b', 3, 'ｒ１', 'r1', 5, 'RUB', 'x', 'planned', '', '')`,
			`INSERT INTO rows (batch_id, line, reference, reference_key, reference_dup, amount, currency, recipient_name, state, created_at, updated_at)
			VALUES ('b', 3, 'ｒ１', 'r1', 9, 5, 'RUB', 'x', 'planned', '', '')`,
			`UPDATE rows SET reference = 'R6' WHERE reference = 'R1'`,
			`UPDATE rows SET batch_id = batch_id`,
			// A succeeded attempt is final; a paid row keeps its risk key.
			`UPDATE attempts SET state = 'failed'`,
			`UPDATE rows SET risk_key = NULL WHERE reference = 'R1'`,
		} {
			if _, err := db.RawExec(ctx, q); err == nil {
				t.Errorf("schema accepted %q", strings.Join(strings.Fields(q), " "))
			}
		}
	})
}
