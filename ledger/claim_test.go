package ledger_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/ledger"
)

// openShared opens n handles on one fresh PostgreSQL ledger: n runner
// processes sharing it.
func openShared(t *testing.T, n int) []*ledger.DB {
	t.Helper()
	loc := newLocation(t)
	var dbs []*ledger.DB
	for range n {
		db, err := ledger.Open(context.Background(), loc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		dbs = append(dbs, db)
	}
	return dbs
}

func refs(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("R%03d", i)
	}
	return out
}

// TestClaimsSplitRows: runners claiming at once get disjoint rows, every
// open row is claimed by exactly one of them, and final rows are never
// claimed.
func TestClaimsSplitRows(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		if backendOf(t) == ledger.BackendSQLite {
			db := openTest(t)
			newBatch(t, db, "b", "R1")
			if _, _, err := db.ClaimRows(context.Background(), "b", "me", 0, 10, time.Minute); !errors.Is(err, ledger.ErrNotShared) {
				t.Fatalf("SQLite ClaimRows: got %v, want ErrNotShared", err)
			}
			return
		}
		dbs := openShared(t, 3)
		ctx := context.Background()
		rows := newBatch(t, dbs[0], "b", refs(100)...)
		walkTo(t, dbs[0], rows[0], ledger.StateSucceeded) // final: never claimed
		var mu sync.Mutex
		owner := map[int64]string{}
		var wg sync.WaitGroup
		for i, db := range dbs {
			wg.Go(func() {
				me := fmt.Sprintf("runner-%d", i)
				for {
					got, _, err := db.ClaimRows(ctx, "b", me, 0, 7, time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					if len(got) == 0 {
						return
					}
					mu.Lock()
					for _, r := range got {
						if o, dup := owner[r.ID]; dup && o != me {
							t.Errorf("row %d claimed by %s and %s", r.ID, o, me)
						}
						owner[r.ID] = me
					}
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if len(owner) != 99 {
			t.Errorf("got %d rows claimed, want the 99 open ones", len(owner))
		}
		if _, ok := owner[rows[0].ID]; ok {
			t.Errorf("the succeeded row was claimed")
		}
		if n, err := dbs[0].ClaimableRows(ctx, "b"); err != nil || n != 0 {
			t.Errorf("ClaimableRows: got %d, %v; want 0", n, err)
		}
	})
}

// TestClaimFencesWrites: a change is written only under its owner's live
// claim; after the claim expired and another runner took the row over,
// the stale runner's change is refused and writes nothing.
func TestClaimFencesWrites(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		if backendOf(t) == ledger.BackendSQLite {
			db := openTest(t)
			r := newBatch(t, db, "b", "R1")[0]
			c := step(r, ledger.StateCreating)
			c.Claim = "someone"
			if _, err := db.Apply(context.Background(), c); !errors.Is(err, ledger.ErrNotShared) {
				t.Fatalf("SQLite fenced Apply: got %v, want ErrNotShared", err)
			}
			return
		}
		dbs := openShared(t, 2)
		a, b := dbs[0], dbs[1]
		ctx := context.Background()
		r := newBatch(t, a, "b", "R1")[0]
		got, _, err := a.ClaimRows(ctx, "b", "A", 0, 10, 2*time.Second)
		if err != nil || len(got) != 1 {
			t.Fatalf("A claims: got %d rows, %v", len(got), err)
		}
		// B, claiming nothing, and a command without a claim are refused.
		if more, _, _ := b.ClaimRows(ctx, "b", "B", 0, 10, time.Minute); len(more) != 0 {
			t.Fatalf("B claimed a row A holds")
		}
		c := step(r, ledger.StateCreating)
		c.Claim = "B"
		if _, err := b.Apply(ctx, c); !errors.Is(err, ledger.ErrClaimLost) {
			t.Errorf("B's change of A's row: got %v, want ErrClaimLost", err)
		}
		c.Claim = ""
		if _, err := b.Apply(ctx, c); !errors.Is(err, ledger.ErrClaimed) {
			t.Errorf("unclaimed change of A's row: got %v, want ErrClaimed", err)
		}
		c.Claim = "A"
		r, err = a.Apply(ctx, c)
		if err != nil {
			t.Fatalf("A's change under its claim: %v", err)
		}
		if n, err := a.RenewClaims(ctx, "b", "A", 100*time.Millisecond); err != nil || n != 1 {
			t.Fatalf("A renews: got %d, %v; want 1", n, err)
		}
		// A stalls; its claim expires on the database's clock; B takes over.
		poll.Until(t, "A's claim expired", func() bool { n, _ := b.ClaimableRows(ctx, "b"); return n == 1 })
		got, over, err := b.ClaimRows(ctx, "b", "B", 0, 10, time.Minute)
		if err != nil || len(got) != 1 || over != 1 {
			t.Fatalf("B takes over: got %d rows (%d taken over), %v; want 1, 1", len(got), over, err)
		}
		if got[0].State != ledger.StateCreating {
			t.Errorf("taken-over row is %s, want creating (as A left it)", got[0].State)
		}
		// A wakes up: its renewal renews nothing, its change is refused.
		if n, err := a.RenewClaims(ctx, "b", "A", time.Minute); err != nil || n != 0 {
			t.Errorf("A renews after the takeover: got %d, %v; want 0", n, err)
		}
		stale := step(r, ledger.StateCreated)
		stale.Claim = "A"
		if _, err := a.Apply(ctx, stale); !errors.Is(err, ledger.ErrClaimLost) {
			t.Errorf("A's stale change: got %v, want ErrClaimLost", err)
		}
		if now, _ := a.Row(ctx, r.ID); now.State != ledger.StateCreating || now.SessionID != "" {
			t.Errorf("after the refused change: %s, session %q; want creating, none", now.State, now.SessionID)
		}
		evs, _ := a.Events(ctx, "b", r.ID)
		if last := evs[len(evs)-1]; last.Reason != "claim_takeover" {
			t.Errorf("last event %q, want claim_takeover", last.Reason)
		}
		// B goes on; releasing frees the row for anyone at once.
		ok := step(r, ledger.StateUnknown)
		ok.Claim = "B"
		if _, err := b.Apply(ctx, ok); err != nil {
			t.Fatalf("B's change: %v", err)
		}
		if err := b.ReleaseClaims(ctx, "b", "B"); err != nil {
			t.Fatal(err)
		}
		if n, _ := a.ClaimableRows(ctx, "b"); n != 1 {
			t.Errorf("after release: %d claimable, want 1", n)
		}
	})
}

// TestListenWebhooks: a webhook stored by one process wakes the runners of
// every other at once (PostgreSQL LISTEN/NOTIFY).
func TestListenWebhooks(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		if backendOf(t) == ledger.BackendSQLite {
			if err := openTest(t).ListenWebhooks(ctx, func() {}); !errors.Is(err, ledger.ErrNotShared) {
				t.Fatalf("SQLite ListenWebhooks: got %v, want ErrNotShared", err)
			}
			return
		}
		dbs := openShared(t, 2)
		var calls sync.WaitGroup
		var mu sync.Mutex
		n := 0
		calls.Go(func() {
			dbs[0].ListenWebhooks(ctx, func() { mu.Lock(); n++; mu.Unlock() })
		})
		count := func() int { mu.Lock(); defer mu.Unlock(); return n }
		poll.Until(t, "listening (the first call after connecting)", func() bool { return count() >= 1 })
		if _, _, err := dbs[1].RecordWebhook(ctx, ledger.Webhook{BodySHA256: "h1", Body: []byte("{}")}); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, "notified of the webhook stored by the other process", func() bool { return count() >= 2 })
		cancel()
		calls.Wait()
	})
}
