package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
)

// Intake receives verified webhooks: it stores each one durably and only
// then lets the HTTP handler answer 200, and wakes the engines that may
// act on it. Its Handle method is the callback for pike.NewWebhookHandler.
type Intake struct {
	store Store
	mu    sync.Mutex
	subs  map[*Engine]bool
	now   func() time.Time
}

// NewIntake returns an Intake storing into store.
func NewIntake(store Store) *Intake {
	return &Intake{store: store, subs: map[*Engine]bool{}, now: time.Now}
}

// Subscribe makes e hear about every stored webhook until Unsubscribe.
func (in *Intake) Subscribe(e *Engine) {
	in.mu.Lock()
	in.subs[e] = true
	in.mu.Unlock()
}

// Unsubscribe stops notifications to e.
func (in *Intake) Unsubscribe(e *Engine) {
	in.mu.Lock()
	delete(in.subs, e)
	in.mu.Unlock()
}

// Handle stores a verified delivery. It returns nil only once the webhook
// is durable, so Pike is told 200 only for what survives a crash; a
// duplicate delivery is recognised by its body hash and stored once.
func (in *Intake) Handle(ctx context.Context, d pike.Delivery) error {
	w := ledger.Webhook{
		BodySHA256: d.BodySHA256,
		Body:       d.Body,
		Verified:   true,
		ReceivedAt: d.ReceivedAt,
	}
	if d.Webhook != nil {
		// The ledger stores Pike's words as plain text; it does not import pike.
		w.Type = string(d.Webhook.Type)
		w.SessionID = d.Webhook.Session.ID
		w.SessionStatus = string(d.Webhook.Session.Status)
		if p := d.Webhook.Session.Payout(); p != nil {
			w.PayoutStatus = string(p.Status)
		}
	}
	if w.ReceivedAt.IsZero() {
		w.ReceivedAt = in.now()
	}
	if _, _, err := in.store.RecordWebhook(context.WithoutCancel(ctx), w); err != nil {
		return fmt.Errorf("store webhook: %w", err)
	}
	in.mu.Lock()
	for e := range in.subs {
		e.Notify()
	}
	in.mu.Unlock()
	return nil
}

// Webhook application results recorded on each stored webhook.
const (
	resultApplied        = "applied"
	resultUnknownSession = "unknown_session"
	resultIgnoredType    = "ignored_type"
	resultUnparsable     = "unparsable"
	resultSuperseded     = "superseded_attempt"
	resultLead           = "lead"
)

// webhookLoop applies stored webhooks of this batch: when woken by the
// intake, and every second for webhooks stored by another process (a
// `payouts serve` receiving for a running batch).
func (e *Engine) webhookLoop() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var after int64
	lastFull := e.cfg.Now()
	for {
		select {
		case <-e.stopped:
			return
		case <-e.wake:
		case <-t.C:
		}
		if e.cfg.Now().Sub(lastFull) > 30*time.Second {
			after, lastFull = 0, e.cfg.Now() // pick up any whose application failed
		}
		for {
			ws, err := e.store.PendingWebhooks(e.wctx(), e.batchID, after, 256)
			if ledger.IsConnectionError(err) {
				break // the database is away: the next tick tries again
			}
			if err != nil {
				e.setFatal(fmt.Errorf("read pending webhooks: %w", err))
				return
			}
			for _, w := range ws {
				after = max(after, w.ID)
				e.mu.Lock()
				busy := e.inflight[w.ID]
				e.inflight[w.ID] = true
				e.mu.Unlock()
				if busy {
					continue
				}
				if !e.submit(e.callCtx, func() {
					e.applyWebhook(w)
					e.mu.Lock()
					delete(e.inflight, w.ID)
					e.mu.Unlock()
				}, true) {
					return
				}
			}
			if len(ws) < 256 {
				break
			}
		}
	}
}

// applyPending applies, in order and synchronously, every webhook of the
// batch stored and not yet applied.
func (e *Engine) applyPending() {
	var after int64
	for {
		ws, err := e.store.PendingWebhooks(e.wctx(), e.batchID, after, 256)
		if err != nil {
			e.setFatal(fmt.Errorf("read pending webhooks: %w", err))
			return
		}
		for _, w := range ws {
			after = w.ID
			e.applyWebhook(w)
		}
		if len(ws) < 256 {
			return
		}
	}
}

// applyWebhook applies one stored webhook and marks it applied (with what
// became of it), unless it is about another batch's session.
//
// A webhook is news, not proof. Pike signs it, but it may be stale,
// replayed, reordered, or about a session that is not ours (another
// merchant's session carrying a copy of our metadata is still signed by
// Pike). So a webhook never moves a row by itself: it is a reason to ask
// Pike about the session with our own signed session/status, and only the
// answer moves the row (check). A webhook about a session the ledger does
// not know moves nothing; for a single-flow attempt whose session id was
// lost it is a lead that resolve follows, again through session/status.
func (e *Engine) applyWebhook(w ledger.Webhook) {
	result, err := e.webhookResult(w)
	if err != nil {
		if errors.Is(err, errNotOurs) {
			return // another batch's engine will take it
		}
		e.log.Warn("webhook not applied", "webhook", w.ID, "session", w.SessionID, "err", scrub(err))
		return
	}
	err = e.store.MarkWebhookApplied(e.wctx(), w.ID, result)
	if errors.Is(err, ledger.ErrOutcomeUnknown) || ledger.IsConnectionError(err) {
		return // still pending, or applied: applying it again is harmless
	}
	if err != nil {
		e.setFatal(fmt.Errorf("mark webhook %d applied: %w", w.ID, err))
	}
}

var errNotOurs = errors.New("webhook belongs to another batch")

func (e *Engine) webhookResult(w ledger.Webhook) (string, error) {
	wh, err := pike.ParseWebhook(w.Body)
	if err != nil {
		return resultUnparsable, nil
	}
	switch wh.Type {
	case pike.WebhookReadyToConfirm, pike.WebhookPaymentFinished:
	default:
		e.log.Warn("webhook of a type the processor does not act on", "type", wh.Type, "session", wh.Session.ID)
		return resultIgnoredType, nil
	}
	att, row, err := e.store.AttemptBySession(e.wctx(), wh.Session.ID)
	if errors.Is(err, ledger.ErrNotFound) {
		return e.lead(wh)
	}
	if err != nil {
		return "", fmt.Errorf("find session %s: %w", wh.Session.ID, err)
	}
	if row.BatchID != e.batchID {
		return "", errNotOurs
	}
	if att.N != row.Attempt {
		return resultSuperseded, e.lateSuccess(att, row, &wh.Session)
	}
	if e.shared != nil && !row.State.Final() && !e.shared.has(row.ID) {
		return "", errNotOurs // the runner holding the row applies it
	}
	if row.State.Final() {
		// A row that ended (failed, cancelled, mismatch) is not followed by
		// the poller; only a success of its own attempt would be news.
		return resultApplied, e.lateSuccess(att, row, &wh.Session)
	}
	e.check(row.ID)
	if e.shared != nil && !e.shared.has(row.ID) {
		return "", errNotOurs // lost to another runner meanwhile: it applies it
	}
	return resultApplied, nil
}

// lead handles a webhook about a session the ledger does not know. It is
// settled at once (never left pending for another pass), and moves
// nothing. If its payout names a single-flow attempt of this batch whose
// session id was lost, the row is looked at now: resolve finds this
// webhook among the unmatched ones and asks Pike about its session.
func (e *Engine) lead(wh *pike.Webhook) (string, error) {
	p := wh.Session.Payout()
	if p == nil || e.cfg.Flow != FlowSingle {
		return resultUnknownSession, nil
	}
	prefix, n, ref, ok := ledger.ParseRowKey(p.MetadataString())
	if !ok || prefix != ledger.RowKeyBatch(e.batchID) {
		return resultUnknownSession, nil
	}
	row, err := e.store.RowByReference(e.wctx(), e.batchID, ref)
	if errors.Is(err, ledger.ErrNotFound) {
		return resultUnknownSession, nil
	}
	if err != nil {
		return "", fmt.Errorf("find row %s: %w", ref, err)
	}
	if row.Attempt != n || row.SessionID != "" || row.State != ledger.StateUnknown {
		return resultUnknownSession, nil
	}
	e.check(row.ID)
	return resultLead, nil
}

// lateSuccess records what Pike says about an attempt the row's state
// machine no longer follows: an attempt the row has moved on from, or the
// live attempt of a row that already ended failed, cancelled or mismatch.
// Such an attempt was finished definitively, so it can only report
// failure; a success there means the reference may be paid twice. The
// webhook is only a reason to ask: our own session/status must show the
// success. Then the attempt is recorded as succeeded (which makes the row
// hold its reference's risk key for good and forbids any new attempt) and
// the row goes to review, from any state but succeeded.
func (e *Engine) lateSuccess(att ledger.Attempt, row ledger.Row, s *pike.Session) error {
	if p := s.Payout(); p == nil || p.Status != pike.PayoutSucceeded {
		return nil // nothing an ended attempt can say but success matters
	}
	if att.State == ledger.StateSucceeded || row.State == ledger.StateSucceeded && att.N == row.Attempt {
		return nil // already recorded
	}
	ctx := e.wctx()
	fresh, err := e.pike.Status(e.callCtx, att.SessionID)
	if err != nil {
		return fmt.Errorf("status of ended session %s: %w", att.SessionID, err)
	}
	if p := fresh.Payout(); p == nil || p.Status != pike.PayoutSucceeded {
		e.log.Warn("a webhook says an ended attempt succeeded; Pike's status does not", "row", row.Line, "reference", row.Reference,
			"session", att.SessionID, "status", fresh.Status)
		return nil
	}
	code, detail := ledger.CodeSupersededSuccess, fmt.Sprintf("attempt %d (session %s) reported succeeded after attempt %d was opened", att.N, att.SessionID, row.Attempt)
	if att.N == row.Attempt {
		code, detail = ledger.CodeLateSuccess, fmt.Sprintf("attempt %d (session %s) reported succeeded after the row ended %s", att.N, att.SessionID, row.State)
	}
	e.log.Error("an ended attempt succeeded: possible double payment", "row", row.Line, "reference", row.Reference, "detail", detail)
	unlock := e.locks.lock(row.ID)
	defer unlock()
	if err := e.store.SetAttemptOutcome(ctx, att.ID, ledger.StateSucceeded, ledger.Failure{}, "late_success", detail); err != nil {
		return fmt.Errorf("record late success: %w", err)
	}
	row, err = e.store.Row(ctx, row.ID)
	if err != nil {
		return err
	}
	if !ledger.CanTransition(row.State, ledger.StateReview) || row.State == ledger.StateReview {
		// Already in review, or succeeded: the second payment happened
		// (or is in review); the event above and the finding tell.
		return nil
	}
	next, err := e.apply(row, ledger.Change{To: ledger.StateReview, Reason: "late_success",
		Failure: &ledger.Failure{Code: code, Description: detail}, Detail: detail})
	if err != nil {
		return err
	}
	e.settle(next)
	return nil
}
