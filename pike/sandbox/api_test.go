package sandbox_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

func TestAuthentication(t *testing.T) {
	e := newEnv(t, nil)
	other, err := pike.NewSigner(otherKey)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"customer":{"reference":"auth"}}`)
	tests := []struct {
		name   string
		edit   func(*http.Request)
		status int
	}{
		{"good", nil, http.StatusOK},
		{"missing signature", func(r *http.Request) { r.Header.Del(pike.HeaderSign) }, http.StatusUnauthorized},
		{"other key", func(r *http.Request) {
			sig, _ := other.Sign(body)
			r.Header.Set(pike.HeaderSign, sig)
		}, http.StatusUnauthorized},
		{"not base64", func(r *http.Request) { r.Header.Set(pike.HeaderSign, "%%%") }, http.StatusUnauthorized},
		{"signature of another body", func(r *http.Request) {
			sig, _ := e.signer.Sign([]byte(`{}`))
			r.Header.Set(pike.HeaderSign, sig)
		}, http.StatusUnauthorized},
		{"wrong project", func(r *http.Request) { r.Header.Set(pike.HeaderProject, "someone-else") }, http.StatusUnauthorized},
		{"missing project", func(r *http.Request) { r.Header.Del(pike.HeaderProject) }, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := e.sb.Stats()
			r, err := e.try(pike.V1, pike.MethodSessionCreate, body, "", tt.edit)
			if err != nil {
				t.Fatal(err)
			}
			if r.HTTPStatus != tt.status {
				t.Fatalf("got HTTP %d %s, want %d", r.HTTPStatus, r.Raw, tt.status)
			}
			after := e.sb.Stats()
			if tt.status == http.StatusOK {
				return
			}
			if r.code() != pike.CodeAuthentication {
				t.Errorf("got code %q, want authentication_error", r.code())
			}
			if after.Sessions != before.Sessions {
				t.Errorf("an unauthenticated call created a session")
			}
			if after.AuthFailures != before.AuthFailures+1 {
				t.Errorf("auth failures: got %d, want %d", after.AuthFailures, before.AuthFailures+1)
			}
		})
	}
}

func TestProjectAny(t *testing.T) {
	// Config.Project "" accepts any non-empty project.
	e := newEnv(t, func(c *sandbox.Config) { c.Project = "" })
	r := e.call(pike.V1, pike.MethodSessionCreate, `{}`, "")
	if r.HTTPStatus != http.StatusOK {
		t.Fatalf("got HTTP %d %s, want 200", r.HTTPStatus, r.Raw)
	}
	r, _ = e.try(pike.V1, pike.MethodSessionCreate, `{}`, "", func(r *http.Request) { r.Header.Del(pike.HeaderProject) })
	if r.HTTPStatus != http.StatusUnauthorized {
		t.Fatalf("without a project: got HTTP %d, want 401", r.HTTPStatus)
	}
}

func TestIdempotencyRejects(t *testing.T) {
	e := newEnv(t, nil)
	first := e.call(pike.V1, pike.MethodSessionCreate, `{}`, "key-1")
	if first.HTTPStatus != http.StatusOK {
		t.Fatalf("first: %s", first.Raw)
	}
	again := e.call(pike.V1, pike.MethodSessionCreate, `{}`, "key-1")
	if again.HTTPStatus != http.StatusBadRequest || again.code() != pike.CodeIdempotencyKeyExists {
		t.Fatalf("repeat: got HTTP %d %s, want 400 idempotency_key_already_exists", again.HTTPStatus, again.Raw)
	}
	// The key is global: another method with the same key is a repeat too.
	id := first.session(t).ID
	r := e.call(pike.V1, pike.MethodCancel, pike.SessionRequest{SessionID: id}, "key-1")
	if r.code() != pike.CodeIdempotencyKeyExists {
		t.Fatalf("same key on cancel: got %s, want idempotency_key_already_exists", r.Raw)
	}
	if s := e.status(id); s.Status != pike.SessionCreated {
		t.Errorf("the refused cancel was applied: %s", s.Status)
	}
	st := e.sb.Stats()
	if st.Sessions != 1 || st.IdempotencyRepeats != 2 {
		t.Errorf("got %d sessions and %d repeats, want 1 and 2", st.Sessions, st.IdempotencyRepeats)
	}
	// Reads do not take keys: status with a used key is answered.
	if r := e.call(pike.V1, pike.MethodStatus, pike.SessionRequest{SessionID: id}, "key-1"); r.HTTPStatus != http.StatusOK {
		t.Errorf("status with a used key: got %s", r.Raw)
	}
}

func TestIdempotencyReplay(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.IdempotencyReplay = true })
	first := e.call(pike.V1, pike.MethodInitPayout, payoutReq("rp", sandbox.CardVisa, 500, "rub"), "key-r")
	id := first.session(t).ID
	e.waitStatus(id, "", pike.PayoutPending)
	again := e.call(pike.V1, pike.MethodInitPayout, payoutReq("rp", sandbox.CardVisa, 500, "rub"), "key-r")
	if again.HTTPStatus != first.HTTPStatus || !bytes.Equal(again.Raw, first.Raw) {
		t.Fatalf("replay: got HTTP %d %s, want the original HTTP %d %s", again.HTTPStatus, again.Raw, first.HTTPStatus, first.Raw)
	}
	if st := e.sb.Stats(); st.Sessions != 1 || st.Payouts != 1 || st.IdempotencyRepeats != 1 {
		t.Errorf("got %d sessions, %d payouts, %d repeats; want 1, 1, 1", st.Sessions, st.Payouts, st.IdempotencyRepeats)
	}
}

func TestIdempotencyKeyRecordedOnlyWhenApplied(t *testing.T) {
	e := newEnv(t, nil)
	id := e.call(pike.V1, pike.MethodSessionCreate, `{}`, "").session(t).ID
	// Nothing to confirm yet: refused, so the key stays free.
	r := e.call(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: id}, "confirm-ka")
	if r.code() != pike.CodeInvalidSessionStatus {
		t.Fatalf("early confirm: got %s, want invalid_session_status", r.Raw)
	}
	e.call(pike.V1, pike.MethodStartPayout, payoutReqFor(id, sandbox.CardVisa), "")
	e.waitStatus(id, "", pike.PayoutPending)
	if r := e.call(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: id}, "confirm-ka"); r.HTTPStatus != http.StatusOK {
		t.Fatalf("confirm with the refused call's key: got %s, want 200", r.Raw)
	}
	if r := e.call(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: id}, "confirm-ka"); r.code() != pike.CodeIdempotencyKeyExists {
		t.Fatalf("repeat confirm: got %s, want idempotency_key_already_exists", r.Raw)
	}
}

func TestMissingIdempotencyKeyCounted(t *testing.T) {
	e := newEnv(t, nil)
	e.call(pike.V1, pike.MethodSessionCreate, `{}`, "")
	e.call(pike.V1, pike.MethodSessionCreate, `{}`, "")
	e.call(pike.V1, pike.MethodWalletBalance, `{}`, "")
	if got := e.sb.Stats().MissingIdempotencyKey; got != 2 {
		t.Errorf("got %d mutating calls without a key, want 2", got)
	}
}

// wireNames are the fields that differ between v1 and v2.
var wireNames = map[pike.Version][2]string{
	pike.V1: {`"payments":`, `"payment_method":`},
	pike.V2: {`"payout_list":`, `"payout_details":`},
}

func other(v pike.Version) pike.Version {
	if v == pike.V1 {
		return pike.V2
	}
	return pike.V1
}

func TestVersions(t *testing.T) {
	for _, v := range []pike.Version{pike.V1, pike.V2} {
		t.Run(v.String(), func(t *testing.T) {
			e := newEnv(t, nil)
			check := func(what string, raw []byte) {
				t.Helper()
				for _, n := range wireNames[v] {
					if !bytes.Contains(raw, []byte(n)) {
						t.Errorf("%s: no %s in %s", what, n, raw)
					}
				}
				for _, n := range wireNames[other(v)] {
					if bytes.Contains(raw, []byte(n)) {
						t.Errorf("%s: the other version's %s in %s", what, n, raw)
					}
				}
			}
			// Every method, through create + start (and the alias path).
			for _, start := range []string{pike.MethodStartPayout, "session/start"} {
				s := e.call(v, pike.MethodSessionCreate, pike.PayoutRequest{AmountDetails: &pike.AmountDetails{Amount: 700, Currency: "eur"}}, "").session(t)
				r := e.call(v, start, payoutReqFor(s.ID, sandbox.CardVisa), "")
				if r.HTTPStatus != http.StatusOK {
					t.Fatalf("%s: HTTP %d %s", start, r.HTTPStatus, r.Raw)
				}
				check(start, r.Raw)
				e.waitStatus(s.ID, "", pike.PayoutPending)
				check("status", e.call(v, pike.MethodStatus, pike.SessionRequest{SessionID: s.ID}, "").Raw)
				check("confirm", e.call(v, pike.MethodConfirm, pike.SessionRequest{SessionID: s.ID}, "").Raw)
				hs := e.waitHooks(s.ID, 2)
				check("ready_to_confirm webhook", hs[0].Raw)
				check("payment_finished webhook", hs[1].Raw)
			}
			r := e.call(v, pike.MethodInitPayout, payoutReq("init-"+v.String(), sandbox.CardMir, 900, "rub"), "")
			check("init", r.Raw)
			e.waitStatus(r.session(t).ID, "", pike.PayoutPending)
			check("cancel", e.call(v, pike.MethodCancel, pike.SessionRequest{SessionID: r.session(t).ID}, "").Raw)
			w := e.call(v, pike.MethodWalletBalance, `{}`, "")
			if w.HTTPStatus != http.StatusOK || !bytes.Contains(w.Raw, []byte(`"wallets":[]`)) {
				t.Errorf("wallet/balance: got %s, want ok with an empty wallet list (unlimited)", w.Raw)
			}

			// The other version's names are unknown fields: the card is missing.
			body, _ := pike.MarshalVersion(payoutReq("wrong", sandbox.CardVisa, 900, "rub"), other(v))
			r = e.call(v, pike.MethodInitPayout, body, "")
			if r.HTTPStatus != http.StatusBadRequest || r.code() != pike.CodeInvalidRequest {
				t.Errorf("init with %s names on /api/%s: got HTTP %d %s, want 400 invalid_request", other(v), v, r.HTTPStatus, r.Raw)
			}
			s := e.call(v, pike.MethodSessionCreate, body, "").session(t)
			req := pike.PayoutRequest{SessionID: s.ID}
			sb, _ := pike.MarshalVersion(req, v)
			if r := e.call(v, pike.MethodStartPayout, sb, ""); r.code() != pike.CodeInvalidRequest {
				t.Errorf("start after create with %s names: got %s, want invalid_request", other(v), r.Raw)
			}
		})
	}
}

func TestWebhookVersionFollowsStart(t *testing.T) {
	// Created on v1, started on v2: webhooks use v2 names.
	e := newEnv(t, nil)
	s := e.call(pike.V1, pike.MethodSessionCreate, `{}`, "").session(t)
	req := payoutReqFor(s.ID, sandbox.CardVisa)
	if r := e.call(pike.V2, pike.MethodStartPayout, req, ""); r.HTTPStatus != http.StatusOK {
		t.Fatal(string(r.Raw))
	}
	hs := e.waitHooks(s.ID, 1)
	if !bytes.Contains(hs[0].Raw, []byte(`"payout_list":`)) {
		t.Errorf("got webhook %s, want v2 names", hs[0].Raw)
	}
}

func TestHTTPSurface(t *testing.T) {
	e := newEnv(t, nil)
	tests := []struct {
		method, path string
		status       int
	}{
		{http.MethodPost, "/api/v1/session/get", http.StatusNotFound},
		{http.MethodPost, "/api/v3/session/create", http.StatusNotFound},
		{http.MethodPost, "/session/create", http.StatusNotFound},
		{http.MethodGet, "/api/v1/session/status", http.StatusMethodNotAllowed},
		{http.MethodGet, sandbox.PathJournal, http.StatusOK},
		{http.MethodGet, sandbox.PathStats, http.StatusOK},
		{http.MethodPost, sandbox.PathJournal, http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, e.srv.URL+tt.path, strings.NewReader(`{}`))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("got HTTP %d, want %d", resp.StatusCode, tt.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type: got %q, want application/json", ct)
			}
		})
	}
	big := bytes.Repeat([]byte(" "), 2<<20)
	r := e.call(pike.V1, pike.MethodSessionCreate, append(big, '{', '}'), "")
	if r.HTTPStatus != http.StatusRequestEntityTooLarge || r.code() != pike.CodeInvalidRequest {
		t.Errorf("2 MiB body: got HTTP %d %s, want 413 invalid_request", r.HTTPStatus, r.Raw)
	}
}

func TestBalances(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.Balances = map[string]int64{"rub": 1000, "usd": 0} })
	final := func(ref string, amount int64, cur string) *pike.Session {
		id := e.initPayout(ref, sandbox.CardVisa, amount, cur)
		e.waitStatus(id, "", pike.PayoutPending)
		if r := e.call(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: id}, ""); r.HTTPStatus != http.StatusOK {
			t.Fatalf("confirm %s: %s", ref, r.Raw)
		}
		finalPayout(e, id)
		return e.status(id)
	}
	if s := final("b1", 600, "rub"); s.Payout().Status != pike.PayoutSucceeded {
		t.Fatalf("b1: got %s, want succeeded", s.Payout().Status)
	}
	for _, c := range []struct {
		ref, cur string
		amount   int64
	}{{"b2", "rub", 600}, {"b3", "usd", 1}, {"b4", "eur", 1}} {
		s := final(c.ref, c.amount, c.cur)
		if p := s.Payout(); p.Status != pike.PayoutFailed || p.Error.Code != pike.CodeInsufficientFunds || s.Status != pike.SessionCancelled {
			t.Errorf("%s: got %s/%s %+v, want cancelled/failed insufficient_funds", c.ref, s.Status, p.Status, p.Error)
		}
	}
	w := e.call(pike.V1, pike.MethodWalletBalance, `{}`, "")
	var got struct{ Wallets []pike.Wallet }
	if err := json.Unmarshal(w.Raw, &got); err != nil {
		t.Fatal(err)
	}
	want := []pike.Wallet{{ID: "w_rub", AmountDetails: pike.AmountDetails{Amount: 400, Currency: "rub"}}, {ID: "w_usd", AmountDetails: pike.AmountDetails{Amount: 0, Currency: "usd"}}}
	if len(got.Wallets) != 2 || got.Wallets[0] != want[0] || got.Wallets[1] != want[1] {
		t.Errorf("wallets: got %+v, want %+v", got.Wallets, want)
	}
	if j := e.sb.Journal(); len(j) != 1 || j[0].Reference != "b1" {
		t.Errorf("journal: got %+v, want only b1", j)
	}
}

// finalPayout waits until the payout of id is final and returns its status.
func finalPayout(e *env, id string) pike.PayoutStatus {
	var st pike.PayoutStatus
	poll.Until(e.t, "final payout", func() bool {
		st = e.status(id).Payout().Status
		return st == pike.PayoutSucceeded || st == pike.PayoutFailed
	})
	return st
}

func TestBalanceReservedAtConfirm(t *testing.T) {
	// Two confirmed payouts that together exceed the balance: whatever the
	// timing, exactly one is paid.
	e := newEnv(t, func(c *sandbox.Config) { c.Balances = map[string]int64{"rub": 1000} })
	a := e.initPayout("ra", sandbox.CardVisa, 600, "rub")
	b := e.initPayout("rb", sandbox.CardVisa, 600, "rub")
	e.waitStatus(a, "", pike.PayoutPending)
	e.waitStatus(b, "", pike.PayoutPending)
	e.call(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: a}, "")
	e.call(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: b}, "")
	got := finalPayout(e, a) + "," + finalPayout(e, b)
	if got != "succeeded,failed" {
		t.Errorf("got %s, want succeeded,failed", got)
	}
	if bal := e.sb.Balances()["rub"]; bal != 400 {
		t.Errorf("balance: got %d, want 400", bal)
	}
}
