package ledger_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/payouts/payouts/ledger"
)

func TestApplyConflict(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		r := walkTo(t, db, newBatch(t, db, "b", "R1")[0], ledger.StateCreated)
		before, _ := db.Events(ctx, "b", r.ID)

		_, err := db.Apply(ctx, ledger.Change{RowID: r.ID, From: ledger.StateCreating, To: ledger.StateUnknown, Reason: "late"})
		var ce *ledger.ConflictError
		if !errors.As(err, &ce) || !errors.Is(err, ledger.ErrConflict) {
			t.Fatalf("got error %v, want a *ConflictError wrapping ErrConflict", err)
		}
		if ce.Current != ledger.StateCreated || ce.Expected != ledger.StateCreating || ce.RowID != r.ID {
			t.Errorf("got conflict %+v, want row %d created, expected creating", *ce, r.ID)
		}
		after, _ := db.Events(ctx, "b", r.ID)
		now, _ := db.Row(ctx, r.ID)
		if now.State != ledger.StateCreated || len(after) != len(before) {
			t.Errorf("conflict wrote something: state %s, %d events, want created, %d", now.State, len(after), len(before))
		}

		if _, err := db.Apply(ctx, ledger.Change{RowID: 999999, From: ledger.StatePlanned, To: ledger.StateSkipped, Reason: "x"}); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("unknown row: got %v, want ErrNotFound", err)
		}
	})
}

func TestApplyMalformed(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		rows := newBatch(t, db, "b", "P", "C")
		planned := rows[0]
		creating := walkTo(t, db, rows[1], ledger.StateCreating)
		keys := map[string]string{"session/create": "k"}
		amend := &ledger.Amendment{Amount: 1, Currency: "RUB"}
		tests := []struct {
			name string
			c    ledger.Change
			want error
		}{
			{"unknown state", ledger.Change{RowID: planned.ID, From: "planned", To: "paid", Reason: "x"}, ledger.ErrIllegalTransition},
			{"creating without attempt", ledger.Change{RowID: planned.ID, From: "planned", To: "creating", Reason: "x"}, ledger.ErrInvalidChange},
			{"attempt outside creating", ledger.Change{RowID: creating.ID, From: "creating", To: "created", Reason: "x", NewAttempt: keys}, ledger.ErrInvalidChange},
			{"attempt within creating", ledger.Change{RowID: creating.ID, From: "creating", To: "creating", Reason: "x", NewAttempt: keys}, ledger.ErrInvalidChange},
			{"empty key", ledger.Change{RowID: planned.ID, From: "planned", To: "creating", Reason: "x", NewAttempt: map[string]string{"session/create": ""}}, ledger.ErrInvalidChange},
			{"risk key outside creating", ledger.Change{RowID: creating.ID, From: "creating", To: "created", Reason: "x", RiskKey: "K"}, ledger.ErrInvalidChange},
			{"amend in flight", ledger.Change{RowID: creating.ID, From: "creating", To: "creating", Reason: "x", Amend: amend}, ledger.ErrInvalidChange},
			{"amend to creating", ledger.Change{RowID: planned.ID, From: "planned", To: "creating", Reason: "x", NewAttempt: keys, Amend: amend}, ledger.ErrInvalidChange},
			{"rerun not a rerun", ledger.Change{RowID: creating.ID, From: "creating", To: "planned", Reason: "x", Rerun: true}, ledger.ErrInvalidChange},
			{"session before attempt", ledger.Change{RowID: planned.ID, From: "planned", To: "planned", Reason: "x", SessionID: "ps_1"}, ledger.ErrInvalidChange},
			{"no reason", ledger.Change{RowID: planned.ID, From: "planned", To: "planned"}, ledger.ErrInvalidChange},
			{"zero amount", ledger.Change{RowID: planned.ID, From: "planned", To: "planned", Reason: "x", Amend: &ledger.Amendment{Amount: 0, Currency: "RUB"}}, ledger.ErrInvalidChange},
			{"bad currency", ledger.Change{RowID: planned.ID, From: "planned", To: "planned", Reason: "x", Amend: &ledger.Amendment{Amount: 5, Currency: "RU"}}, ledger.ErrInvalidChange},
			{"PAN as fingerprint", ledger.Change{RowID: planned.ID, From: "planned", To: "planned", Reason: "x", Amend: &ledger.Amendment{Amount: 5, Currency: "RUB", CardFingerprint: "4242424242424242"}}, ledger.ErrInvalidChange},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, err := db.Apply(ctx, tt.c)
				if !errors.Is(err, tt.want) {
					t.Errorf("got error %v, want %v", err, tt.want)
				}
			})
		}
		for _, r := range rows {
			evs, _ := db.Events(ctx, "b", r.ID)
			now, _ := db.Row(ctx, r.ID)
			if want := len(pathTo[now.State]) + 1; len(evs) != want {
				t.Errorf("row %s: got %d events after refused changes, want %d", r.Reference, len(evs), want)
			}
		}
	})
}

// TestReferenceBusy is invariant 4 across batches: a second row with the
// same reference cannot enter creating while the first is in flight or has
// succeeded, and can once the first has failed.
func TestReferenceBusy(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		ctx := context.Background()
		for _, holder := range []ledger.State{ledger.StateCreating, ledger.StateAwaitingConfirm, ledger.StateUnknown,
			ledger.StateReview, ledger.StateSucceeded, ledger.StateFailed, ledger.StateCancelled, ledger.StateSkipped} {
			t.Run(string(holder), func(t *testing.T) {
				db := openTest(t)
				a := walkTo(t, db, newBatch(t, db, "A", "EMP-1")[0], holder)
				b := newBatch(t, db, "B", "EMP-1")[0]
				got, err := db.Apply(ctx, step(b, ledger.StateCreating))
				busy := !finals[holder] || holder == ledger.StateSucceeded
				if !busy {
					if err != nil {
						t.Fatalf("holder %s: got %v, want the second row to enter creating", holder, err)
					}
					if got.RiskKey != "emp-1" { // refid.Key("EMP-1")
						t.Errorf("got risk key %q, want emp-1", got.RiskKey)
					}
					return
				}
				var rb *ledger.ReferenceBusyError
				if !errors.As(err, &rb) || !errors.Is(err, ledger.ErrReferenceBusy) {
					t.Fatalf("holder %s: got %v, want *ReferenceBusyError", holder, err)
				}
				if rb.BatchID != "A" || rb.RowID != a.ID || rb.State != holder {
					t.Errorf("got holder %s/%d (%s), want A/%d (%s)", rb.BatchID, rb.RowID, rb.State, a.ID, holder)
				}
				if !strings.Contains(err.Error(), "batch A") {
					t.Errorf("error %q does not name the holding batch", err)
				}
				now, _ := db.Row(ctx, b.ID)
				atts, _ := db.Attempts(ctx, b.ID)
				if now.State != ledger.StatePlanned || now.Attempt != 0 || len(atts) != 0 {
					t.Errorf("refused change wrote: state %s attempt %d, %d attempts", now.State, now.Attempt, len(atts))
				}
				// An operator override uses a distinct risk key: the reference
				// key and a suffix.
				c := step(b, ledger.StateCreating)
				c.RiskKey = "emp-1#override"
				if got, err := db.Apply(ctx, c); err != nil || got.RiskKey != "emp-1#override" {
					t.Errorf("override: got %q, %v; want risk key emp-1#override", got.RiskKey, err)
				}
			})
		}
	})
}

func TestReferenceBusyFreedByFailure(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		a := walkTo(t, db, newBatch(t, db, "A", "EMP-2")[0], ledger.StateStarting)
		b := newBatch(t, db, "B", "EMP-2")[0]
		if _, err := db.Apply(ctx, step(b, ledger.StateCreating)); !errors.Is(err, ledger.ErrReferenceBusy) {
			t.Fatalf("got %v, want ErrReferenceBusy", err)
		}
		if _, err := db.Apply(ctx, ledger.Change{RowID: a.ID, From: ledger.StateStarting, To: ledger.StateFailed, Reason: "payment_finished",
			Failure: &ledger.Failure{Code: "card_declined", Description: "declined"}}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Apply(ctx, step(b, ledger.StateCreating)); err != nil {
			t.Fatalf("after the first failed: got %v, want success", err)
		}
		if _, ok, _ := db.SucceededElsewhere(ctx, "EMP-2", "B"); ok {
			t.Errorf("SucceededElsewhere: got true for a failed row")
		}
	})
}

func TestSucceededElsewhere(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		a := walkTo(t, db, newBatch(t, db, "A", "EMP-3")[0], ledger.StateSucceeded)
		newBatch(t, db, "B", "EMP-3")
		got, ok, err := db.SucceededElsewhere(ctx, "EMP-3", "B")
		if err != nil || !ok || got.ID != a.ID {
			t.Errorf("got %d, %v, %v; want row %d", got.ID, ok, err, a.ID)
		}
		if _, ok, _ := db.SucceededElsewhere(ctx, "EMP-3", "A"); ok {
			t.Errorf("got true excluding the batch that paid, want false")
		}
	})
}

func TestSucceededNeverMoves(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		r := walkTo(t, db, newBatch(t, db, "b", "R")[0], ledger.StateSucceeded)
		for _, to := range ledger.States() {
			for _, rerun := range []bool{false, true} {
				_, err := db.Apply(ctx, ledger.Change{RowID: r.ID, From: ledger.StateSucceeded, To: to, Reason: "x", Rerun: rerun})
				if err == nil {
					t.Errorf("succeeded → %s (rerun %v) accepted", to, rerun)
				}
			}
		}
		if now, _ := db.Row(ctx, r.ID); now.State != ledger.StateSucceeded {
			t.Errorf("got %s, want succeeded", now.State)
		}
	})
}

func TestAttemptsAndSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		rows := newBatch(t, db, "b", "R1", "R2")
		r := walkTo(t, db, rows[0], ledger.StateCreating)
		if r.Attempt != 1 {
			t.Fatalf("got attempt %d, want 1", r.Attempt)
		}
		r, err := db.Apply(ctx, ledger.Change{RowID: r.ID, From: ledger.StateCreating, To: ledger.StateCreated, Reason: "create_ok", SessionID: "ps_1"})
		if err != nil || r.SessionID != "ps_1" {
			t.Fatalf("got session %q, %v; want ps_1", r.SessionID, err)
		}
		// Same session again is a harmless no-op; another one is a conflict.
		if _, err := db.Apply(ctx, ledger.Change{RowID: r.ID, From: ledger.StateCreated, To: ledger.StateCreated, Reason: "note", SessionID: "ps_1"}); err != nil {
			t.Errorf("same session again: %v", err)
		}
		if _, err := db.Apply(ctx, ledger.Change{RowID: r.ID, From: ledger.StateCreated, To: ledger.StateCreated, Reason: "note", SessionID: "ps_other"}); !errors.Is(err, ledger.ErrConflict) {
			t.Errorf("replacing the session: got %v, want ErrConflict", err)
		}
		// Another row cannot claim the session.
		r2 := walkTo(t, db, rows[1], ledger.StateCreating)
		if _, err := db.Apply(ctx, ledger.Change{RowID: r2.ID, From: ledger.StateCreating, To: ledger.StateCreated, Reason: "create_ok", SessionID: "ps_1"}); !errors.Is(err, ledger.ErrDuplicateSession) {
			t.Errorf("got %v, want ErrDuplicateSession", err)
		}
		if now, _ := db.Row(ctx, r2.ID); now.State != ledger.StateCreating {
			t.Errorf("refused duplicate session moved the row to %s", now.State)
		}

		// Fail, rerun, second attempt.
		r, err = db.Apply(ctx, ledger.Change{RowID: r.ID, From: ledger.StateCreated, To: ledger.StateFailed, Reason: "status",
			PayoutID: "po_1", Failure: &ledger.Failure{Code: "declined", Description: "Card declined"}})
		if err != nil || r.FailureCode != "declined" || r.PayoutID != "po_1" {
			t.Fatalf("fail: got %+v, %v", r, err)
		}
		r, err = db.Apply(ctx, ledger.Change{RowID: r.ID, From: ledger.StateFailed, To: ledger.StatePlanned, Reason: "rerun", Rerun: true})
		if err != nil {
			t.Fatal(err)
		}
		r, err = db.Apply(ctx, ledger.Change{RowID: r.ID, From: ledger.StatePlanned, To: ledger.StateCreating, Reason: "create",
			NewAttempt: map[string]string{"session/create": "k2", "session/start/payout": "k2s"}})
		if err != nil {
			t.Fatal(err)
		}
		if r.Attempt != 2 || r.SessionID != "" || r.FailureCode != "" {
			t.Errorf("second attempt: got attempt %d session %q failure %q, want 2, \"\", \"\"", r.Attempt, r.SessionID, r.FailureCode)
		}
		r, err = db.Apply(ctx, ledger.Change{RowID: r.ID, From: ledger.StateCreating, To: ledger.StateCreated, Reason: "create_ok", SessionID: "ps_2"})
		if err != nil {
			t.Fatal(err)
		}
		atts, err := db.Attempts(ctx, r.ID)
		if err != nil || len(atts) != 2 {
			t.Fatalf("got %d attempts, %v; want 2", len(atts), err)
		}
		first, second := atts[0], atts[1]
		if first.N != 1 || first.State != ledger.StateFailed || first.SessionID != "ps_1" || first.PayoutID != "po_1" || first.FailureCode != "declined" {
			t.Errorf("first attempt: got %+v, want 1 failed ps_1 po_1 declined", first)
		}
		if second.N != 2 || second.State != ledger.StateCreated || second.Keys["session/start/payout"] != "k2s" {
			t.Errorf("second attempt: got %+v, want 2 created with keys", second)
		}
		a, row, err := db.AttemptBySession(ctx, "ps_1")
		if err != nil || a.N != 1 || row.ID != r.ID || row.Attempt != 2 {
			t.Errorf("AttemptBySession(ps_1): got attempt %d row %d (live %d), %v", a.N, row.ID, row.Attempt, err)
		}
		if _, _, err := db.AttemptBySession(ctx, "ps_nope"); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("unknown session: got %v, want ErrNotFound", err)
		}

		// Pike later says the superseded attempt 1 was in fact cancelled.
		if err := db.SetAttemptOutcome(ctx, first.ID, ledger.StateCancelled, ledger.Failure{Code: "expired"}, "late_webhook", "x"); err != nil {
			t.Fatal(err)
		}
		if err := db.SetAttemptOutcome(ctx, second.ID, ledger.StateFailed, ledger.Failure{}, "late_webhook", "x"); !errors.Is(err, ledger.ErrConflict) {
			t.Errorf("outcome of the live attempt: got %v, want ErrConflict", err)
		}
		if err := db.SetAttemptOutcome(ctx, 99999, ledger.StateFailed, ledger.Failure{}, "x", ""); !errors.Is(err, ledger.ErrNotFound) {
			t.Errorf("unknown attempt: got %v, want ErrNotFound", err)
		}
		atts, _ = db.Attempts(ctx, r.ID)
		if atts[0].State != ledger.StateCancelled || atts[0].FailureCode != "expired" {
			t.Errorf("superseded attempt: got %s %s, want cancelled expired", atts[0].State, atts[0].FailureCode)
		}
		if now, _ := db.Row(ctx, r.ID); now.State != ledger.StateCreated {
			t.Errorf("SetAttemptOutcome changed the row to %s", now.State)
		}
	})
}

func TestAmend(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		rows := newBatch(t, db, "b", "R1")
		r := walkTo(t, db, rows[0], ledger.StateFailed)
		amend := &ledger.Amendment{Amount: 200000, Currency: "rub", RecipientName: "Ivan Petrov",
			CardBIN: "555555", CardLast4: "4444", CardFingerprint: fingerprint("5555555555554444")}
		r, err := db.Apply(ctx, ledger.Change{RowID: r.ID, From: ledger.StateFailed, To: ledger.StatePlanned, Reason: "rerun", Rerun: true, Amend: amend})
		if err != nil {
			t.Fatal(err)
		}
		if r.Amount != 200000 || r.Currency != "RUB" || r.CardLast4 != "4444" || r.CardFingerprint != amend.CardFingerprint {
			t.Errorf("got %d %s ..%s, want 200000 RUB ..4444", r.Amount, r.Currency, r.CardLast4)
		}
		evs, _ := db.Events(ctx, "b", r.ID)
		d := evs[len(evs)-1].Detail
		for _, want := range []string{"150000 RUB → 200000 RUB", "424242…4242 → 555555…4444"} {
			if !strings.Contains(d, want) {
				t.Errorf("event detail %q lacks %q", d, want)
			}
		}
		// Planned → planned may amend too.
		amend.Amount = 1
		if r, err = db.Apply(ctx, ledger.Change{RowID: r.ID, From: ledger.StatePlanned, To: ledger.StatePlanned, Reason: "amend", Amend: amend}); err != nil || r.Amount != 1 {
			t.Errorf("planned amend: got %d, %v", r.Amount, err)
		}
	})
}

// TestApplyAllIsolation: one failing change in a group rolls back only
// itself.
func TestApplyAllIsolation(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		rows := newBatch(t, db, "b", "R1", "R2", "R3")
		cs := []ledger.Change{
			step(rows[0], ledger.StateCreating),
			{RowID: rows[1].ID, From: ledger.StateCreated, To: ledger.StateStarting, Reason: "x"}, // conflict
			step(rows[2], ledger.StateCreating),
			step(rows[2], ledger.StateSkipped), // conflict: the change before moved it
		}
		got, errs := db.ApplyAll(ctx, cs)
		if errs[0] != nil || errs[2] != nil || got[0].State != ledger.StateCreating || got[2].State != ledger.StateCreating {
			t.Errorf("good changes: got %v/%v %s/%s", errs[0], errs[2], got[0].State, got[2].State)
		}
		for _, i := range []int{1, 3} {
			if !errors.Is(errs[i], ledger.ErrConflict) {
				t.Errorf("change %d: got %v, want ErrConflict", i, errs[i])
			}
		}
		if n, _ := db.CountRows(ctx, "b", ledger.StateCreating); n != 2 {
			t.Errorf("got %d creating rows, want 2", n)
		}
	})
}

// TestApplyReturnsStoredRow: the row Apply returns is exactly the row a
// fresh read returns, across every kind of change.
func TestApplyReturnsStoredRow(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		r := newBatch(t, db, "b", "R1")[0]
		changes := []func(r ledger.Row) ledger.Change{
			func(r ledger.Row) ledger.Change { return step(r, ledger.StateCreating) },
			func(r ledger.Row) ledger.Change {
				return ledger.Change{RowID: r.ID, From: r.State, To: ledger.StateCreated, Reason: "ok", SessionID: "ps_9", PayoutID: "po_9"}
			},
			func(r ledger.Row) ledger.Change {
				return ledger.Change{RowID: r.ID, From: r.State, To: r.State, Reason: "note", Failure: &ledger.Failure{Code: "c", Description: "d"}}
			},
			func(r ledger.Row) ledger.Change {
				return ledger.Change{RowID: r.ID, From: r.State, To: ledger.StateCancelled, Reason: "x", Failure: &ledger.Failure{}}
			},
			func(r ledger.Row) ledger.Change { return step(r, ledger.StatePlanned) },
			func(r ledger.Row) ledger.Change {
				return ledger.Change{RowID: r.ID, From: r.State, To: r.State, Reason: "amend", Amend: &ledger.Amendment{Amount: 7, Currency: "EUR", RecipientName: "N"}}
			},
			func(r ledger.Row) ledger.Change {
				c := step(r, ledger.StateCreating)
				c.RiskKey = "r1#2"
				return c
			},
			func(r ledger.Row) ledger.Change { return step(r, ledger.StateUnknown) },
			func(r ledger.Row) ledger.Change {
				return ledger.Change{RowID: r.ID, From: r.State, To: ledger.StateSucceeded, Reason: "status", PayoutID: "po_10"}
			},
		}
		for i, mk := range changes {
			c := mk(r)
			got, err := db.Apply(ctx, c)
			if err != nil {
				t.Fatalf("change %d (%s → %s): %v", i, c.From, c.To, err)
			}
			stored, err := db.Row(ctx, r.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got != stored {
				t.Errorf("change %d (%s → %s):\n got  %+v\n want %+v", i, c.From, c.To, got, stored)
			}
			r = stored
		}
	})
}
