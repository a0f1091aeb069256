package sandbox_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

// TestFailAnswerBeforeAndAfterApplyIndistinguishable: for every documented
// retry-later code at HTTP 400, 500 and 503, an error answered before
// applying and one answered after applying are the same bytes: the client
// cannot tell whether the call was applied.
func TestFailAnswerBeforeAndAfterApplyIndistinguishable(t *testing.T) {
	for _, a := range sandbox.AmbiguousAnswers() {
		t.Run(a.Code+"/"+http.StatusText(a.HTTPStatus), func(t *testing.T) {
			e := newEnv(t, nil)
			e.sb.Inject(sandbox.Rule{Method: pike.MethodInitPayout, Reference: "before", Fault: sandbox.FaultFailBeforeApply, Code: a.Code, HTTPStatus: a.HTTPStatus})
			e.sb.Inject(sandbox.Rule{Method: pike.MethodInitPayout, Reference: "after", Fault: sandbox.FaultFailAfterApply, Code: a.Code, HTTPStatus: a.HTTPStatus})
			before := e.call(pike.V1, pike.MethodInitPayout, payoutReq("before", sandbox.CardVisa, 100, "rub"), "k-before")
			after := e.call(pike.V1, pike.MethodInitPayout, payoutReq("after", sandbox.CardVisa, 100, "rub"), "k-after")
			for _, r := range []reply{before, after} {
				if r.HTTPStatus != a.HTTPStatus || r.code() != a.Code {
					t.Fatalf("got HTTP %d %s, want %d %s", r.HTTPStatus, r.Raw, a.HTTPStatus, a.Code)
				}
			}
			if !bytes.Equal(before.Raw, after.Raw) {
				t.Errorf("answers differ, a client could tell them apart:\nbefore %s\nafter  %s", before.Raw, after.Raw)
			}
			if n := len(e.sb.SessionsFor("before")); n != 0 {
				t.Errorf("before: got %d sessions, want 0 (nothing applied)", n)
			}
			if n := len(e.sb.SessionsFor("after")); n != 1 {
				t.Errorf("after: got %d sessions, want 1 (applied)", n)
			}
			// The same key again: free before, taken after.
			if r := e.call(pike.V1, pike.MethodInitPayout, payoutReq("before", sandbox.CardVisa, 100, "rub"), "k-before"); r.HTTPStatus != http.StatusOK {
				t.Errorf("before, same key again: got %s, want 200", r.Raw)
			}
			if r := e.call(pike.V1, pike.MethodInitPayout, payoutReq("after", sandbox.CardVisa, 100, "rub"), "k-after"); r.code() != pike.CodeIdempotencyKeyExists {
				t.Errorf("after, same key again: got %s, want idempotency_key_already_exists", r.Raw)
			}
		})
	}
}

func TestFailAnswersProbabilistic(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) {
		c.Faults = sandbox.Faults{FailAfterApply: 1, FailAnswers: sandbox.AmbiguousAnswers()}
	})
	seen := map[string]bool{}
	for range 60 {
		r := e.call(pike.V1, pike.MethodSessionCreate, `{}`, "")
		ok := false
		for _, a := range sandbox.AmbiguousAnswers() {
			ok = ok || (a.Code == r.code() && a.HTTPStatus == r.HTTPStatus)
		}
		if !ok {
			t.Fatalf("got HTTP %d %s, want one of AmbiguousAnswers", r.HTTPStatus, r.Raw)
		}
		seen[r.code()+r.Header.Get("X")+http.StatusText(r.HTTPStatus)] = true
	}
	if st := e.sb.Stats(); st.Sessions != 60 {
		t.Errorf("got %d sessions, want 60: every call applied", st.Sessions)
	}
	if len(seen) < 5 {
		t.Errorf("got %d distinct answers in 60 calls, want a mix: %v", len(seen), seen)
	}
}

func TestForeignWebhook(t *testing.T) {
	tests := []struct {
		name    string
		typ     pike.WebhookType
		unknown sandbox.ErrorAnswer
		want    sandbox.ErrorAnswer
	}{
		{"ready", pike.WebhookReadyToConfirm, sandbox.ErrorAnswer{}, sandbox.ErrorAnswer{Code: pike.CodeSessionNotFound, HTTPStatus: 404}},
		{"finished", pike.WebhookPaymentFinished, sandbox.ErrorAnswer{}, sandbox.ErrorAnswer{Code: pike.CodeSessionNotFound, HTTPStatus: 404}},
		{"finished, invalid_request", pike.WebhookPaymentFinished, sandbox.ErrorAnswer{Code: pike.CodeInvalidRequest, HTTPStatus: 400}, sandbox.ErrorAnswer{Code: pike.CodeInvalidRequest, HTTPStatus: 400}},
		{"ready, authorization_error", pike.WebhookReadyToConfirm, sandbox.ErrorAnswer{Code: pike.CodeAuthorization, HTTPStatus: 403}, sandbox.ErrorAnswer{Code: pike.CodeAuthorization, HTTPStatus: 403}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(c *sandbox.Config) { c.UnknownSession = tt.unknown })
			id, err := e.sb.InjectForeignWebhook(tt.typ, "row-key-7", "EMP-7", 150000, "rub")
			if err != nil {
				t.Fatal(err)
			}
			hs := e.waitHooks(id, 1)
			h := hs[0]
			if h.SigErr != nil {
				t.Fatalf("foreign webhook not signed with Pike's key: %v", h.SigErr)
			}
			p := h.Webhook.Session.Payout()
			if h.Webhook.Type != tt.typ || p == nil || p.MetadataString() != "row-key-7" || p.Customer.Reference != "EMP-7" ||
				p.AmountDetails.Amount != 150000 || p.AmountDetails.Currency != "rub" {
				t.Fatalf("got %s, want a %s copying metadata, reference, amount and currency", h.Raw, tt.typ)
			}
			wantPayout := map[pike.WebhookType]pike.PayoutStatus{pike.WebhookReadyToConfirm: pike.PayoutPending, pike.WebhookPaymentFinished: pike.PayoutSucceeded}[tt.typ]
			if p.Status != wantPayout {
				t.Errorf("payout status: got %s, want %s", p.Status, wantPayout)
			}
			for _, m := range []string{pike.MethodStatus, pike.MethodConfirm, pike.MethodCancel} {
				r := e.call(pike.V1, m, pike.SessionRequest{SessionID: id}, "")
				if r.HTTPStatus != tt.want.HTTPStatus || r.code() != tt.want.Code {
					t.Errorf("%s of the foreign session: got HTTP %d %s, want %d %s", m, r.HTTPStatus, r.Raw, tt.want.HTTPStatus, tt.want.Code)
				}
			}
			// The same answer as for a session nobody made.
			r := e.call(pike.V1, pike.MethodStatus, pike.SessionRequest{SessionID: "ps_999999"}, "")
			if r.HTTPStatus != tt.want.HTTPStatus || r.code() != tt.want.Code {
				t.Errorf("status of an unknown session: got HTTP %d %s", r.HTTPStatus, r.Raw)
			}
			if j := e.sb.Journal(); len(j) != 0 {
				t.Errorf("journal: got %v, want nothing of ours", j)
			}
			wantForeign := 0
			if tt.typ == pike.WebhookPaymentFinished {
				wantForeign = 1
			}
			if got := len(e.sb.ForeignJournal()); got != wantForeign {
				t.Errorf("foreign journal: got %d, want %d", got, wantForeign)
			}
		})
	}
	e := newEnv(t, nil)
	if _, err := e.sb.InjectForeignWebhook(pike.WebhookActionRequired, "m", "r", 1, "rub"); err == nil {
		t.Error("action_required: got no error")
	}
}

func TestForeignWebhooksProbabilistic(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.Faults.ForeignWebhooks = 1 })
	id := e.initPayout("own", sandbox.CardMastercard, 4200, "usd")
	e.waitStatus(id, "", pike.PayoutPending)
	e.call(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: id}, "c")
	e.waitStatus(id, pike.SessionAccepted, pike.PayoutSucceeded)
	foreign := e.sb.ForeignSessionIDs()
	if len(foreign) != 1 || foreign[0] == id {
		t.Fatalf("got foreign sessions %v, want one other than %s", foreign, id)
	}
	hs := e.waitHooks(foreign[0], 2)
	if got := types(hs); got != "ready_to_confirm,payment_finished" {
		t.Fatalf("foreign webhooks: got %s", got)
	}
	for _, h := range hs {
		p := h.Webhook.Session.Payout()
		if h.SigErr != nil || p.Customer.Reference != "own" || p.MetadataString() != "meta-own" || p.AmountDetails.Amount != 4200 ||
			p.Method.Card.Last4 != "4444" {
			t.Errorf("foreign webhook: got %s (sig %v), want a signed copy of the request", h.Raw, h.SigErr)
		}
	}
	if j := e.sb.Journal(); len(j) != 1 || j[0].SessionID != id {
		t.Errorf("journal: got %+v, want only our payout", j)
	}
	if st := e.sb.Stats(); st.Sessions != 1 || st.ForeignSessions != 1 {
		t.Errorf("stats: got %d sessions, %d foreign; want 1 and 1", st.Sessions, st.ForeignSessions)
	}
}

func TestIDFormats(t *testing.T) {
	tests := []struct {
		ids  sandbox.IDFormat
		want *regexp.Regexp
	}{
		{sandbox.IDPrefixed, regexp.MustCompile(`^p[so]_\d+$`)},
		{sandbox.IDDigits, regexp.MustCompile(`^\d+$`)},
		{sandbox.IDOpaque, regexp.MustCompile(`^[0-9a-f]{24}$`)},
	}
	for _, tt := range tests {
		e := newEnv(t, func(c *sandbox.Config) { c.IDs = tt.ids })
		id := e.initPayout("ids", sandbox.CardVisa, 100, "rub")
		s := e.status(id)
		if !tt.want.MatchString(s.ID) || !tt.want.MatchString(s.Payout().ID) {
			t.Errorf("format %d: got session %q payout %q, want %s", tt.ids, s.ID, s.Payout().ID, tt.want)
		}
	}
}

func TestTimeFormats(t *testing.T) {
	tests := []struct {
		f    sandbox.TimeFormat
		want *regexp.Regexp
	}{
		{sandbox.TimeMicroZ, regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$`)},
		{sandbox.TimeOffset, regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}\+03:00$`)},
		{sandbox.TimeSeconds, regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`)},
		{sandbox.TimeNano, regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$`)},
		{sandbox.TimeMixed, regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?(Z|\+03:00)$`)},
	}
	for _, tt := range tests {
		e := newEnv(t, func(c *sandbox.Config) { c.Times = tt.f })
		start := time.Now().Add(-time.Second)
		id := e.initPayout("t", sandbox.CardVisa, 100, "rub")
		r := e.call(pike.V1, pike.MethodStatus, pike.SessionRequest{SessionID: id}, "")
		stamps := regexp.MustCompile(`"(?:created|updated)_at":"([^"]*)"`).FindAllSubmatch(r.Raw, -1)
		if len(stamps) != 3 {
			t.Fatalf("got %d timestamps in %s, want 3", len(stamps), r.Raw)
		}
		for _, m := range stamps {
			raw := string(m[1])
			if !tt.want.MatchString(raw) {
				t.Errorf("format %d: got %q, want %s", tt.f, raw, tt.want)
			}
			ts, err := time.Parse(time.RFC3339Nano, raw)
			if err != nil || ts.Before(start) || ts.After(time.Now().Add(time.Second)) {
				t.Errorf("format %d: %q parsed as %v (%v), not now", tt.f, raw, ts, err)
			}
		}
	}
}

// objects calls f on every JSON object in raw.
func objects(t *testing.T, raw []byte, f func(map[string]any)) {
	t.Helper()
	var x any
	if err := json.Unmarshal(raw, &x); err != nil {
		t.Fatal(err)
	}
	var walk func(any)
	walk = func(x any) {
		switch x := x.(type) {
		case map[string]any:
			f(x)
			for _, v := range x {
				walk(v)
			}
		case []any:
			for _, v := range x {
				walk(v)
			}
		}
	}
	walk(x)
}

func TestExtraFields(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.ExtraFields = true; c.IdempotencyReplay = true })
	r := e.call(pike.V1, pike.MethodInitPayout, payoutReq("x", sandbox.CardVisa, 100, "rub"), "k")
	id := r.session(t).ID
	again := e.call(pike.V1, pike.MethodInitPayout, payoutReq("x", sandbox.CardVisa, 100, "rub"), "k")
	if !bytes.Equal(r.Raw, again.Raw) {
		t.Errorf("replay differs:\n%s\n%s", r.Raw, again.Raw)
	}
	hs := e.waitHooks(id, 1)
	bad := e.call(pike.V1, pike.MethodStatus, pike.SessionRequest{SessionID: "nope"}, "")
	for _, raw := range [][]byte{r.Raw, hs[0].Raw, bad.Raw} {
		n := 0
		objects(t, raw, func(m map[string]any) {
			n++
			if _, ok := m["x_pike_future_field"]; !ok {
				// The unknown field's own value is an object too.
				if _, inner := m["since"]; !inner {
					t.Errorf("object without the unknown field: %v in %s", m, raw)
				}
			}
		})
		if n < 2 {
			t.Errorf("got %d objects in %s", n, raw)
		}
	}
	if hs[0].SigErr != nil {
		t.Errorf("dressed webhook: %v", hs[0].SigErr)
	}
	if p := hs[0].Webhook.Session.Payout(); p == nil || p.Status != pike.PayoutPending {
		t.Errorf("dressed webhook does not parse: %s", hs[0].Raw)
	}
}

func TestV2MixedNames(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.V2MixedNames = true })
	req := payoutReq("v2", sandbox.CardVisa, 100, "rub")
	r := e.call(pike.V2, pike.MethodInitPayout, req, "k")
	s := string(r.Raw)
	if !strings.Contains(s, `"payments"`) || strings.Contains(s, `"payout_list"`) || !strings.Contains(s, `"payout_details"`) {
		t.Fatalf("got %s, want payments[] with payout_details inside", s)
	}
	if p := r.session(t).Payout(); p == nil || p.Method == nil || p.Method.Card.Last4 != "4242" {
		t.Errorf("the client does not read the mixed names: %s", s)
	}
}

func TestOmitAmount(t *testing.T) {
	e := newEnv(t, nil)
	e.sb.Inject(sandbox.Rule{Method: string(pike.WebhookPaymentFinished), Reference: "om", Fault: sandbox.FaultOmitAmount})
	id := e.initPayout("om", sandbox.CardVisa, 100, "rub")
	e.waitStatus(id, "", pike.PayoutPending)
	if e.status(id).Payout().AmountDetails == nil {
		t.Fatal("amount omitted before the payout finished")
	}
	e.call(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: id}, "")
	s := e.waitStatus(id, pike.SessionAccepted, pike.PayoutSucceeded)
	if s.Payout().AmountDetails != nil {
		t.Errorf("status: got amount_details %+v, want none", s.Payout().AmountDetails)
	}
	hs := e.waitHooks(id, 2)
	if hs[1].Webhook.Type != pike.WebhookPaymentFinished || bytes.Contains(hs[1].Raw, []byte("amount_details")) {
		t.Errorf("payment_finished: got %s, want no amount_details", hs[1].Raw)
	}
	if j := e.sb.Journal(); len(j) != 1 || j[0].Amount != 100 {
		t.Errorf("journal: got %+v, want 100 paid", j)
	}
}

func TestReplayWebhookLongAfter(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.WebhookReplayDelay = 100 * time.Millisecond })
	e.sb.Inject(sandbox.Rule{Method: string(pike.WebhookReadyToConfirm), Fault: sandbox.FaultReplayWebhook})
	id := e.initPayout("rp", sandbox.CardVisa, 100, "rub")
	e.waitStatus(id, "", pike.PayoutPending)
	e.call(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: id}, "")
	e.waitStatus(id, pike.SessionAccepted, pike.PayoutSucceeded)
	if err := e.sb.Quiesce(context.Background()); err != nil {
		t.Fatal(err)
	}
	hs := e.hooks.hooks(id)
	if got := types(hs); got != "ready_to_confirm,payment_finished,ready_to_confirm" {
		t.Fatalf("got %s, want the ready_to_confirm again after the session finished", got)
	}
	if !bytes.Equal(hs[0].Raw, hs[2].Raw) || hs[2].SigErr != nil {
		t.Errorf("replay is not the same signed body")
	}
	if st := e.sb.Stats(); st.WebhooksReplayed != 1 || len(e.sb.Journal()) != 1 {
		t.Errorf("got %d replayed, journal %v", st.WebhooksReplayed, e.sb.Journal())
	}
}

func TestForgedWebhook(t *testing.T) {
	e := newEnv(t, nil)
	var forged []hook
	e.hooks.setAnswer(func(n int, h hook) int {
		if h.SigErr != nil {
			forged = append(forged, h)
			return http.StatusUnauthorized
		}
		return http.StatusOK
	})
	e.sb.Inject(sandbox.Rule{Method: string(pike.WebhookReadyToConfirm), Fault: sandbox.FaultForgedWebhook})
	id := e.initPayout("fg", sandbox.CardVisa, 100, "rub")
	e.waitHooks(id, 1)
	if err := e.sb.Quiesce(context.Background()); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "forged sent", func() bool { return e.sb.Stats().ForgedRejected == 1 })
	e.hooks.mu.Lock()
	defer e.hooks.mu.Unlock()
	if len(forged) != 1 {
		t.Fatalf("got %d forged, want 1 (never retried)", len(forged))
	}
	f := forged[0].Webhook
	if f.Type != pike.WebhookPaymentFinished || f.Session.Payout().Status != pike.PayoutSucceeded || f.Session.ID != id {
		t.Errorf("forged: got %s, want a payment_finished claiming success", forged[0].Raw)
	}
	if s, _ := e.sb.Session(id); s.Payout().Status != pike.PayoutPending || len(e.sb.Journal()) != 0 {
		t.Errorf("a forged webhook changed the sandbox: %+v", s)
	}
}

func TestSlowAnswer(t *testing.T) {
	e := newEnv(t, nil)
	id := e.initPayout("slow", sandbox.CardVisa, 100, "rub")
	e.waitStatus(id, "", pike.PayoutPending)
	e.sb.Inject(sandbox.Rule{Method: pike.MethodConfirm, Fault: sandbox.FaultSlowAnswer, Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if _, err := e.try(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: id}, "c", func(r *http.Request) { *r = *r.WithContext(ctx) }); err == nil {
		t.Fatal("got an answer, want a timeout")
	}
	// Applied all the same.
	e.waitStatus(id, pike.SessionAccepted, pike.PayoutSucceeded)
	// Status can be slow too.
	e.sb.Inject(sandbox.Rule{Method: pike.MethodStatus, Fault: sandbox.FaultSlowAnswer, Delay: 150 * time.Millisecond})
	t0 := time.Now()
	e.status(id)
	if d := time.Since(t0); d < 150*time.Millisecond {
		t.Errorf("status answered in %v, want ≥150ms", d)
	}
}

func TestProbabilisticAfterConfirm(t *testing.T) {
	tests := []struct {
		f       sandbox.Faults
		session pike.SessionStatus
	}{
		{sandbox.Faults{DeclineAfterConfirm: 1}, pike.SessionCancelled},
		{sandbox.Faults{SessionError: 1}, pike.SessionError},
	}
	for _, tt := range tests {
		e := newEnv(t, func(c *sandbox.Config) { c.Faults = tt.f })
		id := e.initPayout("pc", sandbox.CardVisa, 100, "rub")
		e.waitStatus(id, "", pike.PayoutPending)
		e.call(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: id}, "")
		e.waitStatus(id, tt.session, pike.PayoutFailed)
		if len(e.sb.Journal()) != 0 {
			t.Errorf("%+v: journal %v", tt.f, e.sb.Journal())
		}
	}
}

func TestAutoConfirmConfirmedThenFailed(t *testing.T) {
	// Auto-confirm sends no ready_to_confirm, and the payout may still fail.
	e := newEnv(t, func(c *sandbox.Config) { c.AutoConfirm = true; c.Faults.DeclineAfterConfirm = 1 })
	id := e.initPayout("acf", sandbox.CardVisa, 100, "rub")
	e.waitStatus(id, pike.SessionCancelled, pike.PayoutFailed)
	if err := e.sb.Quiesce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := types(e.hooks.hooks(id)); got != "payment_finished" {
		t.Errorf("got %s, want payment_finished only", got)
	}
}

func TestShortConfirmDeadline(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.ConfirmDeadline = 30 * time.Millisecond })
	id := e.initPayout("dl", sandbox.CardVisa, 100, "rub")
	s := e.waitStatus(id, pike.SessionCancelled, pike.PayoutFailed)
	if s.Payout().Error.Code != pike.CodeConfirmTimeout {
		t.Errorf("got %+v, want confirm_timeout", s.Payout().Error)
	}
	if r := e.call(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: id}, ""); r.code() != pike.CodeInvalidSessionStatus {
		t.Errorf("confirm after the deadline: got %s", r.Raw)
	}
}
