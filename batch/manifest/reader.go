package manifest

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sort"

	"github.com/gocarina/gocsv"
)

// Row is one valid row of a manifest.
type Row struct {
	Line          int    // physical line (1-based) where the record starts, as a person sees it in an editor
	Reference     string // trimmed; unique in the file
	Amount        int64  // minor units, exact, never via float
	Currency      string // upper-case ISO 4217 alpha
	Card          PAN
	RecipientName string // trimmed, NFC-normalized
	Email         string // trimmed; "" when absent
	Description   string // trimmed; "" when absent
}

// Options tune Read. The zero value is the strict default.
type Options struct {
	// AllowExtraColumns accepts (and ignores) columns the manifest format
	// does not know.
	AllowExtraColumns bool
	// AllowDuplicates turns "the same card, amount and currency under two
	// references" from an error into a warning. Either way it is reported.
	AllowDuplicates bool
	// MaxRows is the most data rows accepted; 0 means 1,000,000. Reading
	// stops at the first row beyond it.
	MaxRows int
	// MaxLineBytes is the longest record accepted, in bytes (a record may
	// span lines inside quotes); 0 means 64 KiB. Reading stops there.
	MaxLineBytes int
	// MaxErrors is how many problems are listed; 0 means 1000. Problems
	// beyond it are still counted.
	MaxErrors int
	// ExpectRows, when positive, is the exact number of rows the file must
	// have. 0 means not checked (a manifest always has at least one row, so
	// nothing is lost by that).
	ExpectRows int
	// ExpectTotals maps a currency code to the exact total in minor units
	// the file must have. When it is not empty, every currency of the file
	// must be in it. Totals are checked only when every row's amount and
	// currency are valid, so a broken row does not also show as a mismatch.
	ExpectTotals map[string]int64
	// MaxAmount maps a currency code to the most one row may pay in it, in
	// minor units (a safety cap: --max-amount). A row paying more is a
	// problem of its line (ErrMaxAmount).
	MaxAmount map[string]int64
	// MaxTotal maps a currency code to the most the file may pay in it in
	// total, in minor units (a safety cap: --max-total). A larger total is a
	// problem of the whole file (ErrMaxTotal), listed after the rows.
	MaxTotal map[string]int64
	// Encoding of a CSV manifest: "" or "utf-8" (the default; a BOM is
	// allowed), "windows-1251" (what Russian Excel's plain "CSV" export
	// writes) or "windows-1252". An XLSX manifest is Unicode by definition
	// and ignores it. Use the same Options for Reread: the SHA-256 is of
	// the file's bytes, the rows are of their decoding.
	Encoding string
	// Sheet names the worksheet of an XLSX manifest (compared ignoring
	// case); "" means the first visible one. A CSV manifest ignores it.
	Sheet string
	// MaxXLSXBytes is the most bytes an XLSX manifest may have, as a file
	// and unzipped (all its parts together); 0 means DefaultMaxXLSXBytes.
	// The workbook is read in memory only: nothing of it is ever written
	// to a temporary file.
	MaxXLSXBytes int64

	// noDuplicateCheck skips the duplicate checks, whose memory grows with
	// the file, on a pass over a file already validated in full whose
	// SHA-256 is compared with the validated one at the end of the pass
	// (Reread).
	noDuplicateCheck bool
}

// Defaults of Options.
const (
	DefaultMaxRows      = 1_000_000
	DefaultMaxLineBytes = 64 << 10
	DefaultMaxErrors    = 1000
	DefaultMaxXLSXBytes = 1 << 30
)

// Summary describes a manifest read by Read.
type Summary struct {
	Rows      int              // data rows read (valid or not), header and blank lines excluded
	Totals    map[string]int64 // currency → minor units, over rows whose amount and currency are valid
	SHA256    string           // hex of the exact file bytes; "" if reading stopped before the end
	Format    string           // "csv" or "xlsx"
	Encoding  string           // of a CSV: "utf-8", "windows-1251" or "windows-1252"; "" for XLSX
	Sheet     string           // of an XLSX: the worksheet read; "" for CSV
	Delimiter rune             // ',' or ';' (',' for XLSX)
	BOM       bool             // the file started with a UTF-8 byte order mark
	Columns   []string         // header as normalized (trimmed, lower-case)
	Warnings  []*RowError      // duplicate payouts allowed by AllowDuplicates
}

// record is what gocsv decodes a record into: raw strings, checked
// afterwards so every problem can be reported with its line and column.
type record struct {
	Reference     string `csv:"reference"`
	Amount        string `csv:"amount"`
	Currency      string `csv:"currency"`
	CardNumber    string `csv:"card_number"`
	RecipientName string `csv:"recipient_name"`
	Email         string `csv:"email"`
	Description   string `csv:"description"`

	xl *xlsxCells // what an XLSX row says about its cells; nil for CSV
}

// Read streams r, validates every row and the whole file, and calls
// fn (which may be nil) with each valid row in file order. Memory is bounded
// by what duplicate detection needs (about 60 bytes a row), not by the file.
//
// It returns the summary and, when anything is invalid, a *ValidationError
// listing all problems (up to MaxErrors, with the total count). fn is called
// only while the file is valid so far: never for an invalid row, nor for any
// row after the first problem. Control totals and duplicates of later rows
// are only known at the end, so callers that must fail closed validate the
// whole file first (fn == nil) and only then read it again with fn,
// comparing the SHA256 of both passes.
//
// If fn returns an error, reading stops and that error is returned wrapped
// (errors.Is works). Errors reading r are returned wrapped as they are.
// Options that make no sense (negative limits, an unknown currency in
// ExpectTotals) are an error before anything is read.
func Read(r io.Reader, opts Options, fn func(Row) error) (Summary, error) {
	m, err := newReader(opts, fn)
	if err != nil {
		return Summary{}, err
	}
	return m.finish(m.readStream(r))
}

// readStream reads r by its content: a zip is an XLSX workbook, read into
// memory (at most MaxXLSXBytes), anything else a CSV, streamed.
func (m *reader) readStream(r io.Reader) error {
	br := bufio.NewReaderSize(r, 64<<10)
	if head, _ := br.Peek(len(zipMagic)); string(head) == zipMagic {
		m.sum.Format = "xlsx"
		data, err := io.ReadAll(io.LimitReader(br, m.opts.MaxXLSXBytes+1))
		if err != nil {
			return fmt.Errorf("read manifest: %w", err)
		}
		return m.readXLSX(data)
	}
	return m.read(br)
}

// ReadBytes is Read on data, the whole file named name (only its
// extension is used, for messages: the format, CSV or XLSX, is told by
// the content). It is for files that are in memory already, an upload say,
// so that card numbers never go to a temporary file.
func ReadBytes(name string, data []byte, opts Options, fn func(Row) error) (Summary, error) {
	return ReadAt(name, bytes.NewReader(data), int64(len(data)), opts, fn)
}

// ReadAt is Read on the size bytes of r, the whole file named name (see
// ReadBytes). An XLSX file is read into memory (at most
// Options.MaxXLSXBytes); a CSV is streamed.
func ReadAt(name string, r io.ReaderAt, size int64, opts Options, fn func(Row) error) (Summary, error) {
	m, err := newReader(opts, fn)
	if err != nil {
		return Summary{}, err
	}
	return m.finish(m.readAt(name, r, size))
}

// readAt reads the file by its content: a zip is an XLSX workbook,
// anything else CSV.
func (m *reader) readAt(name string, r io.ReaderAt, size int64) error {
	head := make([]byte, len(zipMagic))
	n, _ := r.ReadAt(head, 0)
	if string(head[:n]) == zipMagic {
		m.sum.Format = "xlsx"
		if size > m.opts.MaxXLSXBytes {
			m.addError(newRowError(0, "", "", tooLarge(size, m.opts.MaxXLSXBytes)))
			return nil
		}
		data := make([]byte, size)
		if _, err := r.ReadAt(data, 0); err != nil && !(errors.Is(err, io.EOF) && int64(len(data)) == size) {
			return fmt.Errorf("read manifest: %w", err)
		}
		return m.readXLSX(data)
	}
	if isXLSXName(name) && size > 0 {
		m.addError(newRowError(1, "", "", newReason("file is named "+extOf(name)+" but is not an Excel workbook (it does not start like one)",
			"open it in the spreadsheet and save it again as \"Excel Workbook (*.xlsx)\" or \"CSV UTF-8 (Comma delimited)\"", ErrEncoding)))
		return nil
	}
	return m.read(io.NewSectionReader(r, 0, size))
}

// ReadFile is Read on the file at path. Because it can read
// the file again, it also names the first reference of every duplicate
// payout pair and the first spelling of every duplicate reference
// (Read names their line only).
func ReadFile(path string, opts Options, fn func(Row) error) (Summary, error) {
	m, err := newReader(opts, fn)
	if err != nil {
		return Summary{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return Summary{}, fmt.Errorf("open manifest: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return Summary{}, fmt.Errorf("open manifest: %w", err)
	}
	if fi.Mode().IsRegular() {
		err = m.readAt(path, f, fi.Size())
	} else {
		err = m.readStream(f) // a pipe (/dev/stdin, <(…)) has no size
	}
	f.Close()
	if err == nil && len(m.dupPays)+len(m.dupRefs) > 0 && m.sum.SHA256 != "" && m.sum.Format == "csv" {
		m.nameFirstReferences(path)
	}
	return m.finish(err)
}

func (o Options) normalized() (Options, error) {
	if o.MaxRows < 0 || o.MaxLineBytes < 0 || o.MaxErrors < 0 || o.ExpectRows < 0 {
		return o, errors.New("manifest options: limits and expected rows must not be negative")
	}
	if o.MaxRows == 0 {
		o.MaxRows = DefaultMaxRows
	}
	if o.MaxLineBytes == 0 {
		o.MaxLineBytes = DefaultMaxLineBytes
	}
	if o.MaxErrors == 0 {
		o.MaxErrors = DefaultMaxErrors
	}
	if o.MaxXLSXBytes < 0 {
		return o, errors.New("manifest options: the XLSX size limit must not be negative")
	}
	if o.MaxXLSXBytes == 0 {
		o.MaxXLSXBytes = DefaultMaxXLSXBytes
	}
	enc, err := encodingOf(o.Encoding)
	if err != nil {
		return o, err
	}
	o.Encoding = enc.name
	if o.ExpectTotals, err = byCurrency(o.ExpectTotals, "expected total"); err != nil {
		return o, err
	}
	if o.MaxAmount, err = byCurrency(o.MaxAmount, "maximum amount"); err != nil {
		return o, err
	}
	if o.MaxTotal, err = byCurrency(o.MaxTotal, "maximum total"); err != nil {
		return o, err
	}
	return o, nil
}

// byCurrency returns m with its currency codes checked and upper-case.
func byCurrency(m map[string]int64, what string) (map[string]int64, error) {
	if len(m) == 0 {
		return m, nil
	}
	out := make(map[string]int64, len(m))
	for cur, v := range m {
		if _, err := CurrencyDigits(cur); err != nil {
			return nil, fmt.Errorf("manifest options: %s: %w", what, err)
		}
		up := upper(cur)
		if _, dup := out[up]; dup {
			return nil, fmt.Errorf("manifest options: %s for %s given twice", what, up)
		}
		out[up] = v
	}
	return out, nil
}

// reader is the state of one pass over a manifest.
type reader struct {
	opts Options
	fn   func(Row) error

	sum      Summary
	errs     []*RowError
	total    int
	warns    []*RowError
	partial  bool // some amount or currency was invalid: totals are incomplete
	overflow map[string]bool
	stopped  bool // a problem that stops reading (a file not in UTF-8)

	header  headerInfo
	seen    seenSet
	dupPays []*dupPayout
	dupRefs []*dupReference
	sha     hash.Hash // of every byte read
}

func newReader(opts Options, fn func(Row) error) (*reader, error) {
	opts, err := opts.normalized()
	if err != nil {
		return nil, err
	}
	return &reader{
		opts: opts, fn: fn,
		sum:  Summary{Totals: map[string]int64{}, Delimiter: ','},
		seen: newSeenSet(),
	}, nil
}

// addError records a problem: counted always, listed up to MaxErrors.
// It reports whether e was listed.
func (m *reader) addError(e *RowError) bool {
	m.total++
	if len(m.errs) < m.opts.MaxErrors {
		m.errs = append(m.errs, e)
		return true
	}
	return false
}

// addWarning lists a warning, up to MaxErrors. It reports whether e was
// listed.
func (m *reader) addWarning(e *RowError) bool {
	if len(m.warns) < m.opts.MaxErrors {
		m.warns = append(m.warns, e)
		return true
	}
	return false
}

// read does the pass. A non-nil error is not a validation problem: it is
// reading r failing, or fn's error.
func (m *reader) read(r io.Reader) error {
	m.sum.Format, m.sum.Encoding = "csv", m.opts.Encoding
	m.sha = sha256.New()
	var sink io.Writer = m.sha
	var check *utf8Check
	if enc, _ := encodingOf(m.opts.Encoding); enc.enc != nil {
		check = &utf8Check{}
		sink = io.MultiWriter(m.sha, check)
	}
	br := bufio.NewReaderSize(io.TeeReader(r, sink), 64<<10)
	if problem := m.decode(&br); problem != nil {
		m.addError(newRowError(1, "", "", problem))
		return nil
	}
	bom, delim, problem := sniff(br)
	m.sum.BOM, m.sum.Delimiter = bom, delim
	if problem != nil {
		m.addError(newRowError(1, "", "", problem))
		return nil
	}
	guard := newRecordGuard(br, delim, m.opts.MaxLineBytes)
	cr := csv.NewReader(guard)
	cr.Comma = delim
	cr.LazyQuotes = false
	cr.FieldsPerRecord = 0 // the header's count: a row with another is a row error
	cr.ReuseRecord = true

	um, err := gocsv.NewUnmarshaller(cr, record{})
	if err != nil {
		return m.readFailure(err, true)
	}
	headerLine, _ := cr.FieldPos(0)
	if !m.checkHeader(um, headerLine) {
		return nil
	}
	for {
		v, err := um.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return m.readFailure(err, false)
			}
			if !m.countRow(pe.StartLine) {
				return nil
			}
			m.addError(newRowError(pe.StartLine, "", "", parseProblem(pe, delim, len(m.sum.Columns))))
			continue
		}
		rec, ok := v.(record)
		if !ok {
			return fmt.Errorf("manifest: decoder returned %T", v)
		}
		line, _ := cr.FieldPos(0)
		if isBlank(&rec) {
			continue
		}
		if !m.countRow(line) {
			return nil
		}
		row, valid := m.checkRow(&rec, line)
		if m.stopped {
			return nil
		}
		if valid && m.total == 0 && m.fn != nil {
			if err := m.fn(row); err != nil {
				return fmt.Errorf("manifest line %d: %w", line, err)
			}
		}
	}
	if m.sum.Rows == 0 {
		m.addError(newRowError(headerLine, "", "", newReason("manifest has a header but no rows", "add the payouts below the header line", ErrEmpty)))
	}
	if check != nil && check.isUTF8() {
		m.addError(newRowError(0, "", "", utf8NotLegacy(m.opts.Encoding)))
	}
	m.sum.SHA256 = hex.EncodeToString(m.sha.Sum(nil))
	m.checkControlTotals()
	m.checkMaxTotals()
	return nil
}

// readFailure sorts an error from the decoder: the guard's limit and CSV
// syntax in the header are problems in the file; anything else is reading
// failing.
func (m *reader) readFailure(err error, inHeader bool) error {
	var tl *tooLongError
	var pe *csv.ParseError
	switch {
	case errors.As(err, &tl):
		m.addError(newRowError(tl.line, "", "", newReason(
			fmt.Sprintf("record is longer than %d bytes; reading stopped here", tl.limit),
			"a quote that is opened and never closed makes the rest of the file one value; check the quotes on this line", ErrLineTooLong)))
		return nil
	case inHeader && errors.Is(err, io.EOF):
		m.addError(newRowError(0, "", "", newReason("file is empty", "the first line must be the header: "+headerHint, ErrEmpty)))
		return nil
	case inHeader && errors.As(err, &pe):
		m.addError(newRowError(pe.StartLine, "", "", newReason("header line is not valid CSV: "+pe.Err.Error(), "the first line must be the header: "+headerHint, ErrHeader)))
		return nil
	}
	return fmt.Errorf("read manifest: %w", err)
}

// countRow counts a data row and enforces MaxRows; false means stop.
func (m *reader) countRow(line int) bool {
	m.sum.Rows++
	if m.sum.Rows > m.opts.MaxRows {
		m.sum.Rows--
		m.addError(newRowError(line, "", "", newReason(
			fmt.Sprintf("more than %d rows; reading stopped here", m.opts.MaxRows),
			"split the file into smaller batches", ErrTooManyRows)))
		return false
	}
	return true
}

// parseProblem explains a CSV syntax error in a row.
func parseProblem(pe *csv.ParseError, delim rune, columns int) *reason {
	at := ""
	if pe.Line != pe.StartLine {
		at = fmt.Sprintf(" (on line %d)", pe.Line)
	}
	switch {
	case errors.Is(pe.Err, csv.ErrFieldCount):
		hint := fmt.Sprintf("a value containing '%c' must be in double quotes, e.g. \"Smith, John\"", delim)
		if delim == ';' {
			hint = "a value containing ';' must be in double quotes; check for a missing or extra ';'"
		}
		return newReason(fmt.Sprintf("wrong number of values: the header has %d columns", columns), hint, ErrRecord)
	case errors.Is(pe.Err, csv.ErrBareQuote):
		return newReason("a '\"' inside a value that does not start with '\"'"+at,
			"put the whole value in double quotes and double the quote inside (\"5\"\" screen\"); a card written as =\"…\" is a spreadsheet formula: format the column as Text", ErrRecord)
	default:
		return newReason("a quoted value is not closed properly"+at,
			"a value that starts with '\"' must end with '\"' right before the delimiter or the line end; quotes inside are doubled (\"\")", ErrRecord)
	}
}

func isBlank(rec *record) bool {
	for _, s := range [...]string{rec.Reference, rec.Amount, rec.Currency, rec.CardNumber, rec.RecipientName, rec.Email, rec.Description} {
		if trim(s) != "" {
			return false
		}
	}
	return true
}

// checkControlTotals compares rows and totals with the expected values.
func (m *reader) checkControlTotals() {
	o := m.opts
	if o.ExpectRows > 0 && m.sum.Rows != o.ExpectRows {
		m.addError(newRowError(0, "", "", newReason(
			fmt.Sprintf("file has %d rows, expected %d", m.sum.Rows, o.ExpectRows),
			"check that no rows were lost or added (blank lines are not rows)", ErrControlTotal)))
	}
	if len(o.ExpectTotals) == 0 || m.partial {
		return
	}
	curs := make([]string, 0, len(o.ExpectTotals)+len(m.sum.Totals))
	for c := range o.ExpectTotals {
		curs = append(curs, c)
	}
	for c := range m.sum.Totals {
		if _, ok := o.ExpectTotals[c]; !ok {
			curs = append(curs, c)
		}
	}
	sort.Strings(curs)
	for _, c := range curs {
		want, expected := o.ExpectTotals[c]
		got, present := m.sum.Totals[c]
		switch {
		case m.overflow[c]:
		case !expected:
			m.addError(newRowError(0, "amount", "", newReason(
				fmt.Sprintf("file pays %s %s, but no expected total was given for %s", FormatAmount(got, c), c, c),
				"give an expected total for every currency of the file", ErrControlTotal)))
		case !present:
			m.addError(newRowError(0, "amount", "", newReason(
				fmt.Sprintf("file has no %s rows, expected a total of %s %s", c, FormatAmount(want, c), c),
				"check the currency column and the expected totals", ErrControlTotal)))
		case got != want:
			m.addError(newRowError(0, "amount", "", newReason(
				fmt.Sprintf("total %s is %s, expected %s (difference %s)", c, FormatAmount(got, c), FormatAmount(want, c), FormatAmount(got-want, c)),
				"find the rows that differ from the payroll source before paying", ErrControlTotal)))
		}
	}
}

// finish builds Read's results.
func (m *reader) finish(err error) (Summary, error) {
	m.sum.Warnings = m.warns
	if err != nil {
		return m.sum, err
	}
	if m.total > 0 {
		return m.sum, &ValidationError{Errors: m.errs, Total: m.total, Warnings: m.warns}
	}
	return m.sum, nil
}
