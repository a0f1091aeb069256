package batch

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
)

// ReportColumns are the columns of the reconciliation report, in order.
var ReportColumns = []string{"row", "reference", "status", "amount", "currency", "card", "recipient_name",
	"session_id", "payout_id", "attempts", "failure_code", "failure_description", "created_at", "finished_at"}

// ReportFormat is csv or json.
type ReportFormat string

// Report formats.
const (
	ReportCSV  ReportFormat = "csv"
	ReportJSON ReportFormat = "json"
)

// ParseReportFormat parses "csv" or "json".
func ParseReportFormat(s string) (ReportFormat, error) {
	switch f := ReportFormat(strings.ToLower(s)); f {
	case ReportCSV, ReportJSON:
		return f, nil
	}
	return "", fmt.Errorf("unknown report format %q: use csv or json", s)
}

// ReportOptions configure WriteReport.
type ReportOptions struct {
	Format ReportFormat
	// Excel writes a UTF-8 BOM and `;` separators, which is what a
	// spreadsheet in a Russian (or most European) locale opens correctly.
	Excel bool
	// Now is the report's timestamp (default time.Now).
	Now func() time.Time
}

// ReportRow is one manifest row in the report.
type ReportRow struct {
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
}

func (r ReportRow) cells() []string {
	return []string{strconv.Itoa(r.Row), r.Reference, r.Status, r.Amount, r.Currency, r.Card, r.RecipientName,
		r.SessionID, r.PayoutID, strconv.Itoa(r.Attempts), r.FailureCode, r.FailureDescription, r.CreatedAt, r.FinishedAt}
}

// ReportSummaryLine is the count and sum of one status in one currency.
type ReportSummaryLine struct {
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
	Kind      string `json:"kind"`
	Row       int    `json:"row,omitempty"`
	Reference string `json:"reference,omitempty"`
	SessionID string `json:"session_id,omitempty"`
	Detail    string `json:"detail"`
	Action    string `json:"action"`
}

// Finding kinds.
const (
	FindingMismatch        = "mismatch"
	FindingReview          = "review"
	FindingUnknown         = "unknown"
	FindingNotSent         = "not_sent"
	FindingWebhookAmount   = "webhook_amount_differs"
	FindingUnmatchedSesion = "session_without_row"
)

// ReportSummary is everything in the report besides the rows.
type ReportSummary struct {
	BatchID        string              `json:"batch_id"`
	Manifest       string              `json:"manifest"`
	ManifestSHA256 string              `json:"manifest_sha256"`
	GeneratedAt    string              `json:"generated_at"`
	Rows           int                 `json:"rows"`
	Lines          []ReportSummaryLine `json:"summary"`
	Control        []ControlTotal      `json:"control_totals"`
	Findings       []Finding           `json:"findings"`
}

// reportRow renders a ledger row for the report.
func reportRow(r ledger.Row) ReportRow {
	rr := ReportRow{
		Row: r.Line, Reference: r.Reference, Status: string(r.State),
		Amount: FormatAmount(r.Amount, r.Currency), Currency: r.Currency,
		Card: maskedCard(r.CardBIN, r.CardLast4), RecipientName: r.RecipientName,
		SessionID: r.SessionID, PayoutID: r.PayoutID, Attempts: r.Attempt,
		FailureCode: r.FailureCode, FailureDescription: ledger.ScrubPAN(r.FailureDescription),
		CreatedAt: timeCell(r.CreatedAt), FinishedAt: timeCell(r.FinishedAt),
	}
	return rr
}

// maskedCard renders BIN and last4 the way PCI DSS allows a card to be
// shown (424242******4242). The length of the hidden middle is not known
// from what the ledger keeps; six stars are shown, as for a 16-digit card.
func maskedCard(bin, last4 string) string {
	if bin == "" && last4 == "" {
		return ""
	}
	return bin + "******" + last4
}

func timeCell(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// BuildReportSummary computes the summary, control totals and findings of a
// batch from the ledger. It can be run at any time; it only reads.
func BuildReportSummary(ctx context.Context, store Store, batchID string, now time.Time) (ReportSummary, error) {
	b, err := store.Batch(ctx, batchID)
	if err != nil {
		return ReportSummary{}, fmt.Errorf("batch %s: %w", batchID, err)
	}
	s := ReportSummary{BatchID: b.ID, Manifest: b.ManifestName, ManifestSHA256: b.ManifestSHA256,
		GeneratedAt: now.UTC().Format(time.RFC3339), Findings: []Finding{}}
	lines, err := store.Summary(ctx, batchID)
	if err != nil {
		return s, fmt.Errorf("summary of batch %s: %w", batchID, err)
	}
	sort.Slice(lines, func(i, j int) bool {
		if lines[i].Currency != lines[j].Currency {
			return lines[i].Currency < lines[j].Currency
		}
		return lines[i].State < lines[j].State
	})
	succeeded := map[string]int64{}
	for _, l := range lines {
		s.Rows += l.Count
		s.Lines = append(s.Lines, ReportSummaryLine{Currency: l.Currency, Status: string(l.State), Rows: l.Count, Amount: FormatAmount(l.Amount, l.Currency)})
		if l.State == ledger.StateSucceeded {
			succeeded[l.Currency] += l.Amount
		}
	}

	submitted := map[string]int64{}
	for row, err := range store.Rows(ctx, batchID) {
		if err != nil {
			return s, fmt.Errorf("rows of batch %s: %w", batchID, err)
		}
		if row.Attempt > 0 {
			submitted[row.Currency] += row.Amount
		}
		f, ok, err := rowFinding(ctx, store, row)
		if err != nil {
			return s, err
		}
		if ok {
			s.Findings = append(s.Findings, f)
		}
	}
	currencies := map[string]bool{}
	for _, m := range []map[string]int64{b.Totals, submitted, succeeded} {
		for c := range m {
			currencies[c] = true
		}
	}
	for _, c := range sortedKeys(currencies) {
		s.Control = append(s.Control, ControlTotal{Currency: c, Manifest: FormatAmount(b.Totals[c], c),
			Submitted: FormatAmount(submitted[c], c), Succeeded: FormatAmount(succeeded[c], c)})
	}

	unmatched, err := store.UnmatchedWebhooks(ctx, b.CreatedAt)
	if err != nil {
		return s, fmt.Errorf("unmatched webhooks: %w", err)
	}
	seen := map[string]bool{}
	for _, w := range unmatched {
		if seen[w.SessionID] {
			continue
		}
		seen[w.SessionID] = true
		s.Findings = append(s.Findings, Finding{Kind: FindingUnmatchedSesion, SessionID: w.SessionID,
			Detail: fmt.Sprintf("%s webhook (session %s, payout %s) about a session no batch in this ledger made; it was stored and not acted on", w.Type, w.SessionStatus, w.PayoutStatus),
			Action: "if no other system of yours uses this Pike project, ask Pike support about the session"})
	}
	return s, nil
}

// rowFinding returns the finding a row calls for, if any.
func rowFinding(ctx context.Context, store Store, row ledger.Row) (Finding, bool, error) {
	f := Finding{Row: row.Line, Reference: row.Reference, SessionID: row.SessionID}
	switch row.State {
	case ledger.StateMismatch:
		f.Kind, f.Detail = FindingMismatch, "cancelled because Pike's session differed from the row: "+ledger.ScrubPAN(row.FailureDescription)
		f.Action = "compare the row with the session at Pike; once understood, `payouts rerun --include-mismatch` pays it again"
		return f, true, nil
	case ledger.StateReview:
		f.Kind, f.Detail = FindingReview, fmt.Sprintf("%s: %s", row.FailureCode, ledger.ScrubPAN(row.FailureDescription))
		f.Action = "do not rerun: ask Pike support for the final status of session " + row.SessionID
		return f, true, nil
	case ledger.StateUnknown, ledger.StateCreating, ledger.StateStarting, ledger.StateConfirming, ledger.StateCancelling:
		f.Kind, f.Detail = FindingUnknown, "the outcome of the last call to Pike is not known yet ("+string(row.State)+")"
		f.Action = "run the same command again or keep `payouts serve` running: it is resolved with session/status; never pay it by hand"
		return f, true, nil
	case ledger.StatePlanned:
		f.Kind, f.Detail = FindingNotSent, "never sent to Pike"
		f.Action = "run the manifest again to pay it"
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
				FormatAmount(p.AmountDetails.Amount, row.Currency), strings.ToUpper(p.AmountDetails.Currency),
				FormatAmount(row.Amount, row.Currency), row.Currency, row.State)
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

// WriteReport writes the reconciliation report of a batch to w: one row per
// manifest row, then the summary, control totals and findings. Reports are
// built from the ledger alone and can be regenerated at any time.
func WriteReport(ctx context.Context, store Store, batchID string, w io.Writer, o ReportOptions) error {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Format == "" {
		o.Format = ReportCSV
	}
	sum, err := BuildReportSummary(ctx, store, batchID, o.Now())
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	switch o.Format {
	case ReportJSON:
		err = writeReportJSON(ctx, store, batchID, bw, sum)
	default:
		err = writeReportCSV(ctx, store, batchID, bw, sum, o.Excel)
	}
	if err != nil {
		return err
	}
	return bw.Flush()
}

func writeReportCSV(ctx context.Context, store Store, batchID string, w *bufio.Writer, sum ReportSummary, excel bool) error {
	cw := csv.NewWriter(w)
	if excel {
		w.WriteString("\ufeff")
		cw.Comma = ';'
	}
	write := func(cells ...string) error {
		for i, c := range cells {
			cells[i] = SpreadsheetSafe(c)
		}
		return cw.Write(cells)
	}
	if err := write(append([]string(nil), ReportColumns...)...); err != nil {
		return err
	}
	for row, err := range store.Rows(ctx, batchID) {
		if err != nil {
			return fmt.Errorf("rows of batch %s: %w", batchID, err)
		}
		if err := write(reportRow(row).cells()...); err != nil {
			return err
		}
	}
	// The summary follows after an empty line, each table with its own header.
	cw.Flush()
	w.WriteString("\n")
	write("summary", "currency", "status", "rows", "amount")
	for _, l := range sum.Lines {
		write("summary", l.Currency, l.Status, strconv.Itoa(l.Rows), l.Amount)
	}
	cw.Flush()
	w.WriteString("\n")
	write("control", "currency", "manifest", "submitted", "succeeded")
	for _, c := range sum.Control {
		write("control", c.Currency, c.Manifest, c.Submitted, c.Succeeded)
	}
	cw.Flush()
	w.WriteString("\n")
	write("finding", "kind", "row", "reference", "session_id", "detail", "action")
	for _, f := range sum.Findings {
		row := ""
		if f.Row > 0 {
			row = strconv.Itoa(f.Row)
		}
		write("finding", f.Kind, row, f.Reference, f.SessionID, f.Detail, f.Action)
	}
	cw.Flush()
	w.WriteString("\n")
	write("batch", "id", "manifest", "manifest_sha256", "generated_at")
	write("batch", sum.BatchID, sum.Manifest, sum.ManifestSHA256, sum.GeneratedAt)
	cw.Flush()
	return cw.Error()
}

// writeReportJSON streams {"batch_id":..., "rows":[...], "summary":...}
// without holding every row in memory.
func writeReportJSON(ctx context.Context, store Store, batchID string, w *bufio.Writer, sum ReportSummary) error {
	head, err := json.Marshal(sum)
	if err != nil {
		return err
	}
	// Splice the rows array into the summary object.
	w.Write(head[:len(head)-1])
	w.WriteString(`,"rows":[`)
	first := true
	for row, err := range store.Rows(ctx, batchID) {
		if err != nil {
			return fmt.Errorf("rows of batch %s: %w", batchID, err)
		}
		b, err := json.Marshal(reportRow(row))
		if err != nil {
			return err
		}
		if !first {
			w.WriteString(",")
		}
		first = false
		w.WriteString("\n  ")
		w.Write(b)
	}
	w.WriteString("\n]}\n")
	return nil
}

// SpreadsheetSafe neutralises a cell a spreadsheet would run as a formula
// (leading = + - @, tab or carriage return) by prefixing an apostrophe.
func SpreadsheetSafe(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}
