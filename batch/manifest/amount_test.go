package manifest_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/payouts/payouts/batch/manifest"
)

func TestParseAmount(t *testing.T) {
	tests := []struct {
		in, cur string
		want    int64
	}{
		{"1500", "RUB", 150000},
		{"1500.5", "RUB", 150050},
		{"1500.50", "RUB", 150050},
		{"1500,50", "RUB", 150050},
		{"1 500,50", "RUB", 150050},
		{"1\u00a0500,50", "RUB", 150050},            // no-break space
		{"1\u202f500\u202f000,5", "RUB", 150000050}, // narrow no-break space
		{"1'500.50", "CHF", 150050},
		{"1’500.50", "CHF", 150050},
		{"  42.00 ", "usd", 4200},
		{"0.01", "RUB", 1},
		{"0,5", "EUR", 50},
		{"007", "RUB", 700},
		{"1500", "JPY", 1500},
		{"1 500", "JPY", 1500},
		{"1.5", "KWD", 1500},
		{"1.25", "KWD", 1250},
		{"0.250", "KWD", 250},
		{"1.250", "KWD", 1250},
		{"150.055", "KWD", 150055},
		{"0,250", "KWD", 250},
		{"1234.500", "KWD", 1234500},
		{"1 500,250", "KWD", 1500250},
		// Thousands separators with a decimal mark: unambiguous.
		{"85,000.00", "RUB", 8500000},
		{"1,234,567.89", "USD", 123456789},
		{"1,500.5", "RUB", 150050},
		{"1.234.567,89", "EUR", 123456789},
		{"85.000,00", "EUR", 8500000},
		{"1,234,567", "JPY", 1234567},
		{"1,234,567", "RUB", 123456700},
		{"1.234.567", "RUB", 123456700},
		{"12,345.678", "KWD", 12345678},
		{"1,500.000", "KWD", 1500000},
		{"10000000000000.00", "RUB", 1_000_000_000_000_000}, // exactly the limit
		{"999999999999999", "JPY", 999_999_999_999_999},
	}
	for _, tt := range tests {
		t.Run(tt.in+" "+tt.cur, func(t *testing.T) {
			got, err := manifest.ParseAmount(tt.in, tt.cur)
			if err != nil {
				t.Fatalf("ParseAmount(%q, %q): %v", tt.in, tt.cur, err)
			}
			if got != tt.want {
				t.Errorf("ParseAmount(%q, %q) = %d, want %d", tt.in, tt.cur, got, tt.want)
			}
		})
	}
}

func TestParseAmountRefuses(t *testing.T) {
	tests := []struct {
		in, cur string
		want    error  // sentinel
		msg     string // part of the message
	}{
		{"", "RUB", manifest.ErrAmount, "empty"},
		{"   ", "RUB", manifest.ErrAmount, "empty"},
		{"1.000,000.00", "RUB", manifest.ErrAmount, "order that is not a number"},
		{"1,000.000,00", "RUB", manifest.ErrAmount, "order that is not a number"},
		{"1,000,00", "RUB", manifest.ErrAmount, "wrong place"},
		{"1,00.50", "RUB", manifest.ErrAmount, "wrong place"},
		{"1,5000.00", "RUB", manifest.ErrAmount, "wrong place"},
		{"1 000,000.00", "RUB", manifest.ErrAmount, "mixes"},
		{"1'000,000", "RUB", manifest.ErrAmount, "3 decimals"},
		{"1,500.505", "RUB", manifest.ErrAmount, "3 decimals, RUB has 2"},
		{"1500.505", "RUB", manifest.ErrAmount, "3 decimals, RUB has 2"},
		{"1,500", "RUB", manifest.ErrAmount, `amount is ambiguous: 1500.00 if ',' separates thousands, 1.50 if it is the decimal mark — write 1500.00 without the separator (or 1,500.00 with the decimals) if thousands are meant; write 1.50 if not`},
		{"1.500", "RUB", manifest.ErrAmount, `amount is ambiguous: 1500.00 if '.' separates thousands, 1.50 if it is the decimal mark`},
		{"85,000", "USD", manifest.ErrAmount, "85000.00 if ',' separates thousands, 85.00 if it is the decimal mark"},
		{"1,234", "RUB", manifest.ErrAmount, "1234.00 if ',' separates thousands, 1.234 (RUB cannot have 3 decimals) if it is the decimal mark"},
		{"1,500", "JPY", manifest.ErrAmount, "1500 if ',' separates thousands, 1.5 (JPY has no minor units) if it is the decimal mark — write 1500 without the separator if thousands are meant"},
		{"1,500", "KWD", manifest.ErrAmount, "1500.000 if ',' separates thousands, 1.500 if it is the decimal mark"},
		{"1500.50", "JPY", manifest.ErrAmount, "JPY has no minor units"},
		{"1500.0001", "KWD", manifest.ErrAmount, "4 decimals"},
		{"1,500", "KWD", manifest.ErrAmount, "ambiguous"},
		{"12,345", "BHD", manifest.ErrAmount, "ambiguous"},
		{"0", "RUB", manifest.ErrAmount, "zero"},
		{"0.00", "RUB", manifest.ErrAmount, "zero"},
		{"-1500", "RUB", manifest.ErrAmount, "negative"},
		{"1500-", "RUB", manifest.ErrAmount, "negative"},
		{"(1500.00)", "RUB", manifest.ErrAmount, "negative"},
		{"−1500", "RUB", manifest.ErrAmount, "negative"}, // U+2212 minus sign
		{"+1500", "RUB", manifest.ErrAmount, "sign"},
		{"1.5E+03", "RUB", manifest.ErrSpreadsheetDamage, "scientific"},
		{"1e3", "RUB", manifest.ErrAmount, "scientific"},
		{"'1500", "RUB", manifest.ErrSpreadsheetDamage, "apostrophe"},
		{"=1500", "RUB", manifest.ErrSpreadsheetDamage, "formula"},
		{"1500 ₽", "RUB", manifest.ErrAmount, "contains '₽'"},
		{"$1500", "USD", manifest.ErrAmount, "contains '$'"},
		{"1500р", "RUB", manifest.ErrAmount, "contains"},
		{"１５００", "RUB", manifest.ErrAmount, "non-ASCII digits"},
		{"15 00", "RUB", manifest.ErrAmount, "wrong place"},
		{"1  500", "RUB", manifest.ErrAmount, "wrong place"},
		{"1500 000", "RUB", manifest.ErrAmount, "wrong place"},
		{"1 500'000", "RUB", manifest.ErrAmount, "mixes"},
		{"1500,5 0", "RUB", manifest.ErrAmount, "after the decimal separator"},
		{".50", "RUB", manifest.ErrAmount, "no digits before"},
		{"1500.", "RUB", manifest.ErrAmount, "nothing after"},
		{"10000000000000.01", "RUB", manifest.ErrAmount, "absurdly large"},
		{"99999999999999999999999999", "RUB", manifest.ErrAmount, "absurdly large"},
		{"1500", "", manifest.ErrCurrency, "empty"},
		{"1500", "XYZ", manifest.ErrCurrency, "unknown currency"},
	}
	for _, tt := range tests {
		t.Run(tt.in+" "+tt.cur, func(t *testing.T) {
			got, err := manifest.ParseAmount(tt.in, tt.cur)
			if err == nil {
				t.Fatalf("ParseAmount(%q, %q) = %d, want error %v", tt.in, tt.cur, got, tt.want)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("ParseAmount(%q, %q) error %q, want errors.Is %v", tt.in, tt.cur, err, tt.want)
			}
			if !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("ParseAmount(%q, %q) error %q, want it to mention %q", tt.in, tt.cur, err, tt.msg)
			}
			if got != 0 {
				t.Errorf("ParseAmount(%q, %q) = %d with an error, want 0", tt.in, tt.cur, got)
			}
		})
	}
}

func TestFormatAmount(t *testing.T) {
	tests := []struct {
		minor int64
		cur   string
		want  string
	}{
		{150050, "RUB", "1500.50"},
		{150000, "rub", "1500.00"},
		{1, "RUB", "0.01"},
		{0, "RUB", "0.00"},
		{-150050, "RUB", "-1500.50"},
		{1500, "JPY", "1500"},
		{1500, "KWD", "1.500"},
		{5, "KWD", "0.005"},
		{math.MaxInt64, "RUB", "92233720368547758.07"},
		{math.MinInt64, "RUB", "-92233720368547758.08"},
		{1500, "XYZ", "1500 minor units"},
	}
	for _, tt := range tests {
		if got := manifest.FormatAmount(tt.minor, tt.cur); got != tt.want {
			t.Errorf("FormatAmount(%d, %q) = %q, want %q", tt.minor, tt.cur, got, tt.want)
		}
	}
}

func TestParseTotal(t *testing.T) {
	cur, minor, err := manifest.ParseTotal("rub:150000.00")
	if err != nil || cur != "RUB" || minor != 15000000 {
		t.Errorf("ParseTotal(rub:150000.00) = %q, %d, %v; want RUB, 15000000, nil", cur, minor, err)
	}
	cur, minor, err = manifest.ParseTotal("EUR:1 500,50")
	if err != nil || cur != "EUR" || minor != 150050 {
		t.Errorf("ParseTotal(EUR:1 500,50) = %q, %d, %v; want EUR, 150050, nil", cur, minor, err)
	}
	for _, bad := range []string{"150000", "RUB", "RUB:", ":100", "RUB:-1", "XYZ:100", "RUB:1,500", "JPY:1.5"} {
		if _, _, err := manifest.ParseTotal(bad); err == nil {
			t.Errorf("ParseTotal(%q) succeeded, want an error", bad)
		}
	}
}

// FuzzAmount: whatever ParseAmount accepts is positive, within the limit,
// and survives FormatAmount → ParseAmount unchanged; FormatAmount of any
// valid amount parses back to it.
func FuzzAmount(f *testing.F) {
	for _, s := range []string{"1500", "1500.5", "1500,50", "1 500,50", "1\u00a0500", "1'500.50", "0.01", "1,500", "1.250",
		"85,000.00", "1,234,567.89", "1.234.567,89", "1,234,567", "1,000.000,00", "12,345.678",
		"-1", "1e3", "10000000000000.00", "", "٣", "1 5", "00.10"} {
		for _, cur := range []string{"RUB", "JPY", "KWD"} {
			f.Add(s, cur, int64(150050))
		}
	}
	f.Fuzz(func(t *testing.T, s, cur string, minor int64) {
		v, err := manifest.ParseAmount(s, cur)
		if err == nil {
			if v <= 0 || v > manifest.AmountMaxMinor {
				t.Fatalf("ParseAmount(%q, %q) = %d, outside (0, %d]", s, cur, v, manifest.AmountMaxMinor)
			}
			f := manifest.FormatAmount(v, cur)
			back, err := manifest.ParseAmount(f, cur)
			if err != nil || back != v {
				t.Fatalf("ParseAmount(%q, %q) = %d; FormatAmount = %q; parsed back %d, %v", s, cur, v, f, back, err)
			}
		} else if !errors.Is(err, manifest.ErrAmount) && !errors.Is(err, manifest.ErrCurrency) {
			t.Fatalf("ParseAmount(%q, %q) error %v wraps neither ErrAmount nor ErrCurrency", s, cur, err)
		}
		if _, err := manifest.CurrencyDigits(cur); err != nil || minor <= 0 || minor > manifest.AmountMaxMinor {
			return
		}
		f := manifest.FormatAmount(minor, cur)
		back, err := manifest.ParseAmount(f, cur)
		if err != nil || back != minor {
			t.Fatalf("FormatAmount(%d, %q) = %q; parsed back %d, %v", minor, cur, f, back, err)
		}
	})
}
