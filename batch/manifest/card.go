package manifest

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"unicode"

	"github.com/payouts/payouts/internal/pan"
)

// PAN is a card number (primary account number): 13–19 ASCII digits,
// Luhn-valid when it comes from ParseCard.
//
// Every way of printing a PAN (fmt verbs, slog, JSON, text marshalling)
// yields the masked form 424242******4242, so it cannot leak into logs,
// errors or reports by accident. Digits is the only way to the full number.
type PAN string

// Mask returns the first six and last four digits with '*' in between
// (424242******4242): pan.Mask, the product's one masked form.
func (p PAN) Mask() string { return pan.Mask(string(p)) }

// BIN returns the first six digits (the issuer's bank identification
// number), or "" if p is shorter than ten digits.
func (p PAN) BIN() string {
	if len(p) < 10 {
		return ""
	}
	return string(p[:6])
}

// Last4 returns the last four digits, or "" if p is shorter than ten digits.
func (p PAN) Last4() string {
	if len(p) < 10 {
		return ""
	}
	return string(p[len(p)-4:])
}

// Digits returns the full card number. Use it only to build the request
// that pays the card; nothing else may see it.
func (p PAN) Digits() string { return string(p) }

// String returns the masked form.
func (p PAN) String() string { return p.Mask() }

// GoString returns the masked form, for %#v.
func (p PAN) GoString() string { return strconv.Quote(p.Mask()) }

// Format writes the masked form for every verb, so %d, %x or %q cannot
// reveal the digits either.
func (p PAN) Format(f fmt.State, verb rune) {
	switch verb {
	case 'q':
		fmt.Fprint(f, strconv.Quote(p.Mask()))
	case 'v':
		if f.Flag('#') {
			fmt.Fprint(f, p.GoString())
			return
		}
		fmt.Fprint(f, p.Mask())
	default:
		fmt.Fprint(f, p.Mask())
	}
}

// LogValue returns the masked form for log/slog.
func (p PAN) LogValue() slog.Value { return slog.StringValue(p.Mask()) }

// MarshalText returns the masked form, so encoding/json and friends never
// write the digits.
func (p PAN) MarshalText() ([]byte, error) { return []byte(p.Mask()), nil }

// ParseCard parses a card number as typed or exported: spaces (including
// non-breaking ones) and dashes between digits are removed; the rest must be
// 13–19 ASCII digits passing the Luhn check.
//
// Values a spreadsheet has damaged — scientific notation (4.24242E+15), a
// trailing decimal part (4242424242424240.0), a leading apostrophe (the text
// marker) or a formula (="4242424242424242") — return an error wrapping both
// ErrSpreadsheetDamage and ErrCard that says what happened. Other problems
// wrap ErrCard. No error message contains the digits.
func ParseCard(s string) (PAN, error) {
	t := strings.TrimFunc(s, isSpace)
	if t == "" {
		return "", newReason("card number is empty", "every row needs the recipient's card number", ErrCard)
	}
	if err := cardDamage(t); err != nil {
		return "", err
	}
	digits := make([]byte, 0, len(t))
	for _, r := range t {
		switch {
		case r >= '0' && r <= '9':
			digits = append(digits, byte(r))
		case r == '-' || isSpace(r):
		case unicode.IsDigit(r):
			return "", newReason("card number has non-ASCII digits", "type the number with the digits 0–9", ErrCard)
		default:
			return "", newReason(fmt.Sprintf("card number contains %q", r), "write only digits, optionally grouped with spaces or dashes", ErrCard)
		}
	}
	n := len(digits)
	if n < pan.MinDigits || n > pan.MaxDigits {
		return "", newReason(fmt.Sprintf("card number has %d digits, want 13 to 19", n), "check for missing or extra digits", ErrCard)
	}
	if !pan.Luhn(string(digits)) {
		hint := "a digit is wrong or two are swapped; check the number against its source"
		if n > 15 && digits[n-1] == '0' {
			hint = "a digit is wrong — or a spreadsheet stored the number as a number and replaced the digits after the 15th with 0: format the column as Text and export again"
		}
		return "", newReason("card number fails the Luhn check", hint, ErrCard)
	}
	return PAN(digits), nil
}

// cardDamage recognizes the ways spreadsheets mangle card numbers.
func cardDamage(t string) error {
	const fix = "format the column as Text, re-enter the numbers from their source and export again"
	switch {
	case t[0] == '\'' || strings.HasPrefix(t, "’"):
		return newReason("card number starts with an apostrophe (a spreadsheet text marker was exported)", fix, ErrSpreadsheetDamage, ErrCard)
	case t[0] == '=':
		return newReason("card number is a spreadsheet formula (=\"…\")", fix, ErrSpreadsheetDamage, ErrCard)
	}
	if i := strings.IndexAny(t, "eE"); i > 0 && cardHasDigits(t[:i]) && cardHasDigits(t[i:]) {
		return newReason("card number is in scientific notation: a spreadsheet turned it into a number and its digits are lost", fix, ErrSpreadsheetDamage, ErrCard)
	}
	if i := strings.LastIndexAny(t, ".,"); i > 0 && cardAllDigits(t[:i]) {
		frac := t[i+1:]
		if frac != "" && strings.Trim(frac, "0") == "" {
			return newReason("card number ends in "+t[i:]+": a spreadsheet turned it into a number, and digits past the 15th may have become 0", fix, ErrSpreadsheetDamage, ErrCard)
		}
	}
	return nil
}

func cardHasDigits(s string) bool { return strings.ContainsAny(s, "0123456789") }

func cardAllDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// isSpace reports the spaces a spreadsheet may put around or inside
// a value: Unicode white space, including no-break and narrow no-break
// spaces.
func isSpace(r rune) bool {
	return unicode.IsSpace(r) || r == '\u00a0' || r == '\u202f' || r == '\u2007' || r == '\u2009' || r == '\ufeff'
}
