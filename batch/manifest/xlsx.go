package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/xuri/excelize/v2"
)

// An XLSX manifest is read with excelize, in memory only, as the cells
// show their values: the formatted text a person sees in the spreadsheet,
// with three exceptions decided by the cell's type:
//
//   - a card number stored as a number is spreadsheet damage (a number
//     keeps 15 digits; the 16th is already lost), whatever its format;
//   - an amount stored as a number is its value, rounded to the 15
//     significant digits a spreadsheet shows ("1500.5", not the "1,500.50"
//     of its format, nor 1500.4999999999998);
//   - a cell holding an error (#N/A, #VALUE!) is spreadsheet damage.
//
// Rows are numbered as in the sheet: a problem's line is the row number.

// zipMagic starts every zip file, so every XLSX workbook.
const zipMagic = "PK\x03\x04"

// noTempDir is where excelize would put the parts of a workbook larger
// than its in-memory limit: a path that cannot be created, so that a
// temporary file (holding card numbers) can never be written even if the
// limits below did not keep excelize in memory.
var noTempDir = filepath.Join(os.DevNull, "payouts-writes-no-temporary-files")

// xlsxCells is what an XLSX row says about its cells beyond their text.
type xlsxCells struct {
	amountNumber string            // the amount cell's value when it is stored as a number
	cardNumber   bool              // the card cell is stored as a number
	refNumber    bool              // the reference cell is a number too long for a spreadsheet (over 15 digits, or shown with an exponent)
	errorCell    map[string]string // column → the error a cell holds (#N/A)
	// formula holds the problems of formula cells whose stored (last
	// computed) value is not what their formula computes now, by column.
	formula map[string]*reason
}

// cardStoredAsNumber is the problem of a card number cell of type number.
var cardStoredAsNumber = newReason("card number is stored as a number in the spreadsheet, which keeps only 15 digits (shown as 4.24E+15 or with the last digit 0)",
	"format the card_number column as Text, type or paste the numbers again, and save", ErrSpreadsheetDamage, ErrCard)

// columnErr is the sentinel of a column's problems.
func columnErr(column string) error {
	switch column {
	case "reference":
		return ErrReference
	case "amount":
		return ErrAmount
	case "currency":
		return ErrCurrency
	case "card_number":
		return ErrCard
	case "recipient_name":
		return ErrRecipientName
	case "email":
		return ErrEmail
	}
	return ErrDescription
}

func isXLSXName(name string) bool {
	e := strings.ToLower(filepath.Ext(name))
	return e == ".xlsx" || e == ".xlsm"
}

func extOf(name string) string { return strings.ToLower(filepath.Ext(name)) }

// tooLarge is the problem of a workbook over Options.MaxXLSXBytes.
func tooLarge(size, limit int64) *reason {
	return newReason(fmt.Sprintf("workbook is larger than %d bytes (as a file or unzipped: %d)", limit, size),
		"split the payouts into smaller workbooks", ErrTooLarge)
}

// readXLSX does the pass over a workbook held in data. A panic in the
// workbook library (a malformed file it does not expect) is the file's
// problem, not the process's end: the upload of a web console must not
// bring it down.
func (m *reader) readXLSX(data []byte) (err error) {
	defer func() {
		if p := recover(); p != nil {
			m.sum.SHA256 = ""
			m.addError(newRowError(0, "", "", newReason(fmt.Sprintf("workbook cannot be read (%v)", p),
				"open it in the spreadsheet and save it again as \"Excel Workbook (*.xlsx)\"", ErrEncoding)))
			err = nil
		}
	}()
	return m.readXLSXPass(data)
}

func (m *reader) readXLSXPass(data []byte) error {
	m.sum.Format, m.sum.Encoding, m.sum.Delimiter = "xlsx", "", ','
	limit := m.opts.MaxXLSXBytes
	if int64(len(data)) > limit {
		m.addError(newRowError(0, "", "", tooLarge(int64(len(data)), limit)))
		return nil
	}
	sum := sha256.Sum256(data)
	f, err := excelize.OpenReader(bytes.NewReader(data), excelize.Options{
		// Equal limits: no part is ever too large for memory, so none is
		// unzipped to a temporary file; a larger one refuses the file.
		UnzipSizeLimit: limit, UnzipXMLSizeLimit: limit, TmpDir: noTempDir,
	})
	if err != nil {
		if f != nil {
			f.Close()
		}
		m.addError(newRowError(0, "", "", workbookProblem(err, limit)))
		return nil
	}
	defer f.Close()
	sheet, problem := pickSheet(f, m.opts.Sheet)
	if problem != nil {
		m.addError(newRowError(0, "", "", problem))
		return nil
	}
	m.sum.Sheet = sheet
	merges := sheetMerges(f, sheet)
	types, err := newCellTypes(f, sheet)
	if err != nil {
		m.addError(newRowError(0, "", "", newReason("sheet "+strconv.Quote(sheet)+" cannot be read: "+err.Error(), "open the workbook in the spreadsheet and save it again as \"Excel Workbook (*.xlsx)\"", ErrEncoding)))
		return nil
	}
	rows, err := f.Rows(sheet)
	if err != nil {
		m.addError(newRowError(0, "", "", newReason("sheet "+strconv.Quote(sheet)+" cannot be read: "+err.Error(), "open the workbook in the spreadsheet and save it again", ErrEncoding)))
		return nil
	}
	defer rows.Close()

	var canonical []string // column names by position, once the header is read
	headerLine := 0
	for line := 1; rows.Next(); line++ {
		cells, err := rows.Columns()
		if err != nil {
			m.addError(newRowError(line, "", "", newReason("row cannot be read: "+err.Error(), "open the workbook in the spreadsheet and save it again", ErrRecord)))
			return nil
		}
		kinds := types.row(line)
		cells = trimTrailingBlank(cells)
		if len(cells) == 0 {
			continue
		}
		if canonical == nil {
			headerLine = line
			names, ok := m.checkHeaderNames(cells, line)
			if !ok {
				return nil
			}
			canonical = names
			for i, name := range canonical {
				if _, known := columnIndex[name]; known && types.colHidden(i) {
					col, _ := excelize.ColumnNumberToName(i + 1)
					m.addError(newRowError(line, name, "", newReason(fmt.Sprintf("column %s (%s) is hidden in the sheet: whoever checked the workbook did not see it", col, name),
						"unhide the column, check its values, and save", ErrHeader, columnErr(name))))
				}
			}
			m.checkMerges(merges, canonical, line)
			continue
		}
		if !m.countRow(line) {
			return nil
		}
		rec, ok := m.xlsxRecord(cells, kinds, canonical, line)
		if ok {
			checkFormulas(f, sheet, &rec, kinds, canonical, line)
		}
		if !ok || isBlank(&rec) {
			if ok {
				m.sum.Rows--
			}
			continue
		}
		if types.rowHidden(line) {
			m.addError(newRowError(line, "", "", newReason("row is hidden in the sheet (by hand, by a filter or in a collapsed group): whoever checked the workbook did not see this payout",
				"unhide the row (clear filters, expand groups) and check it, or delete it, and save", ErrRecord)))
			continue
		}
		row, valid := m.checkRow(&rec, line)
		if valid && m.total == 0 && m.fn != nil {
			if err := m.fn(row); err != nil {
				return fmt.Errorf("manifest line %d: %w", line, err)
			}
		}
	}
	if err := rows.Error(); err != nil {
		m.addError(newRowError(0, "", "", newReason("sheet "+strconv.Quote(sheet)+" cannot be read to the end: "+err.Error(), "open the workbook in the spreadsheet and save it again", ErrRecord)))
		return nil
	}
	if canonical == nil {
		m.addError(newRowError(0, "", "", newReason("sheet "+strconv.Quote(sheet)+" is empty", "the first row must be the header: "+headerHint, ErrEmpty)))
		return nil
	}
	if m.sum.Rows == 0 {
		m.addError(newRowError(headerLine, "", "", newReason("manifest has a header but no rows", "add the payouts below the header row", ErrEmpty)))
	}
	m.sum.SHA256 = hex.EncodeToString(sum[:])
	if len(m.dupPays)+len(m.dupRefs) > 0 {
		m.nameFirstXLSXReferences(f, sheet)
	}
	m.checkControlTotals()
	m.checkMaxTotals()
	return nil
}

// nameFirstXLSXReferences names the first reference of every duplicate
// payout and duplicate reference, reading the sheet (in memory) again.
func (m *reader) nameFirstXLSXReferences(f *excelize.File, sheet string) {
	want := map[int]string{}
	for _, d := range m.dupPays {
		want[d.firstLine] = ""
	}
	for _, d := range m.dupRefs {
		want[d.firstLine] = ""
	}
	rows, err := f.Rows(sheet)
	if err != nil {
		return
	}
	defer rows.Close()
	for line := 1; rows.Next(); line++ {
		if _, ok := want[line]; !ok {
			continue
		}
		cells, err := rows.Columns()
		if err != nil {
			return
		}
		if i := m.header.refIndex; i >= 0 && i < len(cells) {
			want[line] = trim(cells[i])
		}
	}
	for _, d := range m.dupPays {
		d.name(want[d.firstLine])
	}
	for _, d := range m.dupRefs {
		d.name(want[d.firstLine])
	}
}

// workbookProblem explains why excelize could not open a zip file.
func workbookProblem(err error, limit int64) *reason {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "unzip size exceeds"):
		return tooLarge(-1, limit).with(fmt.Sprintf("workbook unzips to more than %d bytes (a zip bomb, or a very large workbook); nothing was read", limit))
	case errors.Is(err, excelize.ErrWorkbookFileFormat), errors.Is(err, excelize.ErrWorkbookPassword):
		return newReason("workbook is protected with a password or not a workbook", "save it without a password as \"Excel Workbook (*.xlsx)\"", ErrEncoding)
	}
	return newReason("file is a zip archive but not a readable Excel workbook: "+msg,
		"open it in the spreadsheet and save it as \"Excel Workbook (*.xlsx)\" or \"CSV UTF-8 (Comma delimited)\"", ErrEncoding)
}

// pickSheet returns the sheet Options.Sheet names, or the first visible one.
func pickSheet(f *excelize.File, want string) (string, *reason) {
	list := f.GetSheetList()
	if len(list) == 0 {
		return "", newReason("file is a zip archive but not an Excel workbook (it has no sheets)",
			"save the manifest as \"Excel Workbook (*.xlsx)\" or \"CSV UTF-8 (Comma delimited)\"", ErrEncoding)
	}
	if want != "" {
		for _, s := range list {
			if strings.EqualFold(s, want) {
				if v, err := f.GetSheetVisible(s); err == nil && !v {
					return "", newReason(fmt.Sprintf("sheet %q is hidden in the workbook: whoever checked the workbook did not see it", s),
						"unhide it (right-click a sheet tab → Unhide), check it, and save", ErrHeader)
				}
				return s, nil
			}
		}
		quoted := make([]string, len(list))
		for i, s := range list {
			quoted[i] = strconv.Quote(s)
		}
		return "", newReason(fmt.Sprintf("workbook has no sheet %q", want), "its sheets are "+strings.Join(quoted, ", ")+"; give one of them with --sheet", ErrHeader)
	}
	for _, s := range list {
		if v, err := f.GetSheetVisible(s); err == nil && v {
			return s, nil
		}
	}
	return "", newReason("every sheet of the workbook is hidden", "unhide the payouts sheet (right-click a sheet tab → Unhide), check it, and save", ErrHeader)
}

func trimTrailingBlank(cells []string) []string {
	for len(cells) > 0 && trim(cells[len(cells)-1]) == "" {
		cells = cells[:len(cells)-1]
	}
	return cells
}

// xlsxRecord builds the record of a data row. false means the row has a
// problem that stops its check (a value right of the header).
func (m *reader) xlsxRecord(cells []string, kinds map[int]cellInfo, canonical []string, line int) (record, bool) {
	rec := record{xl: &xlsxCells{}}
	size := 0
	for i, v := range cells {
		size += len(v)
		if i >= len(canonical) {
			if trim(v) != "" && !m.opts.AllowExtraColumns {
				col, _ := excelize.ColumnNumberToName(i + 1)
				m.addError(newRowError(line, "", v, newReason(fmt.Sprintf("a value in column %s, right of the last column of the header", col),
					"delete it, or give its column a name in the header row and allow extra columns", ErrRecord)))
				return rec, false
			}
			continue
		}
		name := canonical[i]
		k := kinds[i]
		switch {
		case k.kind == 'e':
			if rec.xl.errorCell == nil {
				rec.xl.errorCell = map[string]string{}
			}
			rec.xl.errorCell[name] = k.raw
		case k.kind == 'n' && name == "card_number":
			rec.xl.cardNumber = true
		case k.kind == 'n' && name == "amount":
			rec.xl.amountNumber = numberText(k.raw)
		case k.kind == 'n' && name == "reference":
			rec.xl.refNumber = strings.ContainsAny(v, "Ee") || significantDigits(k.raw) > 15
		}
		switch name {
		case "reference":
			rec.Reference = v
		case "amount":
			rec.Amount = v
		case "currency":
			rec.Currency = v
		case "card_number":
			rec.CardNumber = v
		case "recipient_name":
			rec.RecipientName = v
		case "email":
			rec.Email = v
		case "description":
			rec.Description = v
		}
	}
	if size > m.opts.MaxLineBytes {
		m.addError(newRowError(line, "", "", newReason(fmt.Sprintf("row is longer than %d bytes", m.opts.MaxLineBytes), "check for text pasted into the wrong cell", ErrLineTooLong)))
		return rec, false
	}
	return rec, true
}

// significantDigits counts the significant digits of a number as written
// in a cell's XML (an exponent or a sign ends it).
func significantDigits(raw string) int {
	n, started := 0, false
	for _, c := range raw {
		switch {
		case c >= '1' && c <= '9', c == '0' && started:
			n++
			started = true
		case c == 'E' || c == 'e':
			return n
		}
	}
	return n
}

// refStoredAsNumber is the problem of a reference stored as a number that a
// spreadsheet cannot hold exactly.
var refStoredAsNumber = newReason("reference is stored as a number too long for the spreadsheet, which keeps only 15 digits",
	"format the reference column as Text, type the references again, and save", ErrSpreadsheetDamage, ErrReference)

// numberText writes the value of a number cell as a spreadsheet shows it at
// most: 15 significant digits, no exponent ("1500.5"). A value that is not
// a number is returned as it is, for the amount check to refuse.
func numberText(raw string) string {
	v, err := strconv.ParseFloat(strings.TrimSpace(raw), 64)
	if err != nil {
		return raw
	}
	v, _ = strconv.ParseFloat(strconv.FormatFloat(v, 'g', 15, 64), 64)
	return strconv.FormatFloat(v, 'f', -1, 64)
}

// sheetMerges returns the merged ranges of sheet ("B2:B3"), read from the
// part's XML after its rows (excelize's GetMergeCells would unmarshal the
// whole sheet into memory). Only what follows the last "sheetData>" is
// read: no cell text can come after it.
func sheetMerges(f *excelize.File, sheet string) []string {
	p, err := sheetPart(f, sheet)
	if err != nil {
		return nil
	}
	v, _ := f.Pkg.Load(p)
	b, _ := v.([]byte)
	i := bytes.LastIndex(b, []byte("sheetData>"))
	if i < 0 {
		return nil
	}
	var refs []string
	d := xml.NewDecoder(bytes.NewReader(b[i+len("sheetData>"):]))
	d.Strict = false
	for {
		tok, err := d.Token()
		if err != nil {
			return refs
		}
		if e, ok := tok.(xml.StartElement); ok && e.Name.Local == "mergeCell" {
			refs = append(refs, attr(e, "ref"))
		}
	}
}

// checkMerges refuses merged cells over the manifest's columns from the
// header down: a merge shows its first cell's value across the range,
// while the cells it covers may still hold values of their own, which
// would be read (and paid) unseen.
func (m *reader) checkMerges(merges []string, canonical []string, headerLine int) {
	for _, ref := range merges {
		a, b, ok := strings.Cut(ref, ":")
		if !ok {
			b = a
		}
		c1, r1, err1 := excelize.CellNameToCoordinates(a)
		c2, r2, err2 := excelize.CellNameToCoordinates(b)
		if err1 != nil || err2 != nil {
			m.addError(newRowError(headerLine, "", "", newReason(fmt.Sprintf("sheet has merged cells %q that cannot be read", ref),
				"unmerge the cells (Home → Merge & Center → Unmerge Cells) and save", ErrRecord)))
			continue
		}
		if r2 < headerLine {
			continue // a title above the header
		}
		for c := min(c1, c2); c <= max(c1, c2) && c <= len(canonical); c++ {
			name := canonical[c-1]
			if _, known := columnIndex[name]; !known {
				continue
			}
			m.addError(newRowError(max(min(r1, r2), headerLine), name, "", newReason(fmt.Sprintf("cells %s are merged: the sheet shows one value across them, while each cell may hold its own (read and paid unseen)", ref),
				"unmerge the cells (Home → Merge & Center → Unmerge Cells), give every row its own values, check them and save", ErrRecord, columnErr(name))))
			break
		}
	}
}

// checkFormulas compares the stored value of every formula cell of the
// row's manifest columns with what its formula computes now. The stored
// value is what is read (and paid); a spreadsheet that recalculates on
// opening (a workbook written by a program, or saved with "recalculate
// on load") shows the computed one: the two must agree, or the person who
// checked the workbook saw another amount, card or reference. A formula
// that cannot be computed here is refused too (fail closed).
func checkFormulas(f *excelize.File, sheet string, rec *record, kinds map[int]cellInfo, canonical []string, line int) {
	for i, k := range kinds {
		if !k.formula || i >= len(canonical) || canonical[i] == "" || canonical[i] == "description" || canonical[i] == "email" || k.kind == 'e' {
			continue
		}
		cell, err := excelize.CoordinatesToCellName(i+1, line)
		if err != nil {
			continue
		}
		got, err := f.CalcCellValue(sheet, cell, excelize.Options{RawCellValue: true})
		var r *reason
		switch {
		case err != nil:
			r = newReason("cell holds a formula that cannot be checked ("+strings.TrimSpace(err.Error())+")",
				"replace the formulas of the column by their values (copy, then Paste Special → Values) and save", ErrSpreadsheetDamage, columnErr(canonical[i]))
		case !sameCellValue(got, k.raw):
			r = newReason(fmt.Sprintf("cell's formula computes %q but the workbook stores %q as its value (not recalculated since it changed)", got, k.raw),
				"open the workbook in the spreadsheet, recalculate (F9), check the values and save; or replace the formulas by their values", ErrSpreadsheetDamage, columnErr(canonical[i]))
		default:
			continue
		}
		if rec.xl.formula == nil {
			rec.xl.formula = map[string]*reason{}
		}
		rec.xl.formula[canonical[i]] = r
	}
}

// sameCellValue says whether a formula's computed value and its stored one
// agree: as numbers (to the 15 digits a spreadsheet keeps) when both are,
// else as text.
func sameCellValue(a, b string) bool {
	if a == b {
		return true
	}
	_, err1 := strconv.ParseFloat(strings.TrimSpace(a), 64)
	_, err2 := strconv.ParseFloat(strings.TrimSpace(b), 64)
	return err1 == nil && err2 == nil && numberText(a) == numberText(b)
}

// amountShown says whether shown, the text a number cell's format shows,
// is value (numberText of the cell): the same number once currency
// symbols, words, spaces and the ',' grouping excelize writes are set
// aside. A date, a time, a percentage, a fraction, an exponent or a format
// that rounds or scales the value is not.
func amountShown(shown, value string) bool {
	num := ""
	runs := 0
	for _, run := range strings.FieldsFunc(shown, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.' || r == ',') }) {
		if strings.IndexFunc(run, func(r rune) bool { return r >= '0' && r <= '9' }) < 0 {
			continue // a '.' of "руб."
		}
		runs++
		num = strings.Trim(strings.ReplaceAll(run, ",", ""), ".")
	}
	if runs != 1 || strings.ContainsRune(shown, '%') {
		return false
	}
	norm := func(s string) (string, bool) {
		ip, frac, _ := strings.Cut(s, ".")
		if strings.Contains(frac, ".") {
			return "", false
		}
		ip = strings.TrimLeft(ip, "0")
		frac = strings.TrimRight(frac, "0")
		return ip + "." + frac, true
	}
	a, ok1 := norm(num)
	b, ok2 := norm(value)
	return ok1 && ok2 && a == b
}

// amountShownDiffers is the problem of an amount cell that shows something
// else than the number it holds.
func amountShownDiffers(shown, value string) *reason {
	return newReason(fmt.Sprintf("the cell shows %q but holds the number %s (its format is a date, a time, a percentage, or rounds or scales the value)", strings.TrimSpace(shown), value),
		"format the amount column as Number with the currency's decimals (0.00), check every amount against what was meant, and save", ErrSpreadsheetDamage, ErrAmount)
}

// cellInfo is the type of a cell: 'n' number, 'e' error, 's' anything
// else (text, boolean, date), with its raw value for numbers and errors.
type cellInfo struct {
	kind    byte
	raw     string
	formula bool // the cell has a formula; raw is its stored last result
}

// cellTypes reads the types of a sheet's cells, which excelize's row
// iterator does not give, from the sheet's XML, row by row in step with
// that iterator.
type cellTypes struct {
	d       *xml.Decoder
	cur     int // the row of next, 0 when not read yet
	next    map[int]cellInfo
	hidden  bool // row cur is hidden (by hand, a filter, a collapsed group) or has no height
	done    bool
	lastRow int
	// hiddenCols are the ranges of columns (1-based, inclusive) hidden or
	// of no width, from the sheet's <cols> before its rows; shownCols those
	// given a width and not hidden.
	hiddenCols, shownCols [][2]int
	// zeroHeight: rows are hidden unless they say otherwise; zeroWidth:
	// columns without a <col> of their own have no width (sheetFormatPr).
	zeroHeight, zeroWidth bool
}

// rowHidden says whether row n, the one row last returned, is hidden.
func (c *cellTypes) rowHidden(n int) bool { return c.cur == n && c.hidden }

// colHidden says whether the column of index i (0-based) is hidden.
func (c *cellTypes) colHidden(i int) bool {
	in := func(rs [][2]int) bool {
		for _, r := range rs {
			if i+1 >= r[0] && i+1 <= r[1] {
				return true
			}
		}
		return false
	}
	return in(c.hiddenCols) || (c.zeroWidth && !in(c.shownCols))
}

// xmlTrue is an XML boolean attribute's true.
func xmlTrue(v string) bool { return v == "1" || v == "true" }

// xmlZero says whether a size attribute (a row's height, a column's
// width) is present and zero: nothing of it shows.
func xmlZero(v string) bool {
	f, err := strconv.ParseFloat(v, 64)
	return v != "" && err == nil && f <= 0
}

func newCellTypes(f *excelize.File, sheet string) (*cellTypes, error) {
	p, err := sheetPart(f, sheet)
	if err != nil {
		return nil, err
	}
	v, ok := f.Pkg.Load(p)
	if !ok {
		return nil, fmt.Errorf("part %s is missing", p)
	}
	b, _ := v.([]byte)
	return &cellTypes{d: xml.NewDecoder(bytes.NewReader(b))}, nil
}

// sheetPart finds the zip part of sheet through the workbook's relations.
func sheetPart(f *excelize.File, sheet string) (string, error) {
	id := ""
	if f.WorkBook != nil {
		for _, s := range f.WorkBook.Sheets.Sheet {
			if s.Name == sheet {
				id = s.ID
			}
		}
	}
	v, ok := f.Pkg.Load("xl/_rels/workbook.xml.rels")
	if !ok || id == "" {
		return "", errors.New("the workbook's relations are missing")
	}
	var rels struct {
		Rel []struct {
			ID     string `xml:"Id,attr"`
			Target string `xml:"Target,attr"`
		} `xml:"Relationship"`
	}
	b, _ := v.([]byte)
	if err := xml.Unmarshal(b, &rels); err != nil {
		return "", err
	}
	for _, r := range rels.Rel {
		if r.ID == id {
			if strings.HasPrefix(r.Target, "/") {
				return strings.TrimPrefix(r.Target, "/"), nil
			}
			return path.Join("xl", r.Target), nil
		}
	}
	return "", fmt.Errorf("sheet %q has no part", sheet)
}

// row returns the types of the cells of row n (by column index, 0-based).
// Rows must be asked for in increasing order.
func (c *cellTypes) row(n int) map[int]cellInfo {
	for !c.done && (c.cur == 0 || c.cur < n) {
		c.readRow()
	}
	if c.cur == n {
		return c.next
	}
	return nil
}

// readRow reads the next <row> element into next.
func (c *cellTypes) readRow() {
	c.next = map[int]cellInfo{}
	col := -1
	var cur *cellInfo
	inV := false
	var val strings.Builder
	for {
		tok, err := c.d.Token()
		if err != nil {
			c.done = true
			return
		}
		switch e := tok.(type) {
		case xml.StartElement:
			switch e.Name.Local {
			case "sheetFormatPr":
				c.zeroHeight = xmlTrue(attr(e, "zeroHeight"))
				c.zeroWidth = xmlZero(attr(e, "defaultColWidth"))
			case "col":
				lo, err1 := strconv.Atoi(attr(e, "min"))
				hi, err2 := strconv.Atoi(attr(e, "max"))
				if err1 == nil && err2 == nil {
					if xmlTrue(attr(e, "hidden")) || xmlZero(attr(e, "width")) {
						c.hiddenCols = append(c.hiddenCols, [2]int{lo, hi})
					} else if w := attr(e, "width"); w != "" || !c.zeroWidth {
						c.shownCols = append(c.shownCols, [2]int{lo, hi})
					}
				}
			case "row":
				ht := attr(e, "ht")
				c.hidden = xmlTrue(attr(e, "hidden")) || xmlZero(ht) || (c.zeroHeight && ht == "")
				c.lastRow++
				if r := attr(e, "r"); r != "" {
					if n, err := strconv.Atoi(r); err == nil {
						c.lastRow = n
					}
				}
				c.cur = c.lastRow
			case "c":
				col++
				if r := attr(e, "r"); r != "" {
					if x, _, err := excelize.CellNameToCoordinates(r); err == nil {
						col = x - 1
					}
				}
				kind := byte('n')
				switch attr(e, "t") {
				case "", "n":
				case "e":
					kind = 'e'
				default:
					kind = 's'
				}
				cur = &cellInfo{kind: kind}
				val.Reset()
			case "v":
				inV = true
			case "f":
				if cur != nil {
					cur.formula = true
				}
			}
		case xml.CharData:
			if inV {
				val.Write(e)
			}
		case xml.EndElement:
			switch e.Name.Local {
			case "v":
				inV = false
			case "c":
				if cur != nil {
					cur.raw = val.String()
					if cur.kind == 'n' && cur.raw == "" {
						cur.kind = 's' // an empty (styled) cell
					}
					c.next[col] = *cur
				}
				cur = nil
			case "row":
				return
			case "sheetData":
				c.done = true
				return
			}
		}
	}
}

func attr(e xml.StartElement, name string) string {
	for _, a := range e.Attr {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

var _ io.ReaderAt = (*bytes.Reader)(nil)
