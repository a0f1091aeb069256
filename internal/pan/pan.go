package pan

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Card number lengths in digits: the range this product holds (see the
// package documentation for why not ISO's 12).
const (
	MinDigits = 13
	MaxDigits = 19
)

// Visible digits of a masked card number: the issuer's BIN and the last four.
const (
	keepFirst = 6
	keepLast  = 4
)

// Luhn reports whether digits, ASCII '0'–'9' only, pass the Luhn mod-10
// check that every card number satisfies. It is false for "" and for any
// other character.
func Luhn(digits string) bool { return luhn(digits) }

func luhn[T string | []byte](digits T) bool {
	if len(digits) == 0 {
		return false
	}
	sum, double := 0, false
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i]) - '0'
		if d < 0 || d > 9 {
			return false
		}
		if double {
			if d *= 2; d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

// Mask returns the displayable form of a card number s, written with or
// without separators: its first six and last four digits with '*' between
// them and the separators dropped (424242******4242).
//
// A value with fewer than MinDigits digits is not a card number but may be
// a mistyped one: every digit but the last four becomes '*' in place, the
// other characters stay (so "4.24242E+15" still shows it is in scientific
// notation), and a value of four digits or fewer is all '*'.
func Mask(s string) string {
	var b strings.Builder
	n := countDigits(s)
	if n >= MinDigits {
		b.Grow(n)
		k := 0
		for _, r := range s {
			d, ok := digitValue(r)
			if !ok {
				continue
			}
			if k < keepFirst || k >= n-keepLast {
				b.WriteByte('0' + d)
			} else {
				b.WriteByte('*')
			}
			k++
		}
		return b.String()
	}
	keep := 0
	if n > keepLast {
		keep = keepLast
	}
	k := 0
	for _, r := range s {
		if _, ok := digitValue(r); ok {
			if k < n-keep {
				b.WriteByte('*')
			} else {
				b.WriteRune(r)
			}
			k++
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// MaskParts returns the displayable form of a card known only by its BIN
// (first six digits) and last four, which is all the ledger keeps:
// 424242******4242. The card's length is not kept, so the middle is shown
// as six stars, as for a 16-digit card. Both empty give "".
func MaskParts(bin, last4 string) string {
	if bin == "" && last4 == "" {
		return ""
	}
	return bin + "******" + last4
}

// digitValue returns the value of a decimal digit of any script.
func digitValue(r rune) (byte, bool) {
	if r < utf8.RuneSelf {
		if r >= '0' && r <= '9' {
			return byte(r - '0'), true
		}
		return 0, false
	}
	if !unicode.IsDigit(r) {
		return 0, false
	}
	// Unicode puts every script's decimal digits in one run from zero to
	// nine, and the Nd table is made of such runs (TestDigitRanges).
	for _, rg := range unicode.Nd.R16 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return byte((r - rune(rg.Lo)) % 10), true
		}
	}
	for _, rg := range unicode.Nd.R32 {
		if r >= rune(rg.Lo) && r <= rune(rg.Hi) {
			return byte((r - rune(rg.Lo)) % 10), true
		}
	}
	return 0, false
}

// countDigits counts the decimal digits of any script in s.
func countDigits(s string) int {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= '0' && c <= '9' {
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.IsDigit(r) {
			n++
		}
		i += size
	}
	return n
}
