package sandbox_test

import (
	"context"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

var pikeTime = regexp.MustCompile(`"(created_at|updated_at|finished_at)":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"`)

func TestFullFlow(t *testing.T) {
	e := newEnv(t, nil)

	r := e.call(pike.V1, pike.MethodSessionCreate, pike.PayoutRequest{
		AmountDetails: &pike.AmountDetails{Amount: 150000, Currency: "rub"},
		Customer:      &pike.Customer{Reference: "EMP-1"},
		Metadata:      "row-1",
	}, "k-create")
	s := r.session(t)
	if s.Status != pike.SessionCreated || len(s.Payouts) != 0 || !strings.HasPrefix(s.ID, "ps_") {
		t.Fatalf("create: got %s, want a created ps_ session without payouts", r.Raw)
	}
	if got := len(pikeTime.FindAll(r.Raw, -1)); got != 2 {
		t.Errorf("create: got %d RFC 3339 microsecond Z timestamps, want 2: %s", got, r.Raw)
	}

	r = e.call(pike.V1, pike.MethodStartPayout, pike.PayoutRequest{
		SessionID:          s.ID,
		Method:             pike.CardMethod(sandbox.CardVisa),
		ParticipantDetails: &pike.ParticipantDetails{Recipient: &pike.Participant{FullName: "Ivan Ivanov"}},
	}, "k-start")
	s = r.session(t)
	p := s.Payout()
	if s.Status != pike.SessionInProgress || p == nil || p.Status != pike.PayoutInProgress || !strings.HasPrefix(p.ID, "po_") {
		t.Fatalf("start: got %s, want session and payout in_progress", r.Raw)
	}
	if strings.Contains(string(r.Raw), sandbox.CardVisa) {
		t.Fatalf("start: the answer contains the card number: %s", r.Raw)
	}
	card := p.Method.Card
	if card.Last4 != "4242" || card.Brand != "visa" || card.BIN != "424242" {
		t.Errorf("start: got card %+v, want last4 4242, brand visa, bin 424242", card)
	}
	if *p.AmountDetails != (pike.AmountDetails{Amount: 150000, Currency: "rub"}) || p.Customer.Reference != "EMP-1" ||
		p.MetadataString() != "row-1" || p.ParticipantDetails.Recipient.FullName != "Ivan Ivanov" {
		t.Errorf("start: got payout %s, want the create's amount, reference and metadata and the start's recipient", r.Raw)
	}

	hs := e.waitHooks(s.ID, 1)
	w := hs[0].Webhook
	if hs[0].SigErr != nil || w.Type != pike.WebhookReadyToConfirm || w.Session.NextAction != pike.NextActionConfirm ||
		w.Session.Payout().Status != pike.PayoutPending || w.Session.Status != pike.SessionInProgress {
		t.Fatalf("got first webhook %s (sig err %v), want a signed ready_to_confirm with a pending payout", hs[0].Raw, hs[0].SigErr)
	}
	if ct := hs[0].Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("webhook Content-Type: got %q, want application/json", ct)
	}
	if st := e.status(s.ID); st.NextAction != pike.NextActionConfirm || st.Payout().Status != pike.PayoutPending {
		t.Errorf("status before confirm: got next_action %q payout %s, want confirm/pending", st.NextAction, st.Payout().Status)
	}

	r = e.call(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: s.ID}, "k-confirm")
	if got := r.session(t); got.Status != pike.SessionInProgress || got.NextAction != "" || got.Payout().Status != pike.PayoutInProgress {
		t.Fatalf("confirm: got %s, want session in_progress, no next_action, payout in_progress", r.Raw)
	}

	hs = e.waitHooks(s.ID, 2)
	w = hs[1].Webhook
	fp := w.Session.Payout()
	if hs[1].SigErr != nil || w.Type != pike.WebhookPaymentFinished || w.Session.Status != pike.SessionAccepted ||
		fp.Status != pike.PayoutSucceeded || fp.FinishedAt.IsZero() || fp.TransactionInfo == nil ||
		len(fp.TransactionInfo.RRN) != 12 || len(fp.TransactionInfo.AuthCode) != 6 {
		t.Fatalf("got second webhook %s, want payment_finished: accepted, succeeded, finished_at, rrn, auth_code", hs[1].Raw)
	}
	if got := len(pikeTime.FindAll(hs[1].Raw, -1)); got != 4 {
		t.Errorf("payment_finished: got %d well-formed timestamps, want 4: %s", got, hs[1].Raw)
	}

	j := e.sb.Journal()
	if len(j) != 1 {
		t.Fatalf("journal: got %d entries, want 1", len(j))
	}
	want := sandbox.Payment{SessionID: s.ID, PayoutID: p.ID, Reference: "EMP-1", Metadata: "row-1", Amount: 150000, Currency: "rub", CardLast4: "4242"}
	got := j[0]
	got.CardSHA256, got.At = "", time.Time{}
	if got != want {
		t.Errorf("journal: got %+v, want %+v", got, want)
	}
	if err := e.sb.Quiesce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(e.hooks.hooks(s.ID)); n != 2 {
		t.Errorf("got %d webhooks, want exactly 2", n)
	}
}

func TestIllegalTransitions(t *testing.T) {
	e := newEnv(t, nil)
	pending := func(ref string) string {
		id := e.initPayout(ref, sandbox.CardVisa, 1000, "rub")
		e.waitStatus(id, "", pike.PayoutPending)
		return id
	}
	sreq := func(id string) pike.SessionRequest { return pike.SessionRequest{SessionID: id} }

	tests := []struct {
		name   string
		setup  func() string // returns a session id
		method string
		status int
		code   string
	}{
		{"confirm twice", func() string {
			id := pending("t1")
			e.call(pike.V1, pike.MethodConfirm, sreq(id), "")
			return id
		}, pike.MethodConfirm, 400, pike.CodeInvalidSessionStatus},
		{"confirm after cancel", func() string {
			id := pending("t2")
			e.call(pike.V1, pike.MethodCancel, sreq(id), "")
			return id
		}, pike.MethodConfirm, 400, pike.CodeInvalidSessionStatus},
		{"cancel after success", func() string {
			id := pending("t3")
			e.call(pike.V1, pike.MethodConfirm, sreq(id), "")
			e.waitStatus(id, pike.SessionAccepted, pike.PayoutSucceeded)
			return id
		}, pike.MethodCancel, 400, pike.CodeInvalidSessionStatus},
		{"cancel after confirm", func() string {
			id := pending("t4")
			e.call(pike.V1, pike.MethodConfirm, sreq(id), "")
			return id
		}, pike.MethodCancel, 400, pike.CodeInvalidSessionStatus},
		{"confirm a created session", func() string {
			return e.call(pike.V1, pike.MethodSessionCreate, pike.PayoutRequest{}, "").session(t).ID
		}, pike.MethodConfirm, 400, pike.CodeInvalidSessionStatus},
		{"cancel twice", func() string {
			id := pending("t5")
			e.call(pike.V1, pike.MethodCancel, sreq(id), "")
			return id
		}, pike.MethodCancel, 400, pike.CodeInvalidSessionStatus},
		{"confirm unknown session", func() string { return "ps_999999" }, pike.MethodConfirm, 404, pike.CodeSessionNotFound},
		{"cancel unknown session", func() string { return "ps_999999" }, pike.MethodCancel, 404, pike.CodeSessionNotFound},
		{"status unknown session", func() string { return "nope" }, pike.MethodStatus, 404, pike.CodeSessionNotFound},
		{"confirm without session_id", func() string { return "" }, pike.MethodConfirm, 400, pike.CodeInvalidRequest},
	}
	// Sessions still moving on their own (confirmed, not yet finished):
	// only their outcome can be compared.
	moving := map[string]bool{"cancel after confirm": true, "confirm twice": true}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id := tt.setup()
			var before *pike.Session
			if strings.HasPrefix(id, "ps_") && id != "ps_999999" {
				before = e.status(id)
			}
			r := e.call(pike.V1, tt.method, sreq(id), "")
			if r.HTTPStatus != tt.status || r.code() != tt.code {
				t.Fatalf("got HTTP %d %s, want %d %s", r.HTTPStatus, r.Raw, tt.status, tt.code)
			}
			if before != nil && moving[tt.name] {
				// The refused call must not stop the confirmed payout.
				e.waitStatus(id, pike.SessionAccepted, pike.PayoutSucceeded)
			} else if before != nil {
				after := e.status(id)
				if after.Status != before.Status || after.NextAction != before.NextAction {
					t.Errorf("refused call changed the session: %s/%s → %s/%s", before.Status, before.NextAction, after.Status, after.NextAction)
				}
			}
		})
	}
	for _, p := range e.sb.Journal() {
		if p.Reference == "t2" || p.Reference == "t5" {
			t.Errorf("journal has cancelled %s", p.Reference)
		}
	}
}

func TestStartTwiceRefused(t *testing.T) {
	e := newEnv(t, nil)
	id := e.initPayout("s1", sandbox.CardVisa, 1000, "rub")
	r := e.call(pike.V1, pike.MethodStartPayout, pike.PayoutRequest{SessionID: id, Method: pike.CardMethod(sandbox.CardVisa)}, "")
	if r.HTTPStatus != 400 || r.code() != pike.CodeInvalidSessionStatus {
		t.Fatalf("second start: got HTTP %d %s, want 400 invalid_session_status", r.HTTPStatus, r.Raw)
	}
	if n := e.sb.Stats().Payouts; n != 1 {
		t.Errorf("got %d payouts, want 1", n)
	}
}

func TestStartOverwritesCreate(t *testing.T) {
	e := newEnv(t, nil)
	s := e.call(pike.V1, pike.MethodSessionCreate, pike.PayoutRequest{
		AmountDetails: &pike.AmountDetails{Amount: 100, Currency: "rub"},
		Method:        pike.CardMethod(sandbox.CardMastercard),
		Customer:      &pike.Customer{Reference: "old"},
		Metadata:      map[string]int{"v": 1},
	}, "").session(t)
	r := e.call(pike.V1, pike.MethodStartPayout, pike.PayoutRequest{
		SessionID:     s.ID,
		AmountDetails: &pike.AmountDetails{Amount: 200, Currency: "usd"},
		Customer:      &pike.Customer{Reference: "new"},
		Metadata:      "m2",
	}, "")
	p := r.session(t).Payout()
	if *p.AmountDetails != (pike.AmountDetails{Amount: 200, Currency: "usd"}) || p.Customer.Reference != "new" || p.MetadataString() != "m2" || p.Last4() != "4444" {
		t.Fatalf("got %s, want amount 200 usd, reference new, metadata m2, card 4444 from create", r.Raw)
	}
}

func TestCreateValidation(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		name string
		path string
		body string
	}{
		{"negative amount", pike.MethodSessionCreate, `{"amount_details":{"amount":-5,"currency":"rub"}}`},
		{"zero amount", pike.MethodInitPayout, `{"amount_details":{"amount":0,"currency":"rub"},"payment_method":{"type":"card","card":{"type":"bank_card","bank_card":{"number":"4242424242424242"}}}}`},
		{"upper-case currency", pike.MethodSessionCreate, `{"amount_details":{"amount":5,"currency":"RUB"}}`},
		{"unknown currency", pike.MethodSessionCreate, `{"amount_details":{"amount":5,"currency":"xyz"}}`},
		{"fractional amount", pike.MethodSessionCreate, `{"amount_details":{"amount":5.5,"currency":"rub"}}`},
		{"not JSON", pike.MethodSessionCreate, `{"amount_details":`},
		{"init without card", pike.MethodInitPayout, `{"amount_details":{"amount":5,"currency":"rub"}}`},
		{"init without amount", pike.MethodInitPayout, `{"payment_method":{"type":"card","card":{"type":"bank_card","bank_card":{"number":"4242424242424242"}}}}`},
		{"start without card", pike.MethodStartPayout, `{"session_id":"ps_1","amount_details":{"amount":5,"currency":"rub"}}`},
		{"wallet not JSON", pike.MethodWalletBalance, `nope`},
	}
	e.call(pike.V1, pike.MethodSessionCreate, `{}`, "") // ps_1 for "start without card"
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.sb.Stats()
			r := e.call(pike.V1, tt.path, tt.body, "")
			if r.HTTPStatus != http.StatusBadRequest || r.code() != pike.CodeInvalidRequest {
				t.Fatalf("got HTTP %d %s, want 400 invalid_request", r.HTTPStatus, r.Raw)
			}
			if after := e.sb.Stats(); after.Sessions != before.Sessions || after.Payouts != before.Payouts {
				t.Errorf("a refused call created something: sessions %d→%d payouts %d→%d", before.Sessions, after.Sessions, before.Payouts, after.Payouts)
			}
		})
	}
}

func TestCancelCreatedSession(t *testing.T) {
	e := newEnv(t, nil)
	s := e.call(pike.V1, pike.MethodSessionCreate, pike.PayoutRequest{Customer: &pike.Customer{Reference: "c"}}, "").session(t)
	r := e.call(pike.V1, pike.MethodCancel, pike.SessionRequest{SessionID: s.ID}, "")
	if got := r.session(t); got.Status != pike.SessionCancelled || len(got.Payouts) != 0 {
		t.Fatalf("got %s, want a cancelled session without payouts", r.Raw)
	}
	r = e.call(pike.V1, pike.MethodStartPayout, payoutReqFor(s.ID, sandbox.CardVisa), "")
	if r.code() != pike.CodeInvalidSessionStatus {
		t.Fatalf("start after cancel: got %s, want invalid_session_status", r.Raw)
	}
	hs := e.waitHooks(s.ID, 1)
	if hs[0].Webhook.Type != pike.WebhookPaymentFinished || hs[0].Webhook.Session.Status != pike.SessionCancelled {
		t.Errorf("got webhook %s, want payment_finished cancelled", hs[0].Raw)
	}
}

func payoutReqFor(id, pan string) pike.PayoutRequest {
	r := payoutReq("x", pan, 1000, "rub")
	r.SessionID = id
	return r
}

func TestConfirmDeadline(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.ConfirmDeadline = 5 * time.Millisecond })
	id := e.initPayout("late", sandbox.CardVisa, 1000, "rub")
	s := e.waitStatus(id, pike.SessionCancelled, pike.PayoutFailed)
	if p := s.Payout(); p.Error == nil || p.Error.Code != pike.CodeConfirmTimeout || p.FinishedAt.IsZero() {
		t.Fatalf("got payout %+v, want failed with confirm_timeout and finished_at", p)
	}
	r := e.call(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: id}, "")
	if r.code() != pike.CodeInvalidSessionStatus {
		t.Errorf("confirm after the deadline: got %s, want invalid_session_status", r.Raw)
	}
	hs := e.waitHooks(id, 2)
	if types(hs) != "ready_to_confirm,payment_finished" {
		t.Errorf("got webhooks %s, want ready_to_confirm,payment_finished", types(hs))
	}
	if len(e.sb.Journal()) != 0 {
		t.Errorf("journal: got %v, want empty", e.sb.Journal())
	}
}

func TestConfirmBeatsDeadline(t *testing.T) {
	// A payout confirmed in time is not cancelled by its old deadline.
	e := newEnv(t, func(c *sandbox.Config) { c.ConfirmDeadline = time.Second; c.FinishDelay = 2 * time.Second })
	id := e.initPayout("ontime", sandbox.CardVisa, 1000, "rub")
	e.waitStatus(id, "", pike.PayoutPending)
	if r := e.call(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: id}, ""); r.HTTPStatus != 200 {
		t.Fatalf("confirm: %s", r.Raw)
	}
	if s := e.waitStatus(id, pike.SessionAccepted, ""); s.Payout().Status != pike.PayoutSucceeded {
		t.Fatalf("got %+v, want succeeded", s.Payout())
	}
}

func TestAutoConfirm(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.AutoConfirm = true })
	id := e.initPayout("auto", sandbox.CardVisa, 1000, "rub")
	e.waitStatus(id, pike.SessionAccepted, pike.PayoutSucceeded)
	if err := e.sb.Quiesce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := types(e.hooks.hooks(id)); got != "payment_finished" {
		t.Errorf("got webhooks %q, want only payment_finished (no ready_to_confirm under auto-confirm)", got)
	}
	if j := e.sb.Journal(); len(j) != 1 || j[0].Amount != 1000 {
		t.Errorf("journal: got %+v, want one payment of 1000", j)
	}
}
