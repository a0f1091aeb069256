package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/batch/report"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike/sandbox"
)

// statusGoldenDir holds the golden outputs of `payouts status` (refresh
// with go test ./cmd/payouts -run TestStatusGolden -update).
const statusGoldenDir = "testdata/status"

var clockRE = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`)

// localClockRE is the local time beside a UTC clock time (see clock),
// which depends on the machine's time zone.
var localClockRE = regexp.MustCompile(` \(\d\d:\d\d:\d\d \S+ local\)`)

// normalise replaces what changes from run to run: the temporary
// directory and wall-clock times (same width, so columns stay aligned).
func (p *cliPike) normalise(s string) string {
	s = strings.ReplaceAll(s, p.dir, "$DIR")
	s = localClockRE.ReplaceAllString(s, "")
	return clockRE.ReplaceAllString(s, "YYYY-MM-DD hh:mm:ss")
}

// everyOutcomeRows pays one row of every outcome the sandbox's test cards
// give, with names a spreadsheet would run and Cyrillic ones.
func everyOutcomeRows() [][5]string {
	return [][5]string{
		{"PAY-01", "1500.50", "RUB", sandbox.CardMir, "Иванов Иван Иванович"},
		{"PAY-02", "99.99", "EUR", sandbox.CardVisa, "=HYPERLINK(\"http://evil.example\",\"x\") Anna"},
		{"PAY-03", "1500", "JPY", sandbox.CardMastercard, "+7 Пётр Сидоров"},
		{"PAY-04", "100", "RUB", sandbox.CardNotExist, "-1 Новикова Татьяна"},
		{"PAY-05", "100", "RUB", sandbox.CardExpired, "@SUM(A1) Зайцева Дарья"},
		{"PAY-06", "100", "RUB", sandbox.CardMismatch, "Васильев Роман"},
		{"PAY-07", "100", "RUB", sandbox.CardSessionError, "Фёдорова Ксения"},
		{"PAY-08", "250", "RUB", sandbox.CardNoWebhooks, "Орлова Вера"},
		{"PAY-09", "45", "USD", sandbox.CardSlow, "John O'Connor"},
	}
}

func TestStatusGolden(t *testing.T) {
	p := newCLIPike(t, sandbox.Config{})
	missing := filepath.Join(p.dir, "missing", "payouts.db")
	if code, stdout, stderr := p.run("status", "--ledger", missing); code != ExitInfra || !strings.Contains(stderr, "no ledger at "+missing) || !strings.Contains(stderr, "payouts init") {
		t.Errorf("status without a ledger: got exit %d\n%s%s; want 3 naming the missing ledger and `payouts init`", code, stdout, stderr)
	}
	if _, err := os.Stat(missing); err == nil {
		t.Errorf("status created the ledger %s", missing)
	}

	all := p.manifest("payroll.csv", everyOutcomeRows()...)
	report := filepath.Join(p.dir, "run-report.csv")
	code, stdout, stderr := p.run("run", all, "--report", report)
	if code != ExitPartial {
		t.Fatalf("run: got exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	all1 := batchIDOf(t, stdout)
	checkTextGolden(t, filepath.Join(statusGoldenDir, "run-every-outcome.txt"), p.normalise(stdout))
	if b, err := os.ReadFile(report); err != nil || !bytes.Contains(b, []byte("PAY-09")) {
		t.Errorf("run --report: got %v and %d bytes, want the report with every row", err, len(b))
	}

	held := p.manifest("bonus.csv", [5]string{"BONUS-1", "5000", "RUB", sandbox.CardMir, "Иванов Иван Иванович"},
		[5]string{"BONUS-2", "7000", "RUB", sandbox.CardVisa, "Petrova Anna"})
	code, stdout, stderr = p.run("run", held, "--confirm", "hold")
	if code != ExitOK {
		t.Fatalf("hold run: got exit %d, want 0 (stopped for approval as asked)\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	heldID := batchIDOf(t, stdout)

	tests := []struct {
		golden string
		args   []string
	}{
		{"batches.txt", []string{"status"}},
		{"batch-every-outcome.txt", []string{"status", "--batch", all1}},
		{"batch-held.txt", []string{"status", "--batch", heldID}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			code, stdout, stderr := p.run(tt.args...)
			if code != ExitOK || stderr != p.ledgerLine() {
				t.Errorf("got exit %d, stderr %q; want 0 and only %q", code, stderr, p.ledgerLine())
			}
			checkTextGolden(t, filepath.Join(statusGoldenDir, tt.golden), p.normalise(stdout))
		})
	}
	// approve: the preview and the outcome, then the batch's status with
	// who approved.
	code, stdout, stderr = p.run("approve", "--batch", heldID[:6], "--row", "BONUS-1", "--yes", "--as", "Golden Tester")
	if code != ExitOK {
		t.Fatalf("approve: got exit %d, want 0\n%s%s", code, stdout, stderr)
	}
	checkTextGolden(t, filepath.Join(statusGoldenDir, "approve-one-row.txt"), p.normalise(stdout))
	if _, stdout, _ := p.run("status", "--batch", heldID); true {
		checkTextGolden(t, filepath.Join(statusGoldenDir, "batch-approved.txt"), p.normalise(stdout))
	}

	// The batch from the environment, as approve and report read it.
	p.env["PAYOUTS_BATCH"] = heldID
	if _, stdout, _ := p.run("status"); !strings.Contains(stdout, "BONUS-1") {
		t.Errorf("status with PAYOUTS_BATCH=%s does not show that batch:\n%s", heldID, stdout)
	}
	delete(p.env, "PAYOUTS_BATCH")
	if code, _, stderr := p.run("status", "--batch", "nope"); code != ExitUsage || !strings.Contains(stderr, "payouts status") {
		t.Errorf("status of an unknown batch: got exit %d, %q; want 2 saying how to list batches", code, stderr)
	}
	if code, _, _ := p.run("status", all1); code != ExitUsage {
		t.Errorf("status with an argument: got exit %d, want 2", code)
	}

	t.Run("report command", func(t *testing.T) { checkReportCommand(t, p, all1) })

	// No output of any of it holds a card number.
	pans := cardNumbersIn(string(mustRead(t, all)) + string(mustRead(t, held)))
	for _, args := range [][]string{{"status"}, {"status", "--batch", all1}, {"report", "--batch", all1}, {"report", "--batch", all1, "--format", "json"}} {
		_, stdout, stderr := p.run(args...)
		for _, pan := range pans {
			if strings.Contains(stdout+stderr, pan) {
				t.Errorf("payouts %s shows card number %s", strings.Join(args, " "), pan)
			}
		}
	}
}

// checkReportCommand checks `payouts report` on batch id of p's ledger.
func checkReportCommand(t *testing.T, p *cliPike, id string) {
	// Standard output: the report report.Write makes, CSV by default.
	code, csvOut, stderr := p.run("report", "--batch", id)
	if code != ExitOK || stderr != p.ledgerLine() {
		t.Fatalf("report: got exit %d, stderr %q; want 0 and only %q", code, stderr, p.ledgerLine())
	}
	if !strings.HasPrefix(csvOut, strings.Join(report.Columns, ",")+"\n") {
		t.Errorf("report does not start with the columns:\n%s", csvOut)
	}
	if !strings.Contains(csvOut, "'=HYPERLINK(") || strings.Contains(csvOut, ",=HYPERLINK(") || !strings.Contains(csvOut, "'-1 Новикова") {
		t.Errorf("formula-like names are not neutralised:\n%s", csvOut)
	}

	// JSON, also chosen by the environment.
	p.env["PAYOUTS_REPORT_FORMAT"] = "json"
	code, jsonOut, stderr := p.run("report", "--batch", id)
	delete(p.env, "PAYOUTS_REPORT_FORMAT")
	if code != ExitOK {
		t.Fatalf("report json: got exit %d, stderr %q", code, stderr)
	}
	var doc report.Document
	if err := json.Unmarshal([]byte(jsonOut), &doc); err != nil {
		t.Fatalf("report json: %v\n%s", err, jsonOut)
	}
	rows := p.ledgerRows(id)
	if doc.BatchID != id || doc.RowCount != len(rows) || len(doc.Rows) != len(rows) {
		t.Errorf("report json: got batch %s with %d/%d rows, want %s with %d", doc.BatchID, doc.RowCount, len(doc.Rows), id, len(rows))
	}
	for _, r := range doc.Rows {
		if l := rows[r.Reference]; string(l.State) != r.Status || manifest.FormatAmount(l.Amount, l.Currency) != r.Amount {
			t.Errorf("report json row %s: got %s %s, ledger has %s %s", r.Reference, r.Status, r.Amount, l.State, manifest.FormatAmount(l.Amount, l.Currency))
		}
	}
	if got := rows["PAY-06"].State; got != ledger.StateMismatch {
		t.Errorf("PAY-06: got %s, want mismatch", got)
	}

	// --output --excel: a file for spreadsheets, written atomically.
	out := filepath.Join(p.dir, "report.csv")
	code, stdout, stderr := p.run("report", "--batch", id, "--output", out, "--excel")
	if code != ExitOK || stdout != "" || !strings.Contains(stderr, out) {
		t.Fatalf("report --output: got exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "--excel (PAYOUTS_REPORT_EXCEL) is deprecated") {
		t.Errorf("report --excel: stderr %q, want the note that --format excel-csv replaces it", stderr)
	}
	b := mustRead(t, out)
	if !bytes.HasPrefix(b, []byte("\ufeffrow;reference;status;amount;")) || !bytes.Contains(b, []byte(";1500,50;RUB;")) {
		t.Errorf("--excel: got %q..., want a BOM, ';' separators and decimal commas", b[:min(len(b), 120)])
	}
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("report file mode: got %v (%v), want 0640", fi.Mode().Perm(), err)
	}
	if left, _ := filepath.Glob(filepath.Join(p.dir, ".report.csv.*")); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}

	for _, tt := range []struct {
		args []string
		say  string
	}{
		{[]string{"report", "--batch", id, "--format", "xml"}, "--format"},
		{[]string{"report", "--batch", id, "--format", "json", "--excel"}, "--excel"},
		{[]string{"report", "--batch", "nope"}, "payouts status"},
		{[]string{"report", "--batch", id, "extra"}, "no arguments"},
	} {
		if code, _, stderr := p.run(tt.args...); code != ExitUsage || !strings.Contains(stderr, tt.say) {
			t.Errorf("payouts %s: got exit %d, %q; want 2 saying %q", strings.Join(tt.args, " "), code, stderr, tt.say)
		}
	}
	other := filepath.Join(p.dir, "other.db")
	if code, _, stderr := p.run("report", "--batch", id, "--ledger", other); code != ExitInfra || !strings.Contains(stderr, "no ledger at "+other) {
		t.Errorf("report of a ledger that does not exist: got exit %d, %q; want 3 naming it", code, stderr)
	}
	if code, _, stderr := p.run("report", "--batch", id, "--output", filepath.Join(p.dir, "no-dir", "r.csv")); code != ExitInfra {
		t.Errorf("report into a missing directory: got exit %d (%q), want 3", code, stderr)
	}
}
