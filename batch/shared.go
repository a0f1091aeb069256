package batch

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/ledger"
)

// ClaimStore is what several runners sharing one batch need on top of
// Store: row claims (see ledger's claim.go). A PostgreSQL *ledger.DB
// implements it; a SQLite one answers ledger.ErrNotShared.
type ClaimStore interface {
	ClaimRows(ctx context.Context, batchID, owner string, fromLine, n int, ttl time.Duration) ([]ledger.Row, int, error)
	RenewClaims(ctx context.Context, batchID, owner string, ttl time.Duration) (int, error)
	ReleaseClaims(ctx context.Context, batchID, owner string) error
	ClaimableRows(ctx context.Context, batchID string) (int, error)
}

// WebhookListener is a ledger that tells its runners at once when any
// process stored a webhook (PostgreSQL's LISTEN/NOTIFY). Without it, or
// meanwhile, the engine looks for stored webhooks every second.
type WebhookListener interface {
	ListenWebhooks(ctx context.Context, fn func()) error
}

// listen wakes e's webhook applier whenever the store says a webhook was
// stored, until ctx ends.
func listen(ctx context.Context, store Store, e *Engine) {
	if l, ok := store.(WebhookListener); ok {
		go l.ListenWebhooks(ctx, e.Notify)
	}
}

// Defaults of a shared run.
const (
	defaultClaimTTL   = 30 * time.Second
	defaultClaimChunk = 64
	// loadWait is how long a runner joining a batch waits for the runner
	// that creates it to finish loading its rows (a dead loader's lease is
	// taken over once stale, and the joiner completes the load).
	loadWait = 10 * time.Minute
)

// sharedRows is what an engine of a shared run knows of its claims.
type sharedRows struct {
	owner string
	mu    sync.Mutex
	mine  map[int64]bool
}

func (s *sharedRows) add(id int64) {
	s.mu.Lock()
	s.mine[id] = true
	s.mu.Unlock()
}

func (s *sharedRows) has(id int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.mine[id]
}

func (s *sharedRows) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.mine)
}

func (s *sharedRows) drop(id int64) {
	s.mu.Lock()
	delete(s.mine, id)
	s.mu.Unlock()
}

// fencedStore stamps every change with the runner's claim, so that the
// ledger refuses it once the claim expired or was taken over.
type fencedStore struct {
	Store
	owner string
}

func (f fencedStore) Apply(ctx context.Context, c ledger.Change) (ledger.Row, error) {
	c.Claim = f.owner
	return f.Store.Apply(ctx, c)
}

// sourceOf is the run's manifest: its Source, or its file.
func sourceOf(o RunOptions) Source {
	if o.Source != nil {
		return o.Source
	}
	return FileSource(o.Manifest)
}

// forget drops a row this engine no longer holds: another runner has it.
func (e *Engine) forget(id int64) {
	e.mu.Lock()
	delete(e.due, id)
	delete(e.backoff, id)
	delete(e.pans, id)
	delete(e.held, id)
	delete(e.keyUsed, id)
	e.mu.Unlock()
	if e.shared != nil {
		e.shared.drop(id)
	}
}

// runShared is Run for a batch shared by several runners (RunOptions.Shared):
// the first runner creates and loads the batch under its lease while the
// others wait; then every runner claims rows in chunks and pays only those,
// taking over rows whose claims expire, until every row of the batch is
// final (or Wait passes).
func runShared(ctx context.Context, store Store, pk Pike, o RunOptions, cfg Config, batchID string) (Result, error) {
	var res Result
	cs, ok := store.(ClaimStore)
	if !ok {
		return res, fmt.Errorf("batch %s: several runners on one batch: %w", batchID, ledger.ErrNotShared)
	}
	ttl := o.ClaimTTL
	if ttl <= 0 {
		ttl = defaultClaimTTL
	}
	chunk := o.ClaimChunk
	if chunk <= 0 {
		chunk = defaultClaimChunk
	}
	b, created, err := prepareShared(ctx, store, o, cfg, batchID)
	res.Batch, res.Created = b, created
	if err != nil {
		return res, err
	}
	if bo := ParseBatchOptions(b.Options); bo.Flow != cfg.Flow {
		cfg.Flow = bo.Flow
	}
	owner := o.Owner
	if owner.PID == 0 {
		owner = ledger.CurrentOwner("payouts run")
	}
	token, err := ledger.NewClaimOwner(owner)
	if err != nil {
		return res, err
	}
	e := NewEngine(fencedStore{Store: store, owner: token}, pk, b.ID, cfg)
	e.shared = &sharedRows{owner: token, mine: map[int64]bool{}}
	if o.Intake != nil {
		o.Intake.Subscribe(e)
		defer o.Intake.Unsubscribe(e)
	}
	defer cs.ReleaseClaims(context.WithoutCancel(ctx), b.ID, token)
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		t := time.NewTicker(ttl / 3)
		defer t.Stop()
		for {
			select {
			case <-runCtx.Done():
				return
			case <-t.C:
				if _, err := cs.RenewClaims(context.WithoutCancel(runCtx), b.ID, token, ttl); err != nil {
					// Fencing keeps this safe: once the claims expire, the
					// ledger refuses this runner's changes and others take
					// the rows over.
					cfg.Logger.Warn("claims not renewed", "batch", b.ID, "err", err)
				}
			}
		}
	}()
	e.Start(runCtx)
	listen(runCtx, store, e)
	ferr := e.feedShared(runCtx, cs, o, chunk, ttl)
	var c Counts
	if ferr == nil {
		c, ferr = e.waitShared(runCtx, cs, o, chunk, ttl)
	}
	res.Counts, res.Held = c, e.Held()
	e.Drain(cfg.StopGrace)
	e.Stop()
	if err := e.Err(); err != nil && ferr == nil {
		ferr = err
	}
	if errors.Is(ferr, context.Canceled) && ctx.Err() != nil {
		res.Interrupted, ferr = true, nil
	}
	if c, cerr := CountsOf(context.WithoutCancel(ctx), store, res.Batch.ID); cerr == nil {
		res.Counts = c
	}
	return res, ferr
}

// prepareShared creates and loads the batch, or joins it: a batch already
// loaded from the same manifest is joined at once; otherwise the batch's
// lease makes one runner the loader, and the others wait for it.
func prepareShared(ctx context.Context, store Store, o RunOptions, cfg Config, batchID string) (ledger.Batch, bool, error) {
	if b, err := store.Batch(ctx, batchID); err == nil && !b.LoadedAt.IsZero() && b.ManifestSHA256 == o.Summary.SHA256 {
		return b, false, nil
	}
	deadline := time.Now().Add(max(cfg.LeaseWait, loadWait))
	for {
		var b ledger.Batch
		var created bool
		lcfg := cfg
		lcfg.LeaseWait = 0
		err := holdLease(ctx, store, batchID, lcfg, o.Owner, o.LeaseTTL, func(ctx context.Context, _ *heldLease) error {
			var err error
			b, created, err = PrepareSource(ctx, store, sourceOf(o), o.ManifestOptions, o.Summary, batchID, cfg.Fingerprinter, BatchOptions{Flow: cfg.Flow, Confirm: cfg.Confirm})
			return err
		})
		if !errors.Is(err, ledger.ErrLeaseHeld) || time.Now().After(deadline) {
			return b, created, err
		}
		// Another runner is loading the batch (or a serve holds it): join
		// as soon as the rows are in.
		select {
		case <-ctx.Done():
			return b, false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if b, err := store.Batch(ctx, batchID); err == nil && !b.LoadedAt.IsZero() && b.ManifestSHA256 == o.Summary.SHA256 {
			return b, false, nil
		}
	}
}

// feedShared streams the manifest once, claiming rows in chunks as it
// goes, and hands the engine the rows it claimed, with their card numbers.
func (e *Engine) feedShared(ctx context.Context, cs ClaimStore, o RunOptions, chunk int, ttl time.Duration) error {
	stop := errors.New("stop")
	claimed := map[string]ledger.Row{} // by reference: this pass's claims not yet handed on
	maxLine, exhausted := -1, false
	err := sourceOf(o).Reread(o.ManifestOptions, o.Summary.SHA256, func(mr manifest.Row) error {
		if ctx.Err() != nil || e.paused.Load() {
			return stop
		}
		for !exhausted && mr.Line > maxLine {
			// Claim only what this runner can work on: at most four
			// chunks of open rows at a time, so the rows of a batch are
			// spread over the runners instead of taken by the first.
			for e.shared.count() >= 4*chunk {
				select {
				case <-ctx.Done():
					return stop
				case <-time.After(20 * time.Millisecond):
				}
			}
			rows, over, err := cs.ClaimRows(e.wctx(), e.batchID, e.shared.owner, mr.Line, chunk, ttl)
			if ledger.IsConnectionError(err) || errors.Is(err, ledger.ErrOutcomeUnknown) {
				// The database is away: wait and claim again (a claim
				// whose commit was lost is found again as this owner's
				// rows only once it expires, and taken back then).
				e.log.Warn("ledger unreachable while claiming rows; waiting", "err", err)
				if !sleepCtx(ctx, time.Second) {
					return stop
				}
				continue
			}
			if err != nil {
				return fmt.Errorf("claim rows: %w", err)
			}
			if over > 0 {
				e.log.Info("rows taken over from a runner whose claims expired", "rows", over)
			}
			if len(rows) == 0 {
				exhausted = true
				break
			}
			for _, r := range rows {
				claimed[r.Reference] = r
				e.shared.add(r.ID)
				maxLine = max(maxLine, r.Line)
			}
		}
		row, ok := claimed[mr.Reference]
		if !ok {
			return nil // another runner's, or nothing to do
		}
		delete(claimed, mr.Reference)
		return e.take(ctx, row, mr.Card, stop)
	})
	if errors.Is(err, stop) {
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("feed manifest: %w", err)
	}
	// Chunks are claimed from the line being read on, in line order, so a
	// whole pass meets every row it claimed.
	if len(claimed) > 0 {
		return fmt.Errorf("feed manifest: %d claimed rows not in the manifest", len(claimed))
	}
	return nil
}

// waitShared waits until every row of the batch is final (or held for
// approval, or Wait passes), going over the manifest again whenever rows
// can be claimed: rows of a runner that died, whose claims expired.
func (e *Engine) waitShared(ctx context.Context, cs ClaimStore, o RunOptions, chunk int, ttl time.Duration) (Counts, error) {
	var deadline <-chan time.Time
	if o.Wait > 0 {
		t := time.NewTimer(o.Wait)
		defer t.Stop()
		deadline = t.C
	}
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	lastClaim := time.Now()
	var lastProgress time.Time
	for {
		c, err := e.countsNow(e.wctx(), true)
		if ledger.IsConnectionError(err) {
			if !sleepCtx(ctx, 200*time.Millisecond) {
				return c, ctx.Err()
			}
			continue // the database is away (a restart): wait for it
		}
		if err != nil {
			return c, err
		}
		if err := e.Err(); err != nil {
			return c, err
		}
		if o.Progress != nil && time.Since(lastProgress) >= time.Second {
			o.Progress(c)
			lastProgress = time.Now()
		}
		if c.Open()-e.Held() <= 0 {
			if o.Progress != nil {
				o.Progress(c)
			}
			return c, nil
		}
		if time.Since(lastClaim) >= min(ttl/3, time.Second) {
			lastClaim = time.Now()
			n, err := cs.ClaimableRows(e.wctx(), e.batchID)
			if ledger.IsConnectionError(err) {
				n, err = 0, nil // next time
			}
			if err != nil {
				return c, err
			}
			if n > 0 {
				if err := e.feedShared(ctx, cs, o, chunk, ttl); err != nil {
					return c, err
				}
			}
		}
		select {
		case <-ctx.Done():
			return c, ctx.Err()
		case <-deadline:
			return c, nil
		case <-tick.C:
		}
	}
}
