package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/batch/report"
	"github.com/payouts/payouts/internal/pan"
	"github.com/payouts/payouts/ledger"
)

// readers are the roles that may see batches and download reports.
var readers = []ledger.Role{ledger.RoleViewer, ledger.RoleMaker, ledger.RoleApprover}

// BatchView is a batch as the console shows it (and the API answers).
type BatchView struct {
	ID          string            `json:"id"`
	State       string            `json:"state"`  // console state; for batches run from the CLI: paying or done
	Source      string            `json:"source"` // "console" or "cli"
	Pending     string            `json:"pending,omitempty"`
	FileName    string            `json:"file_name"`
	Rows        int               `json:"rows"`
	Totals      map[string]string `json:"totals"`
	Counts      map[string]int    `json:"counts"`
	Settled     int               `json:"settled"`
	UploadedBy  string            `json:"uploaded_by,omitempty"`
	RequestedBy string            `json:"requested_by,omitempty"`
	ApprovedBy  string            `json:"approved_by,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	Lines       []SummaryView     `json:"summary"`
	// AllowDuplicates and Warnings: the uploader allowed the same card,
	// amount and currency under several references; these are they.
	AllowDuplicates bool      `json:"allow_duplicates,omitempty"`
	Warnings        []Problem `json:"warnings,omitempty"`
}

// SummaryView is the count and sum of rows in one state and currency.
type SummaryView struct {
	State    string `json:"state"`
	Currency string `json:"currency"`
	Count    int    `json:"count"`
	Amount   string `json:"amount"`
}

func formatTotals(t map[string]int64) map[string]string {
	out := map[string]string{}
	for c, v := range t {
		out[c] = manifest.FormatAmount(v, c)
	}
	return out
}

// view builds the view of ledger batch b with its console record, if any.
func (s *Server) view(ctx context.Context, b ledger.Batch, cb *ledger.ConsoleBatch) (BatchView, error) {
	v := BatchView{ID: b.ID, Rows: b.RowCount, Totals: formatTotals(b.Totals), Counts: map[string]int{}, CreatedAt: b.CreatedAt, Source: "cli", FileName: filepath.Base(b.ManifestName)}
	lines, err := s.db.Summary(ctx, b.ID)
	if err != nil {
		return v, err
	}
	open := 0
	for _, l := range lines {
		v.Counts[string(l.State)] += l.Count
		if !l.State.Final() && l.State != ledger.StateReview {
			open += l.Count
		}
		v.Lines = append(v.Lines, SummaryView{State: string(l.State), Currency: l.Currency, Count: l.Count, Amount: manifest.FormatAmount(l.Amount, l.Currency)})
	}
	v.Settled = b.RowCount - open
	if cb != nil {
		v.Source, v.State, v.Pending, v.FileName = "console", string(cb.State), cb.Pending, cb.FileName
		v.UploadedBy, v.RequestedBy, v.ApprovedBy = cb.UploadedBy, cb.RequestedBy, cb.ApprovedBy
		var co consoleOptions
		if json.Unmarshal([]byte(cb.Options), &co) == nil {
			v.AllowDuplicates, v.Warnings = co.Manifest.AllowDuplicates, co.Warnings
		}
	} else if open > 0 {
		v.State = string(ledger.ConsolePaying)
		if batch.ParseBatchOptions(b.Options).Confirm == batch.ConfirmHold && v.Counts[string(ledger.StateAwaitingConfirm)] > 0 {
			// A run with --confirm hold: its rows wait for a person.
			v.State, v.Pending = string(ledger.ConsoleAwaitingApproval), PendingHeld
		}
	} else {
		v.State = string(ledger.ConsoleDone)
	}
	return v, nil
}

// batches lists every batch of the ledger, console or not, newest first.
func (s *Server) batches(ctx context.Context, u user) ([]BatchView, error) {
	if err := need(u, readers...); err != nil {
		return nil, err
	}
	bs, err := s.db.Batches(ctx)
	if err != nil {
		return nil, err
	}
	cbs, err := s.db.ConsoleBatches(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]BatchView, 0, len(bs))
	for _, b := range bs {
		var cb *ledger.ConsoleBatch
		if c, ok := cbs[b.ID]; ok {
			cb = &c
		}
		v, err := s.view(ctx, b, cb)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// batch returns one batch's view. Returns errNotFound for an unknown id.
func (s *Server) batch(ctx context.Context, u user, id string) (BatchView, *ledger.ConsoleBatch, error) {
	if err := need(u, readers...); err != nil {
		return BatchView{}, nil, err
	}
	b, err := s.db.Batch(ctx, id)
	if errors.Is(err, ledger.ErrNotFound) {
		return BatchView{}, nil, errNotFound
	}
	if err != nil {
		return BatchView{}, nil, err
	}
	var cb *ledger.ConsoleBatch
	if c, err := s.db.ConsoleBatch(ctx, id); err == nil {
		cb = &c
	} else if !errors.Is(err, ledger.ErrNotFound) {
		return BatchView{}, nil, err
	}
	v, err := s.view(ctx, b, cb)
	return v, cb, err
}

// RowView is one row as the console shows it: never a full card number.
type RowView struct {
	Line        int    `json:"line"`
	Reference   string `json:"reference"`
	Recipient   string `json:"recipient"`
	Card        string `json:"card"`
	Amount      string `json:"amount"`
	Currency    string `json:"currency"`
	State       string `json:"state"`
	Failure     string `json:"failure,omitempty"`
	Attempts    int    `json:"attempts"`
	Description string `json:"description,omitempty"`
}

// PageSize is how many rows a page of a batch shows.
const PageSize = 50

// rows returns page (1-based) of the batch's rows in state (all if "").
func (s *Server) rows(ctx context.Context, id, state string, page int) ([]RowView, int, error) {
	var states []ledger.State
	if state != "" {
		st := ledger.State(state)
		if !st.Valid() {
			return nil, 0, fmt.Errorf("%w: unknown state %q", errBadRequest, state)
		}
		states = append(states, st)
	}
	total, err := s.db.CountRows(ctx, id, states...)
	if err != nil {
		return nil, 0, err
	}
	page = max(page, 1)
	skip := (page - 1) * PageSize
	var out []RowView
	i := 0
	for r, err := range s.db.Rows(ctx, id, states...) {
		if err != nil {
			return nil, 0, err
		}
		i++
		if i <= skip {
			continue
		}
		out = append(out, rowView(r))
		if len(out) == PageSize {
			break
		}
	}
	return out, total, nil
}

func rowView(r ledger.Row) RowView {
	card := ""
	if r.CardBIN != "" || r.CardLast4 != "" {
		card = r.CardBIN + "******" + r.CardLast4
	}
	failure := r.FailureCode
	if r.FailureDescription != "" {
		failure = strings.TrimPrefix(failure+": "+r.FailureDescription, ": ")
	}
	return RowView{Line: r.Line, Reference: r.Reference, Recipient: r.RecipientName, Card: card,
		Amount: manifest.FormatAmount(r.Amount, r.Currency), Currency: r.Currency, State: string(r.State),
		Failure: pan.Scrub(failure), Attempts: r.Attempt, Description: r.Description}
}

func (s *Server) engineConfig() batch.Config {
	cfg := s.cfg.Engine
	cfg.Confirm = batch.ConfirmAuto
	if cfg.Flow == "" {
		cfg.Flow = batch.FlowTwoStep
	}
	if cfg.LeaseWait <= 0 {
		// `payouts serve` may hold the batch for a while to settle rows in
		// flight; the payer waits for it.
		cfg.LeaseWait = 10 * time.Minute
	}
	return cfg
}

// decide approves (or rejects) a console batch awaiting approval. The
// server refuses the uploader, the maker of a rerun, and anyone without
// the approver role (403) whatever the page showed.
func (s *Server) decide(ctx context.Context, u user, id string, approve bool) (BatchView, error) {
	action := map[bool]string{true: "approve", false: "reject"}[approve]
	v, cb, err := s.batch(ctx, u, id)
	if err != nil {
		return v, err
	}
	refuse := func(why string) (BatchView, error) {
		_ = s.db.Audit(ctx, u.audit(action+"_refused", id, why))
		return v, fmt.Errorf("%w: %s", errForbidden, why)
	}
	if !u.Has(ledger.RoleApprover) {
		return refuse("the approver role is needed")
	}
	if cb == nil {
		if v.Pending != PendingHeld {
			return v, fmt.Errorf("%w: batch %s was run from the command line and has no rows waiting for approval", errConflict, id)
		}
		return s.settleHeld(ctx, u, v, approve)
	}
	if u.Name == cb.UploadedBy || u.Name == cb.RequestedBy {
		return refuse("four eyes: " + u.Name + " asked for this and cannot " + action + " it; another approver must")
	}
	if cb.State != ledger.ConsoleAwaitingApproval {
		return v, fmt.Errorf("%w: batch %s is %s, not awaiting approval", errConflict, id, cb.State)
	}
	ch := ledger.ConsoleChange{BatchID: id, From: ledger.ConsoleAwaitingApproval}
	switch {
	case approve:
		ch.To, ch.Approver = ledger.ConsolePaying, u.Name
	case cb.Pending == ledger.PendingRerun:
		ch.To = ledger.ConsoleDone // a rejected rerun leaves the batch as it was
	default:
		ch.To = ledger.ConsoleRejected
	}
	what := cb.Pending
	ch.Decision = fmt.Sprintf("%sd by %s in the console: the %s of %s, %d rows", action, u.Name, what, cb.RequestedBy, v.Rows)
	if _, err := s.db.ChangeConsoleBatch(ctx, ch, u.audit(action, id, action+"d the "+what+" of "+cb.RequestedBy)); err != nil {
		return v, err
	}
	if approve {
		s.startPaying(id)
	} else {
		if err := s.cfg.Uploads.Delete(uploadName(id, what)); err != nil {
			s.log.Error("destroying a rejected upload failed", "batch", id, "err", err)
		}
	}
	v, _, err = s.batch(ctx, u, id)
	return v, err
}

// PendingHeld marks a batch run from the CLI with --confirm hold whose rows
// wait for approval: the console approves or rejects them like
// `payouts approve`/`reject` (the runner is not a console user, so any
// approver may).
const PendingHeld = "held"

// settleHeld approves (confirms) or rejects (cancels) the held rows of a
// CLI batch in the background, with the engine of `payouts approve` and
// `reject`.
func (s *Server) settleHeld(ctx context.Context, u user, v BatchView, approve bool) (BatchView, error) {
	action := map[bool]string{true: "approve", false: "reject"}[approve]
	s.mu.Lock()
	busy := s.paying[v.ID] || s.ctx.Err() != nil
	if !busy {
		s.paying[v.ID] = true
		s.wg.Add(1)
	}
	s.mu.Unlock()
	if busy {
		return v, fmt.Errorf("%w: batch %s is being settled already", errConflict, v.ID)
	}
	n := v.Counts[string(ledger.StateAwaitingConfirm)]
	if err := s.db.Audit(ctx, u.audit(action, v.ID, fmt.Sprintf("%sd the %d held rows of a batch run from the command line", action, n))); err != nil {
		s.releasePaying(v.ID)
		return v, err
	}
	// As `payouts approve` does: who decided, in the batch's events (the
	// report's decisions), before anything is sent.
	reason := map[bool]string{true: ledger.ReasonApprove, false: ledger.ReasonReject}[approve]
	if err := s.db.AddEvent(ctx, ledger.Event{BatchID: v.ID, Reason: reason, Detail: fmt.Sprintf("%sd by %s in the console: %d held rows", action, u.Name, n)}); err != nil {
		s.releasePaying(v.ID)
		return v, err
	}
	go func() {
		defer s.releasePaying(v.ID)
		cfg := s.engineConfig()
		cfg.Actor = "console:" + u.Name // named in each confirm's or rejection's event, and in the report's decisions
		o := batch.SettleOptions{Config: cfg, Owner: s.cfg.Owner, Intake: s.cfg.Intake}
		settle := batch.Approve
		if !approve {
			settle = batch.Reject
		}
		res, err := settle(s.ctx, s.db, s.cfg.Pike, v.ID, o)
		if err != nil {
			s.log.Error("settling held rows failed", "batch", v.ID, "action", action, "err", pan.Scrub(err.Error()))
			return
		}
		s.log.Info("held rows settled", "batch", v.ID, "action", action, "succeeded", res.Counts[ledger.StateSucceeded], "open", res.Counts.Open())
	}()
	return v, nil
}

func (s *Server) releasePaying(id string) {
	s.mu.Lock()
	delete(s.paying, id)
	s.mu.Unlock()
	s.wg.Done()
}

// uploadName is the name of a batch's file in the upload store.
func uploadName(id, pending string) string {
	if pending == ledger.PendingRerun {
		return id + ".rerun"
	}
	return id
}

// writeReport writes the batch's reconciliation report (the CSV of
// `payouts report`, Excel CSV or JSON) and audits the download.
func (s *Server) writeReport(w http.ResponseWriter, r *http.Request, u user) error {
	id := r.PathValue("id")
	if _, _, err := s.batch(r.Context(), u, id); err != nil {
		return err
	}
	format := r.URL.Query().Get("format")
	o := report.Options{Format: report.CSV}
	if format == "excel" {
		format = string(report.ExcelCSV)
	}
	if format != "" {
		f, err := report.ParseFormat(format)
		if err != nil {
			return fmt.Errorf("%w: %v", errBadRequest, err)
		}
		o.Format = f
	}
	ext, ctype := "csv", "text/csv; charset=utf-8"
	switch o.Format {
	case report.JSON:
		ext, ctype = "json", "application/json; charset=utf-8"
	case report.XLSX:
		ext, ctype = "xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
	}
	if err := s.db.Audit(r.Context(), u.audit("report_download", id, "format "+string(o.Format))); err != nil {
		return err
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="payouts-%s.%s"`, id, ext))
	return report.Write(r.Context(), s.db, id, w, o)
}
