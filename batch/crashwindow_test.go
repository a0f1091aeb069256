package batch_test

import (
	"context"
	"testing"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike/sandbox"
)

// The intents below are written straight into the ledger to stand for a
// process that committed an intent and died before sending the call. The
// next engine must find out from Pike what happened, never assume.

func heldBatch(t *testing.T, h *harness) (batch.Result, ledger.Row) {
	t.Helper()
	path := h.manifest("m.csv", row{ref: "C1", amount: "10", card: sandbox.CardMir})
	cfg := h.config()
	cfg.Confirm = batch.ConfirmHold
	res := h.mustRun(path, cfg)
	r, err := h.db.RowByReference(context.Background(), res.Batch.ID, "C1")
	if err != nil {
		t.Fatal(err)
	}
	if r.State != ledger.StateAwaitingConfirm {
		t.Fatalf("got %s, want awaiting_confirm", r.State)
	}
	return res, r
}

func TestCrashAfterConfirmIntentBeforeSending(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	res, r := heldBatch(t, h)
	if _, err := h.db.Apply(context.Background(), ledger.Change{RowID: r.ID, From: r.State, To: ledger.StateConfirming, Reason: "confirm"}); err != nil {
		t.Fatal(err)
	}
	ar, err := batch.Approve(context.Background(), h.db, h.client, res.Batch.ID, batch.SettleOptions{Config: h.config(), Wait: 10 * time.Second, Intake: h.intake})
	if err != nil {
		t.Fatal(err)
	}
	h.expectStates(ar.Batch.ID, map[string]ledger.State{"C1": ledger.StateSucceeded})
	h.expectPaid("C1")
}

func TestCrashAfterCancelIntentBeforeSendingNeverConfirms(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	res, r := heldBatch(t, h)
	if _, err := h.db.Apply(context.Background(), ledger.Change{RowID: r.ID, From: r.State, To: ledger.StateCancelling, Reason: "cancel",
		Failure: &ledger.Failure{Code: ledger.CodeRejected, Description: "rejected"}}); err != nil {
		t.Fatal(err)
	}
	// Even an approve (which confirms whatever is ready) must finish the
	// cancel an operator decided on, never confirm.
	ar, err := batch.Approve(context.Background(), h.db, h.client, res.Batch.ID, batch.SettleOptions{Config: h.config(), Wait: 10 * time.Second, Intake: h.intake})
	if err != nil {
		t.Fatal(err)
	}
	h.expectStates(ar.Batch.ID, map[string]ledger.State{"C1": ledger.StateCancelled})
	h.expectPaid()
}

func TestCrashAfterStartIntentBeforeSending(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	path := h.manifest("m.csv", row{ref: "S1", amount: "10", card: sandbox.CardMir})
	// Make the session exist but never start it: a run whose start fails
	// before applying, then stop it at once.
	sum, err := manifest.ReadFile(path, manifest.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := batch.Prepare(context.Background(), h.db, path, manifest.Options{}, sum, "", h.fp, batch.BatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r, _ := h.db.RowByReference(context.Background(), b.ID, "S1")
	// planned → creating (attempt 1) → created with a real session → starting, never sent.
	keys := map[string]string{"session/create": batch.IdempotencyKey(b.ID, "S1", 1, "session/create")}
	if r, err = h.db.Apply(context.Background(), ledger.Change{RowID: r.ID, From: r.State, To: ledger.StateCreating, Reason: "attempt", NewAttempt: keys}); err != nil {
		t.Fatal(err)
	}
	sess, err := h.client.CreateSession(context.Background(), keys["session/create"], pikeCreate(b.ID, r))
	if err != nil {
		t.Fatal(err)
	}
	if r, err = h.db.Apply(context.Background(), ledger.Change{RowID: r.ID, From: r.State, To: ledger.StateCreated, Reason: "create_ok", SessionID: sess.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err = h.db.Apply(context.Background(), ledger.Change{RowID: r.ID, From: r.State, To: ledger.StateStarting, Reason: "start"}); err != nil {
		t.Fatal(err)
	}
	res := h.mustRun(path, h.config())
	h.expectStates(res.Batch.ID, map[string]ledger.State{"S1": ledger.StateSucceeded})
	h.expectPaid("S1")
	if n := len(h.sb.SessionsFor("S1")); n != 1 {
		t.Errorf("got %d sessions for S1, want 1: the existing session is started, not replaced", n)
	}
}
