package sandbox

import (
	"errors"
	"fmt"
	"slices"

	"github.com/payouts/payouts/pike"
)

// ErrForeignType is returned by InjectForeignWebhook for a webhook type it
// cannot send.
var ErrForeignType = errors.New("foreign webhook type must be ready_to_confirm or payment_finished")

// ForeignSession is another merchant's session on the same Pike: it copies
// what it likes of one of our rows, and Pike, which knows nothing of the
// copy, signs its webhooks with its own key. Pike-api.md §4 names no
// project in a webhook body, so only session/status tells it apart: for
// this project the session does not exist (Config.UnknownSession).
type ForeignSession struct {
	// Metadata, Reference, Amount (minor units) and Currency (lower-case)
	// are copied from the row.
	Metadata  any
	Reference string
	Amount    int64
	Currency  string
	// CardLast4 is the card's last four digits; "" means "4242".
	CardLast4 string
	// Version chooses the webhook's field names; 0 means v1.
	Version pike.Version
}

// InjectForeignWebhook makes another merchant's session copying a row's
// metadata, customer.reference, amount and currency, and sends our webhook
// URL its genuine Pike-signed webhook typ: ready_to_confirm (payout
// pending) or payment_finished (payout succeeded: the other merchant's
// money, never in Journal). It returns the session's id.
func (s *Sandbox) InjectForeignWebhook(typ pike.WebhookType, metadata any, ref string, amount int64, currency string) (string, error) {
	return s.InjectForeign(typ, ForeignSession{Metadata: metadata, Reference: ref, Amount: amount, Currency: currency})
}

// InjectForeign is InjectForeignWebhook with every field of the copy.
func (s *Sandbox) InjectForeign(typ pike.WebhookType, f ForeignSession) (string, error) {
	if typ != pike.WebhookReadyToConfirm && typ != pike.WebhookPaymentFinished {
		return "", fmt.Errorf("%w, got %q", ErrForeignType, typ)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.newForeign(f)
	if typ == pike.WebhookReadyToConfirm {
		s.foreignReady(ss)
	} else {
		s.foreignFinish(ss)
	}
	return ss.id, nil
}

// ForeignSessionIDs returns the ids of other merchants' sessions made so
// far, oldest first.
func (s *Sandbox) ForeignSessionIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*session
	for _, ss := range s.foreign {
		out = append(out, ss)
	}
	slices.SortFunc(out, func(a, b *session) int { return int(a.seq - b.seq) })
	ids := make([]string, len(out))
	for i, ss := range out {
		ids[i] = ss.id
	}
	return ids
}

// ForeignJournal returns what other merchants' sessions paid: money that
// moved, but not ours (never in Journal).
func (s *Sandbox) ForeignJournal() []Payment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.foreignPaid)
}

// foreignFromRequest copies a create or init request into a foreign
// session that will send ready_to_confirm and then payment_finished.
// Callers hold s.mu.
func (s *Sandbox) foreignFromRequest(v pike.Version, req *pike.PayoutRequest) {
	if req.AmountDetails == nil || req.Customer == nil {
		return
	}
	f := ForeignSession{
		Metadata: rawMetadata(req.Metadata), Reference: req.Customer.Reference,
		Amount: req.AmountDetails.Amount, Currency: req.AmountDetails.Currency, Version: v,
	}
	if req.Method != nil {
		if c, msg := checkCard(req.Method); msg == "" {
			f.CardLast4 = c.last4
		}
	}
	ss := s.newForeign(f)
	s.schedule(ss, s.cfg.ReadyDelay, func(ss *session) {
		s.foreignReady(ss)
		s.schedule(ss, s.cfg.FinishDelay, s.foreignFinish)
	})
}

// newForeign makes a foreign session with its payout in progress. Callers
// hold s.mu.
func (s *Sandbox) newForeign(f ForeignSession) *session {
	if f.Version == 0 {
		f.Version = pike.V1
	}
	last4 := f.CardLast4
	if len(last4) != 4 {
		last4 = "4242"
	}
	s.nextSession++
	s.nextPayout++
	s.stats.ForeignSessions++
	t := now()
	amt := pike.AmountDetails{Amount: f.Amount, Currency: f.Currency}
	ss := &session{
		id: s.sessionID(s.nextSession), seq: s.nextSession, version: f.Version, times: s.cfg.Times,
		status: pike.SessionInProgress, created: t, updated: t,
		amount: &amt, card: &cardInfo{last4: last4, bin: "400000", brand: "visa"},
		customer: &pike.Customer{Reference: f.Reference}, metadata: rawMetadata(f.Metadata),
		participant: &pike.ParticipantDetails{Recipient: &pike.Participant{FullName: "Other Merchant's Recipient"}},
	}
	ss.payout = &payout{id: s.payoutID(s.nextPayout), status: pike.PayoutInProgress, created: t, amount: amt}
	s.foreign[ss.id] = ss
	s.log.Info("foreign session", "session", ss.id, "reference", f.Reference)
	return ss
}

// foreignReady: the foreign payout waits for its merchant's confirm.
func (s *Sandbox) foreignReady(ss *session) {
	ss.payout.status, ss.next, ss.updated = pike.PayoutPending, pike.NextActionConfirm, now()
	s.notify(ss, pike.WebhookReadyToConfirm)
}

// foreignFinish: its merchant confirmed; the foreign payout is paid.
func (s *Sandbox) foreignFinish(ss *session) {
	p := ss.payout
	t := now()
	p.status, p.finished = pike.PayoutSucceeded, t
	p.tx = &pike.TransactionInfo{RRN: s.digits(12), AuthCode: s.digits(6)}
	ss.status, ss.next, ss.updated = pike.SessionAccepted, "", t
	s.foreignPaid = append(s.foreignPaid, Payment{
		SessionID: ss.id, PayoutID: p.id, Reference: ss.reference(), Metadata: metadataText(ss.metadata),
		Amount: p.amount.Amount, Currency: p.amount.Currency, CardLast4: ss.card.last4, At: t,
	})
	s.notify(ss, pike.WebhookPaymentFinished)
}
