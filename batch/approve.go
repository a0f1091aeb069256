package batch

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/payouts/payouts/ledger"
	"golang.org/x/sync/errgroup"
)

// SettleOptions configure Approve, Reject and Serve.
type SettleOptions struct {
	Config   Config
	Wait     time.Duration
	Owner    ledger.Owner
	LeaseTTL time.Duration
	Intake   *Intake
	Progress func(Counts)
	// Watch, when set, is called like Progress with the engine's Progress
	// (counts and what the open rows wait for).
	Watch func(Progress)
}

// Approve confirms every row of a held batch that waits for confirmation,
// re-checking each session against its row first (a mismatch is cancelled,
// not confirmed), then waits for the results like a run.
//
// Without Config.Only it confirms the rows waiting when it starts, and
// only those (with Only, those rows): a row still in flight (after a
// crash) that becomes ready while Approve carries the batch on was
// approved by nobody, and stays held for an approval of its own. A row
// already confirming (approved by an approve that did not finish) is
// finished either way.
func Approve(ctx context.Context, store Store, pk Pike, batchID string, o SettleOptions) (Result, error) {
	cfg := o.Config
	cfg.Confirm = ConfirmAuto
	states := []ledger.State{ledger.StateConfirming}
	if cfg.Only == nil {
		states = append(states, ledger.StateAwaitingConfirm)
	}
	// Rows already confirming were approved before (their intent to
	// confirm is recorded, perhaps sent, by an approve that did not
	// finish): that approval stands.
	only := append([]int64{}, cfg.Only...)
	for row, err := range store.Rows(ctx, batchID, states...) {
		if err != nil {
			return Result{}, fmt.Errorf("list rows awaiting confirmation: %w", err)
		}
		only = append(only, row.ID)
	}
	cfg.Only = only
	return settle(ctx, store, pk, batchID, cfg, o, nil)
}

// Reject cancels every row of a held batch that waits for confirmation.
// Rows whose payout is not yet ready are cancelled as soon as Pike is
// ready for it; none of the batch's rows is confirmed meanwhile.
func Reject(ctx context.Context, store Store, pk Pike, batchID string, o SettleOptions) (Result, error) {
	cfg := o.Config
	cfg.Confirm = ConfirmHold
	return settle(ctx, store, pk, batchID, cfg, o, func(ctx context.Context, e *Engine) error {
		for row, err := range store.Rows(ctx, batchID, ledger.StateAwaitingConfirm) {
			if err != nil {
				return fmt.Errorf("list rows awaiting confirmation: %w", err)
			}
			if e.only == nil || e.only[row.ID] {
				e.reject(row.ID)
			}
		}
		return nil
	})
}

// reject cancels one row because an operator said so.
func (e *Engine) reject(id int64) {
	unlock := e.locks.lock(id)
	defer unlock()
	row, err := e.store.Row(e.wctx(), id)
	if err != nil {
		e.setFatal(err)
		return
	}
	if row.State != ledger.StateAwaitingConfirm {
		return
	}
	who := "an operator"
	if e.cfg.Actor != "" {
		who = e.cfg.Actor
	}
	row, err = e.cancel(row, ledger.Failure{Code: ledger.CodeRejected, Description: "rejected by " + who + " (payouts reject)"})
	if err != nil {
		e.rowError(row, err)
		return
	}
	e.settle(row)
}

func settle(ctx context.Context, store Store, pk Pike, batchID string, cfg Config, o SettleOptions, before func(context.Context, *Engine) error) (Result, error) {
	b, err := store.Batch(ctx, batchID)
	if err != nil {
		return Result{}, fmt.Errorf("batch %s: %w", batchID, err)
	}
	cfg.Flow = ParseBatchOptions(b.Options).Flow
	res := Result{Batch: b}
	err = withEngine(ctx, store, pk, batchID, cfg, o.Owner, o.LeaseTTL, o.Intake, func(ctx context.Context, e *Engine) error {
		if before != nil {
			if err := before(ctx, e); err != nil {
				return err
			}
		}
		if err := e.Adopt(ctx); err != nil {
			return err
		}
		c, err := e.WaitProgress(ctx, o.Wait, watchOf(o.Progress, o.Watch))
		res.Counts, res.Held = c, e.Held()
		return err
	})
	if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		res.Interrupted, err = true, nil
	}
	if c, cerr := CountsOf(context.WithoutCancel(ctx), store, batchID); cerr == nil {
		res.Counts = c
	}
	return res, err
}

// Serve drives every batch of the ledger that has rows in flight and no
// live runner: it resolves them with session/status, applies the webhooks
// that intake stores, confirms what the batch's confirm mode allows, and
// lets go of a batch once its rows are settled. It scans for such batches
// every scanEvery and returns when ctx ends.
func Serve(ctx context.Context, store Store, pk Pike, o SettleOptions, scanEvery time.Duration) error {
	if scanEvery <= 0 {
		scanEvery = 30 * time.Second
	}
	log := o.Config.withDefaults().Logger
	running := map[string]chan struct{}{}
	// At most serveBatches batches are driven at once; the others wait for
	// a later scan (a ledger of thousands of batches at rest, each with a
	// webhook to apply, must not start thousands of engines at once).
	var g errgroup.Group
	g.SetLimit(serveBatches)
	t := time.NewTicker(scanEvery)
	defer t.Stop()
	for {
		batches, err := store.Batches(ctx)
		if err != nil && ctx.Err() == nil {
			return fmt.Errorf("list batches: %w", err)
		}
		for _, b := range batches {
			if done, ok := running[b.ID]; ok {
				select {
				case <-done:
					delete(running, b.ID)
				default:
					continue
				}
			}
			n, err := store.CountRows(ctx, b.ID, ledger.StateCreating, ledger.StateStarting, ledger.StateAwaitingConfirm,
				ledger.StateConfirming, ledger.StateCancelling, ledger.StateConfirmed, ledger.StateUnknown)
			if err != nil {
				continue
			}
			if n == 0 && !hasNews(ctx, store, b.ID) {
				continue
			}
			cfg := o.Config
			cfg.Confirm = ParseBatchOptions(b.Options).Confirm
			done := make(chan struct{})
			id := b.ID
			if !g.TryGo(func() error {
				defer close(done)
				// Let go of the batch now and then, so that a run resuming it
				// (cron after a crash) gets the lease; the next scan takes it back.
				hold := max(4*scanEvery, 2*time.Minute)
				res, err := settle(ctx, store, pk, id, cfg, SettleOptions{Owner: o.Owner, LeaseTTL: o.LeaseTTL, Intake: o.Intake, Wait: hold}, nil)
				switch {
				case errors.Is(err, ledger.ErrLeaseHeld):
					log.Debug("batch has a live runner; not serving it", "batch", id)
				case err != nil:
					log.Error("serving batch failed", "batch", id, "err", scrub(err))
				default:
					log.Info("batch settled", "batch", id, "open", res.Counts.Open(), "succeeded", res.Counts[ledger.StateSucceeded])
				}
				return nil
			}) {
				break // every slot busy: the rest wait for the next scan
			}
			running[b.ID] = done
		}
		select {
		case <-ctx.Done():
			return g.Wait()
		case <-t.C:
		}
	}
}

// serveBatches bounds how many batches Serve drives at once.
const serveBatches = 16

// hasNews reports whether a batch with nothing in flight has a stored
// webhook to apply about one of its own sessions: an earlier attempt's late
// success must reach its row even when nothing is in flight. Webhooks about
// sessions no batch knows are settled by whichever engine runs next.
func hasNews(ctx context.Context, store Store, batchID string) bool {
	ws, err := store.PendingWebhooks(ctx, batchID, 0, 64)
	if err != nil {
		return false
	}
	for _, w := range ws {
		if _, row, err := store.AttemptBySession(ctx, w.SessionID); err == nil && row.BatchID == batchID {
			return true
		}
	}
	return false
}
