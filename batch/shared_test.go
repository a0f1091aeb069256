package batch_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

// countingPike counts the sessions one runner created.
type countingPike struct {
	batch.Pike
	creates atomic.Int64
}

func (c *countingPike) CreateSession(ctx context.Context, key string, req pike.PayoutRequest) (*pike.Session, error) {
	c.creates.Add(1)
	return c.Pike.CreateSession(ctx, key, req)
}

// sharedRun runs the manifest like `payouts run` with several runners
// sharing the batch.
func (h *harness) sharedRun(ctx context.Context, db batch.Store, pk batch.Pike, path string, ttl time.Duration) (batch.Result, error) {
	mopts := manifest.Options{AllowDuplicates: true}
	sum, err := manifest.ReadFile(path, mopts, nil)
	if err != nil {
		h.t.Fatalf("manifest invalid: %v", err)
	}
	cfg := h.config()
	cfg.Fingerprinter = h.fp
	return batch.Run(ctx, db, pk, batch.RunOptions{
		Manifest: path, ManifestOptions: mopts, Summary: sum, Config: cfg, Wait: 60 * time.Second, Intake: h.intake,
		Shared: true, ClaimTTL: ttl, ClaimChunk: 4, Owner: ledger.CurrentOwner("test runner"),
	})
}

func (h *harness) openAgain() *ledger.DB {
	db, err := ledger.Open(context.Background(), h.loc)
	if err != nil {
		h.t.Fatal(err)
	}
	h.t.Cleanup(func() { db.Close() })
	return db
}

func sharedRows(n int) []row {
	cards := []string{sandbox.CardVisa, sandbox.CardMir}
	rows := make([]row, n)
	for i := range rows {
		rows[i] = row{ref: fmt.Sprintf("S%03d", i), amount: fmt.Sprintf("%d", 10+i), card: cards[i%2]}
	}
	return rows
}

// TestSharedRunnersSplitABatch: three runners started at once on one
// manifest: exactly one creates the batch, the others join; they split
// the rows (each pays some); every reference is paid exactly once.
func TestSharedRunnersSplitABatch(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		// Rows that take a while (Pike's ready_to_confirm after 100ms), so
		// that the runners overlap.
		h := newHarness(t, sandbox.Config{ReadyDelay: 100 * time.Millisecond})
		rows := sharedRows(40)
		path := h.manifest("shared.csv", rows...)
		if backendOf(t) == ledger.BackendSQLite {
			if _, err := h.sharedRun(context.Background(), h.db, h.client, path, time.Second); !errors.Is(err, ledger.ErrNotShared) {
				t.Fatalf("shared run on SQLite: got %v, want ErrNotShared", err)
			}
			return
		}
		dbs := []*ledger.DB{h.db, h.openAgain(), h.openAgain()}
		pikes := make([]*countingPike, len(dbs))
		results := make([]batch.Result, len(dbs))
		errs := make([]error, len(dbs))
		var wg sync.WaitGroup
		for i, db := range dbs {
			pikes[i] = &countingPike{Pike: h.client}
			wg.Go(func() { results[i], errs[i] = h.sharedRun(context.Background(), db, pikes[i], path, 2*time.Second) })
		}
		wg.Wait()
		created := 0
		var total int64
		for i := range dbs {
			if errs[i] != nil {
				t.Fatalf("runner %d: %v", i, errs[i])
			}
			if !results[i].OK() {
				t.Errorf("runner %d: counts %v, want all succeeded", i, results[i].Counts)
			}
			if results[i].Created {
				created++
			}
			n := pikes[i].creates.Load()
			total += n
			t.Logf("runner %d created %d sessions", i, n)
			if n == 0 {
				t.Errorf("runner %d paid no row: the batch was not split", i)
			}
		}
		if created != 1 {
			t.Errorf("%d runners created the batch, want exactly 1", created)
		}
		if total != int64(len(rows)) {
			t.Errorf("%d sessions created for %d rows", total, len(rows))
		}
		var refs []string
		for _, r := range rows {
			refs = append(refs, r.ref)
		}
		h.expectPaid(refs...)
	})
}

// partitionedStore is a runner cut off from renewing its claims: they
// expire while it still runs, as for a runner that stalls.
type partitionedStore struct {
	*ledger.DB
}

func (partitionedStore) RenewClaims(context.Context, string, string, time.Duration) (int, error) {
	return 0, errors.New("partitioned")
}

// stallingPike holds every start/payout until released, then sends it:
// a runner that stalls mid-flight and wakes up after its claims expired.
type stallingPike struct {
	batch.Pike
	release chan struct{}
	stalled atomic.Int64
}

func (s *stallingPike) StartPayout(ctx context.Context, key string, req pike.PayoutRequest) (*pike.Session, error) {
	s.stalled.Add(1)
	<-s.release
	return s.Pike.StartPayout(ctx, key, req)
}

// TestSharedTakeoverAfterExpiry: runner A records its intents and stalls
// on its start calls while its claims expire; runner B takes the rows over
// (starting → unknown → session/status, as after a crash) and pays them.
// When A wakes up, its calls go out with the same idempotency keys and its
// changes are refused by the fence: nothing is paid twice, nothing lost.
func TestSharedTakeoverAfterExpiry(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		if backendOf(t) != ledger.BackendPostgres {
			t.Skip("several runners share a batch only on PostgreSQL (TestSharedRunnersSplitABatch checks SQLite's refusal)")
		}
		ctx := context.Background()
		h := newHarness(t, sandbox.Config{})
		rows := sharedRows(8)
		path := h.manifest("shared.csv", rows...)
		stall := &stallingPike{Pike: h.client, release: make(chan struct{})}
		a := partitionedStore{h.openAgain()}
		var resA batch.Result
		var errA error
		doneA := make(chan struct{})
		go func() {
			defer close(doneA)
			resA, errA = h.sharedRun(ctx, a, stall, path, 300*time.Millisecond)
		}()
		poll.Until(t, "runner A stalled on a start", func() bool { return stall.stalled.Load() >= 1 })

		resB, errB := h.sharedRun(ctx, h.db, h.client, path, 2*time.Second)
		if errB != nil || !resB.OK() {
			t.Fatalf("runner B: %v, counts %v; want every row succeeded", errB, resB.Counts)
		}
		close(stall.release) // A wakes up: its calls go out, its changes are fenced
		select {
		case <-doneA:
		case <-time.After(60 * time.Second):
			t.Fatal("runner A did not finish after waking up")
		}
		if errA != nil {
			t.Errorf("runner A: %v", errA)
		}
		t.Logf("A: %v; stalled starts: %d", resA.Counts, stall.stalled.Load())
		var refs []string
		for _, r := range rows {
			refs = append(refs, r.ref)
		}
		h.expectPaid(refs...)
		takeovers := 0
		evs, err := h.db.Events(ctx, batch.BatchIDFor(mustSHA(t, path)), 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Reason == "claim_takeover" {
				takeovers++
			}
		}
		if takeovers == 0 {
			t.Errorf("no claim_takeover event: B never took a row over from A")
		}
	})
}

func mustSHA(t *testing.T, path string) string {
	sum, err := manifest.ReadFile(path, manifest.Options{AllowDuplicates: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return sum.SHA256
}

// TestSharedSurvivesDatabaseRestart: the PostgreSQL server restarts while
// two runners share a batch: every connection is cut, writes wait for the
// server and go on, a write whose commit answer was lost is read again;
// every reference is still paid exactly once.
func TestSharedSurvivesDatabaseRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		if backendOf(t) != ledger.BackendPostgres {
			t.Skip("a database server restart is PostgreSQL's (SQLite's ledger faults: faults_ledger_test.go)")
		}
		srv := pgtestServer(t)
		ctx := context.Background()
		h := newHarness(t, sandbox.Config{ReadyDelay: 50 * time.Millisecond})
		rows := sharedRows(30)
		path := h.manifest("shared.csv", rows...)
		dbs := []*ledger.DB{h.db, h.openAgain()}
		results := make([]batch.Result, len(dbs))
		errs := make([]error, len(dbs))
		var wg sync.WaitGroup
		for i, db := range dbs {
			wg.Go(func() { results[i], errs[i] = h.sharedRun(ctx, db, h.client, path, 5*time.Second) })
		}
		poll.Until(t, "some rows paid", func() bool { return len(h.sb.Journal()) >= 5 })
		if err := srv.Restart(false); err != nil {
			t.Fatal(err)
		}
		t.Logf("restarted PostgreSQL after %d payouts", len(h.sb.Journal()))
		wg.Wait()
		for i := range dbs {
			if errs[i] != nil || !results[i].OK() {
				t.Errorf("runner %d: %v, counts %v; want every row succeeded", i, errs[i], results[i].Counts)
			}
		}
		var refs []string
		for _, r := range rows {
			refs = append(refs, r.ref)
		}
		h.expectPaid(refs...)
	})
}
