package batch_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

// Regression tests for issue 13 ("money safety"): each one failed before
// its fix. Findings 1, 3, 10 and 19 have theirs beside the code they test
// (TestSupersededAttemptSuccessGoesToReview, TestFaultInitCall,
// pike's TestDefinitiveAnswerAfterAnAmbiguousOneIsUnknown).

// statusFilter wraps a Pike and rewrites session/status answers, for
// behaviours the documented contract allows and the sandbox does not
// produce by itself.
type statusFilter struct {
	batch.Pike
	alter func(s *pike.Session)
}

func (f *statusFilter) Status(ctx context.Context, id string) (*pike.Session, error) {
	s, err := f.Pike.Status(ctx, id)
	if err == nil {
		f.alter(s)
	}
	return s, err
}

// runWith runs path like h.run with another Pike.
func (h *harness) runWith(ctx context.Context, pk batch.Pike, path string, cfg batch.Config, wait time.Duration) (batch.Result, error) {
	h.t.Helper()
	mopts := manifest.Options{AllowDuplicates: true}
	sum, err := manifest.ReadFile(path, mopts, nil)
	if err != nil {
		h.t.Fatalf("manifest invalid: %v", err)
	}
	return batch.Run(ctx, h.db, pk, batch.RunOptions{
		Manifest: path, ManifestOptions: mopts, Summary: sum, Config: cfg, Wait: wait, Intake: h.intake,
	})
}

// foreignWebhook is a payment_finished that Pike really signs, about a
// session of another merchant whose payout carries a copy of our row's
// metadata, reference, amount and currency.
func foreignWebhook(id, metadata, ref string, amount int64, currency string) []byte {
	body, err := pike.MarshalVersion(pike.Webhook{Type: pike.WebhookPaymentFinished, Session: pike.Session{
		ID: id, Status: pike.SessionAccepted,
		Payouts: []pike.Payout{{ID: "po_" + id, Status: pike.PayoutSucceeded,
			AmountDetails: &pike.AmountDetails{Amount: amount, Currency: currency},
			Customer:      &pike.Customer{Reference: ref}, Metadata: json.RawMessage(strconv.Quote(metadata)),
			Method: &pike.PayoutMethod{Type: "card", Card: &pike.Card{Last4: "4242", Brand: "visa"}}}},
	}}, pike.V1)
	if err != nil {
		panic(err)
	}
	return body
}

// TestForeignSessionWebhookIsNeverAdopted (finding 5): a single-flow init
// whose session id was never learnt, and a Pike-signed payment_finished
// about another merchant's session that copies the row's metadata. Before
// the fix the row was adopted into that session and reported succeeded
// with no money moved. Now the lead is checked with our own status (Pike
// does not know the session for our project), never adopted, and the row
// ends in review once its resends are spent.
func TestForeignSessionWebhookIsNeverAdopted(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		h := newHarness(t, sandbox.Config{})
		h.sb.Inject(sandbox.Rule{Method: pike.MethodInitPayout, Reference: "R1", Fault: sandbox.FaultFailBeforeApply, Times: 1 << 30})
		path := h.manifest("m.csv", row{ref: "R1", amount: "10", card: sandbox.CardVisa})
		cfg := h.config()
		cfg.Flow = batch.FlowSingle
		done := make(chan error, 1)
		var res batch.Result
		go func() {
			var err error
			res, err = h.runWith(context.Background(), h.client, path, cfg, 20*time.Second)
			done <- err
		}()
		sum, err := manifest.ReadFile(path, manifest.Options{AllowDuplicates: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		id := batch.BatchIDFor(sum.SHA256)
		poll.Until(t, "R1 unknown after its lost init", func() bool {
			r, err := h.db.RowByReference(context.Background(), id, "R1")
			return err == nil && r.State == ledger.StateUnknown
		})
		h.postWebhook(foreignWebhook("ps_foreign_1", ledger.RowKey(id, "R1", 1), "R1", 1000, "rub"))
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		got := h.row(res.Batch.ID, "R1")
		if got.State != ledger.StateReview || got.FailureCode != ledger.CodeInitUnresolved || got.SessionID != "" {
			t.Errorf("got %s %s session %q, want review %s with no session", got.State, got.FailureCode, got.SessionID, ledger.CodeInitUnresolved)
		}
		h.expectPaid()
	})
}

// TestCredentialsRefusedStopsTheRun (finding 12): a partner key Pike does
// not know. Before the fix every row failed authentication_error and the
// run exited 1; the same run afterwards only reprinted the failures. Now
// the run stops with ErrCredentials and no row failed; with the right key
// the same batch pays every row once.
func TestCredentialsRefusedStopsTheRun(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		h := newHarness(t, sandbox.Config{})
		wrong, err := pike.NewClient(h.pikeSrv.URL, "test-project", mustKey(), pike.WithLogger(h.log),
			pike.WithRetryPolicy(pike.RetryPolicy{MaxAttempts: 2, BaseDelay: time.Millisecond}))
		if err != nil {
			t.Fatal(err)
		}
		path := h.manifest("m.csv", row{ref: "R1", amount: "10", card: sandbox.CardVisa},
			row{ref: "R2", amount: "20", card: sandbox.CardMir}, row{ref: "R3", amount: "30", card: sandbox.CardVisa})
		for _, flow := range []batch.Flow{batch.FlowTwoStep} {
			cfg := h.config()
			cfg.Flow = flow
			res, err := h.runWith(context.Background(), wrong, path, cfg, 10*time.Second)
			if !errors.Is(err, batch.ErrCredentials) || !errors.Is(err, pike.ErrCredentials) {
				t.Fatalf("got %v, want ErrCredentials", err)
			}
			for ref, st := range h.states(res.Batch.ID) {
				if st != ledger.StatePlanned {
					t.Errorf("row %s: got %s, want planned (untouched)", ref, st)
				}
			}
			res = h.mustRun(path, cfg)
			h.expectStates(res.Batch.ID, map[string]ledger.State{"R1": ledger.StateSucceeded, "R2": ledger.StateSucceeded, "R3": ledger.StateSucceeded})
		}
		h.expectPaid("R1", "R2", "R3")
	})
}

// TestStaleReadyToConfirmForReviewRowDoesNotStopTheRun (finding 6): a row
// in review gets a late ready_to_confirm. Before the fix the illegal move
// review → awaiting_confirm stopped the whole engine.
func TestStaleReadyToConfirmForReviewRowDoesNotStopTheRun(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		h := newHarness(t, sandbox.Config{})
		cfg := h.config()
		cfg.Confirm = batch.ConfirmHold
		path := h.manifest("m.csv", row{ref: "R1", amount: "10", card: sandbox.CardSessionError}, row{ref: "R2", amount: "20", card: sandbox.CardMir})
		res := h.mustRun(path, cfg)
		settle := batch.SettleOptions{Config: h.config(), Wait: 10 * time.Second, Intake: h.intake}
		r1 := h.row(res.Batch.ID, "R1")
		// As it was, pending; redelivered later with another updated_at (a
		// byte-identical one is stored once and never applied twice).
		stale := h.sessionWebhook(pike.WebhookReadyToConfirm, r1.SessionID, func(s *pike.Session) {
			s.UpdatedAt = pike.NewTime(time.Now().Add(time.Hour))
		})
		// Approved: R1 is confirmed into Pike's session error (review), R2 paid.
		ctx := context.Background()
		if _, err := batch.Approve(ctx, h.db, h.client, res.Batch.ID, settle); err != nil {
			t.Fatal(err)
		}
		h.expectStates(res.Batch.ID, map[string]ledger.State{"R1": ledger.StateReview, "R2": ledger.StateSucceeded})
		h.postWebhook(stale)
		if _, err := batch.Approve(ctx, h.db, h.client, res.Batch.ID, settle); err != nil {
			t.Fatalf("a stale webhook for a review row: %v", err)
		}
		h.expectStates(res.Batch.ID, map[string]ledger.State{"R1": ledger.StateReview, "R2": ledger.StateSucceeded})
		if ws, err := h.db.PendingWebhooks(ctx, res.Batch.ID, 0, 10); err != nil || len(ws) != 0 {
			t.Errorf("got %d pending webhooks (%v), want every one applied", len(ws), err)
		}
		h.expectPaid("R2")
	})
}

// TestStartNeverAppliedIsBounded (finding 8): session/start/payout
// answered 500 for the same key forever. Before the fix the row looped
// created → starting → unknown → created without end (25 starts in 3 s).
// Now the start is sent at most 6 times, then the session is cancelled
// and the row is cancelled, rerunnable; a rerun pays it once Pike works.
func TestStartNeverAppliedIsBounded(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		h := newHarness(t, sandbox.Config{})
		h.sb.Inject(sandbox.Rule{Method: pike.MethodStartPayout, Reference: "R1", Fault: sandbox.FaultFailBeforeApply, Times: 1 << 30})
		path := h.manifest("m.csv", row{ref: "R1", amount: "10", card: sandbox.CardVisa}, row{ref: "R2", amount: "20", card: sandbox.CardMir})
		res := h.mustRun(path, h.config())
		got := h.row(res.Batch.ID, "R1")
		if got.State != ledger.StateCancelled || got.FailureCode != ledger.CodeStartNotApplied {
			t.Errorf("got %s %s, want cancelled %s", got.State, got.FailureCode, ledger.CodeStartNotApplied)
		}
		if n := h.sb.Stats().Requests[pike.MethodStartPayout]; n != 6+1 {
			t.Errorf("got %d start calls, want 7 (6 for R1, 1 for R2)", n)
		}
		if s, ok := h.sb.Session(got.SessionID); !ok || s.Status != pike.SessionCancelled {
			t.Errorf("R1's session at Pike: got %q, want cancelled", s.Status)
		}
		h.sb.ClearRules()
		if _, _, err := batch.Rerun(context.Background(), h.db, h.client, batch.RerunOptions{BatchID: res.Batch.ID,
			SettleOptions: batch.SettleOptions{Config: h.config(), Wait: 10 * time.Second, Intake: h.intake}}); err != nil {
			t.Fatal(err)
		}
		h.expectStates(res.Batch.ID, map[string]ledger.State{"R1": ledger.StateSucceeded, "R2": ledger.StateSucceeded})
		h.expectPaid("R1", "R2")
	})
}

// TestUnknownRowIsAskedAgain (finding 9): a start whose answer was lost,
// and a status that first shows the session in progress with no payout
// yet (nothing new). Before the fix such an unknown row was never polled
// again by run and stayed unknown.
func TestUnknownRowIsAskedAgain(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		h := newHarness(t, sandbox.Config{})
		h.sb.Inject(sandbox.Rule{Method: pike.MethodStartPayout, Reference: "R1", Fault: sandbox.FaultDropAfterApply})
		// No webhook comes: polls alone must carry the row.
		h.sb.Inject(sandbox.Rule{Reference: "R1", Fault: sandbox.FaultDropWebhook, Times: 1 << 30})
		blank := 3
		pk := &statusFilter{Pike: h.client, alter: func(s *pike.Session) {
			if blank > 0 && s.Payout() != nil && s.Payout().Customer != nil && s.Payout().Customer.Reference == "R1" {
				blank--
				s.Payouts, s.Status = nil, pike.SessionInProgress
			}
		}}
		path := h.manifest("m.csv", row{ref: "R1", amount: "10", card: sandbox.CardVisa})
		res, err := h.runWith(context.Background(), pk, path, h.config(), 20*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		h.expectStates(res.Batch.ID, map[string]ledger.State{"R1": ledger.StateSucceeded})
		if blank != 0 {
			t.Errorf("%d blank status answers left, want all used: the fault never happened", blank)
		}
		h.expectPaid("R1")
	})
}

// TestSucceededWithoutAmount (finding 21): Pike's answer for a succeeded
// payout leaves amount_details out. Before the fix the row was succeeded
// without any amount check, even under Pike-side auto-confirm where no
// confirm check of ours saw the amount. Now: review, unless our own
// confirm check saw the amount before confirming.
func TestSucceededWithoutAmount(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		strip := func(s *pike.Session) {
			if p := s.Payout(); p != nil && p.Status == pike.PayoutSucceeded {
				p.AmountDetails = nil
			}
		}
		for _, tc := range []struct {
			auto bool
			want ledger.State
		}{{auto: true, want: ledger.StateReview}, {auto: false, want: ledger.StateSucceeded}} {
			t.Run(fmt.Sprintf("auto-confirm %v", tc.auto), func(t *testing.T) {
				h := newHarness(t, sandbox.Config{AutoConfirm: tc.auto})
				path := h.manifest("m.csv", row{ref: "R1", amount: "10", card: sandbox.CardVisa})
				res, err := h.runWith(context.Background(), &statusFilter{Pike: h.client, alter: strip}, path, h.config(), 20*time.Second)
				if err != nil {
					t.Fatal(err)
				}
				got := h.row(res.Batch.ID, "R1")
				if got.State != tc.want {
					t.Errorf("got %s (%s), want %s", got.State, got.FailureCode, tc.want)
				}
				if tc.want == ledger.StateReview && got.FailureCode != ledger.CodePaidAmountUnverified {
					t.Errorf("got failure %q, want %s", got.FailureCode, ledger.CodePaidAmountUnverified)
				}
				h.expectPaid("R1")
			})
		}
	})
}

// TestLeadForAnotherBatchIsSettled (finding 15): a webhook about an unknown
// session whose metadata names another batch. Before the fix it stayed
// pending for ever and was resubmitted every 30 s.
func TestLeadForAnotherBatchIsSettled(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		h := newHarness(t, sandbox.Config{})
		h.postWebhook(foreignWebhook("ps_other", ledger.RowKey("0000000000000000000000000000000000000000000000000000000000000000", "X1", 1), "X1", 500, "rub"))
		path := h.manifest("m.csv", row{ref: "R1", amount: "10", card: sandbox.CardVisa})
		cfg := h.config()
		cfg.Flow = batch.FlowSingle
		res := h.mustRun(path, cfg)
		ws, err := h.db.PendingWebhooks(context.Background(), res.Batch.ID, 0, 10)
		if err != nil || len(ws) != 0 {
			t.Errorf("got %d pending webhooks (%v), want none", len(ws), err)
		}
		h.expectPaid("R1")
	})
}

// TestErrorAnswerAfterApplyIsNotProof (finding 3): Pike applies
// session/init/payout (and, with its auto-confirm, pays it) and then
// answers an error that Pike's docs call "retry later": internal_error,
// provider_timeout or provider_issuer_unavailable, at HTTP 400, 500 or
// 503. Before the fix the 4xx answers counted as "not applied" and the row
// got a new attempt with new keys: two payments for one reference. Now
// every such answer leaves the attempt unknown and the same request is
// resent with the same key. The two-step flow is checked as well (its
// create and start).
func TestErrorAnswerAfterApplyIsNotProof(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		// tries: the client's own resends (1: none, as with
		// RetryPolicy{MaxAttempts: 1}; 4: the harness's default).
		for _, tries := range []int{1, 4} {
			for _, replay := range []bool{false, true} {
				for _, a := range sandbox.AmbiguousAnswers() {
					for _, tc := range []struct {
						flow   batch.Flow
						method string
					}{{batch.FlowSingle, pike.MethodInitPayout}, {batch.FlowTwoStep, pike.MethodSessionCreate}, {batch.FlowTwoStep, pike.MethodStartPayout}} {
						t.Run(fmt.Sprintf("tries=%d replay=%v %s %s %d %s", tries, replay, tc.flow, tc.method, a.HTTPStatus, a.Code), func(t *testing.T) {
							t.Parallel()
							// replay: Pike answers a repeated key with the original
							// answer (here the error) instead of idempotency_key_already_exists.
							h := newHarness(t, sandbox.Config{AutoConfirm: true, IdempotencyReplay: replay},
								pike.WithRetryPolicy(pike.RetryPolicy{MaxAttempts: tries, BaseDelay: time.Millisecond}))
							// Every answer to the call (and to the client's own resends of it)
							// is the error; the first one was applied.
							h.sb.Inject(sandbox.Rule{Method: tc.method, Reference: "R1", Fault: sandbox.FaultFailAfterApply, Code: a.Code, HTTPStatus: a.HTTPStatus, Times: 4})
							path := h.manifest("m.csv", row{ref: "R1", amount: "10", card: sandbox.CardVisa})
							cfg := h.config()
							cfg.Flow = tc.flow
							res := h.mustRun(path, cfg)
							h.expectStates(res.Batch.ID, map[string]ledger.State{"R1": ledger.StateSucceeded})
							if h.sb.Stats().Faults[sandbox.FaultFailAfterApply.String()] == 0 {
								t.Error("the fault never fired")
							}
							h.expectPaid("R1")
							started := 0
							for _, s := range h.sb.SessionsFor("R1") {
								if s.Payout() != nil {
									started++
								}
							}
							if started != 1 {
								t.Errorf("got %d sessions with a payout for R1, want 1", started)
							}
						})
					}
				}
			}
		}
	})
}

// TestDecideLeavesReview: review is left only by a person's recorded
// decision. Not paid makes the row rerunnable, unless an attempt of it was
// reported paid; paid makes it succeeded for good.
func TestDecideLeavesReview(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		h := newHarness(t, sandbox.Config{})
		path := h.manifest("m.csv", row{ref: "R1", amount: "10", card: sandbox.CardSessionError},
			row{ref: "R2", amount: "20", card: sandbox.CardSessionError}, row{ref: "R3", amount: "30", card: sandbox.CardMir})
		res := h.mustRun(path, h.config())
		id := res.Batch.ID
		ctx := context.Background()
		if _, err := batch.Decide(ctx, h.db, id, "R3", batch.DecideNotPaid, "ops", "checked"); !errors.Is(err, batch.ErrNotInReview) {
			t.Errorf("deciding a succeeded row: got %v, want ErrNotInReview", err)
		}
		if _, err := batch.Decide(ctx, h.db, id, "R1", batch.DecideNotPaid, "", "checked"); err == nil {
			t.Errorf("an anonymous decision was accepted")
		}
		r1, err := batch.Decide(ctx, h.db, id, "R1", batch.DecideNotPaid, "alice", "Pike support: session cancelled, nothing paid")
		if err != nil || r1.State != ledger.StateFailed || r1.FailureCode != ledger.CodeDecidedNotPaid {
			t.Fatalf("R1: got %s %s, %v; want failed %s", r1.State, r1.FailureCode, err, ledger.CodeDecidedNotPaid)
		}
		r2, err := batch.Decide(ctx, h.db, id, "R2", batch.DecidePaid, "bob", "Pike dashboard shows payout paid")
		if err != nil || r2.State != ledger.StateSucceeded {
			t.Fatalf("R2: got %s, %v; want succeeded", r2.State, err)
		}
		evs, _ := h.db.Events(ctx, id, r2.ID)
		if last := evs[len(evs)-1]; last.Reason != "operator_decision" || !strings.Contains(last.Detail, "decided by bob") {
			t.Errorf("got last event %s %q, want the decision and its author", last.Reason, last.Detail)
		}
		// R1 can be paid by a rerun now; R2 never again: a correction for it
		// is refused (nothing of the rerun happens), and without one the
		// rerun pays R1 only.
		fixed := h.manifest("fixed.csv", row{ref: "R1", amount: "10", card: sandbox.CardMir}, row{ref: "R2", amount: "20", card: sandbox.CardMir})
		_, plan, err := batch.Rerun(ctx, h.db, h.client, batch.RerunOptions{BatchID: id, Manifest: fixed,
			SettleOptions: batch.SettleOptions{Config: h.config(), Wait: 10 * time.Second, Intake: h.intake}})
		if !errors.Is(err, batch.ErrCorrectionsNotApplied) || len(plan.NotApplied) != 1 || plan.NotApplied[0].Row.Reference != "R2" {
			t.Fatalf("rerun correcting the paid R2: got %v, not applied %+v; want ErrCorrectionsNotApplied naming R2", err, plan.NotApplied)
		}
		h.expectStates(id, map[string]ledger.State{"R1": ledger.StateFailed, "R2": ledger.StateSucceeded, "R3": ledger.StateSucceeded})
		fixed = h.manifest("fixed-r1.csv", row{ref: "R1", amount: "10", card: sandbox.CardMir}, row{ref: "R2", amount: "20", card: sandbox.CardSessionError})
		if _, _, err := batch.Rerun(ctx, h.db, h.client, batch.RerunOptions{BatchID: id, Manifest: fixed,
			SettleOptions: batch.SettleOptions{Config: h.config(), Wait: 10 * time.Second, Intake: h.intake}}); err != nil {
			t.Fatal(err)
		}
		h.expectStates(id, map[string]ledger.State{"R1": ledger.StateSucceeded, "R2": ledger.StateSucceeded, "R3": ledger.StateSucceeded})
		h.cards["R1"] = sandbox.CardMir
		h.expectPaid("R1", "R3")
	})
}
