package batch_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/batch/report"
	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

func TestRunHappyPath(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	path := h.manifest("m.csv",
		row{ref: "EMP-1", amount: "1500.50", card: sandbox.CardMir},
		row{ref: "EMP-2", amount: "2 000,00", card: sandbox.CardVisa, name: "John Smith"},
		row{ref: "EMP-3", amount: "99.99", currency: "EUR", card: sandbox.CardMastercard},
	)
	res := h.mustRun(path, h.config())
	if !res.OK() || res.Counts[ledger.StateSucceeded] != 3 {
		t.Fatalf("got counts %v, want 3 succeeded", res.Counts)
	}
	h.expectPaid("EMP-1", "EMP-2", "EMP-3")
	h.scanForPANs()

	// The same manifest again is the same batch: nothing is paid twice.
	res2 := h.mustRun(path, h.config())
	if res2.Batch.ID != res.Batch.ID || res2.Created {
		t.Fatalf("got batch %s (created %v), want the same batch %s resumed", res2.Batch.ID, res2.Created, res.Batch.ID)
	}
	h.expectPaid("EMP-1", "EMP-2", "EMP-3")
}

// everyOutcomeRows is a manifest whose rows end in every outcome the
// sandbox's test cards give: everyOutcomeStates, with everyOutcomePaid paid.
func everyOutcomeRows() []row {
	return []row{
		{ref: "OK", amount: "100", card: sandbox.CardMir},
		{ref: "NOCARD", amount: "100", card: sandbox.CardNotExist},
		{ref: "LIMIT", amount: "100", card: sandbox.CardExceedsLimit},
		{ref: "ERR", amount: "100", card: sandbox.CardSessionError},
		{ref: "MISMATCH", amount: "100", card: sandbox.CardMismatch},
		{ref: "EXPIRED", amount: "100", card: sandbox.CardExpired},
		{ref: "POLLED", amount: "100", card: sandbox.CardNoWebhooks},
		{ref: "SLOW", amount: "100", card: sandbox.CardSlow},
	}
}

// everyOutcomeStates is the final state of each row of everyOutcomeRows.
func everyOutcomeStates() map[string]ledger.State {
	return map[string]ledger.State{
		"OK": ledger.StateSucceeded, "NOCARD": ledger.StateFailed, "LIMIT": ledger.StateFailed,
		"ERR": ledger.StateReview, "MISMATCH": ledger.StateMismatch, "EXPIRED": ledger.StateFailed,
		"POLLED": ledger.StateSucceeded, "SLOW": ledger.StateSucceeded,
	}
}

// everyOutcomePaid are the references of everyOutcomeRows Pike pays.
var everyOutcomePaid = []string{"OK", "POLLED", "SLOW"}

func TestRunEveryOutcome(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	path := h.manifest("m.csv", everyOutcomeRows()...)
	res := h.mustRun(path, h.config())
	h.expectStates(res.Batch.ID, everyOutcomeStates())
	h.expectPaid(everyOutcomePaid...)
	if res.OK() {
		t.Fatal("got OK for a batch with failures, want not OK")
	}
	mm, err := h.db.RowByReference(context.Background(), res.Batch.ID, "MISMATCH")
	if err != nil {
		t.Fatal(err)
	}
	if mm.FailureCode != ledger.CodeMismatch || !strings.Contains(mm.FailureDescription, "amount") {
		t.Errorf("mismatch row: got failure %q %q, want code mismatch naming the amount", mm.FailureCode, mm.FailureDescription)
	}
	ex, _ := h.db.RowByReference(context.Background(), res.Batch.ID, "EXPIRED")
	if ex.FailureCode != "bank_card_expired" {
		t.Errorf("expired row: got failure code %q, want bank_card_expired", ex.FailureCode)
	}
	h.scanForPANs()
}

func TestRunLostResponses(t *testing.T) {
	for _, method := range []string{pike.MethodSessionCreate, pike.MethodStartPayout, pike.MethodConfirm} {
		for _, fault := range []sandbox.Fault{sandbox.FaultDropAfterApply, sandbox.FaultFailAfterApply, sandbox.FaultFailBeforeApply} {
			t.Run(method+"/"+fault.String(), func(t *testing.T) {
				h := newHarness(t, sandbox.Config{})
				path := h.manifest("m.csv", row{ref: "R1", amount: "10", card: sandbox.CardVisa}, row{ref: "R2", amount: "20", card: sandbox.CardMir})
				h.sb.Inject(sandbox.Rule{Method: method, Reference: "R1", Fault: fault})
				res := h.mustRun(path, h.config())
				h.expectStates(res.Batch.ID, map[string]ledger.State{"R1": ledger.StateSucceeded, "R2": ledger.StateSucceeded})
				h.expectPaid("R1", "R2")
			})
		}
	}
}

func TestRunSingleFlowLostInit(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	path := h.manifest("m.csv", row{ref: "R1", amount: "10", card: sandbox.CardVisa}, row{ref: "R2", amount: "20", card: sandbox.CardMir})
	h.sb.Inject(sandbox.Rule{Method: pike.MethodInitPayout, Reference: "R1", Fault: sandbox.FaultDropAfterApply})
	cfg := h.config()
	cfg.Flow = batch.FlowSingle
	res := h.mustRun(path, cfg)
	h.expectStates(res.Batch.ID, map[string]ledger.State{"R1": ledger.StateSucceeded, "R2": ledger.StateSucceeded})
	h.expectPaid("R1", "R2")
	if n := len(h.sb.SessionsFor("R1")); n != 1 {
		t.Errorf("got %d sessions for R1, want 1: a lost init must never be sent again", n)
	}
}

func TestRunWebhookFaults(t *testing.T) {
	tests := []struct {
		name   string
		faults sandbox.Faults
	}{
		{"duplicated", sandbox.Faults{DuplicateWebhooks: 1}},
		{"reordered", sandbox.Faults{ReorderWebhooks: 0.5}},
		{"dropped: polling finishes the job", sandbox.Faults{DropWebhooks: 1}},
		{"delayed", sandbox.Faults{WebhookDelay: 150 * time.Millisecond}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, sandbox.Config{Faults: tt.faults, Seed: 7})
			var rows []row
			var refs []string
			for i := range 12 {
				ref := "W" + string(rune('A'+i))
				rows = append(rows, row{ref: ref, amount: "1" + string(rune('0'+i%10)), card: sandbox.CardMir})
				refs = append(refs, ref)
			}
			rows = append(rows, row{ref: "MM", amount: "5", card: sandbox.CardMismatch})
			res := h.mustRun(h.manifest("m.csv", rows...), h.config())
			if got := res.Counts[ledger.StateSucceeded]; got != 12 {
				t.Errorf("got %d succeeded (%v), want 12", got, res.Counts)
			}
			h.expectStates(res.Batch.ID, map[string]ledger.State{"MM": ledger.StateMismatch})
			h.expectPaid(refs...)
		})
	}
}

func TestWebhookWithBadSignatureIsRejectedAndChangesNothing(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	body := []byte(`{"type":"payment_finished","session":{"id":"ps_1","status":"accepted","payments":[{"id":"po_1","status":"succeeded"}]}}`)
	forger := mustKey()
	sig, err := forger.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{sig, "", "bm90IGEgc2lnbmF0dXJl"} {
		req, _ := http.NewRequest(http.MethodPost, h.hooks.URL+"/webhooks/pike", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json") // as Pike sends it: only the signature is wrong
		if s != "" {
			req.Header.Set(pike.HeaderSign, s)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("signature %q: got HTTP %d, want 401", s, resp.StatusCode)
		}
	}
	if ws, err := h.db.WebhooksForSession(context.Background(), "ps_1"); err != nil || len(ws) != 0 {
		t.Fatalf("got %d stored webhooks (err %v), want none", len(ws), err)
	}
}

func TestWebhookForUnknownSessionIsStoredNeverActedOn(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	path := h.manifest("m.csv", row{ref: "R1", amount: "10", card: sandbox.CardVisa})
	res := h.mustRun(path, h.config())
	body := []byte(`{"type":"ready_to_confirm","session":{"id":"ps_999","status":"in_progress","next_action":"confirm","payments":[{"id":"po_9","status":"pending","amount_details":{"amount":1000,"currency":"rub"},"customer":{"reference":"R1"},"metadata":"someone else"}]}}`)
	sig, _ := pikeKey.Sign(body)
	req, _ := http.NewRequest(http.MethodPost, h.hooks.URL+"/webhooks/pike", bytes.NewReader(body))
	req.Header.Set(pike.HeaderSign, sig)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got HTTP %d, want 200 for a verified webhook", resp.StatusCode)
	}
	h.mustRun(path, h.config()) // a resumed run sees it and does nothing with it
	h.expectPaid("R1")
	ws, _ := h.db.WebhooksForSession(context.Background(), "ps_999")
	if len(ws) != 1 {
		t.Fatalf("got %d stored webhooks for ps_999, want 1", len(ws))
	}
	sum, err := report.BuildSummary(context.Background(), h.db, res.Batch.ID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, f := range sum.Findings {
		found = found || (f.Kind == report.FindingUnmatchedSession && f.SessionID == "ps_999")
	}
	if !found {
		t.Errorf("report findings %+v lack the unknown session ps_999", sum.Findings)
	}
}

func TestInterruptThenResume(t *testing.T) {
	h := newHarness(t, sandbox.Config{Faults: sandbox.Faults{Latency: 20 * time.Millisecond}})
	var rows []row
	var refs []string
	for i := range 40 {
		ref := "I" + string(rune('A'+i/26)) + string(rune('A'+i%26))
		rows = append(rows, row{ref: ref, amount: "100", card: sandbox.CardMir, name: ref})
		refs = append(refs, ref)
	}
	path := h.manifest("m.csv", rows...)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(150*time.Millisecond, cancel)
	cfg := h.config()
	res, err := h.run(ctx, path, cfg)
	if err != nil {
		t.Fatalf("interrupted run: %v", err)
	}
	if !res.Interrupted {
		t.Fatalf("got a run that was not interrupted (%v); the test needs a slower sandbox", res.Counts)
	}
	res = h.mustRun(path, cfg)
	if got := res.Counts[ledger.StateSucceeded]; got != 40 {
		t.Fatalf("after resume got %v, want 40 succeeded", res.Counts)
	}
	h.expectPaid(refs...)
}

func TestRerunFailedRowsWithCorrectedManifest(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	path := h.manifest("m.csv",
		row{ref: "GOOD", amount: "100", card: sandbox.CardMir},
		row{ref: "BAD", amount: "100", card: sandbox.CardNotExist},
		row{ref: "ERR", amount: "100", card: sandbox.CardSessionError},
	)
	res := h.mustRun(path, h.config())
	h.expectStates(res.Batch.ID, map[string]ledger.State{"GOOD": ledger.StateSucceeded, "BAD": ledger.StateFailed, "ERR": ledger.StateReview})

	// A correction to a paid row is refused with the row and why, and
	// nothing of the rerun happens: it is never silently dropped.
	paidChanged := h.manifest("paid-changed.csv",
		row{ref: "GOOD", amount: "999", card: sandbox.CardVisa},
		row{ref: "BAD", amount: "120", card: sandbox.CardVisa},
		row{ref: "ERR", amount: "100", card: sandbox.CardMir},
	)
	h.amounts["GOOD"], h.cards["GOOD"] = 10000, sandbox.CardMir // what was paid the first time
	_, plan, err := batch.Rerun(context.Background(), h.db, h.client, batch.RerunOptions{
		BatchID: res.Batch.ID, Manifest: paidChanged,
		SettleOptions: batch.SettleOptions{Config: h.config(), Wait: 20 * time.Second, Intake: h.intake},
	})
	if !errors.Is(err, batch.ErrCorrectionsNotApplied) {
		t.Fatalf("rerun correcting a paid row: got %v, want ErrCorrectionsNotApplied", err)
	}
	if len(plan.NotApplied) != 2 || plan.NotApplied[0].Row.Reference != "GOOD" || len(plan.NotApplied[0].Changes) != 2 ||
		plan.NotApplied[1].Row.Reference != "ERR" || plan.NotApplied[0].Why == "" {
		t.Fatalf("got not applied %+v, want GOOD (amount, card) and ERR (card), each with why", plan.NotApplied)
	}
	h.expectStates(res.Batch.ID, map[string]ledger.State{"GOOD": ledger.StateSucceeded, "BAD": ledger.StateFailed, "ERR": ledger.StateReview})
	h.expectPaid("GOOD")

	fixed := h.manifest("fixed.csv",
		row{ref: "GOOD", amount: "100", card: sandbox.CardMir},
		row{ref: "BAD", amount: "120", card: sandbox.CardVisa},
		row{ref: "ERR", amount: "100", card: sandbox.CardSessionError},
	)
	h.amounts["GOOD"], h.cards["GOOD"] = 10000, sandbox.CardMir
	rr, plan, err := batch.Rerun(context.Background(), h.db, h.client, batch.RerunOptions{
		BatchID: res.Batch.ID, Manifest: fixed,
		SettleOptions: batch.SettleOptions{Config: h.config(), Wait: 20 * time.Second, Intake: h.intake},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Retried) != 1 || plan.Retried[0].Row.Reference != "BAD" || len(plan.Retried[0].Changes) != 2 {
		t.Fatalf("got retried %+v, want BAD with amount and card changes", plan.Retried)
	}
	if len(plan.Kept) != 1 || plan.Kept[0].Reference != "ERR" {
		t.Errorf("got kept %+v, want ERR (review is never retried)", plan.Kept)
	}
	if len(plan.NotApplied) != 0 {
		t.Errorf("got not applied %+v, want none", plan.NotApplied)
	}
	h.expectStates(rr.Batch.ID, map[string]ledger.State{"GOOD": ledger.StateSucceeded, "BAD": ledger.StateSucceeded, "ERR": ledger.StateReview})
	h.expectPaid("GOOD", "BAD")
	bad, _ := h.db.RowByReference(context.Background(), res.Batch.ID, "BAD")
	if bad.Attempt != 2 || bad.Amount != 12000 || bad.CardLast4 != "4242" {
		t.Errorf("got BAD attempt %d amount %d last4 %s, want attempt 2, 12000, 4242", bad.Attempt, bad.Amount, bad.CardLast4)
	}
}

func TestHoldThenApprove(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	path := h.manifest("m.csv", row{ref: "H1", amount: "10", card: sandbox.CardMir}, row{ref: "H2", amount: "20", card: sandbox.CardVisa},
		row{ref: "HM", amount: "30", card: sandbox.CardMismatch})
	cfg := h.config()
	cfg.Confirm = batch.ConfirmHold
	res := h.mustRun(path, cfg)
	if res.Held != 2 {
		t.Fatalf("got %d held rows (%v), want 2", res.Held, res.Counts)
	}
	h.expectStates(res.Batch.ID, map[string]ledger.State{"H1": ledger.StateAwaitingConfirm, "H2": ledger.StateAwaitingConfirm, "HM": ledger.StateMismatch})
	h.expectPaid()

	ar, err := batch.Approve(context.Background(), h.db, h.client, res.Batch.ID, batch.SettleOptions{Config: h.config(), Wait: 20 * time.Second, Intake: h.intake})
	if err != nil {
		t.Fatal(err)
	}
	h.expectStates(ar.Batch.ID, map[string]ledger.State{"H1": ledger.StateSucceeded, "H2": ledger.StateSucceeded, "HM": ledger.StateMismatch})
	h.expectPaid("H1", "H2")
}

func TestHoldThenReject(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	path := h.manifest("m.csv", row{ref: "H1", amount: "10", card: sandbox.CardMir}, row{ref: "H2", amount: "20", card: sandbox.CardVisa})
	cfg := h.config()
	cfg.Confirm = batch.ConfirmHold
	res := h.mustRun(path, cfg)
	rr, err := batch.Reject(context.Background(), h.db, h.client, res.Batch.ID, batch.SettleOptions{Config: h.config(), Wait: 20 * time.Second, Intake: h.intake})
	if err != nil {
		t.Fatal(err)
	}
	h.expectStates(rr.Batch.ID, map[string]ledger.State{"H1": ledger.StateCancelled, "H2": ledger.StateCancelled})
	h.expectPaid()
	// Rejected rows can be paid later with a rerun.
	_, plan, err := batch.Rerun(context.Background(), h.db, h.client, batch.RerunOptions{BatchID: res.Batch.ID,
		SettleOptions: batch.SettleOptions{Config: h.config(), Wait: 20 * time.Second, Intake: h.intake}})
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Retried) != 2 {
		t.Fatalf("got %d retried, want 2", len(plan.Retried))
	}
	h.expectPaid("H1", "H2")
}

func TestSecondRunnerIsRefused(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	path := h.manifest("m.csv", row{ref: "R1", amount: "10", card: sandbox.CardMir})
	sum, err := manifest.ReadFile(path, manifest.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := batch.BatchIDFor(sum.SHA256)
	if _, _, err := batch.Prepare(context.Background(), h.db, path, manifest.Options{}, sum, id, h.fp, batch.BatchOptions{}); err != nil {
		t.Fatal(err)
	}
	// A live process (this one) holds the lease under another owner name.
	lease, err := h.db.AcquireLease(context.Background(), id, ledger.CurrentOwner("other runner"), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer lease.Release(context.Background())
	_, err = h.run(context.Background(), path, h.config())
	if !errors.Is(err, ledger.ErrLeaseHeld) {
		t.Fatalf("got %v, want ErrLeaseHeld", err)
	}
	h.expectPaid()
}

func TestReferencePaidInAnotherBatchIsSkipped(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	first := h.manifest("a.csv", row{ref: "PAY-1", amount: "10", card: sandbox.CardMir})
	h.mustRun(first, h.config())
	second := h.manifest("b.csv", row{ref: "PAY-1", amount: "10", card: sandbox.CardMir}, row{ref: "PAY-2", amount: "20", card: sandbox.CardVisa})
	res := h.mustRun(second, h.config())
	h.expectStates(res.Batch.ID, map[string]ledger.State{"PAY-1": ledger.StateSkipped, "PAY-2": ledger.StateSucceeded})
	if !res.OK() {
		t.Errorf("got not OK with counts %v, want OK (skipped rows were paid before)", res.Counts)
	}
	h.expectPaid("PAY-1", "PAY-2")

	// The same reference in another letter case is the same payee.
	third := h.manifest("c.csv", row{ref: "pay-1", amount: "10", card: sandbox.CardMir})
	res = h.mustRun(third, h.config())
	h.expectStates(res.Batch.ID, map[string]ledger.State{"pay-1": ledger.StateSkipped})
	h.expectPaid("PAY-1", "PAY-2")
}

func TestRateLimitedPikeIsBackedOff(t *testing.T) {
	h := newHarness(t, sandbox.Config{Faults: sandbox.Faults{RateLimit: 0.3}, Seed: 3},
		pike.WithRetryPolicy(pike.RetryPolicy{MaxAttempts: 8, BaseDelay: 5 * time.Millisecond, MaxDelay: 50 * time.Millisecond}))
	var rows []row
	var refs []string
	for i := range 6 {
		ref := "RL" + string(rune('A'+i))
		rows = append(rows, row{ref: ref, amount: "1" + string(rune('0'+i)), card: sandbox.CardMir})
		refs = append(refs, ref)
	}
	res := h.mustRun(h.manifest("m.csv", rows...), h.config())
	if res.Counts[ledger.StateSucceeded] != 6 {
		t.Fatalf("got %v, want 6 succeeded", res.Counts)
	}
	if h.sb.Stats().Faults[sandbox.FaultRateLimit.String()] == 0 {
		t.Fatal("no 429 was sent; the test proves nothing")
	}
	h.expectPaid(refs...)
}

func TestServeFinishesWhatARunLeftInFlight(t *testing.T) {
	h := newHarness(t, sandbox.Config{SlowDelay: 600 * time.Millisecond})
	path := h.manifest("m.csv", row{ref: "FAST", amount: "10", card: sandbox.CardMir}, row{ref: "SLOW", amount: "20", card: sandbox.CardSlow})
	sum, err := manifest.ReadFile(path, manifest.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The run gives up waiting long before the slow payout is ready.
	res, err := batch.Run(context.Background(), h.db, h.client, batch.RunOptions{
		Manifest: path, Summary: sum, Config: h.config(), Wait: 100 * time.Millisecond, Intake: h.intake,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Counts.Open() == 0 {
		t.Fatalf("got no rows in flight (%v); the test needs a slower card", res.Counts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- batch.Serve(ctx, h.db, h.client, batch.SettleOptions{Config: h.config(), Intake: h.intake}, 50*time.Millisecond)
	}()
	poll.Until(t, "both rows succeeded under serve", func() bool {
		n, _ := h.db.CountRows(context.Background(), res.Batch.ID, ledger.StateSucceeded)
		return n == 2
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	h.expectStates(res.Batch.ID, map[string]ledger.State{"FAST": ledger.StateSucceeded, "SLOW": ledger.StateSucceeded})
	h.expectPaid("FAST", "SLOW")
}

// supersededSetup pays R1's first attempt into a Pike session error
// (not final: support resolves it later), has an operator call the row
// failed, and reruns it with card; cfg is the batch's configuration (a
// held batch is approved once, so that attempt 1 is confirmed). It
// returns the batch id and attempt 1's session.
func supersededSetup(t *testing.T, h *harness, card string, cfg batch.Config) (string, string) {
	t.Helper()
	ctx := context.Background()
	path := h.manifest("m.csv", row{ref: "R1", amount: "10", card: sandbox.CardSessionError})
	res := h.mustRun(path, cfg)
	if cfg.Confirm == batch.ConfirmHold {
		if _, err := batch.Approve(ctx, h.db, h.client, res.Batch.ID, batch.SettleOptions{Config: h.config(), Wait: 10 * time.Second, Intake: h.intake}); err != nil {
			t.Fatal(err)
		}
	}
	r1 := h.row(res.Batch.ID, "R1")
	if r1.State != ledger.StateReview {
		t.Fatalf("attempt 1: got %s, want review (session error)", r1.State)
	}
	// A person decides (wrongly, as it turns out) that nothing was paid.
	if _, err := h.db.Apply(ctx, ledger.Change{RowID: r1.ID, From: ledger.StateReview, To: ledger.StateFailed,
		Reason: "operator", Operator: "test operator", Detail: "decided not paid"}); err != nil {
		t.Fatal(err)
	}
	fixed := h.manifest("fixed.csv", row{ref: "R1", amount: "10", card: card})
	if _, _, err := batch.Rerun(ctx, h.db, h.client, batch.RerunOptions{BatchID: res.Batch.ID, Manifest: fixed,
		SettleOptions: batch.SettleOptions{Config: cfg, Wait: 10 * time.Second, Intake: h.intake}}); err != nil {
		t.Fatal(err)
	}
	return res.Batch.ID, r1.SessionID
}

// resolveAndSettle has Pike's support settle session as paid, then lets
// `payouts serve` apply the news until R1 is in want.
func resolveAndSettle(t *testing.T, h *harness, id, session string, want ledger.State) ledger.Row {
	t.Helper()
	if err := h.sb.ResolveSessionError(session, true); err != nil {
		t.Fatal(err)
	}
	serve(t, h, id, "R1", want)
	return h.row(id, "R1")
}

// TestSupersededAttemptSuccessGoesToReview: an earlier attempt that Pike
// later reports paid (support resolving a session error) makes the row
// paid for good, whatever state its live attempt left it in: review,
// never rerun, the reference never paid again (issue 13, finding 1).
func TestSupersededAttemptSuccessGoesToReview(t *testing.T) {
	t.Run("row failed", func(t *testing.T) {
		// The rerun's attempt 2 fails; the row is failed, rerunnable, when
		// attempt 1's success arrives. Before the fix it stayed failed and
		// a second rerun paid R1 again.
		h := newHarness(t, sandbox.Config{})
		id, s1 := supersededSetup(t, h, sandbox.CardNotExist, h.config())
		got := resolveAndSettle(t, h, id, s1, ledger.StateReview)
		if got.FailureCode != ledger.CodeSupersededSuccess {
			t.Errorf("got failure %q, want %s", got.FailureCode, ledger.CodeSupersededSuccess)
		}
		// A corrected card for the row in review is refused, not retried.
		fixed := h.manifest("fixed-again.csv", row{ref: "R1", amount: "10", card: sandbox.CardMir})
		_, plan, err := batch.Rerun(context.Background(), h.db, h.client, batch.RerunOptions{BatchID: id, Manifest: fixed,
			SettleOptions: batch.SettleOptions{Config: h.config(), Wait: 5 * time.Second, Intake: h.intake}})
		if !errors.Is(err, batch.ErrCorrectionsNotApplied) || len(plan.NotApplied) != 1 || plan.NotApplied[0].Row.Reference != "R1" {
			t.Fatalf("rerun correcting R1 in review: got %v, not applied %+v; want ErrCorrectionsNotApplied naming R1", err, plan.NotApplied)
		}
		if len(plan.Retried) != 0 {
			t.Errorf("rerun retried %d rows, want none", len(plan.Retried))
		}
		// The row as recorded: nothing to retry either.
		same := h.manifest("same.csv", row{ref: "R1", amount: "10", card: sandbox.CardNotExist})
		_, plan, err = batch.Rerun(context.Background(), h.db, h.client, batch.RerunOptions{BatchID: id, Manifest: same,
			SettleOptions: batch.SettleOptions{Config: h.config(), Wait: 5 * time.Second, Intake: h.intake}})
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Retried) != 0 {
			t.Errorf("rerun retried %d rows, want none", len(plan.Retried))
		}
		h.expectStates(id, map[string]ledger.State{"R1": ledger.StateReview})
		h.amounts["R1"], h.cards["R1"] = 1000, sandbox.CardSessionError
		h.expectPaid("R1") // once: by attempt 1
	})
	t.Run("live attempt cancelled by Pike's deadline", func(t *testing.T) {
		// Attempt 2 waits for approval when attempt 1's success arrives;
		// then Pike cancels attempt 2 at its confirm deadline. Before the
		// fix the row went review → cancelled, freed the reference, and a
		// rerun paid it again.
		h := newHarness(t, sandbox.Config{ConfirmDeadline: time.Second})
		cfg := h.config()
		cfg.Confirm = batch.ConfirmHold
		id, s1 := supersededSetup(t, h, sandbox.CardMir, cfg)
		got := resolveAndSettle(t, h, id, s1, ledger.StateReview)
		live := got.SessionID
		poll.Until(t, "Pike cancels the unconfirmed attempt 2", func() bool {
			s, ok := h.sb.Session(live)
			return ok && s.Status == pike.SessionCancelled
		})
		serveUntilApplied(t, h, id)
		h.expectStates(id, map[string]ledger.State{"R1": ledger.StateReview})
		fixed := h.manifest("fixed-again.csv", row{ref: "R1", amount: "10", card: sandbox.CardMir})
		if _, _, err := batch.Rerun(context.Background(), h.db, h.client, batch.RerunOptions{BatchID: id, Manifest: fixed,
			SettleOptions: batch.SettleOptions{Config: h.config(), Wait: 5 * time.Second, Intake: h.intake}}); err != nil {
			t.Fatal(err)
		}
		h.expectStates(id, map[string]ledger.State{"R1": ledger.StateReview})
		h.amounts["R1"], h.cards["R1"] = 1000, sandbox.CardSessionError
		h.expectPaid("R1")
	})
}

// A manifest edited between validation and the run is refused before a
// row is written or paid: a changed amount by its SHA-256, a repeated row
// (which validation would refuse) by the ledger's own uniqueness check,
// since the passes after validation do not keep a duplicate set.
func TestManifestChangedAfterValidationIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(body string) string
		want error
	}{
		{"amount changed", func(body string) string { return strings.Replace(body, ",10,", ",10000,", 1) }, batch.ErrManifestChanged},
		{"row repeated", func(body string) string { return body + strings.SplitAfter(body, "\n")[1] }, ledger.ErrInvalidChange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, sandbox.Config{})
			path := h.manifest("a.csv", row{ref: "PAY-1", amount: "10", card: sandbox.CardMir}, row{ref: "PAY-2", amount: "20", card: sandbox.CardVisa})
			mopts := manifest.Options{}
			sum, err := manifest.ReadFile(path, mopts, nil)
			if err != nil {
				t.Fatal(err)
			}
			body, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			edited := tc.edit(string(body))
			if edited == string(body) {
				t.Fatal("edit changed nothing")
			}
			if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err = batch.Run(context.Background(), h.db, h.client, batch.RunOptions{
				Manifest: path, ManifestOptions: mopts, Summary: sum, Config: h.config(), Wait: 5 * time.Second, Intake: h.intake,
			})
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if got := h.states(batch.BatchIDFor(sum.SHA256)); len(got) != 0 {
				t.Errorf("rows written from a changed manifest: %v", got)
			}
			h.expectPaid()
		})
	}
}

// TestApproveRejectSomeRows: Config.Only limits approve and reject to some
// rows (the others stay held), Config.Actor names who decided in the
// events and in a rejection's failure, and RecheckRows runs the confirm
// check without changing anything.
func TestApproveRejectSomeRows(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	path := h.manifest("m.csv", row{ref: "H1", amount: "10", card: sandbox.CardMir}, row{ref: "H2", amount: "20", card: sandbox.CardVisa},
		row{ref: "H3", amount: "30", card: sandbox.CardMir})
	cfg := h.config()
	cfg.Confirm = batch.ConfirmHold
	res := h.mustRun(path, cfg)
	id := res.Batch.ID
	ctx := context.Background()
	rowOf := func(ref string) ledger.Row {
		t.Helper()
		r, err := h.db.RowByReference(ctx, id, ref)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	// The confirm check as approve would run it: every session matches; a
	// row whose amount differs from its session is refused, naming it.
	h1, h2 := rowOf("H1"), rowOf("H2")
	changed := h2
	changed.Amount += 100
	checks := batch.RecheckRows(ctx, h.client, id, []ledger.Row{h1, changed})
	if checks[0].Refused != "" || checks[0].Err != nil {
		t.Errorf("H1: got refused %q, err %v; want the check to pass", checks[0].Refused, checks[0].Err)
	}
	if !strings.Contains(checks[1].Refused, "amount") {
		t.Errorf("H2 with another amount: got refused %q, want the amount named", checks[1].Refused)
	}
	h.expectStates(id, map[string]ledger.State{"H1": ledger.StateAwaitingConfirm, "H2": ledger.StateAwaitingConfirm, "H3": ledger.StateAwaitingConfirm})

	acfg := h.config()
	acfg.Only, acfg.Actor = []int64{h1.ID}, "Anna"
	ar, err := batch.Approve(ctx, h.db, h.client, id, batch.SettleOptions{Config: acfg, Wait: 20 * time.Second, Intake: h.intake})
	if err != nil {
		t.Fatal(err)
	}
	h.expectStates(id, map[string]ledger.State{"H1": ledger.StateSucceeded, "H2": ledger.StateAwaitingConfirm, "H3": ledger.StateAwaitingConfirm})
	h.expectPaid("H1")
	if ar.Held != 2 {
		t.Errorf("approve of H1: got %d held, want the other 2", ar.Held)
	}
	events, err := h.db.Events(ctx, id, h1.ID)
	if err != nil {
		t.Fatal(err)
	}
	var named bool
	for _, e := range events {
		named = named || (e.To == ledger.StateConfirming && strings.Contains(e.Detail, "approved by Anna"))
	}
	if !named {
		t.Errorf("H1's confirm does not name its approver: %+v", events)
	}

	rcfg := h.config()
	rcfg.Only, rcfg.Actor = []int64{h2.ID}, "Boris"
	if _, err := batch.Reject(ctx, h.db, h.client, id, batch.SettleOptions{Config: rcfg, Wait: 20 * time.Second, Intake: h.intake}); err != nil {
		t.Fatal(err)
	}
	h.expectStates(id, map[string]ledger.State{"H1": ledger.StateSucceeded, "H2": ledger.StateCancelled, "H3": ledger.StateAwaitingConfirm})
	if r := rowOf("H2"); !strings.Contains(r.FailureDescription, "rejected by Boris") {
		t.Errorf("H2: got failure %q, want it rejected by Boris", r.FailureDescription)
	}
	h.expectPaid("H1")
}
