package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/internal/pan"
	"github.com/payouts/payouts/ledger"
)

// Resume starts paying every console batch that was approved and not yet
// done when the server last stopped: the ledger says what was sent, the
// encrypted upload gives the card numbers of the rows not started yet.
func (s *Server) Resume(ctx context.Context) error {
	cbs, err := s.db.ConsoleBatches(ctx)
	if err != nil {
		return fmt.Errorf("resume console batches: %w", err)
	}
	if err := s.sweepUploads(cbs); err != nil {
		return err
	}
	for id, cb := range cbs {
		if cb.State == ledger.ConsolePaying {
			s.log.Info("resuming an approved batch", "batch", id)
			s.startPaying(id)
		}
	}
	return nil
}

// sweepUploads destroys stored uploads no batch needs any more: left by an
// upload cut short before it was recorded, or by a stop between a batch's
// end and the deletion of its file.
func (s *Server) sweepUploads(cbs map[string]ledger.ConsoleBatch) error {
	names, err := s.cfg.Uploads.Names()
	if err != nil {
		return err
	}
	for _, n := range names {
		id, rerun := strings.CutSuffix(n, ".rerun")
		cb, ok := cbs[id]
		needed := ok && (cb.State == ledger.ConsoleAwaitingApproval || cb.State == ledger.ConsolePaying)
		if rerun {
			needed = needed && cb.Pending == ledger.PendingRerun
		} else {
			needed = needed && cb.Pending == ledger.PendingUpload
		}
		if !needed {
			s.log.Info("destroying an upload no batch needs", "name", n)
			if err := s.cfg.Uploads.Delete(n); err != nil {
				return err
			}
		}
	}
	return nil
}

// startPaying pays batch id in the background, once.
func (s *Server) startPaying(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.paying[id] || s.ctx.Err() != nil {
		return
	}
	s.paying[id] = true
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer func() {
			s.mu.Lock()
			delete(s.paying, id)
			s.mu.Unlock()
		}()
		s.payLoop(id)
	}()
}

// payLoop pays until the batch is done or the server stops, retrying after
// an infrastructure error with a growing pause.
func (s *Server) payLoop(id string) {
	for n := 0; ; n++ {
		done, err := s.payOnce(s.ctx, id)
		if done || s.ctx.Err() != nil {
			return
		}
		s.log.Error("paying a console batch stopped; trying again", "batch", id, "err", pan.Scrub(err.Error()))
		wait := min(time.Second<<min(n, 6), time.Minute)
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// payOnce pays batch id with the engine of `payouts run` (--confirm auto,
// every check), from the decrypted upload held in memory; when every row
// is final, it marks the batch done and destroys the upload.
func (s *Server) payOnce(ctx context.Context, id string) (bool, error) {
	cb, err := s.db.ConsoleBatch(ctx, id)
	if err != nil {
		return false, err
	}
	if cb.State != ledger.ConsolePaying {
		return true, nil
	}
	name := uploadName(id, cb.Pending)
	data, err := s.cfg.Uploads.Get(name)
	if err != nil {
		return false, err
	}
	var co consoleOptions
	if err := json.Unmarshal([]byte(cb.Options), &co); err != nil {
		return false, fmt.Errorf("console batch %s options: %w", id, err)
	}
	src := batch.MemorySource("upload "+cb.FileName, data)
	cfg := s.engineConfig()
	// The file paid is the file approved: its SHA-256 was recorded with
	// the request the approver saw (an upload, or a rerun's corrected
	// file); another file under the same name is refused, nothing sent.
	sum, rerr := src.Read(co.Manifest, nil)
	if rerr != nil {
		return false, fmt.Errorf("the stored upload no longer validates: %w", rerr)
	}
	if co.SHA256 == "" || sum.SHA256 != co.SHA256 {
		return false, fmt.Errorf("batch %s: the stored %s is not the file approved: %w", id, cb.Pending, batch.ErrManifestChanged)
	}
	var res batch.Result
	if cb.Pending == ledger.PendingRerun {
		res, _, err = batch.Rerun(ctx, s.db, s.cfg.Pike, batch.RerunOptions{
			BatchID: id, Source: src, ManifestOptions: co.Manifest,
			SettleOptions: batch.SettleOptions{Config: cfg, Owner: s.cfg.Owner, Intake: s.cfg.Intake},
		})
	} else {
		res, err = batch.Run(ctx, s.db, s.cfg.Pike, batch.RunOptions{
			Source: src, ManifestOptions: co.Manifest, Summary: sum, BatchID: id,
			Config: cfg, Intake: s.cfg.Intake, Owner: s.cfg.Owner,
		})
	}
	if cb.Pending == ledger.PendingRerun && (errors.Is(err, batch.ErrCorrectionsNotApplied) || errors.Is(err, batch.ErrNotInBatch)) {
		// The batch changed since the rerun was asked for (a late
		// success, say): nothing was sent; the rerun is dropped.
		defer s.holdRerun(id)()
		_, cerr := s.db.ChangeConsoleBatch(context.WithoutCancel(ctx), ledger.ConsoleChange{BatchID: id, From: ledger.ConsolePaying, To: ledger.ConsoleDone},
			ledger.AuditEntry{Actor: "server", Action: "rerun_dropped", Detail: pan.Scrub(err.Error()) + " — upload a new corrected file"})
		if cerr != nil {
			return false, cerr
		}
		_ = s.cfg.Uploads.Delete(name)
		return true, nil
	}
	if err != nil {
		return false, err
	}
	if res.Interrupted || ctx.Err() != nil {
		return false, context.Canceled
	}
	if open := res.Counts.Open(); open > 0 {
		return false, fmt.Errorf("%d rows still open", open)
	}
	detail := fmt.Sprintf("every row final: %d succeeded, %d failed, %d cancelled, %d in review", res.Counts[ledger.StateSucceeded],
		res.Counts[ledger.StateFailed], res.Counts[ledger.StateCancelled]+res.Counts[ledger.StateMismatch], res.Counts[ledger.StateReview])
	// Marking the batch done and destroying its files is one step for
	// rerun requests: a rerun asked for in between would have its new
	// file destroyed and could never be paid.
	defer s.holdRerun(id)()
	_, err = s.db.ChangeConsoleBatch(context.WithoutCancel(ctx), ledger.ConsoleChange{BatchID: id, From: ledger.ConsolePaying, To: ledger.ConsoleDone},
		ledger.AuditEntry{Actor: "server", Action: "batch_done", Detail: detail})
	if err != nil && !errors.Is(err, ledger.ErrConflict) {
		return false, err
	}
	// The card numbers are no longer needed: destroy every stored file of
	// the batch.
	for _, n := range []string{id, id + ".rerun"} {
		if err := s.cfg.Uploads.Delete(n); err != nil {
			s.log.Error("destroying the upload failed", "batch", id, "err", err)
		}
	}
	s.log.Info("console batch done", "batch", id, "detail", detail)
	return true, nil
}

// holdRerun waits until no rerun of batch id is being asked for and keeps
// new requests out until the returned release is called.
func (s *Server) holdRerun(id string) (release func()) {
	key := uploadName(id, ledger.PendingRerun)
	for !s.claimUpload(key) {
		time.Sleep(5 * time.Millisecond) // a rerun request holds it for one validation
	}
	return func() { s.releaseUpload(key) }
}
