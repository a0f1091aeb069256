package batch

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/internal/refid"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
)

// maxSteps bounds how far one advance call moves a row; a row never needs
// more than a handful of steps between two waits.
const maxSteps = 12

// advance moves row id as far as it can go now, given an optional session
// snapshot, then leaves it resting in a waiting or final state. It holds
// the row's lock throughout, so nothing else acts on the row meanwhile.
func (e *Engine) advance(id int64, snap *pike.Session, src source) {
	e.advanceWith(id, func(ledger.Row) (*pike.Session, bool) { return snap, true }, src)
}

// check asks Pike about row id with session/status and advances the row
// with the answer. The question is asked while the row's lock is held, so
// the answer is newer than anything the row has learnt: a snapshot taken
// before a concurrent step cannot be applied after it. Webhooks and polls
// both come here: a webhook is only a reason to ask (see applyWebhook).
func (e *Engine) check(id int64) {
	e.advanceWith(id, e.askStatus, fromStatus)
}

// askStatus is check's question, asked of rows waiting on Pike
// (awaiting_confirm, confirmed, cancelling). Any other row gets no snapshot
// and its steps run as they are: an unknown row's resolve asks by itself,
// an intent state found at rest becomes unknown first, a final or review
// row stays. ok is false when the question failed: the row is left for a
// later poll.
func (e *Engine) askStatus(row ledger.Row) (snap *pike.Session, ok bool) {
	switch row.State {
	case ledger.StateAwaitingConfirm, ledger.StateConfirmed, ledger.StateCancelling:
	default:
		return nil, true
	}
	if row.SessionID == "" || e.paused.Load() {
		return nil, true
	}
	sess, err := e.pike.Status(e.callCtx, row.SessionID)
	if err != nil {
		e.log.Warn("session status failed", "row", row.Line, "reference", row.Reference, "session", row.SessionID, "err", scrub(err))
		e.retryLater(row.ID)
		return nil, false
	}
	e.mu.Lock()
	b := e.backoff[row.ID]
	e.backoff[row.ID] = min(max(2*b, e.cfg.PollAfter), e.cfg.PollMax)
	e.mu.Unlock()
	return sess, true
}

// advanceWith is advance with the snapshot taken by snapshot once the
// row's lock is held.
func (e *Engine) advanceWith(id int64, snapshot func(ledger.Row) (*pike.Session, bool), src source) {
	unlock := e.locks.lock(id)
	defer unlock()
	row, err := e.store.Row(e.wctx(), id)
	if ledger.IsConnectionError(err) {
		// The database is away (a restart): look at the row again later.
		e.log.Warn("ledger unreachable; the row waits", "row_id", id, "err", err)
		e.retryLater(id)
		return
	}
	if err != nil {
		e.setFatal(fmt.Errorf("read row %d: %w", id, err))
		return
	}
	snap, ok := snapshot(row)
	if !ok {
		return
	}
	if snap != nil {
		if row, err = e.absorb(row, snap, src); err != nil {
			e.rowError(row, err)
			return
		}
	}
	for range maxSteps {
		next, moved, err := e.step(row)
		if err != nil {
			e.rowError(next, err)
			return
		}
		row = next
		if !moved {
			break
		}
	}
	e.settle(row)
}

// errStale marks a snapshot or answer that no longer fits the row: a
// session other than the row's, a move the state machine refuses. It is
// recorded and the row is left as it is: no late answer, stale webhook or
// contradictory report may stop the run.
var errStale = errors.New("stale or contradictory news about the row")

// rowError handles an error from a step. A lost compare-and-set means
// another actor moved the row, which is harmless: the row is looked at
// again. A change the ledger refuses (a stale or contradictory snapshot, an
// illegal move) is recorded as a note and the row left where it is. Only
// an error that means the ledger cannot record what the engine does stops
// the engine.
func (e *Engine) rowError(row ledger.Row, err error) {
	switch {
	case errors.Is(err, ledger.ErrClaimLost), errors.Is(err, ledger.ErrClaimed):
		// Another runner holds the row (its claim, or a takeover of ours):
		// this engine stops touching it; nothing was written.
		e.log.Info("row held by another runner; leaving it", "row", row.Line, "reference", row.Reference, "err", err)
		e.forget(row.ID)
	case errors.Is(err, ledger.ErrOutcomeUnknown), ledger.IsConnectionError(err):
		// The ledger's answer was lost (PostgreSQL restarting): the change
		// may or may not be recorded, and no call was sent after it. The
		// row is read again later and taken from what the ledger says, as
		// after a crash.
		e.log.Warn("ledger write outcome unknown; the row is read again", "row", row.Line, "reference", row.Reference, "err", err)
		e.retryLater(row.ID)
	case errors.Is(err, ledger.ErrConflict):
		e.schedule(row.ID, 0)
	case errors.Is(err, errStale), errors.Is(err, ledger.ErrIllegalTransition), errors.Is(err, ledger.ErrDuplicateSession):
		e.log.Warn("news about a row not applied; the row is left as it is", "row", row.Line, "reference", row.Reference,
			"state", row.State, "err", scrub(err))
		if aerr := e.store.AddEvent(e.wctx(), ledger.Event{BatchID: e.batchID, RowID: row.ID, Attempt: row.Attempt,
			From: row.State, To: row.State, Reason: "not_applied", Detail: scrub(err)}); aerr != nil {
			e.setFatal(aerr)
			return
		}
		e.settle(row)
	default:
		e.setFatal(err)
	}
}

// step takes one step from the row's current state. moved reports whether
// the row changed state and another step may follow at once.
func (e *Engine) step(row ledger.Row) (ledger.Row, bool, error) {
	switch row.State {
	case ledger.StatePlanned:
		if _, ok := e.pan(row.ID); !ok || e.paused.Load() {
			return row, false, nil
		}
		return e.begin(row)
	case ledger.StateCreating, ledger.StateStarting, ledger.StateConfirming:
		// Found at rest in an intent state: the process that recorded the
		// intent died before it learnt the answer. Whether the call left is
		// unknown, and unknown is not failed. (cancelling may rest: a
		// cancel Pike accepted before the session ends, or one not sent
		// yet; the poller's session/status tells which and resends it.)
		next, err := e.apply(row, ledger.Change{To: ledger.StateUnknown, Reason: "interrupted",
			Detail: fmt.Sprintf("found in %s after an interruption: outcome of the call unknown", row.State)})
		return next, err == nil, err
	case ledger.StateCreated:
		if _, ok := e.pan(row.ID); !ok || e.paused.Load() {
			return row, false, nil
		}
		return e.start(row)
	case ledger.StateUnknown:
		return e.resolve(row)
	}
	return row, false, nil // waiting on Pike, on a human, or final
}

// apply records a change of the row's state with compare-and-set on the
// state the runner last saw.
func (e *Engine) apply(row ledger.Row, c ledger.Change) (ledger.Row, error) {
	c.RowID, c.From = row.ID, row.State
	c.Detail = ledger.ScrubPAN(c.Detail)
	e.counts.gate.RLock() // a recount sees this change or counts its move, not both
	next, err := e.store.Apply(e.wctx(), c)
	if err == nil {
		e.counts.move(c.From, c.To)
	}
	e.counts.gate.RUnlock()
	if err != nil {
		return row, fmt.Errorf("line %d (%s) %s → %s: %w", row.Line, row.Reference, c.From, c.To, err)
	}
	e.log.Debug("row moved", "row", row.Line, "reference", row.Reference, "from", c.From, "to", c.To, "reason", c.Reason)
	return next, nil
}

// begin opens a new attempt and makes its session.
func (e *Engine) begin(row ledger.Row) (ledger.Row, bool, error) {
	ctx := e.wctx()
	// The ledger's uniqueness is on the reference's one identity (refid.Key:
	// REF-ß is REF-ẞ, ＰＡＹ-１ is PAY-1, PAY-ı is not PAY-I).
	riskKey := refid.Key(row.Reference)
	if e.cfg.AllowRepeatReference {
		riskKey += "#override:" + e.batchID
	}
	other, found, err := paidElsewhere(ctx, e.store, row.Reference, e.batchID, e.cfg)
	if err != nil {
		return row, false, err
	}
	if found {
		next, err := e.apply(row, ledger.Change{To: ledger.StateSkipped, Reason: "already_paid",
			Detail: fmt.Sprintf("reference already paid in batch %s (line %d, session %s); pass --allow-repeat-reference to pay it again", other.BatchID, other.Line, other.SessionID)})
		return next, false, err
	}
	var card manifest.PAN
	if e.cfg.Flow == FlowSingle {
		// The single call carries the card: check it before opening an attempt.
		var ok bool
		if card, ok = e.checkedCard(row); !ok {
			return row, false, nil
		}
	}
	n := row.Attempt + 1
	next, err := e.apply(row, ledger.Change{To: ledger.StateCreating, Reason: "attempt",
		NewAttempt: attemptKeys(e.batchID, row.Reference, n), RiskKey: riskKey,
		Detail: fmt.Sprintf("attempt %d (%s flow)", n, e.cfg.Flow)})
	if errors.Is(err, ledger.ErrReferenceBusy) {
		holders, herr := e.store.ReferenceHolders(ctx, riskKey)
		if herr != nil {
			return row, false, fmt.Errorf("holders of reference %s: %w", row.Reference, herr)
		}
		for _, h := range holders {
			if h.State == ledger.StateSucceeded {
				next, err := e.apply(row, ledger.Change{To: ledger.StateSkipped, Reason: "already_paid",
					Detail: fmt.Sprintf("reference already paid as %q in batch %s (line %d, session %s); pass --allow-repeat-reference to pay it again", h.Reference, h.BatchID, h.Line, h.SessionID)})
				return next, false, err
			}
		}
		// Another row (here or in another batch) holds this reference in
		// flight: never two at once. Look again later.
		e.log.Warn("reference busy elsewhere; row waits", "row", row.Line, "reference", row.Reference, "err", err)
		e.schedule(row.ID, e.cfg.PollAfter)
		return row, false, nil
	}
	if err != nil {
		return row, false, err
	}
	row = next
	if e.cfg.Flow == FlowSingle {
		return e.initPayout(row, card)
	}
	sess, err := e.pike.CreateSession(e.callCtx, e.key(row, pike.MethodSessionCreate), pike.PayoutRequest{
		AmountDetails: &pike.AmountDetails{Amount: row.Amount, Currency: strings.ToLower(row.Currency)},
		Customer:      customer(row),
		Metadata:      ledger.RowKey(e.batchID, row.Reference, row.Attempt),
	})
	if err == nil && (sess == nil || sess.ID == "") {
		err = fmt.Errorf("session/create answered without a session id: %w", pike.ErrOutcomeUnknown)
	}
	if err != nil {
		return e.callFailed(row, pike.MethodSessionCreate, err)
	}
	next, err = e.apply(row, ledger.Change{To: ledger.StateCreated, Reason: "create_ok", SessionID: sess.ID})
	return next, err == nil, err
}

// key is the idempotency key of method for the row's live attempt.
func (e *Engine) key(row ledger.Row, method string) string {
	return IdempotencyKey(e.batchID, row.Reference, row.Attempt, method)
}

// payoutRequest is the full request that starts row's payout.
func (e *Engine) payoutRequest(row ledger.Row, card manifest.PAN) pike.PayoutRequest {
	return pike.PayoutRequest{
		SessionID:          row.SessionID,
		Method:             pike.CardMethod(card.Digits()),
		AmountDetails:      &pike.AmountDetails{Amount: row.Amount, Currency: strings.ToLower(row.Currency)},
		ParticipantDetails: &pike.ParticipantDetails{Recipient: &pike.Participant{FullName: row.RecipientName}},
		Customer:           customer(row),
		Metadata:           ledger.RowKey(e.batchID, row.Reference, row.Attempt),
	}
}

func customer(row ledger.Row) *pike.Customer {
	c := &pike.Customer{Reference: row.Reference}
	if row.Email != "" {
		c.Contacts = []pike.CustomerContact{{Email: row.Email}}
	}
	return c
}

// cardFor returns the card number to pay row with, after checking it is
// the card the ledger recorded for the row (by keyed fingerprint): a
// manifest edited after the batch was created must not redirect money.
func (e *Engine) cardFor(row ledger.Row) (manifest.PAN, error) {
	card, ok := e.pan(row.ID)
	if !ok {
		return "", fmt.Errorf("row %d (%s): card number not available", row.Line, row.Reference)
	}
	if e.cfg.Fingerprinter != nil && row.CardFingerprint != "" && e.cfg.Fingerprinter.Fingerprint(card) != row.CardFingerprint {
		return "", fmt.Errorf("row %d (%s): the manifest's card %s is not the card recorded for this row — the file changed since the batch was created; use `payouts rerun --batch %s MANIFEST` to apply corrections", row.Line, row.Reference, card.Mask(), e.batchID)
	}
	return card, nil
}

// checkedCard is cardFor for the step machine: a row whose card cannot be
// used is left where it is (and its card forgotten) with an error in the
// log and the ledger, instead of stopping every other row.
func (e *Engine) checkedCard(row ledger.Row) (manifest.PAN, bool) {
	card, err := e.cardFor(row)
	if err == nil {
		return card, true
	}
	e.log.Error("row not started", "row", row.Line, "reference", row.Reference, "err", scrub(err))
	e.mu.Lock()
	delete(e.pans, row.ID)
	e.mu.Unlock()
	if aerr := e.store.AddEvent(e.wctx(), ledger.Event{BatchID: e.batchID, RowID: row.ID, Attempt: row.Attempt,
		From: row.State, To: row.State, Reason: "card_mismatch", Detail: scrub(err)}); aerr != nil {
		e.setFatal(aerr)
	}
	return "", false
}

// start sends session/start/payout for a created session, at most
// maxSends times per attempt: a start Pike never applies (answered 5xx for
// the same key forever, say) ends with the session cancelled, so that it
// can never pay, and the row free for a rerun.
func (e *Engine) start(row ledger.Row) (ledger.Row, bool, error) {
	n, err := e.sends(row, ledger.StateStarting)
	if err != nil {
		return row, false, err
	}
	if e.exhausted(n) {
		next, err := e.cancel(row, ledger.Failure{Code: ledger.CodeStartNotApplied, Description: fmt.Sprintf(
			"session/start/payout sent %d times with the same idempotency key since %s; Pike never showed a payout, so the session is cancelled", n.n, n.first.UTC().Format(time.RFC3339))})
		return next, false, err
	}
	card, ok := e.checkedCard(row)
	if !ok {
		return row, false, nil
	}
	next, err := e.apply(row, ledger.Change{To: ledger.StateStarting, Reason: "start"})
	if err != nil {
		return row, false, err
	}
	row = next
	sess, err := e.pike.StartPayout(e.callCtx, e.key(row, pike.MethodStartPayout), e.payoutRequest(row, card))
	if err != nil {
		return e.callFailed(row, pike.MethodStartPayout, err)
	}
	next, err = e.absorb(row, sess, fromResponse)
	return next, err == nil && next.State != row.State, err
}

// initPayout sends session/init/payout (single flow) for a creating row.
func (e *Engine) initPayout(row ledger.Row, card manifest.PAN) (ledger.Row, bool, error) {
	sess, err := e.pike.InitPayout(e.callCtx, e.key(row, pike.MethodInitPayout), e.payoutRequest(row, card))
	if err == nil && (sess == nil || sess.ID == "") {
		err = fmt.Errorf("session/init/payout answered without a session id: %w", pike.ErrOutcomeUnknown)
	}
	if err != nil {
		return e.callFailed(row, pike.MethodInitPayout, err)
	}
	next, err := e.apply(row, ledger.Change{To: ledger.StateStarting, Reason: "init_ok", SessionID: sess.ID})
	if err != nil {
		return row, false, err
	}
	next, err = e.absorb(next, sess, fromResponse)
	return next, err == nil, err
}

// callFailed records the failure of a call. An error answer is proof that
// nothing happened only when Pike gave it before applying the call
// (pike.ErrNotApplied); anything else leaves the row unknown, resolved by
// session/status, or, for a lost init that left no session id, by sending
// the same request again with the same idempotency key.
func (e *Engine) callFailed(row ledger.Row, method string, err error) (ledger.Row, bool, error) {
	class := pike.Classify(err)
	e.log.Warn("pike call failed", "row", row.Line, "reference", row.Reference, "method", method, "class", className(class), "err", scrub(err))
	var apiErr *pike.APIError
	refused := class == pike.ClassDefinitive && errors.As(err, &apiErr)
	creates := method == pike.MethodSessionCreate || method == pike.MethodInitPayout
	if errors.Is(err, pike.ErrCredentials) {
		return e.credentialsRefused(row, method, err)
	}
	failed := func(reason string) (ledger.Row, bool, error) {
		next, aerr := e.apply(row, ledger.Change{To: ledger.StateFailed, Reason: reason,
			Failure: &ledger.Failure{Code: apiErr.Code, Description: ledger.ScrubPAN(apiErr.Description)},
			Detail:  fmt.Sprintf("%s refused: %s", method, scrub(err))})
		return next, false, aerr
	}
	switch {
	case refused && method == pike.MethodSessionCreate:
		// Whatever Pike made, an empty session cannot pay: nothing is ever
		// started in it.
		return failed("refused")
	case refused && errors.Is(err, pike.ErrNotApplied) && (method == pike.MethodStartPayout || method == pike.MethodInitPayout):
		// Pike named the request malformed: refused before applying.
		return failed("refused")
	case method == pike.MethodSessionCreate && errors.Is(err, pike.ErrNotApplied):
		// Not applied: nothing exists at Pike for this attempt. Plan the
		// row again; its next attempt gets fresh keys.
		next, aerr := e.apply(row, ledger.Change{To: ledger.StatePlanned, Reason: "not_sent",
			Detail: fmt.Sprintf("%s not applied: %s", method, scrub(err))})
		if aerr != nil {
			return row, false, aerr
		}
		e.retryLater(row.ID)
		return next, false, nil
	}
	if errors.Is(err, pike.ErrIdempotencyKeyReused) && method == pike.MethodConfirm {
		// Pike has our confirm (or is processing it): never send another.
		e.mu.Lock()
		e.keyUsed[row.ID] = true
		e.mu.Unlock()
	}
	c := ledger.Change{To: ledger.StateUnknown, Reason: method + "_" + className(class),
		Detail: fmt.Sprintf("%s: %s", method, scrub(err))}
	if refused && (method == pike.MethodStartPayout || creates) {
		// A refusal that is not proof: kept on the row. For a start,
		// status settles it (see interpret); a single-flow init has no
		// session to ask about, and a resend with the same key may be
		// answered with a replay of the same refusal, which proves no more
		// than the first: it ends in review if no session ever shows up.
		c.Failure = &ledger.Failure{Code: apiErr.Code, Description: ledger.ScrubPAN(apiErr.Description)}
	}
	next, aerr := e.apply(row, c)
	if aerr != nil {
		return row, false, aerr
	}
	e.retryLater(row.ID)
	return next, false, nil
}

// credentialsRefused stops the engine: Pike refused the partner's
// credentials, which no row can fix and every row would meet. A create or
// init refused so was not applied and goes back to planned; any other call
// leaves its row unknown, resolved by the next run with session/status.
func (e *Engine) credentialsRefused(row ledger.Row, method string, err error) (ledger.Row, bool, error) {
	c := ledger.Change{To: ledger.StateUnknown, Reason: method + "_credentials_refused", Detail: scrub(err)}
	firstSend := true
	if method == pike.MethodInitPayout {
		// A refused resend says nothing about the first send, which may
		// have been applied: the attempt stays unknown.
		n, serr := e.sends(row, ledger.StateCreating)
		if serr != nil {
			return row, false, serr
		}
		firstSend = n.n <= 1
	}
	if (method == pike.MethodSessionCreate || method == pike.MethodInitPayout) && firstSend {
		c = ledger.Change{To: ledger.StatePlanned, Reason: "not_sent", Detail: fmt.Sprintf("%s not applied: %s", method, scrub(err))}
	}
	next, aerr := e.apply(row, c)
	e.setFatal(fmt.Errorf("%w: %s — no row was paid or failed for it; check the project id (PIKE_PROJECT), the partner key (PIKE_PRIVATE_KEY) and that its public key is registered with Pike, then run again",
		ErrCredentials, scrub(err)))
	return next, false, aerr
}

func className(c pike.Class) string {
	switch c {
	case pike.ClassRetryable:
		return "not_sent"
	case pike.ClassDefinitive:
		return "refused"
	case pike.ClassUnknown:
		return "outcome_unknown"
	}
	return "error"
}

// scrub renders an error for logs and the ledger without any card number.
func scrub(err error) string {
	if err == nil {
		return ""
	}
	return ledger.ScrubPAN(err.Error())
}

// resolve finds out what became of an unknown row's last call.
func (e *Engine) resolve(row ledger.Row) (ledger.Row, bool, error) {
	if row.SessionID == "" {
		if e.cfg.Flow == FlowSingle {
			return e.resolveLostInit(row)
		}
		// A lost session/create: at worst an orphan session exists that
		// was never started and never will be. Harmless; open a new attempt.
		next, err := e.apply(row, ledger.Change{To: ledger.StatePlanned, Reason: "create_lost",
			Detail: "session/create outcome unknown and no session id was learnt; any orphan session is never started"})
		if err != nil {
			return row, false, err
		}
		e.retryLater(row.ID)
		return next, false, nil
	}
	if e.paused.Load() {
		return row, false, nil
	}
	sess, err := e.pike.Status(e.callCtx, row.SessionID)
	if err != nil {
		var apiErr *pike.APIError
		if pike.Classify(err) == pike.ClassDefinitive && errors.As(err, &apiErr) && apiErr.Code == pike.CodeSessionNotFound {
			next, aerr := e.apply(row, ledger.Change{To: ledger.StateReview, Reason: "no_pike_record",
				Failure: &ledger.Failure{Code: ledger.CodeNoPikeRecord, Description: "Pike does not know session " + row.SessionID},
				Detail:  scrub(err)})
			return next, false, aerr
		}
		e.log.Warn("session status failed", "row", row.Line, "reference", row.Reference, "session", row.SessionID, "err", scrub(err))
		e.retryLater(row.ID)
		return row, false, nil
	}
	next, err := e.absorb(row, sess, fromStatus)
	if err == nil && next.State == ledger.StateUnknown {
		// Status told nothing new (the payout is still on its way): ask
		// again later, backing off. Never left without a next step.
		e.retryLater(row.ID)
	}
	return next, err == nil && next.State != row.State, err
}

// maxSends and Config.GiveUpAfter bound how long one call of one attempt
// is sent again with the same idempotency key (session/start/payout
// answered 5xx forever, say) before the row stops for good: cancelled when
// the session can still be cancelled, review when nothing else can settle
// it. Both must be reached: a few sends lost to a slow network in a minute
// are no reason to give up, and neither is one send an hour ago.
const maxSends = 6

// sendCount is how often one call of the row's live attempt was sent, and
// when first.
type sendCount struct {
	n     int
	first time.Time
}

// exhausted reports whether the call was sent often and long enough to
// give up on it.
func (e *Engine) exhausted(c sendCount) bool {
	return c.n >= maxSends && e.cfg.Now().Sub(c.first) >= e.cfg.GiveUpAfter
}

// sends counts how often the row's live attempt entered state (each entry
// records the intent to send one call).
func (e *Engine) sends(row ledger.Row, state ledger.State) (sendCount, error) {
	return e.countEvents(row, func(ev ledger.Event) bool { return ev.To == state && ev.From != state })
}

// reasonSendCancel marks each session/cancel sent, counted by cancelSends.
const reasonSendCancel = "send_cancel"

// cancelSends counts the session/cancel requests sent for the row's live
// attempt.
func (e *Engine) cancelSends(row ledger.Row) (sendCount, error) {
	return e.countEvents(row, func(ev ledger.Event) bool { return ev.Reason == reasonSendCancel })
}

// countEvents counts the events of the row's live attempt that match.
func (e *Engine) countEvents(row ledger.Row, match func(ledger.Event) bool) (sendCount, error) {
	events, err := e.store.Events(e.wctx(), e.batchID, row.ID)
	if err != nil {
		return sendCount{}, fmt.Errorf("events of row %d: %w", row.Line, err)
	}
	var c sendCount
	for _, ev := range events {
		if ev.Attempt == row.Attempt && match(ev) {
			if c.n == 0 {
				c.first = ev.At
			}
			c.n++
		}
	}
	return c, nil
}

// resolveLostInit settles a single-flow attempt whose session/init/payout
// left no session id. Two ways, both without ever opening a new attempt
// while this one may pay: a stored webhook naming this attempt whose
// session our own session/status confirms as ours (adopt), or the same
// request resent with the same idempotency key, whose answer is Pike's
// record of the first (the session, the same refusal, or "key already
// used"). After maxSends the row goes to review: a person finds the
// session in Pike by its reference.
func (e *Engine) resolveLostInit(row ledger.Row) (ledger.Row, bool, error) {
	if e.paused.Load() {
		return row, false, nil
	}
	if sess, err := e.findLostSession(row); err != nil {
		return row, false, err
	} else if sess != nil {
		next, err := e.apply(row, ledger.Change{To: row.State, Reason: "adopted", SessionID: sess.ID,
			Detail: "session id learnt from a webhook naming this attempt, confirmed by session/status"})
		if err != nil {
			return row, false, err
		}
		next, err = e.absorb(next, sess, fromStatus)
		return next, err == nil, err
	}
	n, err := e.sends(row, ledger.StateCreating)
	if err != nil {
		return row, false, err
	}
	if e.exhausted(n) {
		next, err := e.apply(row, ledger.Change{To: ledger.StateReview, Reason: "init_unresolved",
			Failure: &ledger.Failure{Code: ledger.CodeInitUnresolved, Description: fmt.Sprintf(
				"session/init/payout sent %d times with the same idempotency key and Pike never gave its session; find the session in Pike by reference %s before paying this row in any other way", n.n, row.Reference)},
			Detail: "lost init not resolved"})
		return next, false, err
	}
	card, ok := e.checkedCard(row)
	if !ok {
		// Only the manifest holds the card: a run with it resends.
		e.retryLater(row.ID)
		return row, false, nil
	}
	next, err := e.apply(row, ledger.Change{To: ledger.StateCreating, Reason: "resend",
		Detail: fmt.Sprintf("session/init/payout sent again with the same idempotency key (send %d) to learn what became of the first", n.n+1)})
	if err != nil {
		return row, false, err
	}
	return e.initPayout(next, card)
}

// findLostSession looks among the stored webhooks about sessions the ledger
// does not know for one whose payout names the row's live attempt, and
// returns that session as our own session/status shows it, if it really is
// the attempt's: a webhook proves nothing about a session we have not asked
// Pike about ourselves (another merchant's session may carry a copy of our
// metadata; Pike answers status only for our own project's sessions).
func (e *Engine) findLostSession(row ledger.Row) (*pike.Session, error) {
	ws, err := e.store.UnmatchedWebhooks(e.wctx(), time.Time{})
	if err != nil {
		return nil, fmt.Errorf("unmatched webhooks: %w", err)
	}
	want := ledger.RowKey(e.batchID, row.Reference, row.Attempt)
	seen := map[string]bool{}
	for _, w := range ws {
		wh, err := pike.ParseWebhook(w.Body)
		if err != nil || seen[wh.Session.ID] {
			continue
		}
		if p := wh.Session.Payout(); p == nil || p.MetadataString() != want {
			continue
		}
		seen[wh.Session.ID] = true
		sess, err := e.pike.Status(e.callCtx, wh.Session.ID)
		if err != nil {
			e.log.Warn("a webhook names a lost attempt, but Pike does not confirm the session", "row", row.Line,
				"reference", row.Reference, "session", wh.Session.ID, "err", scrub(err))
			continue
		}
		if diffs := ownSession(e.batchID, row, sess); len(diffs) > 0 {
			e.log.Warn("a webhook names a lost attempt, but its session is not the attempt's", "row", row.Line,
				"reference", row.Reference, "session", wh.Session.ID, "diff", describeDiscrepancies(diffs))
			continue
		}
		return sess, nil
	}
	return nil, nil
}

// absorb applies a session snapshot to the row, then acts on it: a payout
// waiting for confirmation is checked and confirmed or cancelled.
func (e *Engine) absorb(row ledger.Row, s *pike.Session, src source) (ledger.Row, error) {
	if s.ID != "" && row.SessionID != "" && s.ID != row.SessionID {
		return row, fmt.Errorf("row %d: snapshot of session %s applied to session %s: %w", row.Line, s.ID, row.SessionID, errStale)
	}
	eff, err := e.intentOf(row)
	if err != nil {
		return row, err
	}
	v := interpret(row, eff, s, src)
	payoutID := ""
	if p := s.Payout(); p != nil && p.ID != "" && p.ID != row.PayoutID {
		payoutID = p.ID
	}
	if v.to != "" && (v.to != row.State || payoutID != "") {
		c := ledger.Change{To: v.to, Reason: src.String() + "_" + v.reason, PayoutID: payoutID, Failure: v.failure}
		if v.to == row.State {
			c.Failure = nil
		}
		next, err := e.apply(row, c)
		if err != nil {
			return row, err
		}
		row = next
	}
	if v.resendCancel && row.State == ledger.StateCancelling {
		return e.sendCancel(row)
	}
	if v.ready && row.State == ledger.StateAwaitingConfirm {
		return e.decide(row, s, src)
	}
	return row, nil
}

// intentOf returns the row's state, or for an unknown row the state it
// left for unknown (read from the audit log): the call whose outcome was lost.
func (e *Engine) intentOf(row ledger.Row) (ledger.State, error) {
	if row.State != ledger.StateUnknown {
		return row.State, nil
	}
	events, err := e.store.Events(e.wctx(), e.batchID, row.ID)
	if err != nil {
		return "", fmt.Errorf("events of row %d: %w", row.Line, err)
	}
	for i := len(events) - 1; i >= 0; i-- {
		ev := events[i]
		if ev.To == ledger.StateUnknown && ev.From != "" && ev.From != ledger.StateUnknown {
			return ev.From, nil
		}
	}
	return ledger.StateUnknown, nil
}

// decide runs the confirm check on a payout waiting for confirmation and
// confirms, holds or cancels it.
func (e *Engine) decide(row ledger.Row, s *pike.Session, src source) (ledger.Row, error) {
	if cancelIntended(row) {
		// Decided once (mismatch, reject): never confirmed afterwards.
		return e.cancel(row, ledger.Failure{Code: row.FailureCode, Description: row.FailureDescription})
	}
	diffs, incomplete := checkSession(e.batchID, row, s)
	if len(diffs) > 0 && incomplete && src != fromStatus && !e.paused.Load() {
		// A webhook may leave fields out; ask for the full session before
		// calling it a mismatch.
		if fresh, err := e.pike.Status(e.callCtx, row.SessionID); err == nil {
			diffs, _ = checkSession(e.batchID, row, fresh)
		}
	}
	if len(diffs) > 0 {
		e.log.Warn("session does not match its row: cancelling", "row", row.Line, "reference", row.Reference, "session", row.SessionID, "diff", describeDiscrepancies(diffs))
		return e.cancel(row, ledger.Failure{Code: ledger.CodeMismatch, Description: describeDiscrepancies(diffs)})
	}
	if e.paused.Load() {
		return row, nil
	}
	if e.cfg.Confirm == ConfirmHold || (e.only != nil && !e.only[row.ID]) {
		e.mu.Lock()
		already := e.held[row.ID]
		e.held[row.ID] = true
		e.mu.Unlock()
		if !already {
			err := e.store.AddEvent(e.wctx(), ledger.Event{BatchID: e.batchID, RowID: row.ID, Attempt: row.Attempt,
				From: row.State, To: row.State, Reason: "held",
				Detail: "ready to confirm; held for `payouts approve` (Pike cancels unconfirmed payouts after " + confirmDeadline + ")"})
			if err != nil {
				return row, fmt.Errorf("record hold: %w", err)
			}
		}
		return row, nil
	}
	e.mu.Lock()
	used := e.keyUsed[row.ID]
	e.mu.Unlock()
	if used {
		return row, nil // Pike already has a confirm from us; wait for its outcome
	}
	return e.confirm(row)
}

// confirm records the intent to confirm, then sends session/confirm.
func (e *Engine) confirm(row ledger.Row) (ledger.Row, error) {
	detail := "confirm check passed"
	if e.cfg.Actor != "" {
		detail += "; approved by " + e.cfg.Actor
	}
	next, err := e.apply(row, ledger.Change{To: ledger.StateConfirming, Reason: "confirm", Detail: detail})
	if err != nil {
		return row, err
	}
	row = next
	sess, err := e.pike.Confirm(e.callCtx, e.key(row, pike.MethodConfirm), row.SessionID)
	if err != nil {
		next, _, err := e.callFailed(row, pike.MethodConfirm, err)
		return next, err
	}
	return e.absorb(row, sess, fromResponse)
}

// cancel records the intent to cancel with its reason, then sends
// session/cancel.
func (e *Engine) cancel(row ledger.Row, f ledger.Failure) (ledger.Row, error) {
	next, err := e.apply(row, ledger.Change{To: ledger.StateCancelling, Reason: "cancel", Failure: &f, Detail: f.Description})
	if err != nil {
		return row, err
	}
	return e.sendCancel(next)
}

// sendCancel sends session/cancel for a row already in cancelling. A
// resend (status showed the cancel not applied) is recorded first, and
// bounded: after maxSends the row goes to review.
func (e *Engine) sendCancel(row ledger.Row) (ledger.Row, error) {
	n, err := e.cancelSends(row)
	if err != nil {
		return row, err
	}
	if e.exhausted(n) {
		return e.apply(row, ledger.Change{To: ledger.StateReview, Reason: "cancel_unresolved",
			Failure: &ledger.Failure{Code: ledger.CodeCancelUnresolved, Description: fmt.Sprintf(
				"session/cancel sent %d times with the same idempotency key and Pike still shows the payout waiting; never confirm it — cancel it in Pike or let its deadline pass", n.n)},
			Detail: "cancel never applied"})
	}
	if err := e.store.AddEvent(e.wctx(), ledger.Event{BatchID: e.batchID, RowID: row.ID, Attempt: row.Attempt,
		From: row.State, To: row.State, Reason: reasonSendCancel, Detail: fmt.Sprintf("session/cancel send %d", n.n+1)}); err != nil {
		return row, fmt.Errorf("record cancel intent: %w", err)
	}
	sess, err := e.pike.Cancel(e.callCtx, e.key(row, pike.MethodCancel), row.SessionID)
	if err != nil {
		next, _, err := e.callFailed(row, pike.MethodCancel, err)
		return next, err
	}
	return e.absorb(row, sess, fromResponse)
}
