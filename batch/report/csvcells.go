package report

import (
	"strings"
	"unicode/utf8"
)

// csvCells makes the cells of one CSV flavour safe, by what each cell is.
// Plain CSV writes every text cell as it is, except that a cell a
// spreadsheet would run as a formula gets an apostrophe (SpreadsheetSafe).
// Excel CSV also keeps a spreadsheet from turning text into numbers or
// dates: identities always, and other text made only of digits, are
// written as a formula of one constant string, ="00123" (see excelText).
type csvCells struct{ excel bool }

// ident renders an identity: a reference, a session or payout id, the batch
// id. A spreadsheet must show it exactly: 00123 must not become 123,
// 1234567890123456789 must not become 1.23457E+18, 12-05 must not become a
// date.
func (c csvCells) ident(s string) string {
	if c.excel && s != "" {
		if t, ok := excelText(s); ok {
			return t
		}
	}
	return SpreadsheetSafe(s)
}

// text renders free text: names, descriptions, Pike's messages.
func (c csvCells) text(s string) string {
	if c.excel && allDigits(s) {
		if t, ok := excelText(s); ok {
			return t
		}
	}
	return SpreadsheetSafe(s)
}

// amount renders an amount in major units ("1500.50"); Excel CSV uses a
// decimal comma, which a spreadsheet in a comma locale reads as a number.
func (c csvCells) amount(s string) string {
	if c.excel {
		return strings.Replace(s, ".", ",", 1)
	}
	return s
}

// maxExcelText is the longest text Excel accepts as a string constant in a
// formula.
const maxExcelText = 255

// excelText returns s as a formula whose whole body is one string
// constant, ="…" with every `"` doubled: Excel, LibreOffice and Google
// Sheets show the constant as text, and nothing in s can end the constant
// early or call a function. It returns false for what cannot be written so
// (longer than Excel's limit, or holding a control character); the caller
// then writes the text the plain way.
func excelText(s string) (string, bool) {
	if utf8.RuneCountInString(s) > maxExcelText || !utf8.ValidString(s) {
		return "", false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return "", false
		}
	}
	return `="` + strings.ReplaceAll(s, `"`, `""`) + `"`, true
}

// allDigits reports whether s is one or more ASCII digits: the text a
// spreadsheet would read as a number and lose its leading zeros.
func allDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}
