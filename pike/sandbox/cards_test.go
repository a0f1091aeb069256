package sandbox_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/payouts/payouts/internal/pan"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

func TestTestCards(t *testing.T) {
	tests := []struct {
		card    string
		ready   bool               // reaches pending and is confirmed
		session pike.SessionStatus // final session status
		payout  pike.PayoutStatus  // final payout status
		code    string             // payout error code
		paid    int64              // journal amount, 0 = not paid
		hooks   string             // webhook types received
		brand   string
	}{
		{sandbox.CardVisa, true, pike.SessionAccepted, pike.PayoutSucceeded, "", 1000, "ready_to_confirm,payment_finished", "visa"},
		{sandbox.CardMastercard, true, pike.SessionAccepted, pike.PayoutSucceeded, "", 1000, "ready_to_confirm,payment_finished", "mastercard"},
		{sandbox.CardMir, true, pike.SessionAccepted, pike.PayoutSucceeded, "", 1000, "ready_to_confirm,payment_finished", "mir"},
		{sandbox.CardNotExist, false, pike.SessionCancelled, pike.PayoutFailed, pike.CodeCardNumberNotExist, 0, "payment_finished", "visa"},
		{sandbox.CardExceedsLimit, true, pike.SessionCancelled, pike.PayoutFailed, pike.CodeProviderExceedsLimit, 0, "ready_to_confirm,payment_finished", "visa"},
		{sandbox.CardSessionError, true, pike.SessionError, pike.PayoutFailed, pike.CodeProviderInternal, 0, "ready_to_confirm,payment_finished", "visa"},
		{sandbox.CardNoWebhooks, true, pike.SessionAccepted, pike.PayoutSucceeded, "", 1000, "", "visa"},
		{sandbox.CardMismatch, true, pike.SessionAccepted, pike.PayoutSucceeded, "", 1100, "ready_to_confirm,payment_finished", "visa"},
	}
	e := newEnv(t, nil)
	for _, tt := range tests {
		t.Run(tt.card[len(tt.card)-4:], func(t *testing.T) {
			ref := "ref-" + tt.card
			id := e.initPayout(ref, tt.card, 1000, "rub")
			if tt.ready {
				s := e.waitStatus(id, pike.SessionInProgress, pike.PayoutPending)
				if tt.card == sandbox.CardMismatch && s.Payout().AmountDetails.Amount != 1100 {
					t.Errorf("pending mismatch payout: got amount %d, want 1100", s.Payout().AmountDetails.Amount)
				}
				if r := e.call(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: id}, ""); r.HTTPStatus != http.StatusOK {
					t.Fatalf("confirm: HTTP %d %s", r.HTTPStatus, r.Raw)
				}
			}
			s := e.waitStatus(id, tt.session, tt.payout)
			p := s.Payout()
			if got := ""; p.Error != nil {
				got = p.Error.Code
				if got != tt.code {
					t.Errorf("payout error: got %q, want %q", got, tt.code)
				}
			} else if tt.code != "" {
				t.Errorf("payout error: got none, want %q", tt.code)
			}
			if tt.session == pike.SessionError && (s.Error == nil || s.Error.Code == "") {
				t.Errorf("session in error without an error object: %+v", s)
			}
			if p.Method.Card.Brand != tt.brand || p.Last4() != tt.card[len(tt.card)-4:] {
				t.Errorf("card: got %+v, want brand %s", p.Method.Card, tt.brand)
			}
			if err := e.sb.Quiesce(context.Background()); err != nil {
				t.Fatal(err)
			}
			if got := types(e.hooks.hooks(id)); got != tt.hooks {
				t.Errorf("webhooks: got %q, want %q", got, tt.hooks)
			}
			var paid []sandbox.Payment
			for _, pm := range e.sb.Journal() {
				if pm.Reference == ref {
					paid = append(paid, pm)
				}
			}
			switch {
			case tt.paid == 0 && len(paid) != 0:
				t.Errorf("journal: got %+v, want nothing paid", paid)
			case tt.paid != 0 && (len(paid) != 1 || paid[0].Amount != tt.paid):
				t.Errorf("journal: got %+v, want one payment of %d", paid, tt.paid)
			}
		})
	}
}

func TestCardNotExistCannotBeConfirmed(t *testing.T) {
	e := newEnv(t, nil)
	id := e.initPayout("ne", sandbox.CardNotExist, 1000, "rub")
	e.waitStatus(id, pike.SessionCancelled, pike.PayoutFailed)
	if r := e.call(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: id}, ""); r.code() != pike.CodeInvalidSessionStatus {
		t.Fatalf("got %s, want invalid_session_status", r.Raw)
	}
}

func TestCardExpired(t *testing.T) {
	e := newEnv(t, nil)
	for _, path := range []string{pike.MethodInitPayout, pike.MethodStartPayout} {
		t.Run(path, func(t *testing.T) {
			req := payoutReq("exp", sandbox.CardExpired, 1000, "rub")
			var id string
			if path == pike.MethodStartPayout {
				id = e.call(pike.V1, pike.MethodSessionCreate, pike.PayoutRequest{}, "").session(t).ID
				req.SessionID = id
			}
			before := e.sb.Stats()
			r := e.call(pike.V1, path, req, "exp-"+path)
			if r.HTTPStatus != http.StatusBadRequest || r.code() != pike.CodeBankCardExpired {
				t.Fatalf("got HTTP %d %s, want 400 bank_card_expired", r.HTTPStatus, r.Raw)
			}
			after := e.sb.Stats()
			if after.Sessions != before.Sessions || after.Payouts != before.Payouts {
				t.Errorf("refused call created something: %+v → %+v", before, after)
			}
			if id != "" {
				if s := e.status(id); s.Status != pike.SessionCreated || len(s.Payouts) != 0 {
					t.Errorf("session after refused start: got %s with %d payouts, want created without", s.Status, len(s.Payouts))
				}
			}
		})
	}
}

func TestCardSlow(t *testing.T) {
	// SlowDelay is an hour: the slow card must still be in progress when a
	// normal card started after it is already pending.
	e := newEnv(t, nil)
	slow := e.initPayout("slow", sandbox.CardSlow, 1000, "rub")
	fast := e.initPayout("fast", sandbox.CardVisa, 1000, "rub")
	e.waitStatus(fast, "", pike.PayoutPending)
	if s := e.status(slow); s.Payout().Status != pike.PayoutInProgress || s.NextAction != "" {
		t.Fatalf("slow card: got payout %s next_action %q, want still in_progress", s.Payout().Status, s.NextAction)
	}
}

func TestCardValidation(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct{ name, number string }{
		{"Luhn", "4242424242424241"},
		{"12 digits", "424242424242"},
		{"20 digits", "42424242424242424242"},
		{"spaces", "4242 4242 4242 4242"},
		{"letters", "4242424242424a42"},
		{"empty", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.call(pike.V1, pike.MethodInitPayout, payoutReq("bad", tt.number, 1000, "rub"), "")
			if r.HTTPStatus != http.StatusBadRequest || r.code() != pike.CodeInvalidRequest {
				t.Fatalf("got HTTP %d %s, want 400 invalid_request", r.HTTPStatus, r.Raw)
			}
			if tt.number != "" && strings.Contains(string(r.Raw), tt.number) {
				t.Errorf("the error echoes the card number: %s", r.Raw)
			}
		})
	}
	for _, number := range []string{"4000000000000002", "6011111111111117", "378282246310005", "2221000000000009"} {
		r := e.call(pike.V1, pike.MethodInitPayout, payoutReq("ok-"+number, number, 1000, "rub"), "")
		if r.HTTPStatus != http.StatusOK {
			t.Errorf("valid card %s: got HTTP %d %s, want 200", pan.Mask(number), r.HTTPStatus, r.Raw)
		}
	}
	for _, pan := range []string{sandbox.CardVisa, sandbox.CardMastercard, sandbox.CardMir, sandbox.CardNotExist, sandbox.CardExceedsLimit,
		sandbox.CardSessionError, sandbox.CardNoWebhooks, sandbox.CardSlow, sandbox.CardMismatch, sandbox.CardExpired} {
		if !luhn(pan) {
			t.Errorf("test card %s is not Luhn-valid", pan)
		}
	}
}

// luhn is an independent Luhn check for the test cards.
func luhn(pan string) bool {
	sum := 0
	for i := range pan {
		d := int(pan[len(pan)-1-i] - '0')
		if i%2 == 1 {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return sum%10 == 0
}

func TestMismatchMajorUnit(t *testing.T) {
	tests := []struct {
		cur  string
		want int64
	}{{"rub", 1100}, {"usd", 1100}, {"jpy", 1001}, {"kwd", 2000}}
	e := newEnv(t, nil)
	for _, tt := range tests {
		t.Run(tt.cur, func(t *testing.T) {
			id := e.initPayout("mm-"+tt.cur, sandbox.CardMismatch, 1000, tt.cur)
			hs := e.waitHooks(id, 1)
			if got := hs[0].Webhook.Session.Payout().AmountDetails.Amount; got != tt.want {
				t.Errorf("ready_to_confirm amount: got %d, want %d", got, tt.want)
			}
			// The processor must cancel it; then nothing is paid.
			e.call(pike.V1, pike.MethodCancel, pike.SessionRequest{SessionID: id}, "")
			for _, p := range e.sb.Journal() {
				if p.SessionID == id {
					t.Errorf("cancelled mismatch paid: %+v", p)
				}
			}
		})
	}
}
