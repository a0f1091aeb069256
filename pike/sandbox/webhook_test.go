package sandbox_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

func TestWebhookSignature(t *testing.T) {
	e := newEnv(t, nil)
	id := e.initPayout("sig", sandbox.CardVisa, 100, "rub")
	h := e.waitHooks(id, 1)[0]
	good, err := pike.NewVerifier(e.sb.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	if err := good.Verify(h.Raw, h.Header.Get(pike.HeaderSign)); err != nil {
		t.Errorf("verify with PublicKey(): %v", err)
	}
	wrong, _ := pike.NewVerifier(&otherKey.PublicKey)
	if err := wrong.Verify(h.Raw, h.Header.Get(pike.HeaderSign)); err == nil {
		t.Errorf("the webhook verifies with an unrelated key")
	}
	tampered := append([]byte{}, h.Raw...)
	tampered[len(tampered)-2] ^= 1
	if err := good.Verify(tampered, h.Header.Get(pike.HeaderSign)); err == nil {
		t.Errorf("a tampered webhook verifies")
	}
}

func TestGeneratedSigningKey(t *testing.T) {
	keys(t)
	sb, err := sandbox.New(sandbox.Config{PartnerKey: &partnerKey.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	defer sb.Close()
	if sb.PublicKey() == nil || sb.PublicKey().N.BitLen() != 2048 {
		t.Fatalf("got public key %v, want a generated 2048-bit key", sb.PublicKey())
	}
	if _, err := sandbox.New(sandbox.Config{}); err == nil {
		t.Errorf("New without a partner key: got nil error")
	}
	if _, err := sandbox.New(sandbox.Config{PartnerKey: &partnerKey.PublicKey, SigningKey: pikeKey, Balances: map[string]int64{"RUB": 1}}); err == nil {
		t.Errorf("New with an upper-case balance currency: got nil error")
	}
}

func TestWebhookRetriesUntilAnswered(t *testing.T) {
	e := newEnv(t, nil)
	e.hooks.setAnswer(func(n int, h hook) int {
		if n <= 3 {
			return http.StatusServiceUnavailable
		}
		return http.StatusOK
	})
	id := e.initPayout("retry", sandbox.CardVisa, 100, "rub")
	hs := e.waitHooks(id, 1)
	if err := e.sb.Quiesce(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := e.sb.Stats()
	if len(hs) != 1 || st.WebhooksSent != 4 || st.WebhooksFailed != 3 || st.WebhooksDelivered != 1 || st.WebhooksGivenUp != 0 {
		t.Errorf("got %d accepted, stats %+v; want 1 accepted after 4 attempts, 3 failed", len(hs), st)
	}
}

func TestWebhookGivesUp(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) {
		c.WebhookRetryBase = time.Millisecond
		c.WebhookRetryMax = 2 * time.Millisecond
		c.WebhookGiveUp = 20 * time.Millisecond
	})
	e.hooks.setAnswer(func(int, hook) int { return http.StatusInternalServerError })
	id := e.initPayout("giveup", sandbox.CardVisa, 100, "rub")
	e.waitStatus(id, "", pike.PayoutPending)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.sb.Quiesce(ctx); err != nil {
		t.Fatal(err)
	}
	st := e.sb.Stats()
	if st.WebhooksGivenUp != 1 || st.WebhooksDelivered != 0 || st.WebhooksSent < 2 || st.WebhooksFailed != st.WebhooksSent {
		t.Errorf("got stats %+v, want 1 given up after several failed attempts", st)
	}
	// Giving up on a webhook changes nothing about the payout.
	if s := e.status(id); s.Payout().Status != pike.PayoutPending {
		t.Errorf("got payout %s, want pending", s.Payout().Status)
	}
}

func TestWebhookRetryCapped(t *testing.T) {
	// With base 1ms, cap 1ms and give-up 1h, attempts continue at the cap:
	// the receiver sees many attempts, and accepts the 30th.
	e := newEnv(t, func(c *sandbox.Config) {
		c.WebhookRetryMax = time.Millisecond
		c.WebhookGiveUp = time.Hour
	})
	e.hooks.setAnswer(func(n int, h hook) int {
		if n < 30 {
			return http.StatusBadGateway
		}
		return http.StatusOK
	})
	id := e.initPayout("cap", sandbox.CardVisa, 100, "rub")
	e.waitHooks(id, 1)
	if st := e.sb.Stats(); st.WebhooksSent != 30 || st.WebhooksGivenUp != 0 {
		t.Errorf("got stats %+v, want 30 attempts and no give-up", st)
	}
}

func TestWebhooksInOrderPerSession(t *testing.T) {
	// ready_to_confirm is refused a few times; the cancel's
	// payment_finished must wait behind it.
	e := newEnv(t, nil)
	var mu sync.Mutex
	refused := 0
	e.hooks.setAnswer(func(n int, h hook) int {
		mu.Lock()
		defer mu.Unlock()
		if h.Webhook.Type == pike.WebhookReadyToConfirm && refused < 5 {
			refused++
			return http.StatusInternalServerError
		}
		return http.StatusOK
	})
	id := e.initPayout("order", sandbox.CardVisa, 100, "rub")
	e.waitStatus(id, "", pike.PayoutPending)
	e.call(pike.V1, pike.MethodCancel, pike.SessionRequest{SessionID: id}, "")
	hs := e.waitHooks(id, 2)
	if got := types(hs); got != "ready_to_confirm,payment_finished" {
		t.Errorf("got %s, want ready_to_confirm,payment_finished", got)
	}
	// Each carries the state of its moment.
	if hs[0].Webhook.Session.Payout().Status != pike.PayoutPending || hs[1].Webhook.Session.Status != pike.SessionCancelled {
		t.Errorf("got states %s then %s, want pending then cancelled", hs[0].Webhook.Session.Payout().Status, hs[1].Webhook.Session.Status)
	}
}

func TestNoWebhookURL(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) { c.WebhookURL = "" })
	id := e.initPayout("nourl", sandbox.CardVisa, 100, "rub")
	e.waitStatus(id, "", pike.PayoutPending)
	e.sb.SetWebhookURL(e.hooks.srv.URL)
	e.call(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: id}, "")
	hs := e.waitHooks(id, 1)
	if err := e.sb.Quiesce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := types(e.hooks.hooks(id)); got != "payment_finished" || hs[0].SigErr != nil {
		t.Errorf("got %q, want only the payment_finished sent after SetWebhookURL", got)
	}
}

func TestCloseStopsDeliveries(t *testing.T) {
	// A receiver that never answers must not keep Close waiting.
	e := newEnv(t, nil)
	block := make(chan struct{})
	defer close(block)
	e.hooks.setAnswer(func(int, hook) int { <-block; return http.StatusOK })
	id := e.initPayout("close", sandbox.CardVisa, 100, "rub")
	e.waitStatus(id, "", pike.PayoutPending)
	poll.Until(t, "a delivery in flight", func() bool { return e.sb.Stats().WebhooksSent > 0 })
	e.sb.Close()
	r := e.call(pike.V1, pike.MethodStatus, pike.SessionRequest{SessionID: id}, "")
	if r.HTTPStatus != http.StatusServiceUnavailable {
		t.Errorf("after Close: got HTTP %d, want 503", r.HTTPStatus)
	}
	if err := e.sb.Quiesce(context.Background()); err != nil {
		t.Errorf("Quiesce after Close: %v", err)
	}
}
