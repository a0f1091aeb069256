package manifest

import (
	"fmt"
	"strings"
	"sync"

	"golang.org/x/text/currency"
)

// currencyTender maps the ISO 4217 codes that are legal tender somewhere
// today (CLDR data, golang.org/x/text/currency) to their minor digits. Fund
// codes (USN, BOV, CLF…), metals (XAU…), XDR, the test code XTS, "no
// currency" XXX and withdrawn codes (RUR…) are not in it.
var currencyTender = sync.OnceValue(func() map[string]int {
	m := map[string]int{}
	for it := currency.Query(); it.Next(); {
		u := it.Unit()
		scale, _ := currency.Standard.Rounding(u)
		m[u.String()] = scale
	}
	return m
})

// currencyDisputed lists the codes whose minor digits in CLDR (what
// golang.org/x/text/currency reports) differ from the ISO 4217 minor unit.
// Pike takes amounts in minor units and does not say which table it uses;
// for these a wrong guess would pay 100 or 1000 times too much or too little,
// so they are refused rather than guessed. Values are ISO 4217's digits.
var currencyDisputed = map[string]int{
	"AFN": 2, "ALL": 2, "AMD": 2, "COP": 2, "GYD": 2, "IDR": 2, "IQD": 3, "IRR": 2,
	"KPW": 2, "LAK": 2, "LBP": 2, "MGA": 2, "MMK": 2, "MNT": 2, "MRO": 2, "MUR": 2,
	"PKR": 2, "RSD": 2, "SLL": 2, "SOS": 2, "SYP": 2, "TZS": 2, "UZS": 2, "YER": 2,
}

// currencySymbols are what people type instead of a code, for hints.
var currencySymbols = map[string]string{
	"₽": "RUB", "РУБ": "RUB", "РУБ.": "RUB", "Р.": "RUB", "RUR": "RUB",
	"$": "USD", "US$": "USD", "€": "EUR", "EURO": "EUR", "£": "GBP", "¥": "JPY or CNY",
	"₸": "KZT", "₴": "UAH", "BYR": "BYN",
}

// CurrencyDigits returns the number of minor digits of the ISO 4217 code
// (any letter case): RUB 2, JPY 0, KWD 3. It returns an error wrapping
// ErrCurrency for anything that cannot be paid out: unknown or withdrawn
// codes, fund, metal and test codes (XAU, XTS, XXX…), and the few codes
// whose minor digits differ between ISO 4217 and CLDR.
func CurrencyDigits(code string) (int, error) {
	up := strings.ToUpper(strings.TrimSpace(code))
	if up == "" {
		return 0, newReason("currency is empty", "write the ISO 4217 code, e.g. RUB, EUR or USD", ErrCurrency)
	}
	if !currencyIsCode(up) {
		hint := "write the 3-letter ISO 4217 code, e.g. RUB, EUR or USD"
		if want, ok := currencySymbols[up]; ok {
			hint = "write " + want + " instead"
		}
		return 0, newReason("currency must be a 3-letter ISO 4217 code", hint, ErrCurrency)
	}
	if want, ok := currencySymbols[up]; ok {
		return 0, newReason(fmt.Sprintf("currency %s is not in use", up), "write "+want+" instead", ErrCurrency)
	}
	if iso, ok := currencyDisputed[up]; ok {
		return 0, newReason(
			fmt.Sprintf("currency %s is not supported: its minor units are ambiguous (ISO 4217 has %d decimals, CLDR %d)", up, iso, currencyTender()[up]),
			"pay it outside this tool, or confirm with Pike which minor unit it uses", ErrCurrency)
	}
	d, ok := currencyTender()[up]
	if !ok {
		if _, err := currency.ParseISO(up); err == nil {
			return 0, newReason(fmt.Sprintf("currency %s cannot be paid out (a fund, metal, test or withdrawn code)", up), "write the currency the card is paid in, e.g. RUB, EUR or USD", ErrCurrency)
		}
		return 0, newReason(fmt.Sprintf("unknown currency %s", up), "write an ISO 4217 code, e.g. RUB, EUR or USD", ErrCurrency)
	}
	return d, nil
}

func currencyIsCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < 'A' || s[i] > 'Z' {
			return false
		}
	}
	return true
}
