package manifest_test

import (
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/charmap"

	"github.com/payouts/payouts/batch/manifest"
)

// TestXLSXAmountShownDiffers: an amount stored as a number whose cell shows
// something else than that number (a date, a time, a percentage, a rounded
// or thousands-scaled format) is refused: the person who checked the
// workbook saw a different amount from the one that would be paid. Typing
// 12.10 into a Russian Excel makes the date 12 October, stored as 46307.
func TestXLSXAmountShownDiffers(t *testing.T) {
	for _, c := range []struct {
		v     any
		code  string
		shown string
	}{
		{46307.0, "dd.mm.yyyy", "12.10.2026"}, // a date: would pay 46 307.00
		{46307.0, "m/d/yy", "10/12/26"},
		{0.5, "h:mm", "12:00"},           // a time: would pay 0.50
		{1500.4, "0", "1500"},            // rounded: shows 1500, would pay 1500.40
		{1500.5, "#,##0", "1,501"},       // rounded the other way
		{1500000.0, "#,##0,", "1,500"},   // thousands-scaled: shows 1,500, would pay 1 500 000
		{0.15, "0%", "15%"},              // a percentage: shows 15%, would pay 0.15
		{1500.0, "0.00E+00", "1.50E+03"}, // scientific
	} {
		sh := xlsxSheet{name: "S", rows: [][]any{xlsxHeader, {"R-1", c.v, "RUB", "4242424242424242", "Ivan"}},
			formats: map[string]string{"B2": c.code}}
		_, rows, ve := readXLSX(t, makeXLSX(t, sh), manifest.Options{})
		if len(rows) != 0 || ve == nil || len(ve.Errors) != 1 {
			t.Errorf("%v shown as %q (%s): rows %+v, problems %v; want one amount problem", c.v, c.shown, c.code, rows, ve)
			continue
		}
		e := ve.Errors[0]
		if e.Line != 2 || e.Column != "amount" || !errors.Is(e, manifest.ErrAmount) || !errors.Is(e, manifest.ErrSpreadsheetDamage) ||
			!strings.Contains(e.Error(), c.shown) {
			t.Errorf("%v shown as %q: %v", c.v, c.shown, e)
		}
	}
	// What the cell shows is the number, whatever the currency symbol,
	// grouping or padding: accepted.
	for _, c := range []struct {
		v    float64
		code string
		want int64
	}{
		{1500, "#,##0.00", 150000}, {1500.5, `"$"#,##0.00`, 150050}, {1500.5, `[$₽-419]#,##0.00`, 150050},
		{1500.5, `#,##0.00\ "₽"`, 150050}, {1500.5, `0.00 "руб."`, 150050}, {1500, `0.00_);(0.00)`, 150000},
		{1500, `_-* #,##0.00 ₽_-;-* #,##0.00 ₽_-;_-* "-"?? ₽_-;_-@_-`, 150000}, {1234.5600000000002, "General", 123456},
		{0.30000000000000004, "General", 30}, {1500, "@", 150000}, {1500.5, "[Red]0.00;-0.00", 150050},
	} {
		sh := xlsxSheet{name: "S", rows: [][]any{xlsxHeader, {"R-1", c.v, "RUB", "4242424242424242", "Ivan"}},
			formats: map[string]string{"B2": c.code}}
		_, rows, ve := readXLSX(t, makeXLSX(t, sh), manifest.Options{})
		if ve != nil || len(rows) != 1 || rows[0].Amount != c.want {
			t.Errorf("%v as %q: rows %+v, problems %v; want %d", c.v, c.code, rows, ve, c.want)
		}
	}
}

// TestXLSXHiddenRowsColumns: a row hidden in the sheet (hidden by hand, by
// a filter or a collapsed group) is a payout nobody checking the workbook
// saw: refused, by row. So is a hidden column holding a manifest column.
func TestXLSXHiddenRowsColumns(t *testing.T) {
	build := func(t *testing.T, hide func(f *excelize.File)) []byte {
		f := excelize.NewFile()
		defer f.Close()
		rows := [][]any{xlsxHeader,
			{"R-1", 10, "RUB", "4242424242424242", "Ivan"},
			{"R-2", 900000, "RUB", "5555555555554444", "Mallory"},
			{"R-3", 30, "RUB", "4111111111111111", "Anna"}}
		for r, row := range rows {
			for c, v := range row {
				cell, _ := excelize.CoordinatesToCellName(c+1, r+1)
				f.SetCellValue("Sheet1", cell, v)
			}
		}
		hide(f)
		var b strings.Builder
		if err := f.Write(&b); err != nil {
			t.Fatal(err)
		}
		return []byte(b.String())
	}
	t.Run("row", func(t *testing.T) {
		data := build(t, func(f *excelize.File) { f.SetRowVisible("Sheet1", 3, false) })
		_, rows, ve := readXLSX(t, data, manifest.Options{})
		if ve == nil || len(ve.Errors) != 1 || ve.Errors[0].Line != 3 || !strings.Contains(ve.Errors[0].Error(), "hidden") {
			t.Fatalf("hidden row 3: rows %+v, problems %v; want one problem on line 3 saying it is hidden", rows, ve)
		}
	})
	t.Run("zero height", func(t *testing.T) {
		data := build(t, func(f *excelize.File) { f.SetRowHeight("Sheet1", 3, 0) })
		_, rows, ve := readXLSX(t, data, manifest.Options{})
		if ve == nil || len(ve.Errors) != 1 || ve.Errors[0].Line != 3 {
			t.Fatalf("row 3 of height 0: rows %+v, problems %v; want one problem on line 3", rows, ve)
		}
	})
	t.Run("column", func(t *testing.T) {
		data := build(t, func(f *excelize.File) { f.SetColVisible("Sheet1", "B", false) })
		_, rows, ve := readXLSX(t, data, manifest.Options{})
		if ve == nil || len(ve.Errors) != 1 || ve.Errors[0].Column != "amount" || !strings.Contains(ve.Errors[0].Error(), "hidden") {
			t.Fatalf("hidden column B: rows %+v, problems %v; want one problem for column amount", rows, ve)
		}
	})
	t.Run("rows hidden by default", func(t *testing.T) {
		data := build(t, func(f *excelize.File) {
			for _, r := range []int{1, 2, 4} {
				f.SetRowHeight("Sheet1", r, 15)
			}
		})
		data = rewriteSheet(t, data, func(x string) string {
			return regexp.MustCompile(`<sheetFormatPr [^>]*>(</sheetFormatPr>)?`).ReplaceAllString(x, `<sheetFormatPr defaultRowHeight="15" zeroHeight="1"/>`)
		})
		_, rows, ve := readXLSX(t, data, manifest.Options{})
		if ve == nil || len(ve.Errors) != 1 || ve.Errors[0].Line != 3 {
			t.Fatalf("rows hidden by default, row 3 without a height: rows %+v, problems %v; want one problem on line 3", rows, ve)
		}
	})
	t.Run("columns of no width by default", func(t *testing.T) {
		data := build(t, func(f *excelize.File) {
			f.SetColWidth("Sheet1", "A", "A", 12)
			f.SetColWidth("Sheet1", "C", "G", 12)
		})
		data = rewriteSheet(t, data, func(x string) string {
			return regexp.MustCompile(`<sheetFormatPr [^>]*>(</sheetFormatPr>)?`).ReplaceAllString(x, `<sheetFormatPr defaultRowHeight="15" defaultColWidth="0"/>`)
		})
		_, rows, ve := readXLSX(t, data, manifest.Options{})
		if ve == nil || len(ve.Errors) != 1 || ve.Errors[0].Column != "amount" {
			t.Fatalf("column B of the default width 0: rows %+v, problems %v; want one problem for column amount", rows, ve)
		}
	})
	t.Run("hidden blank row and unused column are fine", func(t *testing.T) {
		data := build(t, func(f *excelize.File) {
			f.SetRowVisible("Sheet1", 10, false)
			f.SetColVisible("Sheet1", "K", false)
		})
		if _, rows, ve := readXLSX(t, data, manifest.Options{}); ve != nil || len(rows) != 3 {
			t.Fatalf("rows %+v, problems %v", rows, ve)
		}
	})
}

// TestXLSXStaleFormula: a formula cell is read by its stored value, which
// a workbook written by a program (or edited by hand) may not have
// recalculated; a spreadsheet that recalculates on opening shows another
// amount than the one that would be paid. A stored value that is not what
// the formula computes is refused; a formula that cannot be computed too.
func TestXLSXStaleFormula(t *testing.T) {
	data := makeXLSX(t, xlsxSheet{name: "S", rows: [][]any{xlsxHeader,
		{"R-1", 10, "RUB", "4242424242424242", "Ivan"},
		{"R-2", 10, "RUB", "4111111111111111", "Anna"},
		{"R-3", 10, "RUB", "5555555555554444", "Boris"},
		{"R-4", 10, "RUB", "2200000000000004", "Olga"},
	}})
	data = rewriteSheet(t, data, func(x string) string {
		for _, c := range []struct{ cell, repl string }{
			{"B2", `<c r="B2"><f>5*2.5</f><v>12.5</v></c>`},                // fresh: 12.50
			{"B3", `<c r="B3"><f>10*1</f><v>900000</v></c>`},               // stale: shows 10, stores 900000
			{"A4", `<c r="A4" t="str"><f>"R-"&amp;"4X"</f><v>R-3</v></c>`}, // stale reference
			{"B5", `<c r="B5"><f>NOSUCHFUNCTION(1)</f><v>10</v></c>`},      // cannot be checked
		} {
			i := strings.Index(x, `<c r="`+c.cell+`"`)
			j := strings.Index(x[i:], "</c>")
			x = x[:i] + c.repl + x[i+j+len("</c>"):]
		}
		return x
	})
	_, rows, ve := readXLSX(t, data, manifest.Options{})
	got := problems(ve)
	want := []problem{{3, "amount", manifest.ErrSpreadsheetDamage}, {4, "reference", manifest.ErrSpreadsheetDamage}, {5, "amount", manifest.ErrSpreadsheetDamage}}
	if len(got) != len(want) {
		t.Fatalf("problems %v, want %v\n%v (rows %+v)", got, want, ve, rows)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("problem %d: %v, want %v\n%v", i, got[i], want[i], ve)
		}
	}
	if e := ve.Errors[0].Error(); !strings.Contains(e, `computes "10"`) || !strings.Contains(e, `"900000"`) {
		t.Errorf("stale amount: %s", e)
	}
}

// TestXLSXMergedCells: a cell covered by a merge is not shown (the merge
// shows its first cell's value across it) but a workbook may still hold
// a value there, which would be read and paid. Merged cells in the
// manifest's columns are refused, naming the range.
func TestXLSXMergedCells(t *testing.T) {
	data := makeXLSX(t, xlsxSheet{name: "Sheet1", rows: [][]any{xlsxHeader,
		{"R-1", 10, "RUB", "4242424242424242", "Ivan"},
		{"R-2", 900000, "RUB", "5555555555554444", "Mallory"}}})
	// B2:B3 merged shows 10 on both rows; B3 still holds 900000.
	data = rewriteSheet(t, data, func(x string) string {
		return strings.Replace(x, "</sheetData>", `</sheetData><mergeCells count="1"><mergeCell ref="B2:B3"/></mergeCells>`, 1)
	})
	_, got, ve := readXLSX(t, data, manifest.Options{})
	if ve == nil || len(got) != 0 || !strings.Contains(ve.Error(), "merged") || !strings.Contains(ve.Error(), "B2:B3") {
		t.Fatalf("merged B2:B3: rows %+v, problems %v; want refused as merged cells", got, ve)
	}
	// A merge in the header, or right of the manifest's columns, is fine.
	data = makeXLSX(t, xlsxSheet{name: "Sheet1", rows: [][]any{xlsxHeader,
		{"R-1", 10, "RUB", "4242424242424242", "Ivan"}}})
	data = rewriteSheet(t, data, func(x string) string {
		return strings.Replace(x, "</sheetData>", `</sheetData><mergeCells count="1"><mergeCell ref="K1:L5"/></mergeCells>`, 1)
	})
	if _, got, ve := readXLSX(t, data, manifest.Options{}); ve != nil || len(got) != 1 {
		t.Fatalf("merge outside the manifest: rows %+v, problems %v", got, ve)
	}
}

// TestXLSXNewProblemsShowNoCardNumber: the messages of the XLSX checks
// quote cell values (what a cell shows, what a formula computes, what it
// stores); a card number among them is masked like every value.
func TestXLSXNewProblemsShowNoCardNumber(t *testing.T) {
	const pan13 = "4222222222222" // a 13-digit Visa test number, Luhn-valid
	data := makeXLSX(t, xlsxSheet{name: "S", rows: [][]any{xlsxHeader,
		{"R-1", 4222222222222.0, "RUB", "4242424242424242", "Ivan"}, // amount shown in scientific notation
		{"R-2", 10, "RUB", "4111111111111111", "Anna"},
	}, formats: map[string]string{"B2": "0.00E+00"}})
	data = rewriteSheet(t, data, func(x string) string {
		i := strings.Index(x, `<c r="D3"`)
		j := strings.Index(x[i:], "</c>")
		// A stale card formula: computes one card, stores another.
		return x[:i] + `<c r="D3" t="str"><f>"5555555555554444"</f><v>4000056655665556</v></c>` + x[i+j+len("</c>"):]
	})
	_, _, ve := readXLSX(t, data, manifest.Options{})
	if ve == nil || len(ve.Errors) != 2 {
		t.Fatalf("problems %v; want 2", ve)
	}
	out := ve.Error()
	for _, e := range ve.Errors {
		out += "\n" + e.Hint + "\n" + e.Value
	}
	for _, card := range []string{pan13, "5555555555554444", "4000056655665556"} {
		if strings.Contains(out, card) {
			t.Errorf("a problem shows the card number %s:\n%s", card, out)
		}
	}
}

// TestEncodingOfAUTF8File: a UTF-8 file read with --encoding windows-1251
// (a command kept from last month's export) would garble every name
// without another problem; refused, once. A real windows-1251 file, and an
// ASCII one, still read.
func TestEncodingOfAUTF8File(t *testing.T) {
	text := manifestHeader + "R-1,10,RUB,4242424242424242,Иванов Иван,,\nR-2,10,RUB,4111111111111111,Пётр Сидоров,,\n"
	for _, enc := range []string{"windows-1251", "windows-1252"} {
		_, err := manifest.ReadBytes("m.csv", []byte(text), manifest.Options{Encoding: enc}, nil)
		var ve *manifest.ValidationError
		if !errors.As(err, &ve) || len(ve.Errors) != 1 || !errors.Is(ve.Errors[0], manifest.ErrEncoding) || !strings.Contains(ve.Error(), "file is UTF-8, not "+enc) {
			t.Errorf("a UTF-8 file read as %s: %v; want one encoding problem", enc, err)
		}
	}
	cp, err := charmap.Windows1251.NewEncoder().String(text)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	if _, err := manifest.ReadBytes("m.csv", []byte(cp), manifest.Options{Encoding: "windows-1251"}, func(r manifest.Row) error {
		names = append(names, r.RecipientName)
		return nil
	}); err != nil || strings.Join(names, ";") != "Иванов Иван;Пётр Сидоров" {
		t.Errorf("a windows-1251 file: %q, %v", names, err)
	}
	ascii := manifestHeader + "R-1,10,RUB,4242424242424242,Ivan,,\n"
	if _, err := manifest.ReadBytes("m.csv", []byte(ascii), manifest.Options{Encoding: "windows-1251"}, nil); err != nil {
		t.Errorf("an ASCII file read as windows-1251: %v", err)
	}
}

// TestXLSXHiddenSheetNamed: --sheet naming a hidden sheet is refused, like
// hidden rows: nobody checking the workbook saw it.
func TestXLSXHiddenSheetNamed(t *testing.T) {
	shown := xlsxSheet{name: "Payroll", rows: [][]any{xlsxHeader, {"R-1", 10, "RUB", "4242424242424242", "Ivan"}}}
	hidden := xlsxSheet{name: "Other", rows: [][]any{xlsxHeader, {"R-1", 900000, "RUB", "5555555555554444", "Mallory"}}}
	f, err := excelize.OpenReader(strings.NewReader(string(makeXLSX(t, shown, hidden))))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.SetSheetVisible("Other", false); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := f.Write(&b); err != nil {
		t.Fatal(err)
	}
	data := []byte(b.String())
	if _, rows, ve := readXLSX(t, data, manifest.Options{Sheet: "other"}); ve == nil || len(rows) != 0 || !strings.Contains(ve.Error(), `sheet "Other" is hidden`) {
		t.Errorf("--sheet of a hidden sheet: rows %+v, %v; want refused", rows, ve)
	}
	if sum, rows, ve := readXLSX(t, data, manifest.Options{Sheet: "Payroll"}); ve != nil || len(rows) != 1 || sum.Sheet != "Payroll" {
		t.Errorf("--sheet of a visible sheet: rows %+v, %v", rows, ve)
	}
}
