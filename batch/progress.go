package batch

import (
	"time"

	"github.com/payouts/payouts/ledger"
)

// Progress is a snapshot of a batch being driven, for a progress display:
// the ledger's counts and what the rows not final yet are waiting for.
type Progress struct {
	BatchID string
	Counts  Counts
	// Held is the number of rows held for approval (hold mode).
	Held int
	// Waiting is the number of rows started at Pike and waiting for its
	// result (a webhook, or the poll that asks instead), held rows excluded.
	Waiting int
	// NextPoll is when the engine next asks Pike about a waiting row with
	// session/status (zero when none is scheduled).
	NextPoll time.Time
}

// Settled is the number of rows with nothing left to do: final, or in
// review (a person's call).
func (p Progress) Settled() int { return p.Counts.Total() - p.Counts.Open() }

// waitingStates are the states of rows started at Pike whose result is
// awaited.
var waitingStates = []ledger.State{ledger.StateCreated, ledger.StateAwaitingConfirm, ledger.StateConfirmed,
	ledger.StateCancelling, ledger.StateUnknown}

// progress returns the engine's progress with counts c.
func (e *Engine) progress(c Counts) Progress {
	p := Progress{BatchID: e.batchID, Counts: c}
	for _, s := range waitingStates {
		p.Waiting += c[s]
	}
	e.mu.Lock()
	p.Held = len(e.held)
	for _, at := range e.due {
		if p.NextPoll.IsZero() || at.Before(p.NextPoll) {
			p.NextPoll = at
		}
	}
	e.mu.Unlock()
	p.Waiting = max(0, p.Waiting-p.Held)
	return p
}

// watchOf combines the Progress and Watch callbacks of an options struct.
func watchOf(progress func(Counts), watch func(Progress)) func(Progress) {
	if progress == nil && watch == nil {
		return nil
	}
	return func(p Progress) {
		if progress != nil {
			progress(p.Counts)
		}
		if watch != nil {
			watch(p)
		}
	}
}
