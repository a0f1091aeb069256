package manifest

import (
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// AmountMaxMinor is the largest amount accepted, in minor units (10^15:
// ten trillion roubles). Anything bigger is a typo or a card number in the
// wrong column.
const AmountMaxMinor int64 = 1_000_000_000_000_000

// ParseAmount parses a decimal amount in major units of currency and returns
// it in minor units, exactly (no floating point anywhere).
//
// Accepted: digits with at most one decimal separator, '.' or ',' ("1500",
// "1500.5", "1500,50"), and thousands grouped in threes by spaces (plain,
// no-break U+00A0, narrow no-break U+202F, thin U+2009, figure U+2007) or by
// apostrophes (' or ’, Swiss style): "1 500,50", "1'500.50". Surrounding
// spaces are ignored.
//
// Refused, with an error wrapping ErrAmount (or ErrCurrency for the
// currency): both '.' and ',' in one value (is "1,500.50" American or a
// typo?), a separator used twice, more decimals than the currency has (JPY
// none, RUB 2, KWD 3), a lone ',' followed by exactly three digits in a
// 3-decimal currency ("1,500" KWD: 1.5 or 1500? "1.500" is 1.5, the way
// such amounts are written and what FormatAmount prints), misplaced group
// separators, signs, zero, more than AmountMaxMinor, exponents (a
// spreadsheet's 1.5E+03, which also wraps ErrSpreadsheetDamage), currency
// symbols and anything else.
func ParseAmount(s, currency string) (int64, error) {
	digits, err := CurrencyDigits(currency)
	if err != nil {
		return 0, err
	}
	return amountParse(s, digits, strings.ToUpper(strings.TrimSpace(currency)))
}

// amountParse parses s with digits minor digits; digits < 0 checks only the
// syntax (for rows whose currency is itself invalid) and returns 0.
func amountParse(s string, digits int, code string) (int64, error) {
	return amountParseAs(s, digits, code, false)
}

// amountParseAs is amountParse; number says that s is the value of a
// spreadsheet cell stored as a number, whose '.' is the decimal mark: never
// ambiguous.
func amountParseAs(s string, digits int, code string, number bool) (int64, error) {
	t := strings.TrimFunc(s, isSpace)
	const plain = "write the amount in major units with at most one decimal separator, e.g. 1500.50 or 1500,50"
	if t == "" {
		return 0, newReason("amount is empty", "every row needs an amount, e.g. 1500.50", ErrAmount)
	}
	switch {
	case t[0] == '-' || t[len(t)-1] == '-' || (t[0] == '(' && t[len(t)-1] == ')') || strings.HasPrefix(t, "−"):
		return 0, newReason("amount is negative", "payouts are positive amounts; remove the row or fix the sign", ErrAmount)
	case t[0] == '+':
		return 0, newReason("amount has a sign", "write it without '+', e.g. 1500.50", ErrAmount)
	case t[0] == '\'' || strings.HasPrefix(t, "’"):
		return 0, newReason("amount starts with an apostrophe (a spreadsheet text marker was exported)", "format the column as Number or Text without the marker and export again", ErrSpreadsheetDamage, ErrAmount)
	case t[0] == '=':
		return 0, newReason("amount is a spreadsheet formula", "export the computed values, not formulas", ErrSpreadsheetDamage, ErrAmount)
	}
	if i := strings.IndexAny(t, "eE"); i > 0 && cardHasDigits(t[:i]) && cardHasDigits(t[i:]) {
		return 0, newReason("amount is in scientific notation", "format the column as Number with fixed decimals and export again", ErrSpreadsheetDamage, ErrAmount)
	}

	// One pass: classify every character.
	var (
		dots, commas int
		group        rune // first group separator kind seen: ' ' for spaces, '\'' for apostrophes
		mark         = -1 // byte index of the decimal separator
	)
	for i, r := range t {
		switch {
		case r >= '0' && r <= '9':
		case r == '.':
			dots++
			mark = i
		case r == ',':
			commas++
			mark = i
		case isSpace(r) || r == '\'' || r == '’':
			kind := ' '
			if r == '\'' || r == '’' {
				kind = '\''
			}
			if group == 0 {
				group = kind
			} else if group != kind {
				return 0, newReason("amount mixes spaces and apostrophes as thousands separators", plain, ErrAmount)
			}
		case unicode.IsDigit(r):
			return 0, newReason("amount has non-ASCII digits", "type the amount with the digits 0–9", ErrAmount)
		default:
			return 0, newReason(fmt.Sprintf("amount contains %q", r), "write only the number; the currency goes in the currency column", ErrAmount)
		}
	}
	var thousands byte // '.' or ',' when that one groups thousands
	switch {
	case dots > 0 && commas > 0:
		// "85,000.00" (en-US) or "85.000,00": the last one is the decimal
		// mark, the other groups thousands.
		if group != 0 {
			return 0, newReason("amount mixes spaces or apostrophes with '.' and ','", plain, ErrAmount)
		}
		thousands = ','
		if t[mark] == ',' {
			thousands = '.'
		}
		if strings.IndexByte(t[mark:], thousands) >= 0 || (t[mark] == '.' && dots > 1) || (t[mark] == ',' && commas > 1) {
			return 0, newReason("amount has both '.' and ',' in an order that is not a number",
				"write 85000.00, or with thousands separators 85,000.00", ErrAmount)
		}
	case dots > 1 || commas > 1:
		// "1,234,567": only thousands, no decimals.
		sep := "."
		if commas > 1 {
			sep = ","
		}
		if group != 0 {
			return 0, newReason("amount mixes spaces or apostrophes with '"+sep+"'", plain, ErrAmount)
		}
		thousands, mark = sep[0], -1
	}
	if thousands != 0 {
		// The grouping separator becomes a space for amountUngroup, which
		// checks the groups of three.
		b := []byte(t)
		for i := range b {
			if b[i] == thousands {
				b[i] = ' '
			}
		}
		t, group = string(b), ' '
	}
	intPart, frac := t, ""
	if mark >= 0 {
		intPart, frac = t[:mark], t[mark+1:]
	}
	if mark >= 0 && group != 0 && strings.IndexFunc(frac, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, newReason("amount has a thousands separator after the decimal separator", plain, ErrAmount)
	}
	ip, ok := amountUngroup(intPart)
	if !ok {
		return 0, newReason("amount has thousands separators in the wrong place", "group digits in threes (1 500 000,50) or not at all (1500000,50)", ErrAmount)
	}
	if ip == "" {
		return 0, newReason("amount has no digits before the decimal separator", "write 0.50, not .50", ErrAmount)
	}
	if mark >= 0 && frac == "" {
		return 0, newReason("amount has nothing after the decimal separator", "write 1500 or 1500.00", ErrAmount)
	}
	// One '.' or ',' followed by exactly three digits, and nothing else
	// grouping: "1,500" is 1500 to an American and 1.5 to a Russian. Only
	// "1.500" in a currency with three decimals (KWD) is not ambiguous: it
	// is how such amounts are written, and what FormatAmount prints.
	if !number && digits >= 0 && thousands == 0 && mark >= 0 && len(frac) == 3 && group == 0 && len(ip) <= 3 && ip[0] != '0' &&
		!(digits == 3 && t[mark] == '.') {
		return 0, ambiguous(t, ip, frac, digits, code)
	}
	if digits >= 0 && len(frac) > digits {
		if digits == 0 {
			return 0, newReason(code+" has no minor units, the amount must be whole", "write 1500, not 1500.00; if the separator groups thousands, remove it", ErrAmount)
		}
		hint := fmt.Sprintf("write at most %d decimals", digits)
		return 0, newReason(fmt.Sprintf("amount has %d decimals, %s has %d", len(frac), code, digits), hint, ErrAmount)
	}

	// Exact conversion: integer digits, then the fraction padded to digits.
	var v uint64
	over := false
	add := func(d byte) {
		v = v*10 + uint64(d-'0')
		if v > uint64(AmountMaxMinor) {
			over = true
		}
	}
	for i := 0; i < len(ip) && !over; i++ {
		add(ip[i])
	}
	for i := 0; i < max(digits, 0) && !over; i++ {
		if i < len(frac) {
			add(frac[i])
		} else {
			add('0')
		}
	}
	if over {
		return 0, newReason("amount is absurdly large", "check the decimal separator, and that the card number is not in the amount column", ErrAmount)
	}
	if strings.Trim(ip+frac, "0") == "" {
		return 0, newReason("amount is zero", "payouts must be positive; remove the row", ErrAmount)
	}
	if digits < 0 {
		return 0, nil
	}
	return int64(v), nil
}

// ambiguous is the problem of "1,500": it quotes both readings, each
// written the way FormatAmount writes amounts of the currency.
func ambiguous(t, ip, frac string, digits int, code string) error {
	sep := t[len(t)-len(frac)-1 : len(t)-len(frac)]
	asThousands := ip + frac
	if digits > 0 {
		asThousands += "." + strings.Repeat("0", digits)
	}
	asDecimal := ip + "." + frac
	if d := strings.TrimRight(frac, "0"); len(d) <= digits {
		asDecimal = ip + "." + d + strings.Repeat("0", digits-len(d))
		if digits == 0 {
			asDecimal = ip
		}
	} else {
		asDecimal += " (" + code + " cannot have " + strconv.Itoa(len(d)) + " decimals)"
		if digits == 0 {
			asDecimal = ip + "." + d + " (" + code + " has no minor units)"
		}
	}
	hint := "write " + asThousands + " without the separator"
	if digits > 0 {
		hint += " (or " + ip + "," + frac + "." + strings.Repeat("0", digits) + " with the decimals)"
	}
	hint += " if thousands are meant"
	if d := strings.TrimRight(frac, "0"); len(d) <= digits {
		hint += "; write " + strings.SplitN(asDecimal, " ", 2)[0] + " if not"
	}
	return newReason(fmt.Sprintf("amount is ambiguous: %s if '%s' separates thousands, %s if it is the decimal mark", asThousands, sep, asDecimal),
		hint, ErrAmount)
}

// amountUngroup removes thousands separators from the integer part and
// checks they group digits in threes (first group 1–3 digits). ok is false
// if they do not.
func amountUngroup(s string) (string, bool) {
	if strings.IndexFunc(s, func(r rune) bool { return r < '0' || r > '9' }) < 0 {
		return s, true
	}
	groups := strings.FieldsFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	// FieldsFunc drops empty groups, so "1  500" or " 500" must be caught by
	// counting separators: exactly one between consecutive groups.
	seps := 0
	prevSep := true
	for _, r := range s {
		isSep := r < '0' || r > '9'
		if isSep {
			if prevSep {
				return "", false
			}
			seps++
		}
		prevSep = isSep
	}
	if prevSep || seps != len(groups)-1 {
		return "", false
	}
	if len(groups[0]) < 1 || len(groups[0]) > 3 {
		return "", false
	}
	for _, g := range groups[1:] {
		if len(g) != 3 {
			return "", false
		}
	}
	return strings.Join(groups, ""), true
}

// FormatAmount formats minor units of currency as major units with the
// currency's decimals and '.': 150050 RUB is "1500.50", 1500 JPY is "1500".
// It round-trips through ParseAmount. For a currency CurrencyDigits refuses it
// returns the minor units followed by " minor units", never a guess.
func FormatAmount(minor int64, currency string) string {
	digits, err := CurrencyDigits(currency)
	if err != nil {
		return strconv.FormatInt(minor, 10) + " minor units"
	}
	neg := minor < 0
	u := uint64(minor)
	if neg {
		u = -u
	}
	s := strconv.FormatUint(u, 10)
	if digits > 0 {
		if len(s) <= digits {
			s = strings.Repeat("0", digits-len(s)+1) + s
		}
		s = s[:len(s)-digits] + "." + s[len(s)-digits:]
	}
	if neg {
		s = "-" + s
	}
	return s
}

// ParseTotal parses CUR:AMOUNT ("RUB:150000.00", "jpy:1500") as used by
// --expect-total, --max-total and --max-amount. The currency is returned
// upper-case, the amount in minor units under the rules of ParseAmount.
func ParseTotal(s string) (currency string, minor int64, err error) {
	cur, amt, ok := strings.Cut(s, ":")
	if !ok {
		return "", 0, fmt.Errorf("%q: want CUR:AMOUNT, e.g. RUB:150000.00: %w", s, ErrAmount)
	}
	cur = strings.ToUpper(strings.TrimSpace(cur))
	minor, err = ParseAmount(amt, cur)
	if err != nil {
		return "", 0, fmt.Errorf("%q: %w", s, err)
	}
	return cur, minor, nil
}
