package manifest_test

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/payouts/payouts/batch/manifest"
)

// xlsxCell is a cell to write: a string is a text cell, anything else
// excelize writes by its type (numbers as numbers).
type xlsxSheet struct {
	name string
	rows [][]any
	// formats: cell → number format code ("00000", "#,##0.00")
	formats map[string]string
}

// makeXLSX writes a workbook with the sheets given, in order.
func makeXLSX(t testing.TB, sheets ...xlsxSheet) []byte {
	t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	for i, s := range sheets {
		if i == 0 {
			if err := f.SetSheetName("Sheet1", s.name); err != nil {
				t.Fatal(err)
			}
		} else if _, err := f.NewSheet(s.name); err != nil {
			t.Fatal(err)
		}
		for r, row := range s.rows {
			for c, v := range row {
				if v == nil {
					continue
				}
				cell, _ := excelize.CoordinatesToCellName(c+1, r+1)
				if err := f.SetCellValue(s.name, cell, v); err != nil {
					t.Fatal(err)
				}
			}
		}
		for cell, code := range s.formats {
			style, err := f.NewStyle(&excelize.Style{CustomNumFmt: &code})
			if err != nil {
				t.Fatal(err)
			}
			if err := f.SetCellStyle(s.name, cell, cell, style); err != nil {
				t.Fatal(err)
			}
		}
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

var xlsxHeader = []any{"reference", "amount", "currency", "card_number", "recipient_name", "email", "description"}

func readXLSX(t *testing.T, data []byte, opts manifest.Options) (manifest.Summary, []manifest.Row, *manifest.ValidationError) {
	t.Helper()
	var rows []manifest.Row
	sum, err := manifest.ReadBytes("payroll.xlsx", data, opts, func(r manifest.Row) error {
		rows = append(rows, r)
		return nil
	})
	var ve *manifest.ValidationError
	if err != nil && !errors.As(err, &ve) {
		t.Fatalf("ReadBytes: %v, want nil or *ValidationError", err)
	}
	return sum, rows, ve
}

// TestXLSXValid: cells are read as the spreadsheet shows them, rows are
// numbered as in the sheet, amounts stored as numbers are their values.
func TestXLSXValid(t *testing.T) {
	data := makeXLSX(t, xlsxSheet{name: "Payroll", rows: [][]any{
		xlsxHeader,
		{"R-1", 1500.5, "RUB", "4242424242424242", "Ivan Petrov", "ivan@example.com", "Bonus\nNovember"}, // row 2
		nil, // row 3 blank
		{123, "85,000.00", "rub", "5555 5555 5555 4444", "Anna", nil, nil},     // row 4: "00000" format keeps the zeros
		{"00124", 1234.5600000000002, "RUB", "4111111111111111", "Boris", nil}, // row 5: text keeps them
		{77, 1500, "JPY", "4242-4242-4242-4242", "Пётр", nil, nil},             // row 6: a number, General: 77
		{"R-7", 85000, "USD", "2200000000000004", "Maria", nil, nil},           // row 7: shown as 85,000.00
	}, formats: map[string]string{"A4": "00000", "B7": "#,##0.00"}})
	sum, rows, ve := readXLSX(t, data, manifest.Options{})
	if ve != nil {
		t.Fatalf("problems: %v", ve)
	}
	type got struct {
		Line             int
		Ref              string
		Amount           int64
		Cur, Name, Descr string
	}
	var g []got
	for _, r := range rows {
		g = append(g, got{r.Line, r.Reference, r.Amount, r.Currency, r.RecipientName, r.Description})
	}
	want := []got{
		{2, "R-1", 150050, "RUB", "Ivan Petrov", "Bonus November"},
		{4, "00123", 8500000, "RUB", "Anna", ""},
		{5, "00124", 123456, "RUB", "Boris", ""},
		{6, "77", 1500, "JPY", "Пётр", ""},
		{7, "R-7", 8500000, "USD", "Maria", ""},
	}
	if !reflect.DeepEqual(g, want) {
		t.Errorf("rows:\n%+v\nwant\n%+v", g, want)
	}
	if rows[1].Card.Digits() != "5555555555554444" {
		t.Errorf("card of row 4 = %s", rows[1].Card)
	}
	h := sha256.Sum256(data)
	if sum.Format != "xlsx" || sum.Sheet != "Payroll" || sum.Rows != 5 || sum.SHA256 != hex.EncodeToString(h[:]) {
		t.Errorf("summary %+v", sum)
	}
}

// TestXLSXProblems: the CSV rules, addressed by sheet row and column name;
// a card stored as a number is spreadsheet damage.
func TestXLSXProblems(t *testing.T) {
	data := makeXLSX(t, xlsxSheet{name: "Sheet1", rows: [][]any{
		nil,        // row 1 blank: the header is the first row with values
		xlsxHeader, // row 2
		{"R-1", 10, "RUB", 4242424242424242, "Ivan"},                     // 3: card as a number
		{"R-2", 10, "RUB", "4.24242E+15", "Ivan"},                        // 4: card text damaged
		{"R-3", "1,500", "RUB", "5555555555554444", "Ivan"},              // 5: ambiguous
		{"R-4", 10, "RUB", "4111111111111111", "Ivan\nPetrov"},           // 6: line break in a name
		{"R-5", 10, "RUB", "2200000000000004", "Ivan", nil, nil, "note"}, // 7: right of the header
		{"R-6", -5, "RUB", "4242424242424242", "Ivan"},                   // 8: negative number
		{"R-6", 10.005, "RUB", "5555555555554444", "Ivan"},               // 9: duplicate ref, 3 decimals
		{"R-8", 10, "RUB", "378282246310005", "Ivan", nil, "tab\there"},  // 10: control character
		{12345678901234567, 10, "RUB", "4242424242424242", "Ivan"},       // 11: reference number over 15 digits
	}})
	_, rows, ve := readXLSX(t, data, manifest.Options{})
	if len(rows) != 0 {
		t.Errorf("fn called %d times for an invalid file", len(rows))
	}
	want := []problem{
		{3, "card_number", manifest.ErrSpreadsheetDamage},
		{4, "card_number", manifest.ErrSpreadsheetDamage},
		{5, "amount", manifest.ErrAmount},
		{6, "recipient_name", manifest.ErrRecipientName},
		{7, "", manifest.ErrRecord},
		{8, "amount", manifest.ErrAmount},
		{9, "amount", manifest.ErrAmount},
		{9, "reference", manifest.ErrDuplicateReference},
		{10, "description", manifest.ErrDescription},
		{11, "reference", manifest.ErrSpreadsheetDamage},
	}
	if got := problems(ve); !reflect.DeepEqual(got, want) {
		t.Errorf("problems = %v\nwant %v\n%v", got, want, ve)
	}
	for _, e := range ve.Errors {
		if strings.Contains(e.Error(), "4242424242424242") {
			t.Errorf("problem shows a card number: %s", e)
		}
	}
	if e := ve.Errors[0].Error(); !strings.Contains(e, "stored as a number") || !strings.Contains(e, "format the card_number column as Text") {
		t.Errorf("card stored as a number: %s", e)
	}
	if e := ve.Errors[2].Error(); !strings.Contains(e, "1500.00 if ',' separates thousands, 1.50 if it is the decimal mark") {
		t.Errorf("ambiguous: %s", e)
	}
	if e := ve.Errors[6].Error(); !strings.Contains(e, `"10.005": amount has 3 decimals, RUB has 2`) {
		t.Errorf("a number amount is quoted as its value: %s", e)
	}
	if e := ve.Errors[7].Error(); !strings.Contains(e, `same reference as "R-6" on line 8`) {
		t.Errorf("duplicate reference does not name the first spelling: %s", e)
	}
	// With extra columns allowed, the value right of the header is ignored.
	_, _, ve = readXLSX(t, makeXLSX(t, xlsxSheet{name: "S", rows: [][]any{xlsxHeader, {"R-5", 10, "RUB", "2200000000000004", "Ivan", nil, nil, "note"}}}), manifest.Options{AllowExtraColumns: true})
	if ve != nil {
		t.Errorf("AllowExtraColumns: %v", ve)
	}
}

// TestXLSXSheets: the first visible sheet by default, Options.Sheet by
// name (any case), and an unknown name lists the sheets.
func TestXLSXSheets(t *testing.T) {
	notes := xlsxSheet{name: "Notes", rows: [][]any{{"not a manifest"}}}
	pay := xlsxSheet{name: "Payroll", rows: [][]any{xlsxHeader, {"R-1", 10, "RUB", "4242424242424242", "Ivan"}}}
	data := makeXLSX(t, notes, pay)
	if _, _, ve := readXLSX(t, data, manifest.Options{}); ve == nil || !errors.Is(ve, manifest.ErrHeader) {
		t.Errorf("first sheet: %v, want its header refused", ve)
	}
	sum, rows, ve := readXLSX(t, data, manifest.Options{Sheet: "payroll"})
	if ve != nil || len(rows) != 1 || sum.Sheet != "Payroll" {
		t.Errorf("Sheet payroll: %v rows, %v, sheet %q", len(rows), ve, sum.Sheet)
	}
	_, _, ve = readXLSX(t, data, manifest.Options{Sheet: "Payouts"})
	if ve == nil || !strings.Contains(ve.Error(), `workbook has no sheet "Payouts"`) || !strings.Contains(ve.Error(), `"Notes", "Payroll"`) {
		t.Errorf("unknown sheet: %v", ve)
	}
	// A hidden first sheet is skipped.
	f, err := excelize.OpenReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	f.SetActiveSheet(1)
	if err := f.SetSheetVisible("Notes", false); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	if sum, _, ve := readXLSX(t, buf.Bytes(), manifest.Options{}); ve != nil || sum.Sheet != "Payroll" {
		t.Errorf("hidden first sheet: sheet %q, %v", sum.Sheet, ve)
	}
	// An empty workbook.
	if _, _, ve := readXLSX(t, makeXLSX(t, xlsxSheet{name: "Empty"}), manifest.Options{}); ve == nil || !errors.Is(ve, manifest.ErrEmpty) {
		t.Errorf("empty sheet: %v", ve)
	}
}

// TestXLSXByContent: the format is told by the content, whatever the name,
// through every entry point; Reread checks the workbook's SHA-256.
func TestXLSXByContent(t *testing.T) {
	data := makeXLSX(t, xlsxSheet{name: "S", rows: [][]any{xlsxHeader, {"R-1", 10, "RUB", "4242424242424242", "Ivan"}, {"R-2", 20, "RUB", "5555555555554444", "Anna"}}})
	dir := t.TempDir()
	path := filepath.Join(dir, "payroll.csv") // misnamed
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	sum, err := manifest.ReadFile(path, manifest.Options{}, nil)
	if err != nil || sum.Format != "xlsx" || sum.Rows != 2 {
		t.Fatalf("ReadFile of a workbook named .csv: %+v, %v", sum, err)
	}
	n := 0
	if err := manifest.Reread(path, manifest.Options{}, sum.SHA256, func(manifest.Row) error { n++; return nil }); err != nil || n != 2 {
		t.Errorf("Reread: %d rows, %v", n, err)
	}
	if s, err := manifest.Read(bytes.NewReader(data), manifest.Options{}, nil); err != nil || s.SHA256 != sum.SHA256 {
		t.Errorf("Read: %+v, %v", s, err)
	}
	if s, err := manifest.ReadAt("upload", bytes.NewReader(data), int64(len(data)), manifest.Options{}, nil); err != nil || s.SHA256 != sum.SHA256 {
		t.Errorf("ReadAt: %+v, %v", s, err)
	}
	// A changed workbook is refused by Reread.
	other := makeXLSX(t, xlsxSheet{name: "S", rows: [][]any{xlsxHeader, {"R-1", 10, "RUB", "4242424242424242", "Ivan"}, {"R-2", 21, "RUB", "5555555555554444", "Anna"}}})
	if err := os.WriteFile(path, other, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := manifest.Reread(path, manifest.Options{}, sum.SHA256, func(manifest.Row) error { return nil }); !errors.Is(err, manifest.ErrChanged) {
		t.Errorf("Reread of a changed workbook: %v, want ErrChanged", err)
	}
	// CSV content named .xlsx, and a zip that is no workbook.
	csvData := []byte(manifestHeader + "R-1,10,RUB,4242424242424242,Ivan,,\n")
	if _, err := manifest.ReadBytes("payroll.xlsx", csvData, manifest.Options{}, nil); !errors.Is(err, manifest.ErrEncoding) || !strings.Contains(err.Error(), "named .xlsx but is not an Excel workbook") {
		t.Errorf("CSV named .xlsx: %v", err)
	}
	var zb bytes.Buffer
	zw := zip.NewWriter(&zb)
	w, _ := zw.Create("readme.txt")
	w.Write([]byte("hello"))
	zw.Close()
	if _, err := manifest.ReadBytes("x.xlsx", zb.Bytes(), manifest.Options{}, nil); !errors.Is(err, manifest.ErrEncoding) {
		t.Errorf("zip without a workbook: %v", err)
	}
}

// TestXLSXCaps: MaxRows and MaxXLSXBytes apply; a zip bomb is refused
// before anything is unzipped into memory beyond the cap.
func TestXLSXCaps(t *testing.T) {
	rows := [][]any{xlsxHeader}
	for i := range 5 {
		rows = append(rows, []any{"R-" + strconv.Itoa(i), i + 1, "RUB", "4242424242424242", "Ivan"})
	}
	data := makeXLSX(t, xlsxSheet{name: "S", rows: rows})
	if _, _, ve := readXLSX(t, data, manifest.Options{MaxRows: 3, AllowDuplicates: true}); ve == nil || !errors.Is(ve, manifest.ErrTooManyRows) || ve.Errors[len(ve.Errors)-1].Line != 5 {
		t.Errorf("MaxRows 3: %v", ve)
	}
	if _, _, ve := readXLSX(t, data, manifest.Options{MaxXLSXBytes: int64(len(data) - 1)}); ve == nil || !errors.Is(ve, manifest.ErrTooLarge) {
		t.Errorf("file over MaxXLSXBytes: %v", ve)
	}
	if _, err := manifest.Read(bytes.NewReader(data), manifest.Options{MaxXLSXBytes: int64(len(data) - 1)}, nil); !errors.Is(err, manifest.ErrTooLarge) {
		t.Errorf("Read of a stream over MaxXLSXBytes: %v", err)
	}

	// The bomb: a valid workbook plus 80 MiB of zeros, 80 KiB zipped.
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var bomb bytes.Buffer
	zw := zip.NewWriter(&bomb)
	for _, f := range zr.File {
		if err := zw.Copy(f); err != nil {
			t.Fatal(err)
		}
	}
	w, err := zw.Create("xl/media/image1.bin")
	if err != nil {
		t.Fatal(err)
	}
	zeros := make([]byte, 1<<20)
	for range 80 {
		w.Write(zeros)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, ve := readXLSX(t, bomb.Bytes(), manifest.Options{MaxXLSXBytes: 16 << 20})
	if ve == nil || !errors.Is(ve, manifest.ErrTooLarge) || !strings.Contains(ve.Error(), "unzips to more than") {
		t.Errorf("zip bomb (%d bytes zipped): %v, want ErrTooLarge", bomb.Len(), ve)
	}
}

// TestXLSXNoTempFiles: reading a workbook whose sheet is larger than
// excelize's own in-memory limit (16 MiB) writes nothing to $TMPDIR.
func TestXLSXNoTempFiles(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("reads a 20 MiB sheet: not with -short or -race (minutes under the race detector)")
	}
	f := excelize.NewFile()
	sw, err := f.NewStreamWriter("Sheet1")
	if err != nil {
		t.Fatal(err)
	}
	if err := sw.SetRow("A1", xlsxHeader); err != nil {
		t.Fatal(err)
	}
	const n = 60_000
	desc := strings.Repeat("x", 200)
	for i := 1; i <= n; i++ {
		cell, _ := excelize.CoordinatesToCellName(1, i+1)
		if err := sw.SetRow(cell, []any{"R-" + strconv.Itoa(i), strconv.Itoa(i) + ".00", "RUB", "4242424242424242", "Ivan", nil, desc}); err != nil {
			t.Fatal(err)
		}
	}
	if err := sw.Flush(); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := f.Write(&buf); err != nil {
		t.Fatal(err)
	}
	f.Close()
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	sum, err := manifest.ReadBytes("big.xlsx", buf.Bytes(), manifest.Options{AllowDuplicates: true}, nil)
	if err != nil || sum.Rows != n {
		t.Fatalf("ReadBytes: %d rows, %v", sum.Rows, err)
	}
	// The sheet's XML is over excelize's 16 MiB in-memory default, so the
	// test would see a temporary file if the limits were excelize's.
	zr, _ := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	for _, zf := range zr.File {
		if zf.Name == "xl/worksheets/sheet1.xml" && zf.UncompressedSize64 <= 16<<20 {
			t.Fatalf("sheet XML is %d bytes, want over 16 MiB for this test to mean anything", zf.UncompressedSize64)
		}
	}
	left, _ := os.ReadDir(tmp)
	if len(left) != 0 {
		t.Errorf("$TMPDIR has %d entries after reading, want none: %v", len(left), left)
	}
}

// rewriteSheet returns data with f applied to the XML of its first sheet.
func rewriteSheet(t *testing.T, data []byte, f func(string) string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	for _, zf := range zr.File {
		if zf.Name != "xl/worksheets/sheet1.xml" {
			if err := zw.Copy(zf); err != nil {
				t.Fatal(err)
			}
			continue
		}
		rc, err := zf.Open()
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(rc)
		rc.Close()
		w, _ := zw.Create(zf.Name)
		w.Write([]byte(f(b.String())))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// TestXLSXErrorCell: a cell holding a spreadsheet error (#N/A, a failed
// formula) is spreadsheet damage of its column.
func TestXLSXErrorCell(t *testing.T) {
	data := makeXLSX(t, xlsxSheet{name: "S", rows: [][]any{xlsxHeader, {"R-1", 10, "RUB", "4242424242424242", "Ivan"}}})
	data = rewriteSheet(t, data, func(x string) string {
		i := strings.Index(x, `<c r="B2"`)
		j := strings.Index(x[i:], "</c>")
		if i < 0 || j < 0 {
			t.Fatalf("no cell B2 in %s", x)
		}
		return x[:i] + `<c r="B2" t="e"><f>VLOOKUP(A2,Rates!A:B,2,FALSE)</f><v>#N/A</v></c>` + x[i+j+len("</c>"):]
	})
	_, _, ve := readXLSX(t, data, manifest.Options{})
	if got, want := problems(ve), []problem{{2, "amount", manifest.ErrSpreadsheetDamage}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("problems %v, want %v\n%v", got, want, ve)
	}
	if e := ve.Errors[0].Error(); !strings.Contains(e, `"#N/A": cell holds the spreadsheet error #N/A`) || !errors.Is(ve.Errors[0], manifest.ErrAmount) {
		t.Errorf("error cell: %s", e)
	}
}

// TestReadFilePipe: a path that is a pipe (no size) is streamed, CSV or
// XLSX.
func TestReadFilePipe(t *testing.T) {
	data := makeXLSX(t, xlsxSheet{name: "S", rows: [][]any{xlsxHeader, {"R-1", 10, "RUB", "4242424242424242", "Ivan"}}})
	for _, in := range [][]byte{data, []byte(manifestHeader + "R-1,10,RUB,4242424242424242,Ivan,,\n")} {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			w.Write(in)
			w.Close()
		}()
		sum, err := manifest.ReadFile("/dev/fd/"+strconv.Itoa(int(r.Fd())), manifest.Options{}, nil)
		r.Close()
		if err != nil || sum.Rows != 1 {
			t.Errorf("ReadFile of a pipe: %+v, %v", sum, err)
		}
	}
}

// TestXLSXFormulaCells: a formula cell gives its last computed value.
func TestXLSXFormulaCells(t *testing.T) {
	data := makeXLSX(t, xlsxSheet{name: "S", rows: [][]any{xlsxHeader, {"R-1", 10, "RUB", "4242424242424242", "Ivan"}}})
	data = rewriteSheet(t, data, func(x string) string {
		for _, c := range []struct{ cell, repl string }{
			{"A2", `<c r="A2" t="str"><f>"EMP-"&amp;TEXT(7,"000")</f><v>EMP-007</v></c>`},
			{"B2", `<c r="B2"><f>5*2.5</f><v>12.5</v></c>`},
		} {
			i := strings.Index(x, `<c r="`+c.cell+`"`)
			j := strings.Index(x[i:], "</c>")
			x = x[:i] + c.repl + x[i+j+len("</c>"):]
		}
		return x
	})
	_, rows, ve := readXLSX(t, data, manifest.Options{})
	if ve != nil || len(rows) != 1 || rows[0].Reference != "EMP-007" || rows[0].Amount != 1250 {
		t.Errorf("formula cells: %+v, %v; want EMP-007 12.50", rows, ve)
	}
}
