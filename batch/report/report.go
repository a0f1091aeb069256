package report

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/internal/pan"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
)

// Columns are the columns of the reconciliation report, in order.
var Columns = []string{"row", "reference", "status", "amount", "currency", "card", "recipient_name",
	"session_id", "payout_id", "attempts", "failure_code", "failure_description", "created_at", "finished_at",
	"description", "email"}

// Format is the report's file format: csv, excel-csv, json or xlsx.
type Format string

// Report formats.
const (
	// CSV is RFC 4180 with `,` and `.`, for scripts and imports.
	CSV Format = "csv"
	// ExcelCSV is the CSV for a spreadsheet opened by double-click: a UTF-8
	// BOM, `;` separators and amounts with a decimal comma, which is what a
	// spreadsheet in a Russian (or most European) locale opens as text and
	// numbers without an import dialog; identities (references, session and
	// payout ids) and other all-digit text are written as ="…" so the
	// spreadsheet keeps them as text (00123 stays 00123).
	ExcelCSV Format = "excel-csv"
	// JSON is one Document, for machines.
	JSON Format = "json"
	// XLSX is an Excel workbook with the sheets Rows, Summary, Control
	// totals and Findings: text as text, amounts as numbers, times as dates.
	XLSX Format = "xlsx"
)

// Formats lists the report formats, in the order the help shows them.
var Formats = []Format{CSV, ExcelCSV, JSON, XLSX}

// ParseFormat parses a Format: "csv", "excel-csv", "json" or "xlsx" (any
// case, surrounding spaces ignored).
func ParseFormat(s string) (Format, error) {
	f := Format(strings.ToLower(strings.TrimSpace(s)))
	if slices.Contains(Formats, f) {
		return f, nil
	}
	return "", fmt.Errorf("unknown report format %q: use csv, excel-csv, json or xlsx", s)
}

// Binary reports whether the format is not text (xlsx): it makes no sense
// on a terminal.
func (f Format) Binary() bool { return f == XLSX }

// Options configure Write.
type Options struct {
	Format Format
	// Excel is the old spelling of Format ExcelCSV, kept for callers that
	// set it: with Format CSV (or empty) it selects ExcelCSV.
	//
	// Deprecated: set Format to ExcelCSV.
	Excel bool
	// Now is the report's timestamp (default time.Now).
	Now func() time.Time
}

// Row is one manifest row in the report.
type Row struct {
	Row                int    `json:"row"`
	Reference          string `json:"reference"`
	Status             string `json:"status"`
	Amount             string `json:"amount"` // major units with the currency's digits, never a float
	Currency           string `json:"currency"`
	Card               string `json:"card"` // masked: 424242******4242
	RecipientName      string `json:"recipient_name"`
	SessionID          string `json:"session_id"`
	PayoutID           string `json:"payout_id"`
	Attempts           int    `json:"attempts"`
	FailureCode        string `json:"failure_code"`
	FailureDescription string `json:"failure_description"`
	CreatedAt          string `json:"created_at"`
	FinishedAt         string `json:"finished_at"`
	Description        string `json:"description"`
	Email              string `json:"email"`
}

// cells renders the row for a CSV flavour: c makes each cell safe by its
// kind (identity, text, number).
func (r Row) cells(c csvCells) []string {
	return []string{strconv.Itoa(r.Row), c.ident(r.Reference), c.text(r.Status), c.amount(r.Amount), c.text(r.Currency),
		c.text(r.Card), c.text(r.RecipientName), c.ident(r.SessionID), c.ident(r.PayoutID), strconv.Itoa(r.Attempts),
		c.text(r.FailureCode), c.text(r.FailureDescription), c.text(r.CreatedAt), c.text(r.FinishedAt),
		c.text(r.Description), c.text(r.Email)}
}

// SummaryLine is the count and sum of one status in one currency.
type SummaryLine struct {
	Currency string `json:"currency"`
	Status   string `json:"status"`
	Rows     int    `json:"rows"`
	Amount   string `json:"amount"`
}

// ControlTotal compares, per currency, what the manifest asked for, what
// was submitted to Pike, and what Pike reports as paid.
type ControlTotal struct {
	Currency  string `json:"currency"`
	Manifest  string `json:"manifest"`
	Submitted string `json:"submitted"`
	Succeeded string `json:"succeeded"`
}

// Finding is something in the batch a person must look at, with what to do.
type Finding struct {
	Kind      FindingKind `json:"kind"`
	Row       int         `json:"row,omitempty"`
	Reference string      `json:"reference,omitempty"`
	SessionID string      `json:"session_id,omitempty"`
	Detail    string      `json:"detail"`
	Action    string      `json:"action"`
}

// FindingKind names what a Finding is about; it is the report's "kind"
// column and JSON field.
type FindingKind string

// Finding kinds.
const (
	FindingMismatch         FindingKind = "mismatch"               // cancelled: Pike's session differed from the row
	FindingReview           FindingKind = "review"                 // Pike reported an error only its support can resolve
	FindingNoPikeRecord     FindingKind = "no_pike_record"         // Pike does not know the row's session
	FindingUnknown          FindingKind = "unknown"                // the outcome of a call to Pike is not known yet
	FindingPending          FindingKind = "pending"                // in flight at Pike, no final result yet
	FindingAwaitingApproval FindingKind = "awaiting_approval"      // hold mode: waits for payouts approve/reject
	FindingNotSent          FindingKind = "not_sent"               // never reached Pike
	FindingWebhookAmount    FindingKind = "webhook_amount_differs" // a webhook reported another amount or currency
	FindingUnmatchedSession FindingKind = "session_without_row"    // a webhook about a session no batch made
)

// Decision is a person's approval or rejection of held payouts, from the
// batch's audit log: Detail names who and which rows.
type Decision struct {
	Decision string `json:"decision"` // approve or reject
	At       string `json:"at"`       // RFC 3339, UTC
	Detail   string `json:"detail"`
}

// Summary is everything in the report besides the rows.
type Summary struct {
	BatchID        string         `json:"batch_id"`
	Manifest       string         `json:"manifest"`
	ManifestSHA256 string         `json:"manifest_sha256"`
	GeneratedAt    string         `json:"generated_at"`
	RowCount       int            `json:"row_count"`
	Lines          []SummaryLine  `json:"summary"`
	Control        []ControlTotal `json:"control_totals"`
	Findings       []Finding      `json:"findings"`
	Decisions      []Decision     `json:"decisions"`
}

// Document is the shape of the JSON report (--format json): the
// summary's fields and the rows, in one object.
type Document struct {
	Summary
	Rows []Row `json:"rows"`
}

// newRow renders a ledger row for the report. Free text is PAN-scrubbed
// once more: the report is the file most likely to be mailed around.
func newRow(r ledger.Row) Row {
	return Row{
		Row: r.Line, Reference: pan.Scrub(r.Reference), Status: string(r.State),
		Amount: manifest.FormatAmount(r.Amount, r.Currency), Currency: r.Currency,
		Card: pan.MaskParts(r.CardBIN, r.CardLast4), RecipientName: pan.Scrub(r.RecipientName),
		SessionID: r.SessionID, PayoutID: r.PayoutID, Attempts: r.Attempt,
		FailureCode: pan.Scrub(r.FailureCode), FailureDescription: pan.Scrub(r.FailureDescription),
		CreatedAt: timeCell(r.CreatedAt), FinishedAt: timeCell(r.FinishedAt),
		Description: pan.Scrub(r.Description), Email: pan.Scrub(r.Email),
	}
}

func timeCell(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// builder computes the summary, control totals and findings while the
// rows stream past, so the sections after the rows always agree with the
// rows printed, even while `payouts serve` applies webhooks meanwhile.
type builder struct {
	ctx       context.Context
	store     Store
	batch     ledger.Batch
	sum       Summary
	lines     map[[2]string]*summaryAcc // currency, state
	submitted map[string]int64
	succeeded map[string]int64
}

type summaryAcc struct {
	rows   int
	amount int64
}

func newBuilder(ctx context.Context, store Store, batchID string, now time.Time) (*builder, error) {
	b, err := store.Batch(ctx, batchID)
	if err != nil {
		return nil, fmt.Errorf("batch %s: %w", batchID, err)
	}
	return &builder{ctx: ctx, store: store, batch: b,
		sum: Summary{BatchID: b.ID, Manifest: b.ManifestName, ManifestSHA256: b.ManifestSHA256,
			GeneratedAt: now.UTC().Format(time.RFC3339), Lines: []SummaryLine{}, Control: []ControlTotal{}, Findings: []Finding{}},
		lines: map[[2]string]*summaryAcc{}, submitted: map[string]int64{}, succeeded: map[string]int64{},
	}, nil
}

// each streams the batch's rows in manifest order to fn, counting each into
// the summary (and its finding) first.
func (rb *builder) each(fn func(ledger.Row) error) error {
	for row, err := range rb.store.Rows(rb.ctx, rb.batch.ID) {
		if err != nil {
			return fmt.Errorf("rows of batch %s: %w", rb.batch.ID, err)
		}
		f, ok, err := rowFinding(rb.ctx, rb.store, rb.batch.ID, row)
		if err != nil {
			return err
		}
		if !ok {
			rb.count(row, nil)
		} else {
			rb.count(row, &f)
		}
		if err := fn(row); err != nil {
			return err
		}
	}
	return nil
}

// count adds one row to the summary and records its finding, if any.
func (rb *builder) count(row ledger.Row, f *Finding) {
	rb.sum.RowCount++
	k := [2]string{row.Currency, string(row.State)}
	acc := rb.lines[k]
	if acc == nil {
		acc = &summaryAcc{}
		rb.lines[k] = acc
	}
	acc.rows++
	acc.amount += row.Amount
	if row.Attempt > 0 {
		rb.submitted[row.Currency] += row.Amount
	}
	if row.State == ledger.StateSucceeded {
		rb.succeeded[row.Currency] += row.Amount
	}
	if f != nil {
		rb.sum.Findings = append(rb.sum.Findings, *f)
	}
}

// finish completes the summary: lines per currency in flow order of the
// states, control totals, and the webhooks about sessions no batch made.
func (rb *builder) finish() (Summary, error) {
	keys := make([][2]string, 0, len(rb.lines))
	for k := range rb.lines {
		keys = append(keys, k)
	}
	order := func(s string) int { return slices.Index(ledger.States(), ledger.State(s)) }
	sort.Slice(keys, func(i, j int) bool {
		if keys[i][0] != keys[j][0] {
			return keys[i][0] < keys[j][0]
		}
		return order(keys[i][1]) < order(keys[j][1])
	})
	for _, k := range keys {
		acc := rb.lines[k]
		rb.sum.Lines = append(rb.sum.Lines, SummaryLine{Currency: k[0], Status: k[1], Rows: acc.rows, Amount: manifest.FormatAmount(acc.amount, k[0])})
	}
	currencies := map[string]bool{}
	for _, m := range []map[string]int64{rb.batch.Totals, rb.submitted, rb.succeeded} {
		for c := range m {
			currencies[c] = true
		}
	}
	for _, c := range sortedKeys(currencies) {
		rb.sum.Control = append(rb.sum.Control, ControlTotal{Currency: c, Manifest: manifest.FormatAmount(rb.batch.Totals[c], c),
			Submitted: manifest.FormatAmount(rb.submitted[c], c), Succeeded: manifest.FormatAmount(rb.succeeded[c], c)})
	}

	decisions, err := rb.store.Decisions(rb.ctx, rb.batch.ID)
	if err != nil {
		return rb.sum, fmt.Errorf("decisions: %w", err)
	}
	rb.sum.Decisions = []Decision{}
	for _, e := range decisions {
		rb.sum.Decisions = append(rb.sum.Decisions, Decision{Decision: e.Reason, At: timeCell(e.At), Detail: pan.Scrub(e.Detail)})
	}

	unmatched, err := rb.store.UnmatchedWebhooks(rb.ctx, rb.batch.CreatedAt)
	if err != nil {
		return rb.sum, fmt.Errorf("unmatched webhooks: %w", err)
	}
	seen := map[string]bool{}
	for _, w := range unmatched {
		if seen[w.SessionID] {
			continue
		}
		seen[w.SessionID] = true
		rb.sum.Findings = append(rb.sum.Findings, Finding{Kind: FindingUnmatchedSession, SessionID: w.SessionID,
			Detail: fmt.Sprintf("%s webhook (session %s, payout %s) about a session no batch in this ledger made; it was stored and not acted on", w.Type, w.SessionStatus, w.PayoutStatus),
			Action: "if no other system of yours uses this Pike project, ask Pike support about the session"})
	}
	return rb.sum, nil
}

// BuildSummary computes the summary, control totals and findings of a
// batch from the ledger. It can be run at any time; it only reads.
func BuildSummary(ctx context.Context, store Store, batchID string, now time.Time) (Summary, error) {
	rb, err := newBuilder(ctx, store, batchID, now)
	if err != nil {
		return Summary{}, err
	}
	if err := rb.each(func(ledger.Row) error { return nil }); err != nil {
		return rb.sum, err
	}
	return rb.finish()
}

// rowFinding returns the finding a row calls for, if any.
func rowFinding(ctx context.Context, store Store, batchID string, row ledger.Row) (Finding, bool, error) {
	f := Finding{Row: row.Line, Reference: row.Reference, SessionID: row.SessionID}
	desc := pan.Scrub(row.FailureDescription)
	switch row.State {
	case ledger.StateMismatch:
		f.Kind, f.Detail = FindingMismatch, "cancelled because Pike's session differed from the row: "+desc
		f.Action = "compare the row with the session at Pike; once understood, `payouts rerun --batch " + batchID + " --include-mismatch` pays it again"
		return f, true, nil
	case ledger.StateReview:
		f.Kind, f.Detail = FindingReview, fmt.Sprintf("%s: %s", row.FailureCode, desc)
		switch row.FailureCode {
		case ledger.CodeNoPikeRecord:
			f.Kind = FindingNoPikeRecord
			f.Action = "ask Pike support whether session " + row.SessionID + " exists; the row is never retried automatically"
		case ledger.CodePaidAmountDiffers:
			f.Action = "money moved, but not the row's amount: settle the difference with the recipient and record it; the row is never retried"
		case ledger.CodeSupersededSuccess:
			f.Action = "an earlier attempt reported success after a new one was opened: check every session of this reference at Pike; the recipient may have been paid twice"
		default:
			f.Action = "do not rerun: ask Pike support for the final status of session " + row.SessionID
		}
		return f, true, nil
	case ledger.StateUnknown, ledger.StateCreating, ledger.StateStarting, ledger.StateConfirming, ledger.StateCancelling:
		f.Kind, f.Detail = FindingUnknown, "the outcome of the last call to Pike is not known yet ("+string(row.State)+")"
		f.Action = "run the same command again or keep `payouts serve` running: it is resolved with session/status; never pay it by hand"
		if row.SessionID == "" && row.State == ledger.StateUnknown {
			// A lost session/init/payout: no id to ask about. Only a
			// webhook carrying the attempt's metadata can settle it.
			f.Detail = fmt.Sprintf("session/init/payout of attempt %d was sent and its answer lost: Pike may or may not have made the payout, and no session id is known", row.Attempt)
			f.Action = fmt.Sprintf("keep `payouts serve` running: a webhook with metadata %q settles it; otherwise ask Pike support for a session with that metadata. Never pay it by hand", ledger.RowKey(batchID, row.Reference, row.Attempt))
		}
		return f, true, nil
	case ledger.StateCreated, ledger.StateConfirmed:
		f.Kind, f.Detail = FindingPending, "in flight at Pike, no final result yet ("+string(row.State)+")"
		f.Action = "keep `payouts serve` running (or run the same command again) and regenerate this report; never pay it by hand"
		return f, true, nil
	case ledger.StateAwaitingConfirm:
		f.Kind, f.Detail = FindingAwaitingApproval, "ready to confirm, held for approval (--confirm hold)"
		f.Action = "`payouts approve --batch " + batchID + "` or `payouts reject --batch " + batchID + "`; Pike cancels it " + fmt.Sprintf("%.0f minutes", pike.ConfirmDeadline.Minutes()) + " after it was started"
		return f, true, nil
	case ledger.StatePlanned:
		f.Kind, f.Detail = FindingNotSent, "never sent to Pike"
		if row.Attempt > 0 {
			f.Detail = fmt.Sprintf("attempt %d ended (session %s); a new attempt is planned and was not sent yet", row.Attempt, row.SessionID)
		}
		f.Action = "run the same manifest again (`payouts run`, batch " + batchID + ") to pay it"
		return f, true, nil
	}
	if row.SessionID == "" {
		return f, false, nil
	}
	// Amounts and currencies Pike reported in webhooks must be the row's.
	ws, err := store.WebhooksForSession(ctx, row.SessionID)
	if err != nil {
		return f, false, fmt.Errorf("webhooks of session %s: %w", row.SessionID, err)
	}
	for _, w := range ws {
		wh, err := pike.ParseWebhook(w.Body)
		if err != nil {
			continue
		}
		p := wh.Session.Payout()
		if p == nil || p.AmountDetails == nil {
			continue
		}
		if p.AmountDetails.Amount != row.Amount || !strings.EqualFold(p.AmountDetails.Currency, row.Currency) {
			f.Kind = FindingWebhookAmount
			f.Detail = fmt.Sprintf("%s webhook reported %s %s, the row is %s %s (row %s)", wh.Type,
				manifest.FormatAmount(p.AmountDetails.Amount, p.AmountDetails.Currency), strings.ToUpper(p.AmountDetails.Currency),
				manifest.FormatAmount(row.Amount, row.Currency), row.Currency, row.State)
			f.Action = "check the payout at Pike; if an amount other than the row's was paid, settle the difference with the recipient"
			return f, true, nil
		}
	}
	return f, false, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Write writes the reconciliation report of a batch to w: one row per
// manifest row, then the summary, control totals and findings. Reports are
// built from the ledger alone, in one pass over the rows, and can be
// regenerated at any time.
func Write(ctx context.Context, store Store, batchID string, w io.Writer, o Options) error {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Format == "" {
		o.Format = CSV
	}
	if o.Excel && o.Format == CSV {
		o.Format = ExcelCSV
	}
	if _, err := ParseFormat(string(o.Format)); err != nil {
		return err
	}
	if o.Excel && o.Format != ExcelCSV {
		return fmt.Errorf("report: Excel is for the CSV report, not %s", o.Format)
	}
	rb, err := newBuilder(ctx, store, batchID, o.Now())
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	switch o.Format {
	case JSON:
		err = writeJSON(rb, bw)
	case CSV, ExcelCSV:
		err = writeCSV(rb, bw, o.Format == ExcelCSV)
	case XLSX:
		err = writeXLSX(rb, bw)
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

func writeCSV(rb *builder, w *bufio.Writer, excel bool) error {
	cw := csv.NewWriter(w)
	c := csvCells{excel: excel}
	if excel {
		w.WriteString("\ufeff")
		cw.Comma = ';'
	}
	write := func(cells ...string) error { return cw.Write(cells) }
	// header writes a section's header line: plain words, safe as they are.
	header := func(names ...string) error { return cw.Write(names) }
	// Each section after the rows follows an empty line and has its own
	// header; its first column names it.
	section := func() {
		cw.Flush()
		w.WriteString("\n")
	}
	if err := header(slices.Clone(Columns)...); err != nil {
		return err
	}
	if err := rb.each(func(row ledger.Row) error { return write(newRow(row).cells(c)...) }); err != nil {
		return err
	}
	sum, err := rb.finish()
	if err != nil {
		return err
	}
	section()
	header("summary", "currency", "status", "rows", "amount")
	for _, l := range sum.Lines {
		write("summary", c.text(l.Currency), c.text(l.Status), strconv.Itoa(l.Rows), c.amount(l.Amount))
	}
	section()
	header("control", "currency", "manifest", "submitted", "succeeded")
	for _, t := range sum.Control {
		write("control", c.text(t.Currency), c.amount(t.Manifest), c.amount(t.Submitted), c.amount(t.Succeeded))
	}
	section()
	header("finding", "kind", "row", "reference", "session_id", "detail", "action")
	for _, f := range sum.Findings {
		row := ""
		if f.Row > 0 {
			row = strconv.Itoa(f.Row)
		}
		write("finding", c.text(string(f.Kind)), row, c.ident(f.Reference), c.ident(f.SessionID), c.text(f.Detail), c.text(f.Action))
	}
	section()
	header("decision", "action", "at", "detail")
	for _, d := range sum.Decisions {
		write("decision", c.text(d.Decision), c.text(d.At), c.text(d.Detail))
	}
	section()
	header("batch", "id", "manifest", "manifest_sha256", "generated_at", "rows")
	write("batch", c.ident(sum.BatchID), c.text(sum.Manifest), c.ident(sum.ManifestSHA256), c.text(sum.GeneratedAt), strconv.Itoa(sum.RowCount))
	cw.Flush()
	return cw.Error()
}

// writeJSON streams a Document: the batch's identity, the rows,
// then the summary computed from those very rows, without holding every
// row in memory.
func writeJSON(rb *builder, w *bufio.Writer) error {
	head, err := json.MarshalIndent(struct {
		BatchID        string `json:"batch_id"`
		Manifest       string `json:"manifest"`
		ManifestSHA256 string `json:"manifest_sha256"`
		GeneratedAt    string `json:"generated_at"`
	}{rb.sum.BatchID, rb.sum.Manifest, rb.sum.ManifestSHA256, rb.sum.GeneratedAt}, "", "  ")
	if err != nil {
		return err
	}
	w.Write(bytes.TrimSuffix(head, []byte("\n}")))
	w.WriteString(",\n  \"rows\": [")
	first := true
	err = rb.each(func(row ledger.Row) error {
		b, err := json.Marshal(newRow(row))
		if err != nil {
			return err
		}
		if !first {
			w.WriteString(",")
		}
		first = false
		w.WriteString("\n    ")
		w.Write(b)
		return nil
	})
	if err != nil {
		return err
	}
	if !first {
		w.WriteString("\n  ")
	}
	w.WriteString("],\n")
	sum, err := rb.finish()
	if err != nil {
		return err
	}
	tail, err := json.MarshalIndent(struct {
		RowCount  int            `json:"row_count"`
		Lines     []SummaryLine  `json:"summary"`
		Control   []ControlTotal `json:"control_totals"`
		Findings  []Finding      `json:"findings"`
		Decisions []Decision     `json:"decisions"`
	}{sum.RowCount, sum.Lines, sum.Control, sum.Findings, sum.Decisions}, "", "  ")
	if err != nil {
		return err
	}
	w.Write(bytes.TrimPrefix(tail, []byte("{\n")))
	w.WriteString("\n")
	return nil
}

// SpreadsheetSafe neutralises a cell a spreadsheet would run as a formula
// by prefixing an apostrophe: a leading = + - @ (or their full-width forms,
// which some spreadsheets also accept), tab or carriage return.
func SpreadsheetSafe(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	for _, p := range []string{"＝", "＋", "－", "＠"} {
		if strings.HasPrefix(s, p) {
			return "'" + s
		}
	}
	return s
}
