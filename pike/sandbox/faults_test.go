package sandbox_test

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

func TestFaultFailBeforeApply(t *testing.T) {
	e := newEnv(t, nil)
	e.sb.Inject(sandbox.Rule{Method: pike.MethodInitPayout, Reference: "fb", Fault: sandbox.FaultFailBeforeApply})
	req := payoutReq("fb", sandbox.CardVisa, 100, "rub")
	r := e.call(pike.V1, pike.MethodInitPayout, req, "key-fb")
	if r.HTTPStatus != http.StatusInternalServerError || r.code() != pike.CodeInternal {
		t.Fatalf("got HTTP %d %s, want 500 internal_error", r.HTTPStatus, r.Raw)
	}
	if st := e.sb.Stats(); st.Sessions != 0 || st.Faults["fail_before_apply"] != 1 {
		t.Fatalf("got %+v, want nothing applied and the fault counted", st)
	}
	// Nothing was applied, so the same key goes through.
	if r := e.call(pike.V1, pike.MethodInitPayout, req, "key-fb"); r.HTTPStatus != http.StatusOK {
		t.Fatalf("retry with the same key: got %s, want 200", r.Raw)
	}
}

func TestFaultFailAfterApply(t *testing.T) {
	e := newEnv(t, nil)
	e.sb.Inject(sandbox.Rule{Method: pike.MethodSessionCreate, Fault: sandbox.FaultFailAfterApply})
	r := e.call(pike.V1, pike.MethodSessionCreate, `{"customer":{"reference":"fa"}}`, "key-fa")
	if r.HTTPStatus != http.StatusInternalServerError {
		t.Fatalf("got HTTP %d %s, want 500", r.HTTPStatus, r.Raw)
	}
	if got := e.sb.SessionsFor("fa"); len(got) != 1 || got[0].Status != pike.SessionCreated {
		t.Fatalf("got sessions %+v, want the one created despite the 500", got)
	}
	if r := e.call(pike.V1, pike.MethodSessionCreate, `{"customer":{"reference":"fa"}}`, "key-fa"); r.code() != pike.CodeIdempotencyKeyExists {
		t.Fatalf("retry: got %s, want idempotency_key_already_exists", r.Raw)
	}
}

func TestFaultDropAfterApply(t *testing.T) {
	e := newEnv(t, nil)
	id := e.initPayout("drop", sandbox.CardVisa, 100, "rub")
	e.waitStatus(id, "", pike.PayoutPending)
	e.sb.Inject(sandbox.Rule{Method: pike.MethodConfirm, Reference: "drop", Fault: sandbox.FaultDropAfterApply})
	_, err := e.try(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: id}, "confirm-drop", nil)
	if err == nil {
		t.Fatal("got an answer, want a connection error")
	}
	// Applied all the same: the payout is paid once.
	s := e.waitStatus(id, pike.SessionAccepted, pike.PayoutSucceeded)
	if len(s.Payouts) != 1 {
		t.Fatalf("got %d payouts", len(s.Payouts))
	}
	if r := e.call(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: id}, "confirm-drop"); r.code() != pike.CodeIdempotencyKeyExists {
		t.Errorf("retry: got %s, want idempotency_key_already_exists", r.Raw)
	}
	if j := e.sb.Journal(); len(j) != 1 {
		t.Errorf("journal: got %d entries, want 1", len(j))
	}
}

func TestFaultDropAfterApplyReplay(t *testing.T) {
	// In replay mode the retry gets the answer that was lost.
	e := newEnv(t, func(c *sandbox.Config) { c.IdempotencyReplay = true })
	e.sb.Inject(sandbox.Rule{Method: pike.MethodSessionCreate, Fault: sandbox.FaultDropAfterApply})
	if _, err := e.try(pike.V1, pike.MethodSessionCreate, `{}`, "key-d", nil); err == nil {
		t.Fatal("got an answer, want a connection error")
	}
	r := e.call(pike.V1, pike.MethodSessionCreate, `{}`, "key-d")
	if r.HTTPStatus != http.StatusOK || r.session(t).ID != "ps_1" || e.sb.Stats().Sessions != 1 {
		t.Fatalf("retry: got %s, want the original ps_1 and one session", r.Raw)
	}
}

func TestFaultRateLimit(t *testing.T) {
	e := newEnv(t, nil)
	e.sb.Inject(sandbox.Rule{Fault: sandbox.FaultRateLimit, Times: 2})
	for i := range 2 {
		r := e.call(pike.V1, pike.MethodSessionCreate, `{}`, "")
		if r.HTTPStatus != http.StatusTooManyRequests || r.code() != pike.CodeRateLimited || r.Header.Get("Retry-After") != "1" {
			t.Fatalf("call %d: got HTTP %d %s Retry-After %q, want 429 too_many_requests, Retry-After 1", i, r.HTTPStatus, r.Raw, r.Header.Get("Retry-After"))
		}
	}
	if st := e.sb.Stats(); st.Sessions != 0 {
		t.Fatalf("rate-limited calls created %d sessions", st.Sessions)
	}
	if r := e.call(pike.V1, pike.MethodSessionCreate, `{}`, ""); r.HTTPStatus != http.StatusOK {
		t.Fatalf("third call: got %s, want 200 (Times 2 used up)", r.Raw)
	}
}

func TestFaultLatency(t *testing.T) {
	// An hour of latency: the client gives up, nothing is applied.
	e := newEnv(t, func(c *sandbox.Config) { c.Faults.Latency = time.Hour })
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err := e.try(pike.V1, pike.MethodSessionCreate, `{}`, "", func(r *http.Request) { *r = *r.WithContext(ctx) })
	if err == nil {
		t.Fatal("got an answer, want a timeout")
	}
	if n := e.sb.Stats().Sessions; n != 0 {
		t.Errorf("got %d sessions, want 0", n)
	}
}

func TestFaultWebhooks(t *testing.T) {
	tests := []struct {
		name  string
		fault sandbox.Fault
		on    pike.WebhookType
		want  string // webhook types received
	}{
		{"duplicate ready", sandbox.FaultDuplicateWebhook, pike.WebhookReadyToConfirm, "ready_to_confirm,ready_to_confirm,payment_finished"},
		{"duplicate finished", sandbox.FaultDuplicateWebhook, pike.WebhookPaymentFinished, "ready_to_confirm,payment_finished,payment_finished"},
		{"drop ready", sandbox.FaultDropWebhook, pike.WebhookReadyToConfirm, "payment_finished"},
		{"drop finished", sandbox.FaultDropWebhook, pike.WebhookPaymentFinished, "ready_to_confirm"},
		{"reorder ready", sandbox.FaultReorderWebhook, pike.WebhookReadyToConfirm, "payment_finished,ready_to_confirm"},
		{"reorder finished (late)", sandbox.FaultReorderWebhook, pike.WebhookPaymentFinished, "ready_to_confirm,payment_finished"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The held-back webhook is released by the next one, or after
			// WebhookRetryBase: an hour when the next one must overtake it.
			e := newEnv(t, func(c *sandbox.Config) {
				if tt.fault == sandbox.FaultReorderWebhook && tt.on == pike.WebhookReadyToConfirm {
					c.WebhookRetryBase = time.Hour
				}
			})
			e.sb.Inject(sandbox.Rule{Method: string(tt.on), Reference: "wh", Fault: tt.fault})
			id := e.initPayout("wh", sandbox.CardVisa, 100, "rub")
			e.waitStatus(id, "", pike.PayoutPending)
			e.call(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: id}, "")
			e.waitStatus(id, pike.SessionAccepted, pike.PayoutSucceeded)
			if err := e.sb.Quiesce(context.Background()); err != nil {
				t.Fatal(err)
			}
			hs := e.hooks.hooks(id)
			if got := types(hs); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
			if tt.fault == sandbox.FaultDuplicateWebhook {
				for i := 1; i < len(hs); i++ {
					if hs[i].Webhook.Type == hs[i-1].Webhook.Type && !bytes.Equal(hs[i].Raw, hs[i-1].Raw) {
						t.Errorf("duplicate differs:\n%s\n%s", hs[i-1].Raw, hs[i].Raw)
					}
				}
			}
			st := e.sb.Stats()
			if st.Faults[tt.fault.String()] != 1 {
				t.Errorf("got faults %v, want %s once", st.Faults, tt.fault)
			}
			if len(e.sb.Journal()) != 1 {
				t.Errorf("journal: got %d, want 1 whatever happens to webhooks", len(e.sb.Journal()))
			}
		})
	}
}

func TestFaultMismatchAmount(t *testing.T) {
	e := newEnv(t, nil)
	e.sb.Inject(sandbox.Rule{Method: pike.MethodInitPayout, Reference: "mm", Fault: sandbox.FaultMismatchAmount})
	id := e.initPayout("mm", sandbox.CardVisa, 5000, "rub")
	ok := e.initPayout("fine", sandbox.CardVisa, 5000, "rub")
	hs := e.waitHooks(id, 1)
	if got := hs[0].Webhook.Session.Payout().AmountDetails.Amount; got != 5100 {
		t.Fatalf("ready_to_confirm: got amount %d, want 5100", got)
	}
	if got := e.status(id).Payout().AmountDetails.Amount; got != 5100 {
		t.Fatalf("status: got amount %d, want 5100", got)
	}
	// A processor that confirms anyway pays the reported amount.
	e.call(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: id}, "")
	e.waitStatus(ok, "", pike.PayoutPending)
	e.call(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: ok}, "")
	e.waitStatus(id, pike.SessionAccepted, "")
	e.waitStatus(ok, pike.SessionAccepted, "")
	paid := map[string]int64{}
	for _, p := range e.sb.Journal() {
		paid[p.Reference] = p.Amount
	}
	if paid["mm"] != 5100 || paid["fine"] != 5000 {
		t.Errorf("journal: got %v, want mm 5100 and fine 5000", paid)
	}
}

func TestFaultsAfterConfirm(t *testing.T) {
	tests := []struct {
		fault   sandbox.Fault
		session pike.SessionStatus
		code    string
	}{
		{sandbox.FaultSessionError, pike.SessionError, pike.CodeProviderInternal},
		{sandbox.FaultDeclineAfterConfirm, pike.SessionCancelled, pike.CodeProviderExceedsLimit},
	}
	for _, tt := range tests {
		t.Run(tt.fault.String(), func(t *testing.T) {
			e := newEnv(t, nil)
			e.sb.Inject(sandbox.Rule{Method: pike.MethodConfirm, Fault: tt.fault})
			id := e.initPayout("ac", sandbox.CardVisa, 100, "rub")
			e.waitStatus(id, "", pike.PayoutPending)
			e.call(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: id}, "")
			s := e.waitStatus(id, tt.session, pike.PayoutFailed)
			if s.Payout().Error.Code != tt.code {
				t.Errorf("got code %s, want %s", s.Payout().Error.Code, tt.code)
			}
			if len(e.sb.Journal()) != 0 {
				t.Errorf("journal: got %v, want empty", e.sb.Journal())
			}
		})
	}
}

func TestProbabilisticFaultsDeterministic(t *testing.T) {
	run := func() []int {
		e := newEnv(t, func(c *sandbox.Config) {
			c.Seed = 42
			c.Faults = sandbox.Faults{FailBeforeApply: 0.3, RateLimit: 0.2}
		})
		var got []int
		for range 40 {
			got = append(got, e.call(pike.V1, pike.MethodSessionCreate, `{}`, "").HTTPStatus)
		}
		return got
	}
	a, b := run(), run()
	count := map[int]int{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("same seed, different faults:\n%v\n%v", a, b)
		}
		count[a[i]]++
	}
	if count[200] == 0 || count[500] == 0 || count[429] == 0 {
		t.Errorf("got %v, want a mix of 200, 500 and 429 in 40 calls", count)
	}
}

func TestSetFaults(t *testing.T) {
	e := newEnv(t, nil)
	e.sb.SetFaults(sandbox.Faults{FailBeforeApply: 1})
	if r := e.call(pike.V1, pike.MethodSessionCreate, `{}`, ""); r.HTTPStatus != http.StatusInternalServerError {
		t.Fatalf("with FailBeforeApply 1: got HTTP %d", r.HTTPStatus)
	}
	e.sb.SetFaults(sandbox.Faults{})
	if r := e.call(pike.V1, pike.MethodSessionCreate, `{}`, ""); r.HTTPStatus != http.StatusOK {
		t.Fatalf("after clearing faults: got HTTP %d", r.HTTPStatus)
	}
}

func TestRuleReferenceAndTimes(t *testing.T) {
	e := newEnv(t, nil)
	e.sb.Inject(sandbox.Rule{Method: pike.MethodStatus, Reference: "target", Fault: sandbox.FaultFailBeforeApply, Times: 2})
	other := e.initPayout("other", sandbox.CardVisa, 100, "rub")
	target := e.initPayout("target", sandbox.CardVisa, 100, "rub")
	statusCode := func(id string) int {
		return e.call(pike.V1, pike.MethodStatus, pike.SessionRequest{SessionID: id}, "").HTTPStatus
	}
	got := []int{statusCode(other), statusCode(target), statusCode(other), statusCode(target), statusCode(target)}
	want := []int{200, 500, 200, 500, 200}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}
