package manifest_test

import (
	"errors"
	"testing"

	"github.com/payouts/payouts/batch/manifest"
)

func TestCurrencyDigits(t *testing.T) {
	for _, tt := range []struct {
		code string
		want int
	}{
		{"RUB", 2}, {"rub", 2}, {" Rub ", 2}, {"EUR", 2}, {"USD", 2}, {"JPY", 0}, {"KRW", 0},
		{"KWD", 3}, {"BHD", 3}, {"TND", 3}, {"KZT", 2}, {"BYN", 2}, {"CHF", 2}, {"XOF", 0},
	} {
		got, err := manifest.CurrencyDigits(tt.code)
		if err != nil || got != tt.want {
			t.Errorf("CurrencyDigits(%q) = %d, %v; want %d, nil", tt.code, got, err, tt.want)
		}
	}
}

func TestCurrencyDigitsRefuses(t *testing.T) {
	for _, code := range []string{
		"", "RU", "RUBL", "R1B", "₽", "руб", // not a code
		"XYZ", "ABC", // unknown
		"XAU", "XAG", "XTS", "XXX", "XDR", "USN", "BOV", "CLF", // metals, test, none, funds
		"RUR", "BYR", // withdrawn
		"IQD", "UZS", "IDR", "AMD", // CLDR and ISO 4217 disagree on minor digits
	} {
		if got, err := manifest.CurrencyDigits(code); err == nil || !errors.Is(err, manifest.ErrCurrency) {
			t.Errorf("CurrencyDigits(%q) = %d, %v; want an error wrapping ErrCurrency", code, got, err)
		}
	}
}
