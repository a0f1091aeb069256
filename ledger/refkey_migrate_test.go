package ledger_test

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/payouts/payouts/ledger"
)

// v2Ledger builds a ledger the way the binaries before reference keys did
// (migrations 1 and 2), with rows inserted by the statements given.
func v2Ledger(t *testing.T, stmts ...string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "v2.db")
	raw, err := sql.Open("sqlite3", path+"?_foreign_keys=1")
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	var schema []string
	for _, f := range []string{"schema/0001_init.sql", "schema/0002_leases.sql"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		schema = append(schema, string(b))
	}
	schema = append(schema,
		`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL) STRICT`,
		`INSERT INTO schema_migrations VALUES (1, '0001_init', '2026-01-01T00:00:00.000000000Z'), (2, '0002_leases', '2026-01-01T00:00:00.000000000Z')`)
	for _, q := range append(schema, stmts...) {
		if _, err := raw.Exec(q); err != nil {
			t.Fatalf("building v2: %v\n%s", err, q)
		}
	}
	return path
}

// v2Row inserts a row as schema 2 stored it, with the risk key the old
// engine took (strings.ToUpper of the reference) when riskKey is not "".
func v2Row(id int, batch string, line int, ref, state, riskKey string) string {
	rk := "NULL"
	if riskKey != "" {
		rk = "'" + riskKey + "'"
	}
	return `INSERT INTO rows (id, batch_id, line, reference, amount, currency, recipient_name, state, created_at, updated_at, risk_key, attempt)
		VALUES (` + strconv.Itoa(id) + `, '` + batch + `', ` + strconv.Itoa(line) + `, '` + ref + `', 500, 'RUB', 'A B', '` + state + `',
		'2026-01-01T00:00:00.000000000Z', '2026-01-01T00:00:00.000000000Z', ` + rk + `, 1)`
}

// v2Attempt inserts attempt n of a row as schema 2 stored it.
func v2Attempt(row, n int, state string) string {
	return `INSERT INTO attempts (row_id, n, session_id, keys, state, created_at, updated_at)
		VALUES (` + strconv.Itoa(row) + `, ` + strconv.Itoa(n) + `, 'ps_` + strconv.Itoa(row) + `', '{}', '` + state + `',
		'2026-01-01T00:00:00.000000000Z', '2026-01-01T00:00:00.000000000Z')`
}

// TestMigrateReferenceKeys opens a schema-2 ledger whose risk keys are
// upper-cased references: after the upgrade every row has its reference
// key, every risk key held is the reference key, and so a reference paid
// or in flight under the old keys still blocks every spelling of itself.
func TestMigrateReferenceKeys(t *testing.T) {
	ctx := context.Background()
	batch := func(id string) string {
		return `INSERT INTO batches (id, manifest_name, manifest_sha256, created_at) VALUES ('` + id + `', '` + id + `.csv', 'sha-` + id + `', '2026-01-01T00:00:00.000000000Z')`
	}
	path := v2Ledger(t,
		batch("old"), batch("old2"), batch("dup"),
		v2Row(1, "old", 2, "ref-ß", "succeeded", "REF-ß"),            // paid; ToUpper leaves ß
		v2Row(2, "old", 3, "PAY-ı", "awaiting_confirm", "PAY-I"),     // in flight; ToUpper("ı") is "I"
		v2Row(3, "old", 4, "emp-1", "created", "EMP-1#override:old"), // an operator override
		v2Row(4, "old", 5, "done-1", "failed", ""),                   // holds nothing
		v2Row(5, "old2", 2, "REF-ẞ", "succeeded", "REF-ẞ"),           // the double payment of finding 2
		v2Row(6, "dup", 2, "PAY-1", "planned", ""),                   // two spellings in one batch,
		v2Row(7, "dup", 3, "ＰＡＹ-１", "planned", ""),                   // which the old check let in
		// The paid rows' succeeded attempts: since schema 3 a trigger keeps
		// such a row's risk key from ever being cleared.
		v2Attempt(1, 1, "succeeded"), v2Attempt(2, 1, "awaiting_confirm"), v2Attempt(5, 1, "succeeded"),
	)
	db, err := ledger.Open(ctx, path)
	if err != nil {
		t.Fatalf("open v2: %v", err)
	}
	defer db.Close()

	wantKeys := map[int64][2]string{ // row → reference key, risk key
		1: {"ref-ss", "ref-ss"},
		2: {"pay-ı", "pay-ı"},
		3: {"emp-1", "emp-1#override:old"},
		4: {"done-1", ""},
		5: {"ref-ss", "ref-ss#legacy:5"},
		6: {"pay-1", ""},
		7: {"pay-1", ""},
	}
	for id, want := range wantKeys {
		r, err := db.Row(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if r.ReferenceKey != want[0] || r.RiskKey != want[1] {
			t.Errorf("row %d (%s): got reference key %q, risk key %q; want %q, %q", id, r.Reference, r.ReferenceKey, r.RiskKey, want[0], want[1])
		}
	}

	// The old holders block every spelling of their reference.
	fresh := newBatch(t, db, "new", "REF-SS", "pay-ı", "PAY-I", "EMP-1")
	for _, r := range fresh[:2] {
		if _, err := db.Apply(ctx, step(r, ledger.StateCreating)); !errors.Is(err, ledger.ErrReferenceBusy) {
			t.Errorf("%s after the upgrade: got %v, want ErrReferenceBusy", r.Reference, err)
		}
	}
	// PAY-I is not PAY-ı, and the override held only its own batch.
	for _, r := range fresh[2:] {
		if _, err := db.Apply(ctx, step(r, ledger.StateCreating)); err != nil {
			t.Errorf("%s after the upgrade: got %v, want it to enter creating", r.Reference, err)
		}
	}
	if other, found, err := db.SucceededElsewhere(ctx, "REF-SS", "new"); err != nil || !found || other.ID != 1 {
		t.Errorf("SucceededElsewhere(REF-SS): got row %d, %v, %v; want row 1", other.ID, found, err)
	}

	// The two spellings in one batch are both still there, each found by
	// its own spelling, and the second is flagged.
	for spelling, want := range map[string]int64{"PAY-1": 6, "ＰＡＹ-１": 7, "pay-1": 6} {
		if r, err := db.RowByReference(ctx, "dup", spelling); err != nil || r.ID != want {
			t.Errorf("RowByReference(dup, %q): got row %d, %v; want row %d", spelling, r.ID, err, want)
		}
	}
	for _, tt := range []struct {
		batch  string
		row    int64
		reason string
	}{{"dup", 7, "reference_key_duplicate"}, {"old2", 5, "risk_key_shared"}} {
		evs, err := db.Events(ctx, tt.batch, tt.row)
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 1 || evs[0].Reason != tt.reason || !strings.Contains(evs[0].Detail, "double payment") {
			t.Errorf("events of row %d: got %+v, want one %s naming a possible double payment", tt.row, evs, tt.reason)
		}
	}
	for _, id := range []int64{1, 2, 3, 4, 6} {
		if evs, _ := db.Events(ctx, map[int64]string{1: "old", 2: "old", 3: "old", 4: "old", 6: "dup"}[id], id); len(evs) != 0 {
			t.Errorf("row %d: got events %+v, want none", id, evs)
		}
	}
}
