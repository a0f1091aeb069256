package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/internal/pan"
	"github.com/payouts/payouts/ledger"
)

// upload is a received manifest, in memory only.
type upload struct {
	fileName string
	data     []byte
	opts     manifest.Options
}

// readUpload streams a multipart request (field manifest, optional
// expect_rows and expect_total) into memory, never to disk: no
// ParseMultipartForm, which spills large files to temporary files.
func (s *Server) readUpload(w http.ResponseWriter, r *http.Request) (upload, error) {
	r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxUploadBytes)
	mr, err := r.MultipartReader()
	if err != nil {
		return upload{}, fmt.Errorf("%w: send multipart/form-data with the file in field \"manifest\"", errBadRequest)
	}
	up := upload{opts: s.cfg.ManifestOptions}
	var expectRows, expectTotal string
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return upload{}, bodyError(err)
		}
		switch part.FormName() {
		case "manifest":
			up.fileName = filepath.Base(part.FileName())
			if up.data, err = io.ReadAll(part); err != nil {
				return upload{}, bodyError(err)
			}
		case "expect_rows":
			expectRows, err = smallField(part)
		case "expect_total":
			expectTotal, err = smallField(part)
		case "allow_duplicates":
			var v string
			v, err = smallField(part)
			up.opts.AllowDuplicates = truthy(v)
		default:
			_, err = io.Copy(io.Discard, part)
		}
		if err != nil {
			return upload{}, bodyError(err)
		}
	}
	if up.data == nil {
		return upload{}, fmt.Errorf("%w: no file in field \"manifest\"", errBadRequest)
	}
	if up.fileName == "" || up.fileName == "." {
		up.fileName = "upload.csv"
	}
	var problems []Problem
	if expectRows = strings.TrimSpace(expectRows); expectRows != "" {
		n, err := strconv.Atoi(expectRows)
		if err != nil || n <= 0 {
			problems = append(problems, Problem{Column: "expect_rows", Message: fmt.Sprintf("expected rows %q is not a positive whole number", expectRows)})
		}
		up.opts.ExpectRows = n
	}
	for _, f := range strings.FieldsFunc(expectTotal, func(r rune) bool { return r == '\n' || r == ';' }) {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		cur, minor, err := manifest.ParseTotal(f)
		if err != nil {
			problems = append(problems, Problem{Column: "expect_total", Message: fmt.Sprintf("expected total %q: %v — write it as RUB:150000.00, one per currency", f, err)})
			continue
		}
		if up.opts.ExpectTotals == nil {
			up.opts.ExpectTotals = map[string]int64{}
		}
		if _, dup := up.opts.ExpectTotals[cur]; dup {
			problems = append(problems, Problem{Column: "expect_total", Message: "expected total for " + cur + " given twice"})
		}
		up.opts.ExpectTotals[cur] = minor
	}
	if pan.Contains(up.fileName) {
		problems = append(problems, Problem{Column: "file name", Message: "the file's name holds a card number, which is never stored — rename the file"})
	}
	if len(problems) > 0 {
		// The fields' values are echoed: a card number pasted into the
		// wrong box must not come back (nor reach a page or log).
		for i := range problems {
			problems[i].Message = pan.Scrub(problems[i].Message)
		}
		return upload{}, &ProblemsError{Problems: problems, Total: len(problems)}
	}
	return up, nil
}

func bodyError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return fmt.Errorf("%w: the limit is %d bytes", errTooLarge, mbe.Limit)
	}
	return fmt.Errorf("%w: reading the upload: %v", errBadRequest, err)
}

// truthy reads a form checkbox or an API flag.
func truthy(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "on", "true", "yes":
		return true
	}
	return false
}

func smallField(p *multipart.Part) (string, error) {
	b, err := io.ReadAll(io.LimitReader(p, 4096))
	return string(b), err
}

// ValidateManifest validates a whole manifest held in memory exactly as
// `payouts validate` does: CSV or XLSX, told by the content
// (manifest.ReadBytes; the name is used for messages). Every problem is in
// the returned *ProblemsError.
func ValidateManifest(fileName string, data []byte, opts manifest.Options) (manifest.Summary, error) {
	sum, err := manifest.ReadBytes(fileName, data, opts, nil)
	var ve *manifest.ValidationError
	if errors.As(err, &ve) {
		pe := &ProblemsError{Total: ve.Total}
		for _, e := range ve.Errors {
			pe.Problems = append(pe.Problems, problemOf(e))
		}
		return sum, pe
	}
	if err != nil {
		return sum, &ProblemsError{Total: 1, Problems: []Problem{{Message: pan.Scrub(err.Error())}}}
	}
	return sum, nil
}

func problemOf(e *manifest.RowError) Problem {
	var b strings.Builder
	if e.Value != "" {
		fmt.Fprintf(&b, "%q: ", e.Value)
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	if e.Hint != "" {
		b.WriteString(" — " + e.Hint)
	}
	return Problem{Line: e.Line, Column: e.Column, Message: pan.Scrub(b.String())}
}

// consoleOptions is what is stored of the options an upload was validated
// with, to read it again identically when paying.
type consoleOptions struct {
	Manifest manifest.Options `json:"manifest"`
	SHA256   string           `json:"sha256"`
	// Warnings are the duplicate payouts the uploader allowed
	// (allow_duplicates), for the approver to see; values are masked.
	Warnings []Problem `json:"warnings,omitempty"`
}

func warningsOf(sum manifest.Summary) []Problem {
	var out []Problem
	for _, w := range sum.Warnings {
		out = append(out, problemOf(w))
	}
	return out
}

// create validates an upload and, if it is valid, stores it encrypted,
// records its batch and rows (no card numbers) in the ledger and leaves it
// awaiting approval. Any problem: nothing is stored.
func (s *Server) create(ctx context.Context, u user, up upload) (BatchView, error) {
	if err := need(u, ledger.RoleMaker); err != nil {
		return BatchView{}, err
	}
	sum, err := ValidateManifest(up.fileName, up.data, up.opts)
	if err != nil {
		_ = s.db.Audit(ctx, u.audit("upload_refused", "", fmt.Sprintf("%s: %v", up.fileName, err)))
		return BatchView{}, err
	}
	id := batch.BatchIDFor(sum.SHA256)
	if !s.claimUpload(id) {
		return BatchView{}, fmt.Errorf("%w: this file is being uploaded right now as batch %s", errConflict, id)
	}
	defer s.releaseUpload(id)
	if err := s.checkNewBatch(ctx, id); err != nil {
		return BatchView{}, err
	}
	opts, err := json.Marshal(consoleOptions{Manifest: up.opts, SHA256: sum.SHA256, Warnings: warningsOf(sum)})
	if err != nil {
		return BatchView{}, err
	}
	// The encrypted file first: a console batch never exists without it.
	if err := s.cfg.Uploads.Put(id, up.data); err != nil {
		return BatchView{}, err
	}
	if err := s.load(ctx, id, up, sum); err != nil {
		// Destroy the file only if no batch needs it: another server on
		// the same ledger may have recorded the same file (same id) since.
		if _, cerr := s.db.ConsoleBatch(context.WithoutCancel(ctx), id); errors.Is(cerr, ledger.ErrNotFound) {
			_ = s.cfg.Uploads.Delete(id)
		}
		return BatchView{}, err
	}
	detail := fmt.Sprintf("uploaded %s: %d rows, %s", up.fileName, sum.Rows, totalsText(sum.Totals))
	if up.opts.AllowDuplicates {
		detail += fmt.Sprintf("; duplicates allowed (%d duplicate payouts)", len(sum.Warnings))
	}
	cb := ledger.ConsoleBatch{BatchID: id, FileName: up.fileName, Options: string(opts), UploadedBy: u.Name}
	if err := s.db.CreateConsoleBatch(ctx, cb, u.audit("upload", id, detail)); err != nil {
		return BatchView{}, err
	}
	v, _, err := s.batch(ctx, u, id)
	return v, err
}

// claimUpload marks batch id as being uploaded by this process, or
// reports false if it already is (the same file sent twice at once).
func (s *Server) claimUpload(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.uploading[id] {
		return false
	}
	s.uploading[id] = true
	return true
}

func (s *Server) releaseUpload(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.uploading, id)
}

// checkNewBatch refuses a file whose batch already exists (the same file
// is the same batch), except the remains of an upload of it cut short (the
// server stopped between loading its rows and recording it for approval):
// no console record, rows all planned, named as an upload. Such a batch is
// completed by this upload.
func (s *Server) checkNewBatch(ctx context.Context, id string) error {
	b, err := s.db.Batch(ctx, id)
	if errors.Is(err, ledger.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	taken := fmt.Errorf("%w: this file was already uploaded or run as batch %s", errConflict, id)
	if _, err := s.db.ConsoleBatch(ctx, id); err == nil || !errors.Is(err, ledger.ErrNotFound) {
		return taken
	}
	if !strings.HasPrefix(b.ManifestName, "upload ") {
		return taken
	}
	all, err := s.db.CountRows(ctx, id)
	if err != nil {
		return err
	}
	planned, err := s.db.CountRows(ctx, id, ledger.StatePlanned)
	if err != nil {
		return err
	}
	if all != planned {
		return taken
	}
	return nil
}

func totalsText(t map[string]int64) string {
	var parts []string
	for c, v := range t {
		parts = append(parts, manifest.FormatAmount(v, c)+" "+c)
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// load records the batch and its rows in the ledger under the batch's
// lease, reading the upload from memory.
func (s *Server) load(ctx context.Context, id string, up upload, sum manifest.Summary) error {
	lease, err := s.db.AcquireLease(ctx, id, s.cfg.Owner, time.Minute)
	if err != nil {
		return err
	}
	defer lease.Release(context.WithoutCancel(ctx))
	bo := batch.BatchOptions{Flow: s.engineConfig().Flow, Confirm: batch.ConfirmAuto}
	_, _, err = batch.PrepareSource(ctx, s.db, batch.MemorySource("upload "+up.fileName, up.data), up.opts, sum, id, s.cfg.Engine.Fingerprinter, bo)
	return err
}

// rerun asks for new attempts of the failed rows of a done console batch,
// with a corrected file; it waits for another person's approval.
func (s *Server) rerun(ctx context.Context, u user, id string, up upload) (BatchView, error) {
	if err := need(u, ledger.RoleMaker); err != nil {
		return BatchView{}, err
	}
	// One rerun request at a time per batch, from reading its state to
	// recording the request: two at once would both see it done, the
	// second's file would replace the first's under the same name, and the
	// loser's clean-up would destroy the winner's file.
	if !s.claimUpload(uploadName(id, ledger.PendingRerun)) {
		return BatchView{}, fmt.Errorf("%w: a rerun of batch %s is being asked for right now", errConflict, id)
	}
	defer s.releaseUpload(uploadName(id, ledger.PendingRerun))
	v, cb, err := s.batch(ctx, u, id)
	if err != nil {
		return v, err
	}
	if cb == nil || cb.State != ledger.ConsoleDone {
		return v, fmt.Errorf("%w: only a finished console batch can be rerun (this one is %s)", errConflict, v.State)
	}
	sum, err := ValidateManifest(up.fileName, up.data, up.opts)
	if err != nil {
		return v, err
	}
	// Every reference must be a row of the batch: a rerun never adds rows.
	var problems []Problem
	if _, err := manifest.ReadBytes(up.fileName, up.data, up.opts, func(mr manifest.Row) error {
		if _, err := s.db.RowByReference(ctx, id, mr.Reference); errors.Is(err, ledger.ErrNotFound) {
			problems = append(problems, Problem{Line: mr.Line, Column: "reference", Message: fmt.Sprintf("%q is not in batch %s — a new row belongs in a new upload", mr.Reference, id)})
		} else if err != nil {
			return err
		}
		return nil
	}); err != nil {
		return v, err
	}
	if len(problems) > 0 {
		return v, &ProblemsError{Problems: problems, Total: len(problems)}
	}
	// What the rerun would do, by the rules of `payouts rerun` (nothing is
	// written): a correction to a row that would not be retried, or a file
	// that retries nothing, is a problem now, not after the approval.
	cfg := s.engineConfig()
	plan, err := batch.PlanRerun(ctx, s.db, batch.RerunOptions{BatchID: id, Source: batch.MemorySource("upload "+up.fileName, up.data),
		ManifestOptions: up.opts, SettleOptions: batch.SettleOptions{Config: cfg}})
	switch {
	case errors.Is(err, batch.ErrCorrectionsNotApplied):
		pe := &ProblemsError{}
		for _, c := range plan.NotApplied {
			pe.Problems = append(pe.Problems, Problem{Line: c.Row.Line, Column: "reference", Message: pan.Scrub(fmt.Sprintf("%q: the file changes it (%s), but it is not retried — %s", c.Row.Reference, strings.Join(c.Changes, "; "), c.Why))})
		}
		pe.Total = len(pe.Problems)
		return v, pe
	case err != nil:
		return v, err
	case len(plan.Retried) == 0:
		return v, &ProblemsError{Total: 1, Problems: []Problem{{Message: "no row of the file failed in this batch: a rerun retries failed or cancelled rows only"}}}
	}
	opts, err := json.Marshal(consoleOptions{Manifest: up.opts, SHA256: sum.SHA256, Warnings: warningsOf(sum)})
	if err != nil {
		return v, err
	}
	if err := s.cfg.Uploads.Put(uploadName(id, ledger.PendingRerun), up.data); err != nil {
		return v, err
	}
	ch := ledger.ConsoleChange{BatchID: id, From: ledger.ConsoleDone, To: ledger.ConsoleAwaitingApproval, Rerun: true, RequestedBy: u.Name, FileName: up.fileName, Options: string(opts)}
	if _, err := s.db.ChangeConsoleBatch(ctx, ch, u.audit("rerun_requested", id, fmt.Sprintf("rerun with %s: %d failed rows retried, %d corrected", up.fileName, len(plan.Retried), corrected(plan)))); err != nil {
		_ = s.cfg.Uploads.Delete(uploadName(id, ledger.PendingRerun))
		return v, err
	}
	v, _, err = s.batch(ctx, u, id)
	return v, err
}

// DefaultManifestOptions are the manifest options of uploads before serve's
// caps are applied: the strict defaults of `payouts validate`, with an
// unzipped XLSX bounded to 256 MiB (the upload itself is bounded by
// Config.MaxUploadBytes).
func DefaultManifestOptions() manifest.Options { return manifest.Options{MaxXLSXBytes: 256 << 20} }

// corrected counts the retried rows whose file changes them.
func corrected(p batch.RerunPlan) int {
	n := 0
	for _, c := range p.Retried {
		if len(c.Changes) > 0 {
			n++
		}
	}
	return n
}
