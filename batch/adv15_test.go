package batch_test

import (
	"context"
	"testing"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike/sandbox"
)

// TestApproveConfirmsOnlyRowsWaiting: Approve without Config.Only (the web
// console's approval of a CLI batch) confirms the rows waiting for
// confirmation when it starts, not a row still in flight after a crash
// that becomes ready while Approve carries the batch on: nobody approved
// that one; it stays held.
func TestApproveConfirmsOnlyRowsWaiting(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	path := h.manifest("m.csv", row{ref: "H1", amount: "10", card: sandbox.CardMir}, row{ref: "LATE", amount: "999999", card: sandbox.CardVisa})
	// LATE's start/payout is applied, its answer held back.
	h.sb.Inject(sandbox.Rule{Method: "session/start/payout", Reference: "LATE", Fault: sandbox.FaultSlowAnswer, Delay: 3 * time.Second})
	cfg := h.config()
	cfg.Confirm = batch.ConfirmHold
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	var id string
	go func() {
		defer close(done)
		res, _ := h.run(ctx, path, cfg)
		id = res.Batch.ID
	}()
	poll.Until(t, "H1 held and LATE being started", func() bool {
		bs, err := h.db.Batches(context.Background())
		if err != nil || len(bs) != 1 {
			return false
		}
		st := h.states(bs[0].ID)
		return st["H1"] == ledger.StateAwaitingConfirm && st["LATE"] == ledger.StateStarting
	})
	cancel() // the crash
	<-done
	if id == "" {
		bs, _ := h.db.Batches(context.Background())
		id = bs[0].ID
	}
	if st := h.states(id); st["LATE"] == ledger.StateAwaitingConfirm {
		t.Fatalf("LATE is held already: nothing to test (%v)", st)
	}
	if _, err := batch.Approve(context.Background(), h.db, h.client, id, batch.SettleOptions{Config: h.config(), Wait: 20 * time.Second, Intake: h.intake}); err != nil {
		t.Fatal(err)
	}
	h.expectStates(id, map[string]ledger.State{"H1": ledger.StateSucceeded, "LATE": ledger.StateAwaitingConfirm})
	h.expectPaid("H1")
}
