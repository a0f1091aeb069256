package manifest

import (
	"fmt"
	"sort"
)

// The safety caps (Options.MaxAmount, Options.MaxTotal) refuse a file that
// pays more than the operator allows, before anything is paid. Their
// messages name the command-line flags that set them, like the hint about
// --allow-duplicates, because that is where a person changes them.

// OverMaxAmount returns an error wrapping ErrMaxAmount if amount (minor
// units of currency) is over limit: "5000.00 RUB exceeds --max-amount
// 1000.00 RUB". It returns nil if amount is within the cap.
func OverMaxAmount(amount, limit int64, currency string) error {
	if amount <= limit {
		return nil
	}
	return newReason(fmt.Sprintf("%s %s exceeds --max-amount %s %s",
		FormatAmount(amount, currency), currency, FormatAmount(limit, currency), currency),
		"check the amount, or raise --max-amount if it is meant", ErrMaxAmount)
}

// OverMaxTotal returns an error wrapping ErrMaxTotal if total (minor units
// of currency) is over limit: "total 5000.00 RUB exceeds --max-total
// 4999.00 RUB". It returns nil if total is within the cap.
func OverMaxTotal(total, limit int64, currency string) error {
	if total <= limit {
		return nil
	}
	return newReason(fmt.Sprintf("total %s %s exceeds --max-total %s %s",
		FormatAmount(total, currency), currency, FormatAmount(limit, currency), currency),
		"check the file, or raise --max-total if it is meant", ErrMaxTotal)
}

// checkMaxAmount returns the problem of a valid row over its currency's cap.
func (m *reader) checkMaxAmount(row Row) error {
	limit, ok := m.opts.MaxAmount[row.Currency]
	if !ok {
		return nil
	}
	err := OverMaxAmount(row.Amount, limit, row.Currency)
	if err == nil {
		return nil
	}
	r := err.(*reason)
	r.msg = "reference " + redact("reference", row.Reference) + ": " + r.msg
	return r
}

// checkMaxTotals adds a problem for every currency whose total is over its
// cap. A total known only in part (some rows invalid) is still a lower
// bound, so going over the cap is certain.
func (m *reader) checkMaxTotals() {
	curs := make([]string, 0, len(m.opts.MaxTotal))
	for c := range m.opts.MaxTotal {
		curs = append(curs, c)
	}
	sort.Strings(curs)
	for _, c := range curs {
		if m.overflow[c] {
			continue
		}
		if err := OverMaxTotal(m.sum.Totals[c], m.opts.MaxTotal[c], c); err != nil {
			m.addError(newRowError(0, "amount", "", err))
		}
	}
}
