package manifest

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/payouts/payouts/internal/pan"
)

// Manifest sentinels. Every *RowError wraps exactly one of them (spreadsheet
// damage wraps ErrSpreadsheetDamage and the column's own sentinel), so callers
// can test with errors.Is.
var (
	// ErrEmpty: the file has no header, or no rows after it.
	ErrEmpty = errors.New("empty manifest")
	// ErrHeader: the header is missing, incomplete, or has a duplicate or
	// unknown column.
	ErrHeader = errors.New("bad manifest header")
	// ErrEncoding: the file is not UTF-8 text (invalid UTF-8, UTF-16, a
	// workbook, CR-only line breaks).
	ErrEncoding = errors.New("bad manifest encoding")
	// ErrLineTooLong: a record is longer than Options.MaxLineBytes.
	// Reading stops there.
	ErrLineTooLong = errors.New("manifest record too long")
	// ErrTooManyRows: more rows than Options.MaxRows. Reading stops
	// there.
	ErrTooManyRows = errors.New("too many manifest rows")
	// ErrTooLarge: an XLSX workbook is larger than Options.MaxXLSXBytes,
	// as a file or unzipped (a zip bomb). Nothing is read.
	ErrTooLarge = errors.New("manifest workbook too large")
	// ErrRecord: a record is not well-formed CSV (wrong number of values,
	// stray or unclosed quotes).
	ErrRecord = errors.New("malformed manifest record")
	// ErrReference: the reference is empty, too long, has invisible or
	// control characters, or cannot have a safe identity (internal/refid:
	// unassigned characters, confusable scripts).
	ErrReference = errors.New("invalid reference")
	// ErrDuplicateReference: a reference appears on two rows, in the same
	// or another spelling (the same refid.Key).
	ErrDuplicateReference = errors.New("duplicate reference")
	// ErrAmount: the amount is not an exact positive decimal within limits.
	ErrAmount = errors.New("invalid amount")
	// ErrCurrency: the currency is not a payable ISO 4217 code.
	ErrCurrency = errors.New("invalid currency")
	// ErrCard: the card number is not 13–19 digits passing the Luhn check.
	ErrCard = errors.New("invalid card number")
	// ErrSpreadsheetDamage: a spreadsheet changed the value (scientific
	// notation, a trailing .0, a text marker or a formula).
	ErrSpreadsheetDamage = errors.New("value damaged by a spreadsheet")
	// ErrRecipientName: the recipient name is empty, too long or has
	// control characters.
	ErrRecipientName = errors.New("invalid recipient name")
	// ErrEmail: the email is not a single plain address.
	ErrEmail = errors.New("invalid email")
	// ErrDescription: the description is too long or has control characters.
	ErrDescription = errors.New("invalid description")
	// ErrDuplicatePayout: two references pay the same card the same amount
	// in the same currency. A warning with Options.AllowDuplicates,
	// an error without.
	ErrDuplicatePayout = errors.New("duplicate payout")
	// ErrControlTotal: the row count or a currency total differs from the
	// expected control total.
	ErrControlTotal = errors.New("control total mismatch")
	// ErrMaxAmount: a row pays more than Options.MaxAmount allows.
	ErrMaxAmount = errors.New("amount over the safety cap")
	// ErrMaxTotal: the file pays more than Options.MaxTotal allows.
	ErrMaxTotal = errors.New("total over the safety cap")
)

// Code names a kind of problem for programs, as `payouts validate --format
// json` prints it. Every RowError has one; each code has one sentinel
// (Code.Err), and every code's RowError wraps its sentinel.
type Code string

// The codes, one per sentinel.
const (
	CodeSpreadsheetDamage  Code = "spreadsheet_damage"  // ErrSpreadsheetDamage (with the column's own sentinel)
	CodeEmpty              Code = "empty_manifest"      // ErrEmpty
	CodeHeader             Code = "header"              // ErrHeader
	CodeEncoding           Code = "encoding"            // ErrEncoding
	CodeLineTooLong        Code = "line_too_long"       // ErrLineTooLong
	CodeTooManyRows        Code = "too_many_rows"       // ErrTooManyRows
	CodeTooLarge           Code = "too_large"           // ErrTooLarge
	CodeRecord             Code = "record"              // ErrRecord
	CodeDuplicateReference Code = "duplicate_reference" // ErrDuplicateReference
	CodeReference          Code = "reference"           // ErrReference
	CodeAmount             Code = "amount"              // ErrAmount
	CodeCurrency           Code = "currency"            // ErrCurrency
	CodeCard               Code = "card_number"         // ErrCard
	CodeRecipientName      Code = "recipient_name"      // ErrRecipientName
	CodeEmail              Code = "email"               // ErrEmail
	CodeDescription        Code = "description"         // ErrDescription
	CodeDuplicatePayout    Code = "duplicate_payout"    // ErrDuplicatePayout
	CodeControlTotal       Code = "control_total"       // ErrControlTotal
	CodeMaxAmount          Code = "max_amount"          // ErrMaxAmount
	CodeMaxTotal           Code = "max_total"           // ErrMaxTotal
)

// codeInvalid is the code of an error wrapping no sentinel, which the
// package never builds.
const codeInvalid Code = "invalid"

// codes pairs every code with its sentinel, most specific first: a card
// number damaged by a spreadsheet wraps ErrSpreadsheetDamage and ErrCard and
// is CodeSpreadsheetDamage; a duplicate reference is not CodeReference.
var codes = [...]struct {
	code Code
	err  error
}{
	{CodeSpreadsheetDamage, ErrSpreadsheetDamage},
	{CodeEmpty, ErrEmpty},
	{CodeHeader, ErrHeader},
	{CodeEncoding, ErrEncoding},
	{CodeLineTooLong, ErrLineTooLong},
	{CodeTooManyRows, ErrTooManyRows},
	{CodeTooLarge, ErrTooLarge},
	{CodeRecord, ErrRecord},
	{CodeDuplicateReference, ErrDuplicateReference},
	{CodeReference, ErrReference},
	{CodeAmount, ErrAmount},
	{CodeCurrency, ErrCurrency},
	{CodeCard, ErrCard},
	{CodeRecipientName, ErrRecipientName},
	{CodeEmail, ErrEmail},
	{CodeDescription, ErrDescription},
	{CodeDuplicatePayout, ErrDuplicatePayout},
	{CodeControlTotal, ErrControlTotal},
	{CodeMaxAmount, ErrMaxAmount},
	{CodeMaxTotal, ErrMaxTotal},
}

// Err returns the sentinel of c (ErrAmount for CodeAmount), or nil for a
// string that is not one of the codes.
func (c Code) Err() error {
	for _, k := range codes {
		if k.code == c {
			return k.err
		}
	}
	return nil
}

// codeOf returns the code of the most specific sentinel err wraps.
func codeOf(err error) Code {
	for _, k := range codes {
		if errors.Is(err, k.err) {
			return k.code
		}
	}
	return codeInvalid
}

// RowError is one problem in a manifest, addressed by physical line and
// column so a person can find it in an editor.
type RowError struct {
	// Line is the physical line (1-based) where the record starts; 0 for
	// problems of the whole file (control totals).
	Line int
	// Column is the normalized column name, or "" when the problem is not
	// about one column.
	Column string
	// Value is the offending value, masked and truncated: it never holds a
	// full card number, whichever column it came from.
	Value string
	// Code says what kind of problem it is, for programs; Err wraps
	// Code.Err().
	Code Code
	// Err says what is wrong; errors.Is(Err, ErrXxx) holds for the
	// matching sentinel. Its text does not repeat Value or Hint.
	Err error
	// Hint says what to do about it.
	Hint string
}

// Error formats e as `line 7, column amount: "1,500": amount is
// ambiguous: 1500.00 if ',' separates thousands, 1.50 if it is the decimal
// mark — write …`.
func (e *RowError) Error() string {
	var b strings.Builder
	if e.Line > 0 {
		fmt.Fprintf(&b, "line %d", e.Line)
	}
	if e.Column != "" {
		if b.Len() > 0 {
			b.WriteString(", ")
		}
		b.WriteString("column " + e.Column)
	}
	if b.Len() > 0 {
		b.WriteString(": ")
	}
	if e.Value != "" {
		fmt.Fprintf(&b, "%q: ", e.Value)
	}
	if e.Err != nil {
		b.WriteString(e.Err.Error())
	}
	if e.Hint != "" {
		b.WriteString(" — " + e.Hint)
	}
	return b.String()
}

// Unwrap returns Err.
func (e *RowError) Unwrap() error { return e.Err }

// ValidationError lists every problem found in a manifest (up to
// Options.MaxErrors) and the warnings.
type ValidationError struct {
	// Errors are the problems in file order, capped at MaxErrors.
	Errors []*RowError
	// Total counts every problem, including those beyond the cap.
	Total int
	// Warnings are the duplicate payouts allowed by AllowDuplicates.
	Warnings []*RowError
}

// validationErrorShown is how many problems Error lists before "and N more".
const validationErrorShown = 20

// Error lists the first problems, one per line.
func (e *ValidationError) Error() string {
	var b strings.Builder
	noun := "problems"
	if e.Total == 1 {
		noun = "problem"
	}
	fmt.Fprintf(&b, "invalid manifest: %d %s", e.Total, noun)
	for i, re := range e.Errors {
		if i == validationErrorShown {
			break
		}
		b.WriteString("\n  " + re.Error())
	}
	if shown := min(len(e.Errors), validationErrorShown); e.Total > shown {
		fmt.Fprintf(&b, "\n  … and %d more", e.Total-shown)
	}
	return b.String()
}

// Unwrap returns the listed problems, so errors.Is(err, ErrAmount) reports
// whether any listed problem is about an amount.
func (e *ValidationError) Unwrap() []error {
	errs := make([]error, len(e.Errors))
	for i, re := range e.Errors {
		errs[i] = re
	}
	return errs
}

// reason is the error inside a RowError, and the error returned by
// ParseAmount, ParseCard, CurrencyDigits: a message for people, the
// sentinels for programs, and a hint.
type reason struct {
	msg   string
	hint  string
	kinds []error
}

func (r *reason) Error() string {
	if r.hint == "" {
		return r.msg
	}
	return r.msg + " — " + r.hint
}

func (r *reason) Unwrap() []error { return r.kinds }

// with returns a copy of r with the message msg.
func (r *reason) with(msg string) *reason {
	return &reason{msg: msg, hint: r.hint, kinds: r.kinds}
}

// newReason builds a reason with one or more sentinels.
func newReason(msg, hint string, kinds ...error) *reason {
	return &reason{msg: msg, hint: hint, kinds: kinds}
}

// newRowError turns err (a *reason, usually) into a RowError
// for line and column. value is redacted here, always.
func newRowError(line int, column, value string, err error) *RowError {
	re := &RowError{Line: line, Column: column, Value: redact(column, value), Code: codeOf(err), Err: err}
	var r *reason
	if errors.As(err, &r) {
		// Messages may quote cell values (what a cell shows, what a
		// formula computes): no card number in them either.
		re.Err = &reason{msg: pan.Scrub(r.msg), kinds: r.kinds}
		re.Hint = pan.Scrub(r.hint)
	}
	return re
}

// valueMax is the number of characters of a value shown in errors.
const valueMax = 48

// redact makes value safe to show: valid UTF-8, at most
// valueMax characters, and no card number. The card column is
// always shown masked (pan.Mask), whatever it holds; in every other column
// each card number is masked where it stands (pan.Scrub), so an amount or a
// date is shown as written while a card number typed into the wrong column
// is not.
func redact(column, value string) string {
	value = strings.ToValidUTF8(value, "\uFFFD")
	if column == "card_number" {
		return truncate(pan.Mask(value))
	}
	// Cutting a long digit run short can leave a card-sized one: scrub
	// again what is shown.
	return pan.Scrub(truncate(pan.Scrub(value)))
}

// truncate cuts s to valueMax characters.
func truncate(s string) string {
	if utf8.RuneCountInString(s) > valueMax {
		r := []rune(s)
		s = string(r[:valueMax-1]) + "…"
	}
	return s
}
