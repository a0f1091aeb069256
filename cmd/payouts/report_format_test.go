package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/payouts/payouts/batch/report"
	"github.com/payouts/payouts/pike/sandbox"
)

// openXLSX opens a workbook the command wrote and checks its sheets.
func openXLSX(t *testing.T, b []byte) *excelize.File {
	t.Helper()
	f, err := excelize.OpenReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("not a workbook: %v (%d bytes: %q…)", err, len(b), b[:min(len(b), 16)])
	}
	t.Cleanup(func() { f.Close() })
	if got, want := f.GetSheetList(), []string{report.SheetRows, report.SheetSummary, report.SheetControl, report.SheetFindings}; !slices.Equal(got, want) {
		t.Fatalf("got sheets %q, want %q", got, want)
	}
	return f
}

// checkXLSXRef checks that cell holds the reference ref as text.
func checkXLSXRef(t *testing.T, f *excelize.File, cell, ref string) {
	t.Helper()
	v, err := f.GetCellValue(report.SheetRows, cell)
	if err != nil {
		t.Fatal(err)
	}
	typ, err := f.GetCellType(report.SheetRows, cell)
	if err != nil {
		t.Fatal(err)
	}
	if v != ref || typ != excelize.CellTypeInlineString {
		t.Errorf("Rows!%s: got %q (type %v), want the text %q", cell, v, typ, ref)
	}
}

// readExcelCSV reads an excel-csv report: BOM, ';'.
func readExcelCSV(t *testing.T, b []byte) [][]string {
	t.Helper()
	if !bytes.HasPrefix(b, []byte("\ufeff")) {
		t.Fatalf("got %q…, want a UTF-8 BOM first", b[:min(len(b), 16)])
	}
	r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(b, []byte("\ufeff"))))
	r.Comma, r.FieldsPerRecord = ';', -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// TestReportFormats: every command that writes a report writes each
// format, the old --excel and --report-excel still work with a one-line
// deprecation note, and a workbook is never written to a terminal.
func TestReportFormats(t *testing.T) {
	p := newCLIPike(t, sandbox.Config{})
	m := p.manifest("payroll.csv",
		[5]string{"00123", "1500.50", "RUB", sandbox.CardMir, `=HYPERLINK("http://evil.example","x")`},
		[5]string{"0042", "1500", "JPY", sandbox.CardVisa, "Иванов Иван"})

	// run --report FILE --report-format xlsx.
	runXLSX := filepath.Join(p.dir, "run.xlsx")
	code, stdout, stderr := p.run("run", m, "--report", runXLSX, "--report-format", "xlsx")
	if code != ExitOK {
		t.Fatalf("run: got exit %d\n%s%s", code, stdout, stderr)
	}
	id := batchIDOf(t, stdout)
	f := openXLSX(t, mustRead(t, runXLSX))
	checkXLSXRef(t, f, "B2", "00123")
	checkXLSXRef(t, f, "B3", "0042")
	checkXLSXRef(t, f, "G2", `=HYPERLINK("http://evil.example","x")`)
	if v, _ := f.GetCellValue(report.SheetRows, "D2", excelize.Options{RawCellValue: true}); v != "1500.5" {
		t.Errorf("Rows!D2: got %q, want the number 1500.5", v)
	}
	if left, _ := filepath.Glob(filepath.Join(p.dir, ".run.xlsx.*")); len(left) != 0 {
		t.Errorf("temporary files left behind: %v", left)
	}

	// report --format excel-csv: identities as ="…", leading zeros kept.
	out := filepath.Join(p.dir, "excel.csv")
	if code, _, stderr := p.run("report", "--batch", id, "--format", "excel-csv", "--output", out); code != ExitOK || strings.Contains(stderr, "deprecated") {
		t.Fatalf("report --format excel-csv: got exit %d, %q", code, stderr)
	}
	recs := readExcelCSV(t, mustRead(t, out))
	if recs[1][1] != `="00123"` || recs[2][1] != `="0042"` {
		t.Errorf("excel-csv references: got %q %q, want =\"00123\" =\"0042\"", recs[1][1], recs[2][1])
	}
	// The plain CSV keeps the text as it is.
	if _, csvOut, _ := p.run("report", "--batch", id); !strings.Contains(csvOut, "\n2,00123,succeeded,1500.50,RUB,") {
		t.Errorf("csv: got\n%s\nwant the reference 00123 as written", csvOut)
	}

	// The old --excel: same format, one line on stderr saying what to use.
	old := filepath.Join(p.dir, "old.csv")
	code, _, stderr = p.run("report", "--batch", id, "--excel", "--output", old)
	if code != ExitOK || !strings.Contains(stderr, "--excel (PAYOUTS_REPORT_EXCEL) is deprecated") || !strings.Contains(stderr, "--format excel-csv") {
		t.Errorf("report --excel: got exit %d, %q; want 0 and the deprecation note", code, stderr)
	}
	if strings.Count(stderr, "deprecated") != 1 {
		t.Errorf("report --excel: got %q, want one deprecation line", stderr)
	}
	if recs := readExcelCSV(t, mustRead(t, old)); recs[1][1] != `="00123"` {
		t.Errorf("report --excel: got reference %q, want the excel-csv one", recs[1][1])
	}
	p.env["PAYOUTS_REPORT_EXCEL"] = "true"
	code, stdout, stderr = p.run("report", "--batch", id)
	delete(p.env, "PAYOUTS_REPORT_EXCEL")
	if code != ExitOK || !strings.HasPrefix(stdout, "\ufeffrow;") || !strings.Contains(stderr, "deprecated") {
		t.Errorf("PAYOUTS_REPORT_EXCEL=true: got exit %d, %q…, %q; want the excel-csv and the note", code, stdout[:min(len(stdout), 10)], stderr)
	}

	// xlsx to standard output that is not a terminal (a pipe, a file).
	code, stdout, stderr = p.run("report", "--batch", id, "--format", "xlsx")
	if code != ExitOK {
		t.Fatalf("report --format xlsx to a pipe: got exit %d, %q", code, stderr)
	}
	checkXLSXRef(t, openXLSX(t, []byte(stdout)), "B2", "00123")
	// xlsx to a file, chosen by the environment.
	p.env["PAYOUTS_REPORT_FORMAT"] = "xlsx"
	book := filepath.Join(p.dir, "report.xlsx")
	code, _, stderr = p.run("report", "--batch", id, "--output", book)
	delete(p.env, "PAYOUTS_REPORT_FORMAT")
	if code != ExitOK {
		t.Fatalf("PAYOUTS_REPORT_FORMAT=xlsx: got exit %d, %q", code, stderr)
	}
	checkXLSXRef(t, openXLSX(t, mustRead(t, book)), "B3", "0042")

	// Hold mode: approve writes an xlsx report, reject an excel-csv one
	// through the deprecated --report-excel.
	h1 := p.manifest("bonus1.csv", [5]string{"0001", "10", "RUB", sandbox.CardMir, "Орлова Вера"})
	h2 := p.manifest("bonus2.csv", [5]string{"0002", "20", "RUB", sandbox.CardMir, "Орлова Вера"})
	var held []string
	for _, hm := range []string{h1, h2} {
		code, stdout, stderr := p.run("run", hm, "--confirm", "hold")
		if code != ExitOK && code != ExitPartial {
			t.Fatalf("hold run: got exit %d\n%s%s", code, stdout, stderr)
		}
		held = append(held, batchIDOf(t, stdout))
	}
	// decide runs approve or reject; where the command asks for --yes
	// when not on a terminal, it is given.
	decide := func(args ...string) (int, string, string) {
		code, stdout, stderr := p.run(args...)
		if code == ExitUsage && strings.Contains(stderr, "--yes") {
			code, stdout, stderr = p.run(append(args, "--yes")...)
		}
		return code, stdout, stderr
	}
	approved := filepath.Join(p.dir, "approved.xlsx")
	if code, stdout, stderr := decide("approve", "--batch", held[0], "--report", approved, "--report-format", "xlsx"); code != ExitOK {
		t.Fatalf("approve: got exit %d\n%s%s", code, stdout, stderr)
	}
	checkXLSXRef(t, openXLSX(t, mustRead(t, approved)), "B2", "0001")
	rejected := filepath.Join(p.dir, "rejected.csv")
	code, stdout, stderr = decide("reject", "--batch", held[1], "--report", rejected, "--report-excel")
	if code != ExitOK && code != ExitPartial {
		t.Fatalf("reject: got exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "--report-excel (PAYOUTS_REPORT_EXCEL) is deprecated") || !strings.Contains(stderr, "--report-format excel-csv") {
		t.Errorf("reject --report-excel: stderr %q, want the deprecation note", stderr)
	}
	if recs := readExcelCSV(t, mustRead(t, rejected)); recs[1][1] != `="0002"` {
		t.Errorf("reject --report-excel: got reference %q, want =\"0002\"", recs[1][1])
	}

	for _, tt := range []struct {
		args []string
		say  string
	}{
		{[]string{"report", "--batch", id, "--format", "xlsx", "--excel"}, "--excel"},
		{[]string{"report", "--batch", id, "--format", "xls"}, "csv, excel-csv, json or xlsx"},
		{[]string{"report", "--batch", id, "--output", filepath.Join(p.dir, "r.xlsx")}, "--format xlsx"},
		{[]string{"run", m, "--report", filepath.Join(p.dir, "r.xlsx")}, "--report-format xlsx"},
		{[]string{"run", m, "--report-format", "json", "--report-excel"}, "--report-excel"},
		{[]string{"rerun", "--batch", id, "--report-format", "pdf"}, "--report-format"},
		{[]string{"approve", "--batch", id, "--report-format", "pdf"}, "--report-format"},
		{[]string{"reject", "--batch", id, "--report-format", "pdf"}, "--report-format"},
	} {
		before := p.requests()
		if code, _, stderr := p.run(tt.args...); code != ExitUsage || !strings.Contains(stderr, tt.say) {
			t.Errorf("payouts %s: got exit %d, %q; want 2 saying %q", strings.Join(tt.args, " "), code, stderr, tt.say)
		}
		if n := p.requests() - before; n != 0 {
			t.Errorf("payouts %s: sent %d requests to Pike, want none", strings.Join(tt.args, " "), n)
		}
	}
	if _, err := os.Stat(filepath.Join(p.dir, "r.xlsx")); err == nil {
		t.Error("a refused report left r.xlsx behind")
	}
	t.Run("terminal", func(t *testing.T) { checkXLSXTerminal(t, p, id) })
}

// checkXLSXTerminal: --format xlsx to a terminal is refused (exit 2), and
// nothing is written to it.
func checkXLSXTerminal(t *testing.T, p *cliPike, id string) {
	tty := openTerminal(t)
	var errb bytes.Buffer
	app := &App{Stdin: strings.NewReader(""), Stdout: tty, Stderr: &errb, Getenv: func(k string) string { return p.env[k] }}
	if !isTerminal(app.Stdout) {
		t.Skip("the pseudo-terminal is not seen as a terminal here")
	}
	code := app.Main(context.Background(), []string{"report", "--batch", id, "--format", "xlsx"})
	if code != ExitUsage || !strings.Contains(errb.String(), "--output") {
		t.Errorf("report --format xlsx on a terminal: got exit %d, %q; want 2 saying to use --output", code, errb.String())
	}
	// Refused before anything is opened: not even the ledger line.
	if strings.Contains(errb.String(), "ledger:") {
		t.Errorf("report --format xlsx on a terminal opened the ledger first: %q", errb.String())
	}
}

// reportColumns is report.Columns, for tests where a variable named report
// hides the package.
var reportColumns = report.Columns
