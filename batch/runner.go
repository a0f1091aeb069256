package batch

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/ledger"
)

// RunOptions configure Run.
type RunOptions struct {
	Manifest string // manifest path
	// Source, when set, is read instead of the file at Manifest (the
	// console pays from a decrypted upload held in memory).
	Source          Source
	ManifestOptions manifest.Options // as validated
	Summary         manifest.Summary // result of the validation pass
	BatchID         string           // "" = BatchIDFor(Summary.SHA256)
	Config          Config
	// Wait is how long to wait for final results after the last row was
	// handed on (0 = until every row is final).
	Wait time.Duration
	// Owner and LeaseTTL identify this runner in the batch's lease.
	Owner    ledger.Owner
	LeaseTTL time.Duration
	// Intake, when set, is the webhook receiver whose deliveries this run
	// applies. Without it the run relies on polling (and on webhooks that
	// another process, such as `payouts serve`, stores in the ledger).
	Intake   *Intake
	Progress func(Counts)
	// Shared lets several runners (on any hosts) share the batch: each
	// claims rows in chunks of ClaimChunk (default 64), each claim kept
	// alive for ClaimTTL (default 30s) by a heartbeat, and pays only the
	// rows it holds. It needs a PostgreSQL ledger (ledger.ErrNotShared
	// otherwise). See shared.go.
	Shared     bool
	ClaimTTL   time.Duration
	ClaimChunk int
	// Watch, when set, is called like Progress with the engine's Progress
	// (counts and what the open rows wait for).
	Watch func(Progress)
}

// Result is the outcome of a run.
type Result struct {
	Batch       ledger.Batch
	Created     bool // the batch was created by this run (false: resumed)
	Counts      Counts
	Held        int  // rows held for approval (hold mode)
	Interrupted bool // the run was interrupted (SIGINT/SIGTERM) before the end
}

// OK reports whether every row of the batch succeeded (or was skipped
// because its reference had already been paid).
func (r Result) OK() bool {
	return r.Counts.Total() > 0 && r.Counts[ledger.StateSucceeded]+r.Counts[ledger.StateSkipped] == r.Counts.Total()
}

const defaultLeaseTTL = 30 * time.Second

// Run pays a validated manifest: it takes the batch's runner lease (a
// second runner is refused before it writes anything), creates or resumes
// the batch, drives every row through Pike, and waits for final results.
// Per-row failures are recorded in the ledger and reported in the Result's
// counts; Run returns an error only when it could not do its job (ledger,
// lease, manifest changed).
func Run(ctx context.Context, store Store, pk Pike, o RunOptions) (Result, error) {
	cfg := o.Config.withDefaults()
	batchID := o.BatchID
	if batchID == "" {
		batchID = BatchIDFor(o.Summary.SHA256)
	}
	if o.Shared {
		return runShared(ctx, store, pk, o, cfg, batchID)
	}
	var res Result
	err := holdLease(ctx, store, batchID, cfg, o.Owner, o.LeaseTTL, func(ctx context.Context, l *heldLease) error {
		src := o.Source
		if src == nil {
			src = FileSource(o.Manifest)
		}
		b, created, err := PrepareSource(ctx, store, src, o.ManifestOptions, o.Summary, batchID, cfg.Fingerprinter, BatchOptions{Flow: cfg.Flow, Confirm: cfg.Confirm})
		res.Batch, res.Created = b, created
		if err != nil {
			return err
		}
		if bo := ParseBatchOptions(b.Options); bo.Flow != cfg.Flow {
			cfg.Logger.Warn("batch was created with another flow; keeping it", "batch", b.ID, "flow", bo.Flow, "requested", cfg.Flow)
			cfg.Flow = bo.Flow
		}
		return runEngine(ctx, l, store, pk, b.ID, cfg, o.Intake, func(ctx context.Context, e *Engine) error {
			if err := e.FeedSource(ctx, src, o.ManifestOptions, o.Summary.SHA256); err != nil {
				return err
			}
			c, err := e.WaitProgress(ctx, o.Wait, watchOf(o.Progress, o.Watch))
			res.Counts, res.Held = c, e.Held()
			return err
		})
	})
	if res.Batch.ID == "" {
		return res, err
	}
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		res.Interrupted, err = true, nil
	}
	if c, cerr := CountsOf(context.WithoutCancel(ctx), store, res.Batch.ID); cerr == nil {
		res.Counts = c
	}
	return res, err
}

// heldLease is a batch's lease held by holdLease.
type heldLease struct {
	// engine, once set, is paused the moment the lease is lost, before the
	// run's context is cancelled: nothing more is started or confirmed.
	engine atomic.Pointer[Engine]
}

// holdLease takes the batch's lease, keeps it alive with heartbeats while
// fn runs, and always releases it. Losing the lease cancels fn's context
// with the cause, which holdLease then returns.
func holdLease(ctx context.Context, store Store, batchID string, cfg Config, owner ledger.Owner, ttl time.Duration, fn func(context.Context, *heldLease) error) error {
	if ttl <= 0 {
		ttl = defaultLeaseTTL
	}
	if owner.PID == 0 {
		owner = ledger.CurrentOwner("payouts")
	}
	lease, err := acquireLease(ctx, store, batchID, owner, ttl, cfg.LeaseWait)
	if err != nil {
		return fmt.Errorf("batch %s: %w", batchID, err)
	}
	defer lease.Release(context.WithoutCancel(ctx))

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	held := &heldLease{}
	go func() {
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				if err := lease.Heartbeat(context.WithoutCancel(runCtx)); err != nil {
					if e := held.engine.Load(); e != nil {
						e.paused.Store(true)
					}
					cancel(fmt.Errorf("runner lease of batch %s lost: %w", batchID, err))
					return
				}
			}
		}
	}()
	ferr := fn(runCtx, held)
	if cause := context.Cause(runCtx); cause != nil && !errors.Is(cause, context.Canceled) && ctx.Err() == nil {
		return cause
	}
	return ferr
}

// withEngine takes the batch's lease and runs fn with an engine (see
// runEngine).
func withEngine(ctx context.Context, store Store, pk Pike, batchID string, cfg Config, owner ledger.Owner, ttl time.Duration, intake *Intake, fn func(context.Context, *Engine) error) error {
	return holdLease(ctx, store, batchID, cfg, owner, ttl, func(ctx context.Context, l *heldLease) error {
		return runEngine(ctx, l, store, pk, batchID, cfg, intake, fn)
	})
}

// runEngine starts an engine subscribed to intake under the held lease,
// runs fn, and always drains and stops it, even when ctx was cancelled.
func runEngine(ctx context.Context, l *heldLease, store Store, pk Pike, batchID string, cfg Config, intake *Intake, fn func(context.Context, *Engine) error) error {
	e := NewEngine(store, pk, batchID, cfg)
	l.engine.Store(e)
	if intake != nil {
		intake.Subscribe(e)
		defer intake.Unsubscribe(e)
	}
	e.Start(ctx)
	lctx, stopListening := context.WithCancel(ctx)
	defer stopListening()
	listen(lctx, store, e)
	ferr := fn(ctx, e)
	e.Drain(cfg.StopGrace)
	e.Stop()
	if err := e.Err(); err != nil {
		return err
	}
	return ferr
}

// acquireLease takes the batch's lease, waiting up to wait (polling every
// second) while another live process holds it.
func acquireLease(ctx context.Context, store Store, batchID string, owner ledger.Owner, ttl, wait time.Duration) (*ledger.Lease, error) {
	deadline := time.Now().Add(wait)
	for {
		lease, err := store.AcquireLease(ctx, batchID, owner, ttl)
		if err == nil || !errors.Is(err, ledger.ErrLeaseHeld) || !time.Now().Before(deadline) {
			return lease, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(time.Second):
		}
	}
}

// CountsOf counts the rows of batch batchID per state, from the ledger's
// summary (one aggregate query, no row read).
func CountsOf(ctx context.Context, store Store, batchID string) (Counts, error) {
	lines, err := store.Summary(ctx, batchID)
	if err != nil {
		return nil, err
	}
	c := Counts{}
	for _, l := range lines {
		c[l.State] += l.Count
	}
	return c, nil
}
