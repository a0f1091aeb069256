package ledger

// State is the state of a row (and of its live attempt).
type State string

// Row states. See CanTransition for the legal moves.
const (
	StatePlanned         State = "planned"
	StateCreating        State = "creating"
	StateCreated         State = "created"
	StateStarting        State = "starting"
	StateAwaitingConfirm State = "awaiting_confirm"
	StateConfirming      State = "confirming"
	StateCancelling      State = "cancelling"
	StateConfirmed       State = "confirmed"
	StateSucceeded       State = "succeeded"
	StateFailed          State = "failed"
	StateCancelled       State = "cancelled"
	StateMismatch        State = "mismatch"
	StateUnknown         State = "unknown"
	StateReview          State = "review"
	StateSkipped         State = "skipped"
)

// states lists every state in the order of the flow.
var states = []State{
	StatePlanned, StateCreating, StateCreated, StateStarting, StateAwaitingConfirm,
	StateConfirming, StateCancelling, StateConfirmed, StateSucceeded, StateFailed,
	StateCancelled, StateMismatch, StateUnknown, StateReview, StateSkipped,
}

// transitions is the state machine. Moves out of a final state back to
// planned need Change.Rerun (and are refused for a row any of whose
// attempts succeeded); succeeded never moves.
var transitions = map[State][]State{
	// planned, created → review: an earlier attempt reported paid.
	StatePlanned:         {StateCreating, StateSkipped, StateReview},
	StateCreating:        {StateCreated, StateStarting, StateUnknown, StateFailed, StatePlanned}, // starting: session/init/payout answered
	StateCreated:         {StateStarting, StateCancelling, StateUnknown, StateCancelled, StateFailed, StateReview},
	StateStarting:        {StateAwaitingConfirm, StateConfirmed, StateSucceeded, StateFailed, StateCancelled, StateUnknown, StateReview},
	StateAwaitingConfirm: {StateConfirming, StateCancelling, StateSucceeded, StateFailed, StateCancelled, StateUnknown, StateReview},
	StateConfirming:      {StateConfirmed, StateSucceeded, StateFailed, StateCancelled, StateUnknown, StateReview, StateAwaitingConfirm},
	StateCancelling:      {StateCancelled, StateMismatch, StateSucceeded, StateFailed, StateUnknown, StateReview},
	StateConfirmed:       {StateSucceeded, StateFailed, StateCancelled, StateUnknown, StateReview},
	// unknown → creating: the same session/init/payout resent with the same
	// idempotency key to learn what became of the first one.
	StateUnknown: {StatePlanned, StateCreating, StateCreated, StateAwaitingConfirm, StateCancelling, StateConfirmed, StateSucceeded, StateFailed, StateCancelled, StateMismatch, StateReview},
	// Leaving review needs Change.Operator: only a person's recorded
	// decision moves a row a person must look at.
	StateReview: {StateSucceeded, StateFailed, StateCancelled, StateMismatch},
	// failed, cancelled, mismatch → review: Pike later reported that an
	// earlier attempt of the row succeeded. The row is paid after all.
	StateFailed:    {StatePlanned, StateReview},
	StateCancelled: {StatePlanned, StateReview},
	StateMismatch:  {StatePlanned, StateReview},
	StateSkipped:   {StatePlanned},
	StateSucceeded: nil,
}

// States returns every state, in the order of the flow.
func States() []State {
	return append([]State(nil), states...)
}

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	_, ok := transitions[s]
	return ok
}

// Final reports whether s is final: succeeded, failed, cancelled, mismatch or
// skipped. Nothing moves a row out of succeeded. Out of the others only an
// explicit rerun (back to planned, see NeedsRerun) or Pike's later report
// that an earlier attempt was paid after all (failed, cancelled, mismatch →
// review) moves it.
func (s State) Final() bool {
	switch s {
	case StateSucceeded, StateFailed, StateCancelled, StateMismatch, StateSkipped:
		return true
	}
	return false
}

// CanTransition reports whether the state machine has the move from → to.
// A move from a final state back to planned is legal only as an explicit
// rerun (see NeedsRerun); one out of review only as an operator's decision
// (see NeedsOperator). CanTransition(s, s) is false: staying in a non-final state is
// a note, not a transition, and Apply allows it separately.
func CanTransition(from, to State) bool {
	for _, t := range transitions[from] {
		if t == to {
			return true
		}
	}
	return false
}

// NeedsOperator reports whether the move from → to is only legal with
// Change.Operator set: it takes a row out of review.
func NeedsOperator(from, to State) bool {
	return from == StateReview && to != StateReview && CanTransition(from, to)
}

// NeedsRerun reports whether the move from → to is only legal with
// Change.Rerun set: it takes a row out of a final state back to planned.
func NeedsRerun(from, to State) bool {
	return from.Final() && to == StatePlanned && CanTransition(from, to)
}

// riskKeyEffect reports what entering s does to the row's risk key: +1 sets
// it, -1 clears it, 0 keeps it.
func riskKeyEffect(s State) int {
	switch s {
	case StateCreating:
		return +1
	case StatePlanned, StateFailed, StateCancelled, StateMismatch, StateSkipped:
		return -1
	}
	return 0
}
