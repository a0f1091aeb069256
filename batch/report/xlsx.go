package report

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/internal/pan"
	"github.com/payouts/payouts/ledger"
)

// The sheets of the XLSX report, in order.
const (
	SheetRows     = "Rows"
	SheetSummary  = "Summary"
	SheetControl  = "Control totals"
	SheetFindings = "Findings"
)

// Number formats of the XLSX report. Built-in formats (ids) and format
// codes are stored in a workbook in one locale-independent notation; Excel
// and LibreOffice show them with the reader's own decimal and thousands
// separators, so the file opens correctly in any locale.
const (
	numFmtText    = 49 // "@": the cell is text, and stays text when edited
	numFmtInteger = 1  // "0"
	numFmtAmount0 = 3  // "#,##0"
	numFmtAmount2 = 4  // "#,##0.00"
	// dateFormat shows a time as ISO 8601 in every locale; the header says
	// the times are UTC.
	dateFormat = "yyyy-mm-dd hh:mm:ss"
)

// xlsxColumn is a column of a sheet: its header and width in characters.
type xlsxColumn struct {
	name  string
	width float64
}

// rowsColumns are the Rows sheet's columns: Columns, with the times' zone
// in the header.
var rowsColumns = []xlsxColumn{{"row", 6}, {"reference", 20}, {"status", 17}, {"amount", 15}, {"currency", 9},
	{"card", 19}, {"recipient_name", 28}, {"session_id", 22}, {"payout_id", 22}, {"attempts", 9}, {"failure_code", 24},
	{"failure_description", 40}, {"created_at (UTC)", 20}, {"finished_at (UTC)", 20}, {"description", 32}, {"email", 28}}

// xlsxStyles are the cell styles of one workbook.
type xlsxStyles struct {
	f       *excelize.File
	header  int
	text    int
	integer int
	date    int
	amounts map[int]int // the currency's minor digits → style
}

func newXLSXStyles(f *excelize.File) (*xlsxStyles, error) {
	s := &xlsxStyles{f: f, amounts: map[int]int{}}
	dateFmt := dateFormat
	for _, st := range []struct {
		id    *int
		style excelize.Style
	}{
		{&s.header, excelize.Style{Font: &excelize.Font{Bold: true}, NumFmt: numFmtText,
			Fill:   excelize.Fill{Type: "pattern", Pattern: 1, Color: []string{"DDEBF7"}},
			Border: []excelize.Border{{Type: "bottom", Color: "8EA9DB", Style: 1}}}},
		{&s.text, excelize.Style{NumFmt: numFmtText}},
		{&s.integer, excelize.Style{NumFmt: numFmtInteger}},
		{&s.date, excelize.Style{CustomNumFmt: &dateFmt}},
	} {
		id, err := f.NewStyle(&st.style)
		if err != nil {
			return nil, fmt.Errorf("xlsx style: %w", err)
		}
		*st.id = id
	}
	return s, nil
}

// amount returns the style that shows an amount of the currency with its
// minor digits (0 for JPY, 2 for RUB, 3 for KWD), with thousands grouping.
func (s *xlsxStyles) amount(digits int) (int, error) {
	if id, ok := s.amounts[digits]; ok {
		return id, nil
	}
	st := excelize.Style{NumFmt: numFmtAmount2}
	switch digits {
	case 0:
		st.NumFmt = numFmtAmount0
	case 2:
	default:
		code := "#,##0." + strings.Repeat("0", digits)
		st = excelize.Style{CustomNumFmt: &code}
	}
	id, err := s.f.NewStyle(&st)
	if err != nil {
		return 0, fmt.Errorf("xlsx style: %w", err)
	}
	s.amounts[digits] = id
	return id, nil
}

// textCell is a text cell: an inline string, never a formula and never a
// number, whatever it holds (=HYPERLINK(…) and 00123 stay as written).
func (s *xlsxStyles) textCell(v string) excelize.Cell {
	if v == "" {
		return excelize.Cell{StyleID: s.text}
	}
	return excelize.Cell{StyleID: s.text, Value: v}
}

func (s *xlsxStyles) intCell(n int) excelize.Cell {
	return excelize.Cell{StyleID: s.integer, Value: n}
}

// timeCell is a date cell in UTC, empty for the zero time.
func (s *xlsxStyles) timeCell(t time.Time) excelize.Cell {
	if t.IsZero() {
		return excelize.Cell{StyleID: s.date}
	}
	return excelize.Cell{StyleID: s.date, Value: t.UTC()}
}

// amountCell is an amount in minor units as a number in major units, shown
// with the currency's digits. The number is parsed from the exact decimal
// text, so the cell holds the double nearest to it (what Excel would store
// if a person typed it). A currency without known digits (never in a
// ledger written by this program) is written as text.
func (s *xlsxStyles) amountCell(minor int64, currency string) (excelize.Cell, error) {
	text := manifest.FormatAmount(minor, currency)
	digits, err := manifest.CurrencyDigits(currency)
	if err != nil {
		return s.textCell(text), nil
	}
	v, err := strconv.ParseFloat(text, 64)
	if err != nil {
		return s.textCell(text), nil
	}
	id, err := s.amount(digits)
	if err != nil {
		return excelize.Cell{}, err
	}
	return excelize.Cell{StyleID: id, Value: v}, nil
}

// sheet streams one worksheet: widths and the frozen, bold header first,
// then the rows, then a table over them (filter buttons on the header).
type sheet struct {
	sw    *excelize.StreamWriter
	st    *xlsxStyles
	table string
	cols  int
	n     int // rows written, the header included
}

func (s *xlsxStyles) newSheet(name, table string, cols []xlsxColumn) (*sheet, error) {
	if idx, err := s.f.GetSheetIndex(name); err != nil {
		return nil, fmt.Errorf("xlsx sheet %s: %w", name, err)
	} else if idx < 0 {
		if _, err := s.f.NewSheet(name); err != nil {
			return nil, fmt.Errorf("xlsx sheet %s: %w", name, err)
		}
	}
	sw, err := s.f.NewStreamWriter(name)
	if err != nil {
		return nil, fmt.Errorf("xlsx sheet %s: %w", name, err)
	}
	for i, c := range cols {
		if err := sw.SetColWidth(i+1, i+1, c.width); err != nil {
			return nil, fmt.Errorf("xlsx sheet %s: %w", name, err)
		}
	}
	if err := sw.SetPanes(&excelize.Panes{Freeze: true, YSplit: 1, TopLeftCell: "A2", ActivePane: "bottomLeft",
		Selection: []excelize.Selection{{SQRef: "A2", ActiveCell: "A2", Pane: "bottomLeft"}}}); err != nil {
		return nil, fmt.Errorf("xlsx sheet %s: %w", name, err)
	}
	sh := &sheet{sw: sw, st: s, table: table, cols: len(cols)}
	head := make([]any, len(cols))
	for i, c := range cols {
		head[i] = excelize.Cell{StyleID: s.header, Value: c.name}
	}
	return sh, sh.row(head...)
}

// row appends one row.
func (sh *sheet) row(cells ...any) error {
	sh.n++
	cell, err := excelize.CoordinatesToCellName(1, sh.n)
	if err != nil {
		return err
	}
	return sh.sw.SetRow(cell, cells)
}

// close ends the table at the last row written so far and flushes the
// sheet.
func (sh *sheet) close() error {
	last, err := excelize.CoordinatesToCellName(sh.cols, max(sh.n, 2))
	if err != nil {
		return err
	}
	if err := sh.sw.AddTable(&excelize.Table{Range: "A1:" + last, Name: sh.table, StyleName: "TableStyleLight1"}); err != nil {
		return fmt.Errorf("xlsx table %s: %w", sh.table, err)
	}
	return sh.sw.Flush()
}

// writeXLSX writes the report as a workbook. The rows are streamed to the
// Rows sheet (memory does not grow with the batch); the sections computed
// in that same pass follow on their own sheets.
func writeXLSX(rb *builder, w io.Writer) error {
	f := excelize.NewFile()
	defer f.Close()
	st, err := newXLSXStyles(f)
	if err != nil {
		return err
	}
	if err := f.SetSheetName("Sheet1", SheetRows); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	rows, err := st.newSheet(SheetRows, "ReportRows", rowsColumns)
	if err != nil {
		return err
	}
	err = rb.each(func(r ledger.Row) error {
		amount, err := st.amountCell(r.Amount, r.Currency)
		if err != nil {
			return err
		}
		return rows.row(st.intCell(r.Line), st.textCell(pan.Scrub(r.Reference)), st.textCell(string(r.State)), amount,
			st.textCell(r.Currency), st.textCell(pan.MaskParts(r.CardBIN, r.CardLast4)), st.textCell(pan.Scrub(r.RecipientName)),
			st.textCell(r.SessionID), st.textCell(r.PayoutID), st.intCell(r.Attempt), st.textCell(pan.Scrub(r.FailureCode)),
			st.textCell(pan.Scrub(r.FailureDescription)), st.timeCell(r.CreatedAt), st.timeCell(r.FinishedAt),
			st.textCell(pan.Scrub(r.Description)), st.textCell(pan.Scrub(r.Email)))
	})
	if err != nil {
		return err
	}
	if err := rows.close(); err != nil {
		return err
	}
	sum, err := rb.finish()
	if err != nil {
		return err
	}
	if err := xlsxSummary(st, rb, sum); err != nil {
		return err
	}
	if err := xlsxControl(st, rb, sum); err != nil {
		return err
	}
	if err := xlsxFindings(st, sum); err != nil {
		return err
	}
	f.SetActiveSheet(0)
	if err := f.SetDocProps(&excelize.DocProperties{Title: "Reconciliation report of batch " + sum.BatchID,
		Creator: "payouts", Created: sum.GeneratedAt}); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	if _, err := f.WriteTo(w); err != nil {
		return fmt.Errorf("xlsx: %w", err)
	}
	return nil
}

// xlsxSummary writes the Summary sheet: rows and amounts per currency and
// status, then, after an empty row, the batch's identity.
func xlsxSummary(st *xlsxStyles, rb *builder, sum Summary) error {
	sh, err := st.newSheet(SheetSummary, "ReportSummary", []xlsxColumn{{"currency", 10}, {"status", 20}, {"rows", 10}, {"amount", 18}})
	if err != nil {
		return err
	}
	for _, l := range sum.Lines {
		amount, err := st.amountCell(rb.lines[[2]string{l.Currency, l.Status}].amount, l.Currency)
		if err != nil {
			return err
		}
		if err := sh.row(st.textCell(l.Currency), st.textCell(l.Status), st.intCell(l.Rows), amount); err != nil {
			return err
		}
	}
	table := sh.n
	sh.n = max(sh.n, 2) + 1 // an empty row after the table
	generated, _ := time.Parse(time.RFC3339, sum.GeneratedAt)
	for _, kv := range [][2]any{
		{"batch", st.textCell(sum.BatchID)},
		{"manifest", st.textCell(sum.Manifest)},
		{"manifest_sha256", st.textCell(sum.ManifestSHA256)},
		{"generated_at (UTC)", st.timeCell(generated)},
		{"rows", st.intCell(sum.RowCount)},
	} {
		if err := sh.row(excelize.Cell{StyleID: st.header, Value: kv[0]}, kv[1]); err != nil {
			return err
		}
	}
	// Who approved or rejected held payouts: the decision, when (UTC), who
	// and which rows.
	for _, d := range sum.Decisions {
		at, _ := time.Parse(time.RFC3339, d.At)
		if err := sh.row(excelize.Cell{StyleID: st.header, Value: d.Decision}, st.timeCell(at), st.textCell(d.Detail)); err != nil {
			return err
		}
	}
	sh.n = table
	return sh.close()
}

// xlsxControl writes the Control totals sheet: per currency, the manifest's
// total, what was submitted to Pike, what succeeded.
func xlsxControl(st *xlsxStyles, rb *builder, sum Summary) error {
	sh, err := st.newSheet(SheetControl, "ReportControl", []xlsxColumn{{"currency", 10}, {"manifest", 18}, {"submitted", 18}, {"succeeded", 18}})
	if err != nil {
		return err
	}
	for _, c := range sum.Control {
		cells := []any{st.textCell(c.Currency)}
		for _, minor := range []int64{rb.batch.Totals[c.Currency], rb.submitted[c.Currency], rb.succeeded[c.Currency]} {
			cell, err := st.amountCell(minor, c.Currency)
			if err != nil {
				return err
			}
			cells = append(cells, cell)
		}
		if err := sh.row(cells...); err != nil {
			return err
		}
	}
	return sh.close()
}

// xlsxFindings writes the Findings sheet: what a person must look at, and
// what to do.
func xlsxFindings(st *xlsxStyles, sum Summary) error {
	sh, err := st.newSheet(SheetFindings, "ReportFindings", []xlsxColumn{{"kind", 22}, {"row", 6}, {"reference", 20},
		{"session_id", 22}, {"detail", 60}, {"action", 80}})
	if err != nil {
		return err
	}
	for _, fd := range sum.Findings {
		row := excelize.Cell{StyleID: st.integer}
		if fd.Row > 0 {
			row = st.intCell(fd.Row)
		}
		if err := sh.row(st.textCell(string(fd.Kind)), row, st.textCell(pan.Scrub(fd.Reference)), st.textCell(fd.SessionID),
			st.textCell(fd.Detail), st.textCell(fd.Action)); err != nil {
			return err
		}
	}
	return sh.close()
}
