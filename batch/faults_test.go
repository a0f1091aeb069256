package batch_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/batch/report"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

// The fault matrix (docs/faults.md): one test per fault Pike or the
// network can throw at the runner, each judged from the sandbox's journal
// (paid exactly once, or not at all) and from the rows' states. Faults
// already covered in run_test.go are not repeated here.

// faultRunFor is h.run with its own wait for final results.
func (h *harness) faultRunFor(path string, cfg batch.Config, wait time.Duration) (batch.Result, error) {
	h.t.Helper()
	mopts := manifest.Options{AllowDuplicates: true}
	sum, err := manifest.ReadFile(path, mopts, nil)
	if err != nil {
		h.t.Fatalf("manifest invalid: %v", err)
	}
	return batch.Run(context.Background(), h.db, h.client, batch.RunOptions{
		Manifest: path, ManifestOptions: mopts, Summary: sum, Config: cfg, Wait: wait, Intake: h.intake,
	})
}

// faultSessions returns the sandbox's sessions for ref, failing unless
// there are exactly want of them.
func (h *harness) faultSessions(ref string, want int) []pike.Session {
	h.t.Helper()
	ss := h.sb.SessionsFor(ref)
	if len(ss) != want {
		h.t.Errorf("got %d sessions for %s at Pike, want %d", len(ss), ref, want)
	}
	return ss
}

// faultFired fails unless the sandbox fired fault exactly n times: a fault
// test whose fault never happened proves nothing.
func (h *harness) faultFired(f sandbox.Fault, n int64) {
	h.t.Helper()
	if got := h.sb.Stats().Faults[f.String()]; got != n {
		h.t.Errorf("fault %s fired %d times, want %d", f, got, n)
	}
}

var lostFaults = []sandbox.Fault{sandbox.FaultFailBeforeApply, sandbox.FaultFailAfterApply, sandbox.FaultDropAfterApply}

// TestFaultCancelCall: session/cancel answered 5xx before applying, applied
// then answered 5xx, or applied then the connection dropped. Cancel is
// reached by a mismatched session and by an operator's reject. The row
// ends cancelled (mismatch or cancelled) and nothing is paid.
func TestFaultCancelCall(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		for _, fault := range lostFaults {
			t.Run("mismatch/"+fault.String(), func(t *testing.T) {
				t.Parallel()
				h := newHarness(t, sandbox.Config{})
				h.sb.Inject(sandbox.Rule{Method: pike.MethodCancel, Reference: "C1", Fault: fault})
				path := h.manifest("m.csv", row{ref: "C1", amount: "10", card: sandbox.CardMismatch}, row{ref: "OK", amount: "20", card: sandbox.CardMir})
				res := h.mustRun(path, h.config())
				h.expectStates(res.Batch.ID, map[string]ledger.State{"C1": ledger.StateMismatch, "OK": ledger.StateSucceeded})
				h.expectPaid("OK")
				h.faultFired(fault, 1)
				if ss := h.faultSessions("C1", 1); len(ss) == 1 && ss[0].Status != pike.SessionCancelled {
					t.Errorf("C1 at Pike: got session %s, want cancelled", ss[0].Status)
				}
			})
			t.Run("reject/"+fault.String(), func(t *testing.T) {
				t.Parallel()
				h := newHarness(t, sandbox.Config{})
				h.sb.Inject(sandbox.Rule{Method: pike.MethodCancel, Reference: "H1", Fault: fault})
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
				h.faultFired(fault, 1)
				if ss := h.faultSessions("H1", 1); len(ss) == 1 && ss[0].Status != pike.SessionCancelled {
					t.Errorf("H1 at Pike: got session %s, want cancelled", ss[0].Status)
				}
			})
		}
	})
}

// TestFaultInitCall: session/init/payout (single flow) answered 5xx after
// applying, or 5xx before applying. The lost-connection case is
// TestRunSingleFlowLostInit. A second init is never sent for the attempt:
// after apply the session is adopted from its webhook's metadata; before
// apply nothing exists at Pike, no webhook ever comes, and the row stays
// unknown (not paid, not retried) for a person to look at.
func TestFaultInitCall(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		t.Run(sandbox.FaultFailAfterApply.String(), func(t *testing.T) {
			h := newHarness(t, sandbox.Config{})
			h.sb.Inject(sandbox.Rule{Method: pike.MethodInitPayout, Reference: "R1", Fault: sandbox.FaultFailAfterApply})
			path := h.manifest("m.csv", row{ref: "R1", amount: "10", card: sandbox.CardVisa}, row{ref: "R2", amount: "20", card: sandbox.CardMir})
			cfg := h.config()
			cfg.Flow = batch.FlowSingle
			res := h.mustRun(path, cfg)
			h.expectStates(res.Batch.ID, map[string]ledger.State{"R1": ledger.StateSucceeded, "R2": ledger.StateSucceeded})
			h.expectPaid("R1", "R2")
			h.faultSessions("R1", 1)
			h.faultFired(sandbox.FaultFailAfterApply, 1)
		})
		t.Run(sandbox.FaultFailBeforeApply.String(), func(t *testing.T) {
			// Nothing exists at Pike, and the answer does not say so. The same
			// request is sent again with the same key (issue 13, finding 10:
			// the row used to stay unknown forever); Pike applies it once.
			h := newHarness(t, sandbox.Config{})
			h.sb.Inject(sandbox.Rule{Method: pike.MethodInitPayout, Reference: "R1", Fault: sandbox.FaultFailBeforeApply})
			path := h.manifest("m.csv", row{ref: "R1", amount: "10", card: sandbox.CardVisa}, row{ref: "R2", amount: "20", card: sandbox.CardMir})
			cfg := h.config()
			cfg.Flow = batch.FlowSingle
			res := h.mustRun(path, cfg)
			h.expectStates(res.Batch.ID, map[string]ledger.State{"R1": ledger.StateSucceeded, "R2": ledger.StateSucceeded})
			h.expectPaid("R1", "R2")
			h.faultSessions("R1", 1)
			h.faultFired(sandbox.FaultFailBeforeApply, 1)
			if got := h.sb.Stats().Requests[pike.MethodInitPayout]; got != 3 {
				t.Errorf("got %d init calls, want 3 (one per row, R1's resent once with its key)", got)
			}
			r1 := h.row(res.Batch.ID, "R1")
			if r1.Attempt != 1 {
				t.Errorf("R1 has %d attempts, want 1: a resend is never a new attempt", r1.Attempt)
			}
		})
	})
}

// TestFaultRateLimitEachCall: HTTP 429 with Retry-After on each call. The
// client waits and retries with the same key; the row goes on as if
// nothing happened. (TestRateLimitedPikeIsBackedOff is the random version.)
func TestFaultRateLimitEachCall(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		tests := []struct {
			method, card string
			want         ledger.State
			paid         bool
		}{
			{pike.MethodSessionCreate, sandbox.CardMir, ledger.StateSucceeded, true},
			{pike.MethodStartPayout, sandbox.CardMir, ledger.StateSucceeded, true},
			{pike.MethodConfirm, sandbox.CardMir, ledger.StateSucceeded, true},
			{pike.MethodStatus, sandbox.CardNoWebhooks, ledger.StateSucceeded, true},
			{pike.MethodCancel, sandbox.CardMismatch, ledger.StateMismatch, false},
		}
		for _, tt := range tests {
			t.Run(tt.method, func(t *testing.T) {
				t.Parallel()
				h := newHarness(t, sandbox.Config{})
				h.sb.Inject(sandbox.Rule{Method: tt.method, Reference: "R1", Fault: sandbox.FaultRateLimit})
				res := h.mustRun(h.manifest("m.csv", row{ref: "R1", amount: "10", card: tt.card}), h.config())
				h.expectStates(res.Batch.ID, map[string]ledger.State{"R1": tt.want})
				if tt.paid {
					h.expectPaid("R1")
				} else {
					h.expectPaid()
				}
				h.faultFired(sandbox.FaultRateLimit, 1)
				h.faultSessions("R1", 1)
				if got := h.client.Stats().RateLimited; got != 1 {
					t.Errorf("client saw %d 429 answers, want 1", got)
				}
			})
		}
	})
}

// TestFaultSlowPike: Pike answers close to the client's request timeout,
// so about half the calls time out after they were sent (outcome unknown)
// and reads time out too. Every row still ends paid exactly once.
func TestFaultSlowPike(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		h := newHarness(t, sandbox.Config{Faults: sandbox.Faults{Latency: 90 * time.Millisecond, LatencyJitter: 120 * time.Millisecond}, Seed: 11},
			pike.WithRequestTimeout(150*time.Millisecond),
			pike.WithRetryPolicy(pike.RetryPolicy{MaxAttempts: 6, BaseDelay: 5 * time.Millisecond, MaxDelay: 50 * time.Millisecond}))
		var rows []row
		var refs []string
		for i := range 6 {
			ref := "SL" + string(rune('A'+i))
			rows = append(rows, row{ref: ref, amount: "1" + string(rune('0'+i)), card: sandbox.CardMir})
			refs = append(refs, ref)
		}
		// Half the calls time out before Pike applies them: a start may time
		// out six times in a row in a few seconds. That is a slow network, not
		// a Pike that never applies the call: the engine keeps trying.
		cfg := h.config()
		cfg.GiveUpAfter = time.Hour
		res := h.mustRun(h.manifest("m.csv", rows...), cfg)
		if got := res.Counts[ledger.StateSucceeded]; got != 6 {
			t.Errorf("got %v, want 6 succeeded", res.Counts)
		}
		h.expectPaid(refs...)
		st := h.client.Stats()
		if st.Unknown == 0 || st.Retries == 0 {
			t.Errorf("client stats %+v: want timeouts with unknown outcome and retried reads, or the test proves nothing", st)
		}
		t.Logf("client: %d requests, %d retries, %d unknown outcomes", st.Requests, st.Retries, st.Unknown)
	})
}

// TestFaultWebhookOrder: deterministic webhook faults on one payout. The
// random mix is TestRunWebhookFaults.
func TestFaultWebhookOrder(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		tests := []struct {
			name   string
			rule   sandbox.Rule
			polled bool // the result can only have come from session/status
		}{
			{"duplicate payment_finished", sandbox.Rule{Method: string(pike.WebhookPaymentFinished), Fault: sandbox.FaultDuplicateWebhook}, false},
			{"duplicate ready_to_confirm", sandbox.Rule{Method: string(pike.WebhookReadyToConfirm), Fault: sandbox.FaultDuplicateWebhook}, false},
			{"ready_to_confirm after payment_finished", sandbox.Rule{Method: string(pike.WebhookReadyToConfirm), Fault: sandbox.FaultReorderWebhook}, true},
			{"dropped ready_to_confirm", sandbox.Rule{Method: string(pike.WebhookReadyToConfirm), Fault: sandbox.FaultDropWebhook}, true},
			{"dropped payment_finished", sandbox.Rule{Method: string(pike.WebhookPaymentFinished), Fault: sandbox.FaultDropWebhook}, true},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				// A held-back webhook waits for the session's next one, not for
				// a timer: long retry delays.
				h := newHarness(t, sandbox.Config{WebhookRetryBase: 5 * time.Second, WebhookRetryMax: 5 * time.Second, WebhookGiveUp: 20 * time.Second})
				tt.rule.Reference = "R1"
				h.sb.Inject(tt.rule)
				path := h.manifest("m.csv", row{ref: "R1", amount: "10", card: sandbox.CardMir})
				res := h.mustRun(path, h.config())
				h.expectStates(res.Batch.ID, map[string]ledger.State{"R1": ledger.StateSucceeded})
				h.expectPaid("R1") // also waits for every delivery, the late one included
				h.faultFired(tt.rule.Fault, 1)
				// Whatever arrived late is applied by the next engine and moves nothing.
				h.mustRun(path, h.config())
				h.expectStates(res.Batch.ID, map[string]ledger.State{"R1": ledger.StateSucceeded})
				h.expectPaid("R1")
				st := h.sb.Stats()
				if got := st.Requests[pike.MethodConfirm]; got != 1 {
					t.Errorf("got %d confirms, want 1", got)
				}
				if tt.polled && st.Requests[pike.MethodStatus] == 0 {
					t.Error("no session/status call, but the result could not have come from a webhook")
				}
				ss := h.faultSessions("R1", 1)
				if len(ss) != 1 {
					return
				}
				ws, err := h.db.WebhooksForSession(context.Background(), ss[0].ID)
				if err != nil {
					t.Fatal(err)
				}
				var types []string
				seen := map[string]bool{}
				for _, w := range ws {
					types = append(types, w.Type)
					if seen[w.BodySHA256] {
						t.Errorf("webhook body %s stored twice", w.BodySHA256)
					}
					seen[w.BodySHA256] = true
				}
				t.Logf("stored webhooks in order: %v", types)
				if tt.rule.Fault == sandbox.FaultReorderWebhook && strings.Join(types, ",") != "payment_finished,ready_to_confirm" {
					t.Errorf("got stored webhooks %v, want payment_finished then the stale ready_to_confirm", types)
				}
			})
		}
	})
}

// TestFaultForgedWebhookForLiveSession: a webhook signed with another key
// about a real session waiting for confirmation (claiming it paid, or
// asking to confirm another amount) gets 401, is not stored and moves
// nothing; the row is then rejected and nothing is paid.
func TestFaultForgedWebhookForLiveSession(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		h := newHarness(t, sandbox.Config{})
		path := h.manifest("m.csv", row{ref: "H1", amount: "10", card: sandbox.CardMir})
		cfg := h.config()
		cfg.Confirm = batch.ConfirmHold
		res := h.mustRun(path, cfg)
		h1, err := h.db.RowByReference(context.Background(), res.Batch.ID, "H1")
		if err != nil || h1.State != ledger.StateAwaitingConfirm || h1.SessionID == "" {
			t.Fatalf("got H1 %s with session %q (err %v), want awaiting_confirm with a session", h1.State, h1.SessionID, err)
		}
		before, _ := h.db.WebhooksForSession(context.Background(), h1.SessionID)
		forger := mustKey()
		meta := ledger.RowKey(res.Batch.ID, "H1", h1.Attempt)
		for _, body := range []string{
			`{"type":"payment_finished","session":{"id":"` + h1.SessionID + `","status":"accepted","payments":[{"id":"po_x","status":"succeeded","amount_details":{"amount":1000,"currency":"rub"},"customer":{"reference":"H1"},"metadata":"` + meta + `"}]}}`,
			`{"type":"ready_to_confirm","session":{"id":"` + h1.SessionID + `","status":"in_progress","next_action":"confirm","payments":[{"id":"po_x","status":"pending","amount_details":{"amount":9999900,"currency":"rub"},"customer":{"reference":"H1"},"metadata":"` + meta + `"}]}}`,
		} {
			sig, err := forger.Sign([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(http.MethodPost, h.hooks.URL+"/webhooks/pike", bytes.NewReader([]byte(body)))
			req.Header.Set(pike.HeaderSign, sig)
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("forged webhook: got HTTP %d, want 401", resp.StatusCode)
			}
		}
		after, _ := h.db.WebhooksForSession(context.Background(), h1.SessionID)
		if len(after) != len(before) {
			t.Errorf("got %d stored webhooks for the session, want %d: a forged one was stored", len(after), len(before))
		}
		h.expectStates(res.Batch.ID, map[string]ledger.State{"H1": ledger.StateAwaitingConfirm})
		if _, err := batch.Reject(context.Background(), h.db, h.client, res.Batch.ID, batch.SettleOptions{Config: h.config(), Wait: 20 * time.Second, Intake: h.intake}); err != nil {
			t.Fatal(err)
		}
		h.expectStates(res.Batch.ID, map[string]ledger.State{"H1": ledger.StateCancelled})
		h.expectPaid()
	})
}

// TestFaultMismatchAmountRule: Pike reports, for an ordinary card, a
// ready_to_confirm amount one major unit above the row's. The row is
// cancelled as a mismatch naming both amounts; nothing is paid. (The test
// card CardMismatch is TestRunEveryOutcome.)
func TestFaultMismatchAmountRule(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		h := newHarness(t, sandbox.Config{})
		h.sb.Inject(sandbox.Rule{Method: pike.MethodStartPayout, Reference: "M1", Fault: sandbox.FaultMismatchAmount})
		res := h.mustRun(h.manifest("m.csv", row{ref: "M1", amount: "1500.50", card: sandbox.CardMir}, row{ref: "OK", amount: "10", card: sandbox.CardVisa}), h.config())
		h.expectStates(res.Batch.ID, map[string]ledger.State{"M1": ledger.StateMismatch, "OK": ledger.StateSucceeded})
		h.expectPaid("OK")
		h.faultFired(sandbox.FaultMismatchAmount, 1)
		m1, err := h.db.RowByReference(context.Background(), res.Batch.ID, "M1")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(m1.FailureDescription, "1500.50") || !strings.Contains(m1.FailureDescription, "1501.50") {
			t.Errorf("M1 failure %q: want both amounts, 1500.50 and 1501.50", m1.FailureDescription)
		}
		if st := h.sb.Stats(); st.Requests[pike.MethodConfirm] != 1 || st.Requests[pike.MethodCancel] != 1 {
			t.Errorf("got %d confirms and %d cancels, want 1 and 1 (OK confirmed, M1 cancelled)", st.Requests[pike.MethodConfirm], st.Requests[pike.MethodCancel])
		}
	})
}

// TestFaultAfterConfirm: after a confirm, Pike ends the payout with
// "payout failed + session error" (not final: review, never retried) or a
// decline (failed: a rerun may try again with a new session).
func TestFaultAfterConfirm(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		h := newHarness(t, sandbox.Config{})
		h.sb.Inject(sandbox.Rule{Method: pike.MethodConfirm, Reference: "ERR", Fault: sandbox.FaultSessionError})
		h.sb.Inject(sandbox.Rule{Method: pike.MethodConfirm, Reference: "DEC", Fault: sandbox.FaultDeclineAfterConfirm})
		path := h.manifest("m.csv", row{ref: "ERR", amount: "10", card: sandbox.CardMir}, row{ref: "DEC", amount: "20", card: sandbox.CardVisa},
			row{ref: "OK", amount: "30", card: sandbox.CardMastercard})
		res := h.mustRun(path, h.config())
		h.expectStates(res.Batch.ID, map[string]ledger.State{"ERR": ledger.StateReview, "DEC": ledger.StateFailed, "OK": ledger.StateSucceeded})
		h.expectPaid("OK")
		dec, _ := h.db.RowByReference(context.Background(), res.Batch.ID, "DEC")
		if dec.FailureCode != pike.CodeProviderExceedsLimit {
			t.Errorf("DEC failure code %q, want %s", dec.FailureCode, pike.CodeProviderExceedsLimit)
		}
		_, plan, err := batch.Rerun(context.Background(), h.db, h.client, batch.RerunOptions{BatchID: res.Batch.ID, Manifest: path,
			SettleOptions: batch.SettleOptions{Config: h.config(), Wait: 20 * time.Second, Intake: h.intake}})
		if err != nil {
			t.Fatal(err)
		}
		if len(plan.Retried) != 1 || plan.Retried[0].Row.Reference != "DEC" {
			t.Errorf("rerun retried %+v, want DEC only", plan.Retried)
		}
		h.expectStates(res.Batch.ID, map[string]ledger.State{"ERR": ledger.StateReview, "DEC": ledger.StateSucceeded, "OK": ledger.StateSucceeded})
		h.expectPaid("OK", "DEC")
		h.faultSessions("ERR", 1)
		h.faultSessions("DEC", 2)
	})
}

// TestFaultInsufficientBalance: the prefunded wallet covers two of five
// RUB payouts and there is no EUR wallet. Payouts beyond the balance fail
// with insufficient_funds after confirm; the wallet never goes negative.
func TestFaultInsufficientBalance(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		h := newHarness(t, sandbox.Config{Balances: map[string]int64{"rub": 25000}})
		var rows []row
		for i := range 5 {
			rows = append(rows, row{ref: "B" + string(rune('1'+i)), amount: "100", card: sandbox.CardMir})
		}
		rows = append(rows, row{ref: "EUR", amount: "5", currency: "EUR", card: sandbox.CardVisa})
		res := h.mustRun(h.manifest("m.csv", rows...), h.config())
		var paid []string
		states := h.states(res.Batch.ID)
		for ref, s := range states {
			switch s {
			case ledger.StateSucceeded:
				paid = append(paid, ref)
			case ledger.StateFailed:
				r, _ := h.db.RowByReference(context.Background(), res.Batch.ID, ref)
				if r.FailureCode != pike.CodeInsufficientFunds {
					t.Errorf("%s failed with %q, want %s", ref, r.FailureCode, pike.CodeInsufficientFunds)
				}
			default:
				t.Errorf("%s is %s, want succeeded or failed", ref, s)
			}
		}
		if len(paid) != 2 || states["EUR"] != ledger.StateFailed {
			t.Errorf("got states %v, want two RUB rows succeeded and the rest failed", states)
		}
		h.expectPaid(paid...)
		if got := h.sb.Balances()["rub"]; got != 5000 {
			t.Errorf("RUB wallet: got %d left, want 5000", got)
		}
	})
}

// TestFaultAutoConfirm: Pike's manager switched auto-confirm on, so no
// ready_to_confirm comes and payouts proceed without session/confirm. The
// runner never confirms; every outcome is still recorded.
func TestFaultAutoConfirm(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		h := newHarness(t, sandbox.Config{AutoConfirm: true})
		path := h.manifest("m.csv",
			row{ref: "A1", amount: "10", card: sandbox.CardMir},
			row{ref: "A2", amount: "20", card: sandbox.CardVisa},
			row{ref: "POLLED", amount: "30", card: sandbox.CardNoWebhooks},
			row{ref: "NOCARD", amount: "40", card: sandbox.CardNotExist},
			row{ref: "ERR", amount: "50", card: sandbox.CardSessionError},
		)
		res := h.mustRun(path, h.config())
		h.expectStates(res.Batch.ID, map[string]ledger.State{"A1": ledger.StateSucceeded, "A2": ledger.StateSucceeded,
			"POLLED": ledger.StateSucceeded, "NOCARD": ledger.StateFailed, "ERR": ledger.StateReview})
		h.expectPaid("A1", "A2", "POLLED")
		if got := h.sb.Stats().Requests[pike.MethodConfirm]; got != 0 {
			t.Errorf("got %d confirms, want none under auto-confirm", got)
		}
	})
}

// TestFaultAutoConfirmMismatch: under auto-confirm the runner cannot check
// the amount before money moves. Pike pays one major unit more than the
// row; the runner must not hide it: the row is not reported as a plain
// success, and the report flags the amount.
func TestFaultAutoConfirmMismatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		h := newHarness(t, sandbox.Config{AutoConfirm: true})
		res := h.mustRun(h.manifest("m.csv", row{ref: "MM", amount: "10", card: sandbox.CardMismatch}), h.config())
		journal := h.sb.Journal()
		if len(journal) != 1 || journal[0].Amount != 1100 {
			t.Fatalf("journal %+v: want MM paid 11.00 by Pike's auto-confirm", journal)
		}
		// Money moved, but not what the row asked: recorded as paid at the
		// manifest's amount it would falsify the totals; a person settles it.
		h.expectStates(res.Batch.ID, map[string]ledger.State{"MM": ledger.StateReview})
		if mm, _ := h.db.RowByReference(context.Background(), res.Batch.ID, "MM"); mm.FailureCode != ledger.CodePaidAmountDiffers {
			t.Errorf("got failure code %q, want %s", mm.FailureCode, ledger.CodePaidAmountDiffers)
		}
		sum, err := report.BuildSummary(context.Background(), h.db, res.Batch.ID, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		flagged := false
		for _, f := range sum.Findings {
			if f.Reference == "MM" && f.Kind == report.FindingReview && strings.Contains(f.Detail, ledger.CodePaidAmountDiffers) {
				flagged = true
				t.Logf("finding: %s: %s — %s", f.Kind, f.Detail, f.Action)
			}
		}
		if !flagged {
			t.Errorf("report findings %+v: want MM flagged for review (%s)", sum.Findings, ledger.CodePaidAmountDiffers)
		}
	})
}

// TestFaultIdempotencyReplay: a Pike that answers a repeated idempotency
// key with the original response instead of an error. Lost responses on
// every mutating call still end with each row paid exactly once, and no
// reference ever gets a second payout at Pike (a lost create may leave an
// orphan session that is never started: harmless).
//
// In the single flow a lost session/init/payout has no session id to ask
// about: the processor resends the same request with the same key, and
// Pike's replay of the original answer is what lets it go on. There the
// repeat must actually happen (Stats.IdempotencyRepeats ≥ 1) and each
// reference must have exactly one session: a processor that made a new
// key for the resend would make a second payout.
func TestFaultIdempotencyReplay(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		type tc struct {
			flow   batch.Flow
			method string
		}
		var cases []tc
		for _, m := range []string{pike.MethodSessionCreate, pike.MethodStartPayout, pike.MethodConfirm, pike.MethodCancel} {
			cases = append(cases, tc{batch.FlowTwoStep, m})
		}
		cases = append(cases, tc{batch.FlowSingle, pike.MethodInitPayout}, tc{batch.FlowSingle, pike.MethodConfirm})
		for _, c := range cases {
			for _, fault := range lostFaults {
				t.Run(string(c.flow)+"/"+c.method+"/"+fault.String(), func(t *testing.T) {
					t.Parallel()
					h := newHarness(t, sandbox.Config{IdempotencyReplay: true})
					if c.method == pike.MethodInitPayout {
						// R1's lost init, and no webhook about it: nothing but a
						// resend with the same key can learn its session.
						h.sb.Inject(sandbox.Rule{Method: c.method, Reference: "R1", Fault: fault})
						h.sb.Inject(sandbox.Rule{Reference: "R1", Fault: sandbox.FaultDropWebhook, Times: 10})
					} else {
						h.sb.Inject(sandbox.Rule{Method: c.method, Fault: fault})
					}
					path := h.manifest("m.csv", row{ref: "R1", amount: "10", card: sandbox.CardVisa}, row{ref: "R2", amount: "20", card: sandbox.CardMir},
						row{ref: "MM", amount: "30", card: sandbox.CardMismatch})
					cfg := h.config()
					cfg.Flow = c.flow
					res := h.mustRun(path, cfg)
					h.expectStates(res.Batch.ID, map[string]ledger.State{"R1": ledger.StateSucceeded, "R2": ledger.StateSucceeded, "MM": ledger.StateMismatch})
					h.expectPaid("R1", "R2")
					h.faultFired(fault, 1)
					for _, ref := range []string{"R1", "R2", "MM"} {
						sessions := h.sb.SessionsFor(ref)
						started := 0
						for _, s := range sessions {
							if s.Payout() != nil {
								started++
							}
						}
						if started != 1 {
							t.Errorf("%s: got %d payouts at Pike, want 1", ref, started)
						}
						if c.flow == batch.FlowSingle && len(sessions) != 1 {
							t.Errorf("%s: got %d sessions, want 1: a lost init is resent with its key, never remade", ref, len(sessions))
						}
					}
					repeats := h.sb.Stats().IdempotencyRepeats
					t.Logf("idempotency repeats: %d", repeats)
					if c.method == pike.MethodInitPayout && fault != sandbox.FaultFailBeforeApply && repeats < 1 {
						t.Errorf("got %d idempotency repeats, want ≥1: the lost init/payout was not resent with its key", repeats)
					}
					if fault == sandbox.FaultFailBeforeApply && repeats != 0 {
						// Nothing was applied: a resend is the key's first use.
						t.Errorf("got %d idempotency repeats after a failure before apply, want 0", repeats)
					}
				})
			}
		}
	})
}

// TestFaultAPIv2: the client speaks API v2 (payout_details) to a sandbox
// that understands only the path version's field names. Every outcome and
// a lost response on each mutating call behave as in v1.
func TestFaultAPIv2(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		h := newHarness(t, sandbox.Config{}, pike.WithVersion(pike.V2))
		h.sb.Inject(sandbox.Rule{Method: pike.MethodSessionCreate, Reference: "OK", Fault: sandbox.FaultDropAfterApply})
		h.sb.Inject(sandbox.Rule{Method: pike.MethodStartPayout, Reference: "POLLED", Fault: sandbox.FaultFailAfterApply})
		h.sb.Inject(sandbox.Rule{Method: pike.MethodConfirm, Reference: "SLOW", Fault: sandbox.FaultDropAfterApply})
		h.sb.Inject(sandbox.Rule{Method: pike.MethodCancel, Reference: "MISMATCH", Fault: sandbox.FaultFailAfterApply})
		path := h.manifest("m.csv", everyOutcomeRows()...)
		res := h.mustRun(path, h.config())
		h.expectStates(res.Batch.ID, everyOutcomeStates())
		h.expectPaid(everyOutcomePaid...)
		st := h.sb.Stats()
		if st.Faults[sandbox.FaultDropAfterApply.String()] != 2 || st.Faults[sandbox.FaultFailAfterApply.String()] != 2 {
			t.Errorf("faults fired %v, want 2 drops and 2 failures after apply", st.Faults)
		}
		h.scanForPANs()
	})
}
