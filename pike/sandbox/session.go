package sandbox

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/payouts/payouts/pike"
)

// Error codes the sandbox sets on payouts that pike does not name.
const (
	codeCancelledByPartner = "cancelled_by_partner"
)

// session is one Pike session with at most one payout. Fields are guarded
// by Sandbox.mu.
type session struct {
	id      string
	seq     int64
	version pike.Version // of the call that started it: webhooks use it
	status  pike.SessionStatus
	next    pike.NextAction
	created time.Time
	updated time.Time
	err     *pike.ErrorInfo

	// Data from session/create, overwritten by session/start/payout.
	amount      *pike.AmountDetails
	card        *cardInfo
	participant *pike.ParticipantDetails
	customer    *pike.Customer
	metadata    json.RawMessage

	payout *payout

	timer *time.Timer // the one pending state change: ready, deadline or finish
	gen   int         // bumped on every schedule/stop; stale timers see a different value

	mismatch   bool    // ready_to_confirm reports amount + 1 major unit
	outcome    outcome // decided at confirm
	reserved   int64   // balance held between confirm and finish
	noWebhooks bool
	omitAmount bool       // a finished payout is shown without amount_details
	times      TimeFormat // Config.Times

	queue   []*delivery // webhooks waiting, delivered one at a time in order
	sending bool        // a delivery goroutine owns queue
	hold    *heldBack   // a reordered webhook waiting for the next one
}

// payout is a session's payout.
type payout struct {
	id       string
	status   pike.PayoutStatus
	created  time.Time
	finished time.Time
	amount   pike.AmountDetails // reported and, if it succeeds, paid
	tx       *pike.TransactionInfo
	err      *pike.ErrorInfo
}

// outcome is what happens to a confirmed payout when it finishes.
type outcome int

const (
	outcomeSuccess outcome = iota
	outcomeInsufficientFunds
	outcomeDecline
	outcomeSessionError
)

// apiError is an error answer: HTTP status and Pike's error object.
type apiError struct {
	status int
	code   string
	desc   string
}

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, desc: fmt.Sprintf(format, args...)}
}

func invalidRequest(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, pike.CodeInvalidRequest, format, args...)
}

func (ss *session) reference() string {
	if ss.customer == nil {
		return ""
	}
	return ss.customer.Reference
}

// view is the session as Pike shows it in responses and webhooks. It
// shares immutable pointers with ss; marshal it before releasing s.mu.
func (ss *session) view() pike.Session {
	v := pike.Session{
		ID: ss.id, Status: ss.status, NextAction: ss.next,
		CreatedAt: stamp(ss.created, ss.times), UpdatedAt: stamp(ss.updated, ss.times), Error: ss.err,
	}
	if p := ss.payout; p != nil {
		amt := p.amount
		po := pike.Payout{
			ID: p.id, Status: p.status, CreatedAt: stamp(p.created, ss.times),
			Customer: ss.customer, Method: ss.card.masked(), AmountDetails: &amt,
			ParticipantDetails: ss.participant, TransactionInfo: p.tx, Metadata: ss.metadata, Error: p.err,
		}
		if !p.finished.IsZero() {
			po.FinishedAt = stamp(p.finished, ss.times)
			if ss.omitAmount {
				po.AmountDetails = nil
			}
		}
		v.Payouts = []pike.Payout{po}
	}
	return v
}

// checkAmount validates amount_details.
func checkAmount(a *pike.AmountDetails) *apiError {
	if a.Amount <= 0 {
		return invalidRequest("amount_details.amount must be a positive integer in minor units")
	}
	if !validCurrency(a.Currency) {
		return invalidRequest("amount_details.currency %q must be a lower-case ISO 4217 code", a.Currency)
	}
	return nil
}

// createSession applies session/create. Callers hold s.mu.
func (s *Sandbox) createSession(v pike.Version, req *pike.PayoutRequest) (*session, *apiError) {
	var card *cardInfo
	if req.AmountDetails != nil {
		if e := checkAmount(req.AmountDetails); e != nil {
			return nil, e
		}
	}
	if req.Method != nil {
		c, msg := checkCard(req.Method)
		if msg != "" {
			return nil, invalidRequest("%s", msg)
		}
		card = &c
	}
	s.nextSession++
	s.stats.Sessions++
	t := now()
	ss := &session{
		id: s.sessionID(s.nextSession), seq: s.nextSession, version: v, times: s.cfg.Times,
		status: pike.SessionCreated, created: t, updated: t,
		amount: req.AmountDetails, card: card, participant: req.ParticipantDetails,
		customer: req.Customer, metadata: rawMetadata(req.Metadata),
	}
	s.sessions[ss.id] = ss
	s.log.Debug("session created", "session", ss.id, "reference", ss.reference())
	return ss, nil
}

// startPayout applies session/start/payout (method is the API method, for
// rules). Nothing is changed when it returns an error. Callers hold s.mu.
func (s *Sandbox) startPayout(v pike.Version, method string, ss *session, req *pike.PayoutRequest) *apiError {
	if ss.status != pike.SessionCreated {
		return errorf(http.StatusBadRequest, pike.CodeInvalidSessionStatus, "session %s is %s: a payout starts only in a created session", ss.id, ss.status)
	}
	amount, card := ss.amount, ss.card
	if req.AmountDetails != nil {
		if e := checkAmount(req.AmountDetails); e != nil {
			return e
		}
		amount = req.AmountDetails
	}
	if req.Method != nil {
		c, msg := checkCard(req.Method)
		if msg != "" {
			return invalidRequest("%s", msg)
		}
		card = &c
	}
	field := "payment_method"
	if v == pike.V2 {
		field = "payout_details"
	}
	switch {
	case card == nil:
		return invalidRequest("%s is required when it was not given to session/create", field)
	case amount == nil:
		return invalidRequest("amount_details is required when it was not given to session/create")
	case card.behaviour == cardExpired:
		return errorf(http.StatusBadRequest, pike.CodeBankCardExpired, "the card has expired")
	}
	ss.amount, ss.card, ss.version = amount, card, v
	if req.ParticipantDetails != nil {
		ss.participant = req.ParticipantDetails
	}
	if req.Customer != nil {
		ss.customer = req.Customer
	}
	if m := rawMetadata(req.Metadata); m != nil {
		ss.metadata = m
	}
	s.nextPayout++
	s.stats.Payouts++
	t := now()
	ss.status, ss.updated = pike.SessionInProgress, t
	ss.payout = &payout{id: s.payoutID(s.nextPayout), status: pike.PayoutInProgress, created: t, amount: *amount}
	ss.noWebhooks = card.behaviour == cardNoWebhooks
	ss.mismatch = card.behaviour == cardMismatch || s.fire(FaultMismatchAmount, method, ss.reference(), s.faults.MismatchAmount)
	s.schedule(ss, s.delay(ss, s.cfg.ReadyDelay), s.ready)
	s.log.Debug("payout started", "session", ss.id, "payout", ss.payout.id, "reference", ss.reference(),
		"amount", amount.Amount, "currency", amount.Currency, "card", card.last4)
	return nil
}

// delay is d, plus SlowDelay for the slow card.
func (s *Sandbox) delay(ss *session, d time.Duration) time.Duration {
	if ss.card != nil && ss.card.behaviour == cardSlow {
		d += s.cfg.SlowDelay
	}
	return d
}

// ready runs ReadyDelay after start: the payout waits for confirm, fails
// (CardNotExist) or, under AutoConfirm, proceeds by itself.
func (s *Sandbox) ready(ss *session) {
	p := ss.payout
	if ss.status != pike.SessionInProgress || p == nil || p.status != pike.PayoutInProgress || !p.finished.IsZero() {
		return
	}
	switch {
	case ss.card.behaviour == cardNotExist:
		s.fail(ss, pike.SessionCancelled, pike.CodeCardNumberNotExist, "the card number does not exist")
	case s.cfg.AutoConfirm:
		if ss.mismatch {
			p.amount.Amount += majorUnit(p.amount.Currency)
		}
		s.confirm(ss)
	default:
		if ss.mismatch {
			p.amount.Amount += majorUnit(p.amount.Currency)
		}
		p.status, ss.next, ss.updated = pike.PayoutPending, pike.NextActionConfirm, now()
		s.notify(ss, pike.WebhookReadyToConfirm)
		s.schedule(ss, s.cfg.ConfirmDeadline, s.deadline)
	}
}

// pendingConfirm reports whether ss waits for confirm or cancel.
func (ss *session) pendingConfirm() bool {
	return ss.status == pike.SessionInProgress && ss.payout != nil && ss.payout.status == pike.PayoutPending
}

// confirmSession applies session/confirm. Callers hold s.mu.
func (s *Sandbox) confirmSession(ss *session) *apiError {
	if !ss.pendingConfirm() {
		return errorf(http.StatusBadRequest, pike.CodeInvalidSessionStatus, "session %s is %s with payout %s: nothing to confirm", ss.id, ss.status, ss.payoutStatus())
	}
	s.confirm(ss)
	return nil
}

func (ss *session) payoutStatus() pike.PayoutStatus {
	if ss.payout == nil {
		return "none"
	}
	return ss.payout.status
}

// confirm moves a payout from pending (or, under AutoConfirm, from ready)
// to processing and decides how it ends.
func (s *Sandbox) confirm(ss *session) {
	p := ss.payout
	p.status, ss.next, ss.updated = pike.PayoutInProgress, "", now()
	ref := ss.reference()
	switch {
	case s.fire(FaultSessionError, pike.MethodConfirm, ref, s.faults.SessionError):
		ss.outcome = outcomeSessionError
	case s.fire(FaultDeclineAfterConfirm, pike.MethodConfirm, ref, s.faults.DeclineAfterConfirm):
		ss.outcome = outcomeDecline
	case ss.card.behaviour == cardSessionError:
		ss.outcome = outcomeSessionError
	case ss.card.behaviour == cardExceedsLimit:
		ss.outcome = outcomeDecline
	}
	if s.balances != nil {
		cur := p.amount.Currency
		if s.balances[cur]-s.reserved[cur] < p.amount.Amount {
			ss.outcome = outcomeInsufficientFunds
		} else {
			ss.reserved = p.amount.Amount
			s.reserved[cur] += ss.reserved
		}
	}
	s.log.Debug("payout confirmed", "session", ss.id, "payout", p.id, "reference", ref)
	s.schedule(ss, s.delay(ss, s.cfg.FinishDelay), s.finish)
}

// finish ends a confirmed payout.
func (s *Sandbox) finish(ss *session) {
	p := ss.payout
	if ss.status != pike.SessionInProgress || p == nil || p.status != pike.PayoutInProgress {
		return
	}
	cur := p.amount.Currency
	s.reserved[cur] -= ss.reserved
	ss.reserved = 0
	ss.omitAmount = s.fire(FaultOmitAmount, string(pike.WebhookPaymentFinished), ss.reference(), s.faults.OmitAmount)
	switch ss.outcome {
	case outcomeInsufficientFunds:
		s.fail(ss, pike.SessionCancelled, pike.CodeInsufficientFunds, "the prefunded balance is too low")
	case outcomeDecline:
		s.fail(ss, pike.SessionCancelled, pike.CodeProviderExceedsLimit, "the provider's amount limit is exceeded")
	case outcomeSessionError:
		ss.err = &pike.ErrorInfo{Code: pike.CodeProviderInternal, Description: "unexpected failure: contact Pike support"}
		s.fail(ss, pike.SessionError, pike.CodeProviderInternal, "unexpected failure: contact Pike support")
	default:
		s.succeed(ss)
	}
}

// succeed pays the payout: journal, balance, webhook.
func (s *Sandbox) succeed(ss *session) {
	p := ss.payout
	t := now()
	p.status, p.finished = pike.PayoutSucceeded, t
	p.tx = &pike.TransactionInfo{RRN: s.digits(12), AuthCode: s.digits(6)}
	ss.status, ss.next, ss.updated = pike.SessionAccepted, "", t
	if s.balances != nil {
		s.balances[p.amount.Currency] -= p.amount.Amount
	}
	s.journal = append(s.journal, Payment{
		SessionID: ss.id, PayoutID: p.id, Reference: ss.reference(), Metadata: metadataText(ss.metadata),
		Amount: p.amount.Amount, Currency: p.amount.Currency,
		CardLast4: ss.card.last4, CardSHA256: ss.card.sha256, At: t,
	})
	s.log.Info("payout succeeded", "session", ss.id, "payout", p.id, "reference", ss.reference(),
		"amount", p.amount.Amount, "currency", p.amount.Currency, "card", ss.card.last4)
	s.notify(ss, pike.WebhookPaymentFinished)
}

// fail ends the payout (if any) as failed with code and the session with
// status, and sends payment_finished.
func (s *Sandbox) fail(ss *session, status pike.SessionStatus, code, desc string) {
	t := now()
	ss.stopTimer()
	if p := ss.payout; p != nil {
		p.status, p.finished = pike.PayoutFailed, t
		p.err = &pike.ErrorInfo{Code: code, Description: desc}
	}
	ss.status, ss.next, ss.updated = status, "", t
	s.log.Info("payout failed", "session", ss.id, "reference", ss.reference(), "code", code, "session_status", status)
	s.notify(ss, pike.WebhookPaymentFinished)
}

// cancelSession applies session/cancel. Callers hold s.mu.
func (s *Sandbox) cancelSession(ss *session) *apiError {
	if ss.status != pike.SessionCreated && !ss.pendingConfirm() {
		return errorf(http.StatusBadRequest, pike.CodeInvalidSessionStatus, "session %s is %s with payout %s: only a created session or a payout waiting for confirm can be cancelled", ss.id, ss.status, ss.payoutStatus())
	}
	s.fail(ss, pike.SessionCancelled, codeCancelledByPartner, "cancelled by the partner")
	return nil
}

// deadline cancels a payout left unconfirmed for ConfirmDeadline.
func (s *Sandbox) deadline(ss *session) {
	if ss.pendingConfirm() {
		s.fail(ss, pike.SessionCancelled, pike.CodeConfirmTimeout, "not confirmed in time")
	}
}

// schedule runs fn(ss) under s.mu after d, replacing ss's pending timer.
func (s *Sandbox) schedule(ss *session, d time.Duration, fn func(*session)) {
	ss.stopTimer()
	gen := ss.gen
	ss.timer = time.AfterFunc(d, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.closed || ss.gen != gen {
			return
		}
		ss.timer = nil
		fn(ss)
	})
}

// stopTimer cancels ss's pending state change.
func (ss *session) stopTimer() {
	ss.gen++
	if ss.timer != nil {
		ss.timer.Stop()
		ss.timer = nil
	}
}

// digits returns n random decimal digits (bank identifiers).
func (s *Sandbox) digits(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte('0' + s.rng.IntN(10))
	}
	return string(b)
}

// rawMetadata returns request metadata as raw JSON, nil when absent.
func rawMetadata(m any) json.RawMessage {
	switch m := m.(type) {
	case nil:
		return nil
	case json.RawMessage:
		var b bytes.Buffer
		if json.Compact(&b, m) != nil {
			return nil
		}
		return b.Bytes()
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil
	}
	return b
}

// metadataText is the journal's form of metadata: a JSON string's value,
// or the JSON text.
func metadataText(raw json.RawMessage) string {
	p := pike.Payout{Metadata: raw}
	return p.MetadataString()
}
