package sandbox

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/payouts/payouts/pike"
)

// webhookTimeout bounds one delivery attempt; a receiver that does not
// answer in time counts as a failed attempt and is retried.
const webhookTimeout = 10 * time.Second

// delivery is one webhook to send: the body is fixed when the event
// happens, so a late or repeated delivery carries the state of that moment,
// as Pike's would.
type delivery struct {
	typ       pike.WebhookType
	sessionID string
	body      []byte
	replay    bool   // deliver once more, WebhookReplayDelay after delivery (FaultReplayWebhook)
	forged    []byte // a forged copy to send once after delivery (FaultForgedWebhook)
}

// heldBack is a reordered webhook waiting for the session's next one.
type heldBack struct {
	items []*delivery
	timer *time.Timer
}

// notify queues webhook typ about ss in its current state, applying the
// webhook faults. Callers hold s.mu.
func (s *Sandbox) notify(ss *session, typ pike.WebhookType) {
	if ss.noWebhooks || s.webhookURL == "" || s.closed {
		return
	}
	// Fault rules match a webhook by its type in Rule.Method.
	ref, method := ss.reference(), string(typ)
	if s.fire(FaultDropWebhook, method, ref, s.faults.DropWebhooks) {
		s.stats.WebhooksDropped++
		return
	}
	body, err := pike.MarshalVersion(pike.Webhook{Type: typ, Session: ss.view()}, ss.version)
	if err != nil {
		s.log.Error("encode webhook", "session", ss.id, "type", typ, "err", err)
		return
	}
	d := &delivery{typ: typ, sessionID: ss.id, body: s.dress(body)}
	d.replay = s.fire(FaultReplayWebhook, method, ref, s.faults.ReplayWebhooks)
	if s.fire(FaultForgedWebhook, method, ref, s.faults.ForgedWebhooks) {
		d.forged = s.forge(ss)
	}
	items := []*delivery{d}
	if s.fire(FaultDuplicateWebhook, method, ref, s.faults.DuplicateWebhooks) {
		items = append(items, d)
	}
	s.stats.WebhooksQueued += int64(len(items))
	for range items {
		s.addPending()
	}
	if ss.hold == nil && s.fire(FaultReorderWebhook, method, ref, s.faults.ReorderWebhooks) {
		h := &heldBack{items: items}
		h.timer = time.AfterFunc(s.cfg.WebhookRetryBase, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if !s.closed && ss.hold == h {
				s.release(ss)
			}
		})
		ss.hold = h
		return
	}
	ss.queue = append(ss.queue, items...)
	s.release(ss)
	s.kick(ss)
}

// release queues ss's held-back webhook behind whatever is queued now.
// Callers hold s.mu.
func (s *Sandbox) release(ss *session) {
	h := ss.hold
	if h == nil {
		return
	}
	ss.hold = nil
	h.timer.Stop()
	ss.queue = append(ss.queue, h.items...)
	s.kick(ss)
}

// kick starts ss's delivery goroutine unless one runs. Callers hold s.mu.
func (s *Sandbox) kick(ss *session) {
	if ss.sending || len(ss.queue) == 0 || s.closed {
		return
	}
	ss.sending = true
	s.wg.Add(1)
	go s.deliverLoop(ss)
}

// deliverLoop sends ss's queued webhooks one at a time, in order: a
// webhook is not sent before the previous one was delivered or given up.
func (s *Sandbox) deliverLoop(ss *session) {
	defer s.wg.Done()
	for {
		s.mu.Lock()
		if len(ss.queue) == 0 || s.closed {
			ss.sending = false
			s.mu.Unlock()
			return
		}
		d := ss.queue[0]
		ss.queue[0] = nil
		ss.queue = ss.queue[1:]
		delay := s.faults.WebhookDelay
		s.mu.Unlock()

		s.deliver(d, delay)

		s.mu.Lock()
		s.donePending()
		s.mu.Unlock()
	}
}

// deliver POSTs d until a 2xx answer, retrying with doubling delays until
// WebhookGiveUp, or until Close.
func (s *Sandbox) deliver(d *delivery, delay time.Duration) {
	if !sleep(s.ctx, delay) {
		return
	}
	sig, err := s.signer.Sign(d.body)
	if err != nil {
		s.log.Error("sign webhook", "session", d.sessionID, "type", d.typ, "err", err)
		return
	}
	first := time.Now()
	wait := s.cfg.WebhookRetryBase
	for attempt := 1; ; attempt++ {
		s.mu.Lock()
		url := s.webhookURL
		if url != "" {
			s.stats.WebhooksSent++
		}
		s.mu.Unlock()
		status, err := s.post(url, d.body, sig)
		ok := err == nil && status >= 200 && status < 300
		s.mu.Lock()
		if ok {
			s.stats.WebhooksDelivered++
		} else {
			s.stats.WebhooksFailed++
		}
		s.mu.Unlock()
		if ok {
			s.log.Debug("webhook delivered", "session", d.sessionID, "type", d.typ, "attempt", attempt)
			s.afterDelivery(d, sig)
			return
		}
		if s.ctx.Err() != nil {
			return
		}
		if time.Since(first)+wait > s.cfg.WebhookGiveUp {
			s.mu.Lock()
			s.stats.WebhooksGivenUp++
			s.mu.Unlock()
			s.log.Warn("webhook given up", "session", d.sessionID, "type", d.typ, "attempts", attempt, "status", status, "err", err)
			return
		}
		s.log.Debug("webhook failed, will retry", "session", d.sessionID, "type", d.typ, "attempt", attempt, "status", status, "err", err, "retry_in", wait)
		if !sleep(s.ctx, wait) {
			return
		}
		wait = min(2*wait, s.cfg.WebhookRetryMax)
	}
}

// afterDelivery sends what a delivered webhook brings along: a forged
// copy at once, a replay of the same signed body later.
func (s *Sandbox) afterDelivery(d *delivery, sig string) {
	if d.forged != nil {
		// The genuine signature over another body: what an attacker who
		// captured a webhook can send. Sent once, never retried.
		s.mu.Lock()
		url := s.webhookURL
		s.stats.ForgedSent++
		s.mu.Unlock()
		status, err := s.post(url, d.forged, sig)
		s.mu.Lock()
		switch {
		case err == nil && status == http.StatusUnauthorized:
			s.stats.ForgedRejected++
		case err == nil && status >= 200 && status < 300:
			s.stats.ForgedAccepted++
			s.log.Warn("forged webhook accepted", "session", d.sessionID, "type", d.typ, "status", status)
		}
		s.mu.Unlock()
	}
	if d.replay {
		again := &delivery{typ: d.typ, sessionID: d.sessionID, body: d.body}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed {
			return
		}
		s.addPending()
		s.stats.WebhooksReplayed++
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.deliver(again, s.cfg.WebhookReplayDelay)
			s.mu.Lock()
			s.donePending()
			s.mu.Unlock()
		}()
	}
}

// forge returns a webhook about ss claiming its payout succeeded, as an
// attacker would write it. Callers hold s.mu.
func (s *Sandbox) forge(ss *session) []byte {
	v := ss.view()
	v.Status, v.NextAction = pike.SessionAccepted, ""
	if len(v.Payouts) == 1 {
		v.Payouts[0].Status = pike.PayoutSucceeded
		v.Payouts[0].Error = nil
	}
	body, err := pike.MarshalVersion(pike.Webhook{Type: pike.WebhookPaymentFinished, Session: v}, ss.version)
	if err != nil {
		return nil
	}
	return s.dress(body)
}

// errNoURL is a delivery attempt while no webhook URL is set.
var errNoURL = errors.New("no webhook URL set")

// post sends one signed webhook and returns the HTTP status.
func (s *Sandbox) post(url string, body []byte, sig string) (int, error) {
	if url == "" {
		return 0, errNoURL
	}
	req, err := http.NewRequestWithContext(s.ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(pike.HeaderSign, sig)
	req.Header.Set("User-Agent", "pike-sandbox")
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	return resp.StatusCode, nil
}

// sleep waits d or until ctx ends; it reports whether d elapsed.
func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
