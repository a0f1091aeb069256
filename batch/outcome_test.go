package batch

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
)

const testBatch = "0123456789abcdef"

func testRow(state ledger.State) ledger.Row {
	return ledger.Row{ID: 1, BatchID: testBatch, Line: 2, Reference: "EMP-1", Amount: 150050, Currency: "RUB",
		CardBIN: "220000", CardLast4: "0004", State: state, Attempt: 1, SessionID: "ps_1"}
}

// session builds a snapshot of ps_1 whose payout matches testRow.
func session(status pike.SessionStatus, payout pike.PayoutStatus, edit ...func(*pike.Session)) *pike.Session {
	meta, _ := json.Marshal(ledger.RowKey(testBatch, "EMP-1", 1))
	s := &pike.Session{ID: "ps_1", Status: status}
	if payout != "" {
		s.Payouts = []pike.Payout{{ID: "po_1", Status: payout,
			AmountDetails: &pike.AmountDetails{Amount: 150050, Currency: "rub"},
			Method:        &pike.PayoutMethod{Type: "card", Card: &pike.Card{Last4: "0004", Brand: "mir"}},
			Customer:      &pike.Customer{Reference: "EMP-1"},
			Metadata:      meta}}
		if payout == pike.PayoutPending {
			s.NextAction = pike.NextActionConfirm
		}
	}
	for _, e := range edit {
		e(s)
	}
	return s
}

func withError(code string) func(*pike.Session) {
	return func(s *pike.Session) {
		s.Payouts[0].Error = &pike.ErrorInfo{Code: code, Description: code + " happened"}
	}
}

func TestInterpret(t *testing.T) {
	// unknownFrom is an unknown row whose lost call was made from state
	// from; the test passes from as the row's intent (the engine reads it
	// from the audit log).
	unknownFrom := func(from ledger.State) ledger.Row {
		r := testRow(ledger.StateUnknown)
		r.Description = string(from)
		return r
	}
	cancelling := func(code string) ledger.Row {
		r := testRow(ledger.StateCancelling)
		r.FailureCode = code
		return r
	}
	tests := []struct {
		name     string
		row      ledger.Row
		sess     *pike.Session
		src      source
		to       ledger.State
		ready    bool
		resend   bool
		failCode string
	}{
		{"start answered in progress", testRow(ledger.StateStarting), session(pike.SessionInProgress, pike.PayoutInProgress), fromResponse, ledger.StateAwaitingConfirm, false, false, ""},
		{"ready_to_confirm webhook", testRow(ledger.StateAwaitingConfirm), session(pike.SessionInProgress, pike.PayoutPending), fromWebhook, ledger.StateAwaitingConfirm, true, false, ""},
		{"webhook faster than start response", testRow(ledger.StateStarting), session(pike.SessionInProgress, pike.PayoutPending), fromWebhook, ledger.StateAwaitingConfirm, true, false, ""},
		{"confirm answered with payout still pending", testRow(ledger.StateConfirming), session(pike.SessionInProgress, pike.PayoutPending), fromResponse, ledger.StateConfirmed, false, false, ""},
		{"stale ready_to_confirm after confirm", testRow(ledger.StateConfirmed), session(pike.SessionInProgress, pike.PayoutPending), fromWebhook, "", false, false, ""},
		{"stale ready_to_confirm while confirming", testRow(ledger.StateConfirming), session(pike.SessionInProgress, pike.PayoutPending), fromWebhook, "", false, false, ""},
		{"lost confirm: status still pending", unknownFrom(ledger.StateConfirming), session(pike.SessionInProgress, pike.PayoutPending), fromStatus, ledger.StateAwaitingConfirm, true, false, ""},
		{"lost confirm: status in progress", unknownFrom(ledger.StateConfirming), session(pike.SessionInProgress, pike.PayoutInProgress), fromStatus, ledger.StateConfirmed, false, false, ""},
		{"lost start: status created", unknownFrom(ledger.StateStarting), session(pike.SessionCreated, ""), fromStatus, ledger.StateCreated, false, false, ""},
		{"lost start: status in progress", unknownFrom(ledger.StateStarting), session(pike.SessionInProgress, pike.PayoutInProgress), fromStatus, ledger.StateAwaitingConfirm, false, false, ""},
		{"lost cancel: still pending", unknownFrom(ledger.StateCancelling), session(pike.SessionInProgress, pike.PayoutPending), fromStatus, ledger.StateCancelling, false, true, ""},
		{"cancel intent wins over a confirm in doubt", func() ledger.Row {
			r := unknownFrom(ledger.StateConfirming)
			r.FailureCode = ledger.CodeRejected
			return r
		}(), session(pike.SessionInProgress, pike.PayoutPending), fromStatus, ledger.StateCancelling, false, true, ""},
		{"succeeded", testRow(ledger.StateConfirmed), session(pike.SessionAccepted, pike.PayoutSucceeded), fromWebhook, ledger.StateSucceeded, false, false, ""},
		{"auto-confirm at Pike: success straight from awaiting", testRow(ledger.StateAwaitingConfirm), session(pike.SessionAccepted, pike.PayoutSucceeded), fromWebhook, ledger.StateSucceeded, false, false, ""},
		{"failed after confirm", testRow(ledger.StateConfirmed), session(pike.SessionInProgress, pike.PayoutFailed, withError(pike.CodeProviderExceedsLimit)), fromWebhook, ledger.StateFailed, false, false, pike.CodeProviderExceedsLimit},
		{"failed + session error is not final", testRow(ledger.StateConfirmed), session(pike.SessionError, pike.PayoutFailed, withError("provider_internal_error")), fromWebhook, ledger.StateReview, false, false, "provider_internal_error"},
		{"session error without payout", unknownFrom(ledger.StateStarting), session(pike.SessionError, ""), fromStatus, ledger.StateReview, false, false, "session_error"},
		{"Pike auto-cancelled an unconfirmed payout", testRow(ledger.StateAwaitingConfirm), session(pike.SessionCancelled, pike.PayoutFailed, withError(pike.CodeConfirmTimeout)), fromWebhook, ledger.StateCancelled, false, false, pike.CodeConfirmTimeout},
		{"our mismatch cancel completed", cancelling(ledger.CodeMismatch), session(pike.SessionCancelled, pike.PayoutFailed, withError("cancelled_by_partner")), fromResponse, ledger.StateMismatch, false, false, ledger.CodeMismatch},
		{"our reject completed", cancelling(ledger.CodeRejected), session(pike.SessionCancelled, ""), fromResponse, ledger.StateCancelled, false, false, ledger.CodeRejected},
		{"cancel lost the race: payout succeeded", cancelling(ledger.CodeMismatch), session(pike.SessionAccepted, pike.PayoutSucceeded), fromStatus, ledger.StateSucceeded, false, false, ""},
		{"final rows never move", testRow(ledger.StateSucceeded), session(pike.SessionCancelled, pike.PayoutFailed), fromStatus, "", false, false, ""},
		{"failed rows never move on a webhook", testRow(ledger.StateFailed), session(pike.SessionAccepted, pike.PayoutSucceeded), fromWebhook, "", false, false, ""},
		{"paid another amount (auto-confirm at Pike) goes to review", testRow(ledger.StateAwaitingConfirm), session(pike.SessionAccepted, pike.PayoutSucceeded, func(s *pike.Session) { s.Payouts[0].AmountDetails.Amount = 150150 }), fromWebhook, ledger.StateReview, false, false, ledger.CodePaidAmountDiffers},
		{"accepted without payout goes to review", testRow(ledger.StateConfirmed), session(pike.SessionAccepted, ""), fromStatus, ledger.StateReview, false, false, "accepted_without_payout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			eff := tt.row.State
			if eff == ledger.StateUnknown {
				eff = ledger.State(tt.row.Description)
			}
			v := interpret(tt.row, eff, tt.sess, tt.src)
			if v.to != tt.to || v.ready != tt.ready || v.resendCancel != tt.resend {
				t.Fatalf("got to=%q ready=%v resend=%v (%s), want to=%q ready=%v resend=%v", v.to, v.ready, v.resendCancel, v.reason, tt.to, tt.ready, tt.resend)
			}
			gotCode := ""
			if v.failure != nil {
				gotCode = v.failure.Code
			}
			if tt.failCode != "" && gotCode != tt.failCode {
				t.Errorf("got failure code %q, want %q", gotCode, tt.failCode)
			}
			if v.to != "" && v.to != tt.row.State && !ledger.CanTransition(tt.row.State, v.to) {
				t.Errorf("verdict %s → %s is not a legal transition", tt.row.State, v.to)
			}
		})
	}
}

func TestCheckSession(t *testing.T) {
	row := testRow(ledger.StateAwaitingConfirm)
	tests := []struct {
		name       string
		edit       func(*pike.Session)
		fields     []string
		incomplete bool
	}{
		{"matches", func(*pike.Session) {}, nil, false},
		{"currency case is irrelevant", func(s *pike.Session) { s.Payouts[0].AmountDetails.Currency = "RUB" }, nil, false},
		{"amount differs", func(s *pike.Session) { s.Payouts[0].AmountDetails.Amount = 150150 }, []string{"amount"}, false},
		{"currency differs", func(s *pike.Session) { s.Payouts[0].AmountDetails.Currency = "usd" }, []string{"currency"}, false},
		{"card differs", func(s *pike.Session) { s.Payouts[0].Method.Card.Last4 = "4242" }, []string{"card_last4"}, false},
		{"reference differs", func(s *pike.Session) { s.Payouts[0].Customer.Reference = "EMP-2" }, []string{"reference"}, false},
		{"metadata of another attempt", func(s *pike.Session) {
			m, _ := json.Marshal(ledger.RowKey(testBatch, "EMP-1", 2))
			s.Payouts[0].Metadata = m
		}, []string{"metadata"}, false},
		{"another session", func(s *pike.Session) { s.ID = "ps_2" }, []string{"session_id"}, false},
		{"two payouts", func(s *pike.Session) { s.Payouts = append(s.Payouts, s.Payouts[0]) }, []string{"payouts"}, false},
		{"webhook without customer and metadata", func(s *pike.Session) {
			s.Payouts[0].Customer, s.Payouts[0].Metadata = nil, nil
		}, []string{"reference", "metadata"}, true},
		{"no amount at all", func(s *pike.Session) { s.Payouts[0].AmountDetails = nil }, []string{"amount", "currency"}, true},
		{"no payout", func(s *pike.Session) { s.Payouts = nil }, []string{"payout"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := session(pike.SessionInProgress, pike.PayoutPending, tt.edit)
			diffs, incomplete := checkSession(testBatch, row, s)
			var got []string
			for _, d := range diffs {
				got = append(got, d.Field)
			}
			if strings.Join(got, ",") != strings.Join(tt.fields, ",") || incomplete != tt.incomplete {
				t.Fatalf("got %v incomplete=%v, want %v incomplete=%v", got, incomplete, tt.fields, tt.incomplete)
			}
		})
	}
}

func TestIdempotencyKeysAreStableAndDistinct(t *testing.T) {
	a := IdempotencyKey("b1", "EMP-1", 1, pike.MethodConfirm)
	if b := IdempotencyKey("b1", "EMP-1", 1, pike.MethodConfirm); a != b {
		t.Fatalf("got %s then %s for the same call, want equal", a, b)
	}
	seen := map[string]string{}
	for _, batch := range []string{"b1", "b2"} {
		for _, ref := range []string{"EMP-1", "EMP-10"} {
			for n := 1; n <= 3; n++ {
				for _, m := range keyedMethods {
					k := IdempotencyKey(batch, ref, n, m)
					id := batch + "/" + ref + "/" + m
					if prev, ok := seen[k]; ok {
						t.Fatalf("key %s for %s/%d and %s", k, id, n, prev)
					}
					seen[k] = id
					if len(k) != 36 {
						t.Fatalf("got key %q of length %d, want 36", k, len(k))
					}
				}
			}
		}
	}
}

func TestRowKeyRoundTrip(t *testing.T) {
	long := strings.Repeat("f", 64)
	for _, ref := range []string{"EMP-1", "a:b:c", "Зарплата-11"} {
		k := ledger.RowKey(long, ref, 3)
		prefix, n, gotRef, ok := ledger.ParseRowKey(k)
		if !ok || prefix != long[:16] || n != 3 || gotRef != ref {
			t.Errorf("ParseRowKey(%q) = %q %d %q %v, want %q 3 %q true", k, prefix, n, gotRef, ok, long[:16], ref)
		}
	}
	for _, bad := range []string{"", "order123", "payouts:x", "payouts:abc:0:EMP", "payouts:abc:x:EMP"} {
		if _, _, _, ok := ledger.ParseRowKey(bad); ok {
			t.Errorf("ParseRowKey(%q) accepted, want refused", bad)
		}
	}
}
