package batch

import (
	"fmt"
	"strings"

	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
)

// source says where a session snapshot came from. Webhooks may be stale,
// duplicated or reordered, so they only ever move a row forward; only a
// fresh session/status (or the response to our own call) may conclude that
// a call of ours was not applied and must be sent again.
type source int

const (
	fromResponse source = iota
	fromStatus
	fromWebhook
)

func (s source) String() string {
	switch s {
	case fromResponse:
		return "response"
	case fromStatus:
		return "status"
	case fromWebhook:
		return "webhook"
	}
	return "unknown"
}

// verdict is what a session snapshot means for a row.
type verdict struct {
	to      ledger.State    // state to move to; "" keeps the current one
	failure *ledger.Failure // failure to record with the move
	// ready: the payout waits for our confirm or cancel (payout pending).
	ready bool
	// resendCancel: status shows our cancel was not applied; send it again.
	resendCancel bool
	reason       string
}

// cancelIntended reports whether the runner decided to cancel this row's
// live attempt (mismatch or operator reject). Such a row is never confirmed,
// whatever state an unknown outcome leaves it in.
func cancelIntended(row ledger.Row) bool {
	return row.FailureCode == ledger.CodeMismatch || row.FailureCode == ledger.CodeRejected
}

// cancelledState is the final state of a row whose session ended cancelled:
// mismatch when the runner cancelled it because the session did not match,
// failed when it cancelled it to make Pike's refusal of the start final
// (the row keeps Pike's code), cancelled otherwise.
func cancelledState(row ledger.Row) ledger.State {
	switch row.FailureCode {
	case ledger.CodeMismatch:
		return ledger.StateMismatch
	case "", ledger.CodeRejected, ledger.CodeStartNotApplied, ledger.CodeCancelUnresolved, pike.CodeConfirmTimeout:
		return ledger.StateCancelled
	}
	return ledger.StateFailed
}

// clearRefusal is the failure to record when a payout turns out to exist
// after Pike refused our start: the refusal was not the last word.
func clearRefusal(row ledger.Row, eff ledger.State) *ledger.Failure {
	if eff == ledger.StateStarting && row.FailureCode != "" && !cancelIntended(row) {
		return &ledger.Failure{}
	}
	return nil
}

// interpret maps a session snapshot onto the row's state machine
// (pike-api.md §5). eff is the row's state, or for an unknown row the state
// whose call was in flight when the outcome was lost: a payout in_progress
// means "not yet pending" after a start, "confirmed" after a confirm. It
// never moves a final row and never moves a row backwards on the word of a
// webhook.
func interpret(row ledger.Row, eff ledger.State, s *pike.Session, src source) verdict {
	if row.State.Final() || row.State == ledger.StateReview {
		// Review is sticky: only a person's recorded decision leaves it.
		return verdict{}
	}
	p := s.Payout()
	pikeErr := s.Error
	if p != nil && p.Error != nil {
		pikeErr = p.Error
	}
	failure := func(fallback string) *ledger.Failure {
		if pikeErr != nil {
			return &ledger.Failure{Code: pikeErr.Code, Description: pikeErr.Description}
		}
		return &ledger.Failure{Code: fallback}
	}
	keep := func(code, desc string) *ledger.Failure {
		// Keep the runner's own reason (mismatch, rejected) on a cancelled row.
		if row.FailureCode != "" {
			return &ledger.Failure{Code: row.FailureCode, Description: row.FailureDescription}
		}
		return &ledger.Failure{Code: code, Description: desc}
	}

	switch {
	case s.Status == pike.SessionError:
		// Not final (pike-api.md §5): never retried, held for a human.
		return verdict{to: ledger.StateReview, failure: failure("session_error"), reason: "session_error"}

	case p != nil && p.Status == pike.PayoutSucceeded:
		if a := p.AmountDetails; a != nil && (a.Amount != row.Amount || !strings.EqualFold(a.Currency, row.Currency)) {
			// Money moved, but not what the row asked for (Pike-side
			// auto-confirm skips our confirm check): a person settles it.
			return verdict{to: ledger.StateReview, reason: "paid_amount_differs", failure: &ledger.Failure{Code: ledger.CodePaidAmountDiffers,
				Description: fmt.Sprintf("Pike paid %s %s, the row is %s %s", manifest.FormatAmount(a.Amount, row.Currency), strings.ToUpper(a.Currency), manifest.FormatAmount(row.Amount, row.Currency), row.Currency)}}
		}
		if p.AmountDetails == nil && eff != ledger.StateConfirming && eff != ledger.StateConfirmed {
			// Paid, but neither this answer nor a confirm check of ours
			// ever showed the amount (Pike-side auto-confirm).
			return verdict{to: ledger.StateReview, reason: "paid_amount_unverified", failure: &ledger.Failure{Code: ledger.CodePaidAmountUnverified,
				Description: fmt.Sprintf("Pike reports the payout succeeded without its amount; the row is %s %s and no confirm check saw what was paid", manifest.FormatAmount(row.Amount, row.Currency), row.Currency)}}
		}
		return verdict{to: ledger.StateSucceeded, failure: &ledger.Failure{}, reason: "payout_succeeded"}

	case p != nil && p.Status == pike.PayoutFailed:
		f := failure("payout_failed")
		if cancelIntended(row) || eff == ledger.StateCancelling {
			return verdict{to: cancelledState(row), failure: keep(f.Code, f.Description), reason: "cancelled"}
		}
		if f.Code == pike.CodeConfirmTimeout {
			return verdict{to: ledger.StateCancelled, failure: f, reason: "confirm_timeout"}
		}
		return verdict{to: ledger.StateFailed, failure: f, reason: "payout_failed"}

	case s.Status == pike.SessionCancelled:
		f := failure("cancelled")
		return verdict{to: cancelledState(row), failure: keep(f.Code, f.Description), reason: "session_cancelled"}

	case s.Status == pike.SessionAccepted:
		// Accepted without a succeeded payout is not something the docs
		// describe: a human looks at it.
		return verdict{to: ledger.StateReview, failure: &ledger.Failure{Code: "accepted_without_payout", Description: "session accepted but its payout is not succeeded"}, reason: "inconsistent_session"}

	case p != nil && (p.Status == pike.PayoutPending || s.NextAction == pike.NextActionConfirm):
		if cancelIntended(row) && eff != ledger.StateConfirmed {
			return verdict{to: ledger.StateCancelling, resendCancel: src == fromStatus, reason: "cancel_not_applied"}
		}
		switch eff {
		case ledger.StateConfirmed:
			return verdict{} // a stale ready_to_confirm after our confirm was applied
		case ledger.StateCancelling:
			return verdict{to: ledger.StateCancelling, resendCancel: src == fromStatus, reason: "cancel_not_applied"}
		case ledger.StateConfirming:
			switch src {
			case fromResponse:
				// Pike's own example answers session/confirm with the payout
				// still pending: an ok answer means the confirm was accepted.
				return verdict{to: ledger.StateConfirmed, reason: "confirm_accepted"}
			case fromWebhook:
				return verdict{} // a stale webhook or a lost confirm: only status can tell
			}
			return verdict{to: ledger.StateAwaitingConfirm, ready: true, reason: "confirm_not_applied"}
		}
		return verdict{to: ledger.StateAwaitingConfirm, ready: true, reason: "ready_to_confirm", failure: clearRefusal(row, eff)}

	case p != nil: // in_progress: before pending, or after our confirm
		switch eff {
		case ledger.StateConfirming, ledger.StateConfirmed:
			return verdict{to: ledger.StateConfirmed, reason: "confirm_applied"}
		case ledger.StateCancelling:
			return verdict{to: ledger.StateCancelling, reason: "cancel_pending"}
		}
		return verdict{to: ledger.StateAwaitingConfirm, reason: "payout_in_progress", failure: clearRefusal(row, eff)}

	case s.Status == pike.SessionCreated:
		if src == fromWebhook {
			return verdict{}
		}
		switch eff {
		case ledger.StateCancelling:
			// Only our own status may conclude the cancel was not applied:
			// the cancel's answer may show the session as it was before.
			if src != fromStatus {
				return verdict{}
			}
			return verdict{to: ledger.StateCancelling, resendCancel: true, reason: "cancel_not_applied"}
		case ledger.StateStarting:
			if src != fromStatus {
				// An answer to our start that shows no payout proves
				// nothing either way (it may show the session as it was):
				// ask status.
				return verdict{to: ledger.StateUnknown, reason: "start_answer_without_payout"}
			}
			if row.State == ledger.StateUnknown && row.FailureCode != "" && !cancelIntended(row) {
				// Pike refused our start and its status shows no payout yet.
				// "Not yet" is not "never" (a start Pike queued may still be
				// applied): cancel the session, so that it can never pay,
				// and keep the refusal as the row's failure.
				return verdict{to: ledger.StateCancelling, resendCancel: true, reason: "start_refused",
					failure: &ledger.Failure{Code: row.FailureCode, Description: row.FailureDescription}}
			}
			return verdict{to: ledger.StateCreated, reason: "start_not_applied"}
		case ledger.StateCreating, ledger.StateCreated:
			return verdict{to: ledger.StateCreated, reason: "start_not_applied"}
		}
		return verdict{to: ledger.StateReview, failure: &ledger.Failure{Code: "payout_missing", Description: "Pike shows the session without a payout after it was started"}, reason: "inconsistent_session"}
	}
	return verdict{}
}
