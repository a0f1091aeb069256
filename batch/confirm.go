package batch

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
)

// ConfirmMode says what the runner does when a payout is ready to confirm.
type ConfirmMode string

// Confirm modes.
const (
	// ConfirmAuto confirms every session that passes the confirm check.
	ConfirmAuto ConfirmMode = "auto"
	// ConfirmHold stops rows at awaiting_confirm until `payouts approve` or
	// `payouts reject`. Pike cancels unconfirmed payouts after
	// pike.ConfirmDeadline.
	ConfirmHold ConfirmMode = "hold"
)

// confirmDeadline is pike.ConfirmDeadline as messages say it ("240 minutes").
var confirmDeadline = fmt.Sprintf("%.0f minutes", pike.ConfirmDeadline.Minutes())

// ParseConfirmMode parses "auto" or "hold".
func ParseConfirmMode(s string) (ConfirmMode, error) {
	switch m := ConfirmMode(strings.ToLower(strings.TrimSpace(s))); m {
	case ConfirmAuto, ConfirmHold:
		return m, nil
	}
	return "", fmt.Errorf("unknown confirm mode %q: use auto or hold", s)
}

// ErrCredentials stops a run whose partner credentials Pike refuses: the
// operator's problem, not the rows'. It wraps pike.ErrCredentials.
var ErrCredentials = fmt.Errorf("Pike refused the partner credentials: %w", pike.ErrCredentials)

// Discrepancy is one field where a session differs from its row.
type Discrepancy struct {
	Field string
	Want  string
	Got   string
}

func (d Discrepancy) String() string {
	return fmt.Sprintf("%s: want %q, got %q", d.Field, d.Want, d.Got)
}

// checkSession is the confirm check: the session must be the row's live
// attempt, and its payout must carry the row's amount, currency, card last4,
// reference and metadata. It returns every difference; none means the
// session may be confirmed. incomplete is true when a difference is only an
// absent field (Pike left it out of a webhook), which a session/status
// response may fill in; a field that is present and different is never
// incomplete.
func checkSession(batchID string, row ledger.Row, s *pike.Session) (diffs []Discrepancy, incomplete bool) {
	add := func(field, want, got string) {
		diffs = append(diffs, Discrepancy{Field: field, Want: want, Got: got})
		if got == "" {
			incomplete = true
		}
	}
	if s == nil {
		return []Discrepancy{{Field: "session", Want: row.SessionID, Got: ""}}, false
	}
	if row.SessionID == "" || s.ID != row.SessionID {
		diffs = append(diffs, Discrepancy{Field: "session_id", Want: row.SessionID, Got: s.ID})
	}
	p := s.Payout()
	if p == nil {
		add("payout", "one payout", "")
		return diffs, incomplete
	}
	if len(s.Payouts) > 1 {
		diffs = append(diffs, Discrepancy{Field: "payouts", Want: "1", Got: strconv.Itoa(len(s.Payouts))})
	}
	// Amounts are shown in major units of the row's currency: a person
	// reads "88100.00 RUB", not "8810000".
	wantAmount := manifest.FormatAmount(row.Amount, row.Currency) + " " + row.Currency
	if p.AmountDetails == nil {
		add("amount", wantAmount, "")
		add("currency", row.Currency, "")
	} else {
		if p.AmountDetails.Amount != row.Amount {
			got := manifest.FormatAmount(p.AmountDetails.Amount, row.Currency) + " " + row.Currency
			diffs = append(diffs, Discrepancy{Field: "amount", Want: wantAmount, Got: got})
		}
		if !strings.EqualFold(p.AmountDetails.Currency, row.Currency) {
			add("currency", row.Currency, p.AmountDetails.Currency)
		}
	}
	if got := p.Last4(); got != row.CardLast4 {
		add("card_last4", row.CardLast4, got)
	}
	gotRef := ""
	if p.Customer != nil {
		gotRef = p.Customer.Reference
	}
	if gotRef != row.Reference {
		add("reference", row.Reference, gotRef)
	}
	if got, want := p.MetadataString(), ledger.RowKey(batchID, row.Reference, row.Attempt); got != want {
		add("metadata", want, got)
	}
	return diffs, incomplete
}

// describeDiscrepancies renders a mismatch for the ledger and the report.
// Values are amounts, codes, last4 and references: never a card number.
func describeDiscrepancies(ds []Discrepancy) string {
	parts := make([]string, len(ds))
	for i, d := range ds {
		parts[i] = d.String()
	}
	return strings.Join(parts, "; ")
}

// ownSession checks that a session learnt from outside (a webhook naming an
// attempt whose session id was lost) is the attempt's: the same checks as
// the confirm check, on a snapshot from our own session/status. Any field
// absent counts as a difference.
func ownSession(batchID string, row ledger.Row, s *pike.Session) []Discrepancy {
	if s == nil || s.ID == "" {
		return []Discrepancy{{Field: "session", Want: "a session", Got: ""}}
	}
	row.SessionID = s.ID
	diffs, _ := checkSession(batchID, row, s)
	return diffs
}
