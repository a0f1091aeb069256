package ledger_test

import (
	"context"
	"errors"
	"testing"

	"github.com/payouts/payouts/ledger"
)

// TestLookupsMatchByReferenceKey: every lookup by reference compares
// refid.Key, the one reference identity: ß, ẞ and ss, full-width and
// ASCII, any letter case. Dotless ı stays apart from I.
func TestLookupsMatchByReferenceKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		ctx := context.Background()
		db := openTest(t)
		paid := walkTo(t, db, newBatch(t, db, "A", "REF-ß")[0], ledger.StateSucceeded)
		flying := walkTo(t, db, newBatch(t, db, "B", "ＰＡＹ-１")[0], ledger.StateAwaitingConfirm)
		dotless := walkTo(t, db, newBatch(t, db, "C", "PAY-ı")[0], ledger.StateSucceeded)

		tests := []struct {
			spelling string
			batch    string
			want     int64 // row id; 0 = none
		}{
			{"REF-ß", "A", paid.ID},
			{"REF-ẞ", "A", paid.ID},
			{"ref-SS", "A", paid.ID},
			{"ＲＥＦ-ß", "A", paid.ID},
			{"PAY-1", "B", flying.ID},
			{"pay-１", "B", flying.ID},
			{"PAY-ı", "C", dotless.ID},
			{"PAY-I", "C", 0},
			{"PAY-i", "C", 0},
		}
		for _, tt := range tests {
			t.Run(tt.spelling, func(t *testing.T) {
				r, err := db.RowByReference(ctx, tt.batch, tt.spelling)
				switch {
				case tt.want == 0 && !errors.Is(err, ledger.ErrNotFound):
					t.Errorf("RowByReference(%s, %q): got row %d, %v; want ErrNotFound", tt.batch, tt.spelling, r.ID, err)
				case tt.want != 0 && (err != nil || r.ID != tt.want):
					t.Errorf("RowByReference(%s, %q): got row %d, %v; want row %d", tt.batch, tt.spelling, r.ID, err, tt.want)
				}

				holders, err := db.ReferenceHolders(ctx, tt.spelling)
				if err != nil {
					t.Fatal(err)
				}
				if (tt.want == 0 && len(holders) != 0) || (tt.want != 0 && (len(holders) != 1 || holders[0].ID != tt.want)) {
					t.Errorf("ReferenceHolders(%q): got %d rows, want row %d (none if 0)", tt.spelling, len(holders), tt.want)
				}

				other, found, err := db.SucceededElsewhere(ctx, tt.spelling, "Z")
				wantPaid := tt.want == paid.ID || tt.want == dotless.ID
				if err != nil || found != wantPaid || (found && other.ID != tt.want) {
					t.Errorf("SucceededElsewhere(%q): got row %d, %v, %v; want found %v", tt.spelling, other.ID, found, err, wantPaid)
				}
			})
		}
		if _, found, _ := db.SucceededElsewhere(ctx, "REF-ẞ", "A"); found {
			t.Errorf("SucceededElsewhere excluding batch A: found the row of batch A")
		}
	})
}

// TestRiskKeyIsTheReferenceKey: two spellings of one reference cannot both
// be in flight or paid, in one batch or two; ı and I can.
func TestRiskKeyIsTheReferenceKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		ctx := context.Background()
		db := openTest(t)
		walkTo(t, db, newBatch(t, db, "A", "REF-ß", "PAY-ı")[0], ledger.StateSucceeded)
		b := newBatch(t, db, "B", "REF-ẞ", "PAY-I")
		if _, err := db.Apply(ctx, step(b[0], ledger.StateCreating)); !errors.Is(err, ledger.ErrReferenceBusy) {
			t.Errorf("REF-ẞ after REF-ß succeeded: got %v, want ErrReferenceBusy", err)
		}
		a := newBatch(t, db, "A2", "PAY-ı")
		walkTo(t, db, a[0], ledger.StateCreating)
		if _, err := db.Apply(ctx, step(b[1], ledger.StateCreating)); err != nil {
			t.Errorf("PAY-I while PAY-ı is in flight: got %v, want it to enter creating", err)
		}
	})
}

// TestRiskKeyMustBeTheReferenceKey: a caller cannot take a risk key of its
// own making (the upper-cased reference, say): only the reference key, or
// an override of it.
func TestRiskKeyMustBeTheReferenceKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		ctx := context.Background()
		db := openTest(t)
		r := newBatch(t, db, "A", "REF-ß")[0]
		if r.ReferenceKey != "ref-ss" {
			t.Errorf("got reference key %q, want ref-ss", r.ReferenceKey)
		}
		for _, key := range []string{"REF-ß", "REF-SS", "ref-s", "other"} {
			c := step(r, ledger.StateCreating)
			c.RiskKey = key
			if _, err := db.Apply(ctx, c); !errors.Is(err, ledger.ErrInvalidChange) {
				t.Errorf("risk key %q: got %v, want ErrInvalidChange", key, err)
			}
		}
		c := step(r, ledger.StateCreating)
		c.RiskKey = "ref-ss#override:A"
		if got, err := db.Apply(ctx, c); err != nil || got.RiskKey != "ref-ss#override:A" {
			t.Errorf("override: got %q, %v; want ref-ss#override:A", got.RiskKey, err)
		}
	})
}

// TestInsertRowsRefusesTwoSpellingsOfOneReference: the ledger itself keeps
// one row per reference key in a batch, whatever the caller checked.
func TestInsertRowsRefusesTwoSpellingsOfOneReference(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		ctx := context.Background()
		db := openTest(t)
		if _, _, err := db.CreateBatch(ctx, ledger.Batch{ID: "b", ManifestName: "b.csv", ManifestSHA256: "sha-b", RowCount: 2}); err != nil {
			t.Fatal(err)
		}
		_, err := db.InsertRows(ctx, "b", seqOf(testRow(2, "ＰＡＹ-１"), testRow(3, "pay-1")))
		if !errors.Is(err, ledger.ErrInvalidChange) {
			t.Fatalf("got %v, want ErrInvalidChange (one reference twice)", err)
		}
		if n, _ := db.CountRows(ctx, "b"); n != 0 {
			t.Errorf("got %d rows, want none written", n)
		}
		// A resumed insert of the same rows is not a repetition.
		if n, err := db.InsertRows(ctx, "b", seqOf(testRow(2, "ＰＡＹ-１"))); err != nil || n != 1 {
			t.Fatalf("got %d, %v; want 1 row", n, err)
		}
		if n, err := db.InsertRows(ctx, "b", seqOf(testRow(2, "ＰＡＹ-１"))); err != nil || n != 0 {
			t.Errorf("insert again: got %d, %v; want 0 new rows", n, err)
		}
	})
}

// TestInsertRowsRefusesACardNumberInAReferenceKey: the ledger stores a
// reference and its key as they are; full-width or circled digits are ASCII
// digits in the key, so a card number there is refused like one written
// plainly.
func TestInsertRowsRefusesACardNumberInAReferenceKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		ctx := context.Background()
		db := openTest(t)
		if _, _, err := db.CreateBatch(ctx, ledger.Batch{ID: "b", ManifestName: "b.csv", ManifestSHA256: "sha-b", RowCount: 1}); err != nil {
			t.Fatal(err)
		}
		for _, ref := range []string{"4242424242424242", "４２４２４２４２４２４２４２４２", "④②④②④②④②④②④②④②④②"} {
			if _, err := db.InsertRows(ctx, "b", seqOf(testRow(2, ref))); !errors.Is(err, ledger.ErrInvalidChange) {
				t.Errorf("reference %q: got %v, want ErrInvalidChange", ref, err)
			}
		}
		if n, _ := db.CountRows(ctx, "b"); n != 0 {
			t.Errorf("got %d rows, want none", n)
		}
	})
}
