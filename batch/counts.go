package batch

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/payouts/payouts/ledger"
)

// rowCounter keeps the batch's counts per state in memory. Counting a
// million-row batch in SQLite takes most of a second, so the runner cannot
// ask the ledger every time it checks whether it is done; instead it counts
// from the ledger once, then moves the counts with every transition it
// applies itself (the lease makes it the only writer of the batch's rows),
// and recounts now and then (with a pause that grows with the cost of a
// count) to absorb any drift. A "done" seen in memory is always confirmed
// by the ledger before the run ends.
//
// A recount and the transitions it races with are kept apart by gate: a
// transition holds it shared from its ledger write until its move is
// counted, a recount holds it exclusively, so every transition is either
// in the recount's snapshot or moved after it, never both or neither.
// Transitions wait while a recount runs (most of a second at a million
// rows); resyncEvery keeps that under 2% of the time.
type rowCounter struct {
	gate   sync.RWMutex
	mu     sync.Mutex
	c      Counts
	synced time.Time
	cost   time.Duration
}

// move records a transition this engine applied.
func (rc *rowCounter) move(from, to ledger.State) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	if rc.c == nil || from == to {
		return
	}
	rc.c[from]--
	rc.c[to]++
}

// resyncEvery is how long counts from memory are trusted, given what a
// count costs: at least 30 s, and never more than 2% of the time spent
// counting.
func (rc *rowCounter) resyncEvery() time.Duration {
	return max(30*time.Second, 50*rc.cost)
}

// countsNow returns the batch's counts per state, recounting from the
// ledger first when fresh is set or the last count is too old.
func (e *Engine) countsNow(ctx context.Context, fresh bool) (Counts, error) {
	rc := &e.counts
	rc.mu.Lock()
	if !fresh && rc.c != nil && time.Since(rc.synced) < rc.resyncEvery() {
		c := maps.Clone(rc.c)
		rc.mu.Unlock()
		return c, nil
	}
	rc.mu.Unlock()
	rc.gate.Lock()
	defer rc.gate.Unlock()
	start := time.Now()
	c, err := CountsOf(ctx, e.store, e.batchID)
	if err != nil {
		return nil, fmt.Errorf("summary of batch %s: %w", e.batchID, err)
	}
	rc.mu.Lock()
	rc.c, rc.synced, rc.cost = maps.Clone(c), time.Now(), time.Since(start)
	rc.mu.Unlock()
	return c, nil
}
