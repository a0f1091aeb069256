package ledger_test

import (
	"context"
	"errors"
	"testing"

	"github.com/payouts/payouts/ledger"
)

func TestAdoptFingerprintKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		ctx := context.Background()
		db := openTest(t)
		if id, err := db.FingerprintKeyID(ctx); err != nil || id != "" {
			t.Fatalf("new ledger: got key id %q, %v; want none", id, err)
		}
		for range 2 { // idempotent
			if err := db.AdoptFingerprintKey(ctx, "k1"); err != nil {
				t.Fatalf("adopt on an empty ledger: %v", err)
			}
		}
		if id, _ := db.FingerprintKeyID(ctx); id != "k1" {
			t.Errorf("got key id %q, want k1", id)
		}
		if err := db.AdoptFingerprintKey(ctx, "k2"); !errors.Is(err, ledger.ErrConflict) {
			t.Errorf("adopt another key: got %v, want ErrConflict", err)
		}

		legacy := openTest(t)
		newBatch(t, legacy, "b", "R1")
		if err := legacy.AdoptFingerprintKey(ctx, "k1"); !errors.Is(err, ledger.ErrLegacyFingerprints) {
			t.Errorf("adopt on a ledger with rows and no key id: got %v, want ErrLegacyFingerprints", err)
		}
	})
}

func TestMigrateFingerprints(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		ctx := context.Background()
		db := openTest(t)
		rows := newBatch(t, db, "b", "DONE", "FAILED", "OPEN")
		walkTo(t, db, rows[0], ledger.StateSucceeded)
		walkTo(t, db, rows[1], ledger.StateFailed)
		walkTo(t, db, rows[2], ledger.StateAwaitingConfirm)

		_, err := db.MigrateFingerprints(ctx, "k1")
		var ue *ledger.UnfinishedRowsError
		if !errors.As(err, &ue) || len(ue.Batches) != 1 || ue.Batches[0] != (ledger.UnfinishedBatch{ID: "b", Rows: 1}) {
			t.Fatalf("with a row in flight: got %v, want an UnfinishedRowsError naming batch b, 1 row", err)
		}
		if id, _ := db.FingerprintKeyID(ctx); id != "" {
			t.Fatalf("a refused migration recorded key id %q", id)
		}
		if r, _ := db.RowByReference(ctx, "b", "DONE"); r.CardFingerprint == "" {
			t.Fatal("a refused migration cleared fingerprints")
		}

		open, _ := db.RowByReference(ctx, "b", "OPEN")
		for _, to := range []ledger.State{ledger.StateConfirming, ledger.StateConfirmed, ledger.StateSucceeded} {
			if open, err = db.Apply(ctx, ledger.Change{RowID: open.ID, From: open.State, To: to, Reason: "test"}); err != nil {
				t.Fatal(err)
			}
		}
		n, err := db.MigrateFingerprints(ctx, "k1")
		if err != nil || n != 3 {
			t.Fatalf("migrate: got %d, %v; want 3 cleared", n, err)
		}
		for _, ref := range []string{"DONE", "FAILED", "OPEN"} {
			if r, _ := db.RowByReference(ctx, "b", ref); r.CardFingerprint != "" || r.CardLast4 != "4242" {
				t.Errorf("%s: fingerprint %q, last4 %q; want cleared, last4 kept", ref, r.CardFingerprint, r.CardLast4)
			}
		}
		if id, _ := db.FingerprintKeyID(ctx); id != "k1" {
			t.Errorf("got key id %q, want k1", id)
		}
		evs, _ := db.Events(ctx, "b", 0)
		if last := evs[len(evs)-1]; last.Reason != "fingerprints_cleared" {
			t.Errorf("last batch event %q, want fingerprints_cleared", last.Reason)
		}
		if n, err := db.MigrateFingerprints(ctx, "k1"); err != nil || n != 0 {
			t.Errorf("again: got %d, %v; want 0, nil", n, err)
		}
		if _, err := db.MigrateFingerprints(ctx, "k2"); !errors.Is(err, ledger.ErrConflict) {
			t.Errorf("to another key: got %v, want ErrConflict", err)
		}
	})
}
