package main

import (
	"maps"
	"slices"
	"strings"

	"github.com/payouts/payouts/batch/manifest"
)

// money is an amount for people: digits grouped by thousands with commas,
// the currency's decimals ("150,000.00"). Machine output (reports, JSON)
// keeps manifest.FormatAmount.
func money(minor int64, currency string) string {
	return groupDigits(manifest.FormatAmount(minor, currency))
}

// groupDigits puts a comma between every three digits of the integer part
// of a decimal number ("-1234567.89" → "-1,234,567.89"); anything else is
// returned as it is.
func groupDigits(s string) string {
	sign := ""
	if strings.HasPrefix(s, "-") {
		sign, s = "-", s[1:]
	}
	whole, frac, hasFrac := strings.Cut(s, ".")
	if whole == "" || strings.Trim(whole, "0123456789") != "" {
		return sign + s
	}
	var b strings.Builder
	for i, d := range whole {
		if i > 0 && (len(whole)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(d)
	}
	if hasFrac {
		b.WriteString("." + frac)
	}
	return sign + b.String()
}

// totalsLine is amounts per currency for people, currencies in order:
// "EUR 5,550.50, RUB 1,320,191.49".
func totalsLine(totals map[string]int64) string {
	var parts []string
	for _, c := range slices.Sorted(maps.Keys(totals)) {
		parts = append(parts, c+" "+money(totals[c], c))
	}
	if len(parts) == 0 {
		return "nothing"
	}
	return strings.Join(parts, ", ")
}
