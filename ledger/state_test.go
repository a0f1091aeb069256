package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/payouts/payouts/ledger"
)

// legal is the state machine as the contract states it, written out again
// here so that a mistake in the package's own table fails these tests.
var legal = map[ledger.State][]ledger.State{
	"planned":          {"creating", "skipped", "review"},
	"creating":         {"created", "starting", "unknown", "failed", "planned"},
	"created":          {"starting", "cancelling", "unknown", "cancelled", "failed", "review"},
	"starting":         {"awaiting_confirm", "confirmed", "succeeded", "failed", "cancelled", "unknown", "review"},
	"awaiting_confirm": {"confirming", "cancelling", "succeeded", "failed", "cancelled", "unknown", "review"},
	"confirming":       {"confirmed", "succeeded", "failed", "cancelled", "unknown", "review", "awaiting_confirm"},
	"cancelling":       {"cancelled", "mismatch", "succeeded", "failed", "unknown", "review"},
	"confirmed":        {"succeeded", "failed", "cancelled", "unknown", "review"},
	"unknown":          {"planned", "creating", "created", "awaiting_confirm", "cancelling", "confirmed", "succeeded", "failed", "cancelled", "mismatch", "review"},
	"review":           {"succeeded", "failed", "cancelled", "mismatch"}, // only with an operator
	"failed":           {"planned", "review"},
	"cancelled":        {"planned", "review"},
	"mismatch":         {"planned", "review"},
	"skipped":          {"planned"},
	"succeeded":        {},
}

var finals = map[ledger.State]bool{"succeeded": true, "failed": true, "cancelled": true, "mismatch": true, "skipped": true}

func isLegal(from, to ledger.State) bool {
	for _, s := range legal[from] {
		if s == to {
			return true
		}
	}
	return false
}

func TestStates(t *testing.T) {
	got := ledger.States()
	if len(got) != len(legal) {
		t.Fatalf("got %d states, want %d", len(got), len(legal))
	}
	for _, s := range got {
		if _, ok := legal[s]; !ok {
			t.Errorf("States() has %q, not in the contract", s)
		}
		if !s.Valid() {
			t.Errorf("%s.Valid() = false, want true", s)
		}
		if s.Final() != finals[s] {
			t.Errorf("%s.Final() = %v, want %v", s, s.Final(), finals[s])
		}
	}
	for _, s := range []ledger.State{"", "paid", "PLANNED"} {
		if s.Valid() {
			t.Errorf("State(%q).Valid() = true, want false", s)
		}
	}
}

func TestCanTransitionEveryPair(t *testing.T) {
	for _, from := range ledger.States() {
		for _, to := range ledger.States() {
			if got, want := ledger.CanTransition(from, to), isLegal(from, to); got != want {
				t.Errorf("CanTransition(%s, %s) = %v, want %v", from, to, got, want)
			}
			wantRerun := finals[from] && to == ledger.StatePlanned && from != ledger.StateSucceeded
			if got := ledger.NeedsRerun(from, to); got != wantRerun {
				t.Errorf("NeedsRerun(%s, %s) = %v, want %v", from, to, got, wantRerun)
			}
		}
	}
}

// TestApplyEveryPair drives a row into every state and tries every target
// state, with and without Rerun: the ledger must accept exactly the legal
// moves, and an illegal one must write nothing.
func TestApplyEveryPair(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		var refs []string
		for _, from := range ledger.States() {
			for _, to := range ledger.States() {
				refs = append(refs, fmt.Sprintf("%s>%s", from, to), fmt.Sprintf("%s>%s+rerun", from, to))
			}
		}
		rows := newBatch(t, db, "pairs", refs...)
		i := 0
		for _, from := range ledger.States() {
			for _, to := range ledger.States() {
				for _, rerun := range []bool{false, true} {
					r := rows[i]
					i++
					t.Run(r.Reference, func(t *testing.T) {
						t.Parallel()
						r := walkTo(t, db, r, from)
						before, err := db.Events(ctx, "pairs", r.ID)
						if err != nil {
							t.Fatal(err)
						}
						c := step(r, to)
						c.Rerun = rerun
						want := (isLegal(from, to) || (from == to && !finals[from])) &&
							rerun == (finals[from] && to == ledger.StatePlanned)
						got, err := db.Apply(ctx, c)
						after, _ := db.Events(ctx, "pairs", r.ID)
						now, _ := db.Row(ctx, r.ID)
						if !want {
							if err == nil {
								t.Fatalf("Apply(%s → %s, rerun %v) succeeded, want an error", from, to, rerun)
							}
							if !errors.Is(err, ledger.ErrIllegalTransition) && !errors.Is(err, ledger.ErrInvalidChange) {
								t.Errorf("got error %v, want ErrIllegalTransition or ErrInvalidChange", err)
							}
							if now.State != from || len(after) != len(before) {
								t.Errorf("after refused change: state %s, %d events; want %s, %d events", now.State, len(after), from, len(before))
							}
							return
						}
						if err != nil {
							t.Fatalf("Apply(%s → %s, rerun %v): %v", from, to, rerun, err)
						}
						if got.State != to || now.State != to {
							t.Errorf("got state %s (stored %s), want %s", got.State, now.State, to)
						}
						if len(after) != len(before)+1 {
							t.Fatalf("got %d events, want %d", len(after), len(before)+1)
						}
						if e := after[len(after)-1]; e.From != from || e.To != to || e.Reason != "test" {
							t.Errorf("got event %s → %s (%s), want %s → %s (test)", e.From, e.To, e.Reason, from, to)
						}
						if got.FinishedAt.IsZero() != !finals[to] {
							t.Errorf("got FinishedAt %v for %s, want set only in final states", got.FinishedAt, to)
						}
					})
				}
			}
		}
	})
}

// TestRiskKeyFollowsState checks invariant 4 on the row itself: the risk
// key is set from creating on and cleared wherever no money can move.
func TestRiskKeyFollowsState(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		for _, s := range ledger.States() {
			t.Run(string(s), func(t *testing.T) {
				rows := newBatch(t, db, "rk-"+string(s), "REF-"+string(s))
				r := walkTo(t, db, rows[0], s)
				want := "ref-" + string(s) // refid.Key("REF-" + s)
				switch s {
				case ledger.StatePlanned, ledger.StateFailed, ledger.StateCancelled, ledger.StateMismatch, ledger.StateSkipped:
					want = ""
				}
				if r.RiskKey != want {
					t.Errorf("risk key in %s: got %q, want %q", s, r.RiskKey, want)
				}
				holders, err := db.ReferenceHolders(ctx, "REF-"+string(s))
				if err != nil {
					t.Fatal(err)
				}
				if got := len(holders) == 1; got != (want != "") {
					t.Errorf("ReferenceHolders: got %d rows, want holder %v", len(holders), want != "")
				}
			})
		}
	})
}

// TestReviewIsSticky: nothing but an operator's recorded decision takes a
// row out of review (issue 13, finding 1: review → cancelled on Pike's
// deadline freed the reference for a second payment).
func TestReviewIsSticky(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		rows := newBatch(t, db, "sticky", "R1")
		r := walkTo(t, db, rows[0], ledger.StateReview)
		for _, to := range []ledger.State{ledger.StateCancelled, ledger.StateFailed, ledger.StateSucceeded, ledger.StateMismatch} {
			c := step(r, to)
			c.Operator = ""
			if _, err := db.Apply(ctx, c); !errors.Is(err, ledger.ErrIllegalTransition) {
				t.Errorf("review → %s without an operator: got %v, want ErrIllegalTransition", to, err)
			}
		}
		c := step(r, ledger.StateFailed)
		got, err := db.Apply(ctx, c)
		if err != nil || got.State != ledger.StateFailed {
			t.Fatalf("review → failed by an operator: got %v, %v", got.State, err)
		}
		evs, _ := db.Events(ctx, "sticky", r.ID)
		if last := evs[len(evs)-1]; !strings.Contains(last.Detail, "decided by test operator") {
			t.Errorf("got event detail %q, want the operator recorded", last.Detail)
		}
		c = step(got, ledger.StatePlanned)
		c.Operator = "someone"
		if _, err := db.Apply(ctx, c); !errors.Is(err, ledger.ErrInvalidChange) {
			t.Errorf("operator on a move that needs none: got %v, want ErrInvalidChange", err)
		}
	})
}

// TestPaidRowIsNeverPlannedAgain: once any attempt of a row succeeded —
// here a superseded one, reported after the row failed — the row keeps its
// risk key and a rerun is refused (issue 13, finding 1).
func TestPaidRowIsNeverPlannedAgain(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		rows := newBatch(t, db, "paid", "R1")
		r := walkTo(t, db, rows[0], ledger.StateFailed) // attempt 1 failed
		r, err := db.Apply(ctx, step(r, ledger.StatePlanned))
		if err != nil {
			t.Fatal(err)
		}
		r = walkTo(t, db, r, ledger.StateStarting) // attempt 2 in flight
		atts, err := db.Attempts(ctx, r.ID)
		if err != nil || len(atts) != 2 {
			t.Fatalf("got %d attempts, %v", len(atts), err)
		}
		if err := db.SetAttemptOutcome(ctx, atts[0].ID, ledger.StateSucceeded, ledger.Failure{}, "superseded_success", "late success"); err != nil {
			t.Fatal(err)
		}
		r, err = db.Apply(ctx, step(r, ledger.StateFailed)) // attempt 2 fails too
		if err != nil {
			t.Fatal(err)
		}
		if r.RiskKey == "" {
			t.Errorf("a paid row gave up its risk key")
		}
		if _, err := db.Apply(ctx, step(r, ledger.StatePlanned)); !errors.Is(err, ledger.ErrPaid) || !errors.Is(err, ledger.ErrIllegalTransition) {
			t.Errorf("rerun of a paid row: got %v, want ErrPaid", err)
		}
		// The database refuses it too, whoever writes.
		if _, err := db.RawExec(ctx, `UPDATE rows SET state = 'planned' WHERE id = ?`, r.ID); err == nil {
			t.Errorf("the schema let a paid row be planned again")
		}
		if _, err := db.RawExec(ctx, `UPDATE rows SET risk_key = NULL WHERE id = ?`, r.ID); err == nil {
			t.Errorf("the schema let a paid row give up its risk key")
		}
		// Another batch cannot take the reference.
		other := newBatch(t, db, "paid-2", "R1")
		if _, err := db.Apply(ctx, step(other[0], ledger.StateCreating)); !errors.Is(err, ledger.ErrReferenceBusy) {
			t.Errorf("second batch: got %v, want ErrReferenceBusy", err)
		}
	})
}
