package batch

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/payouts/payouts/ledger"
)

// Decision is what a person decided about a row in review.
type Decision string

// Decisions.
const (
	// DecidePaid: the person checked with Pike that the row's payout was
	// made. The row becomes succeeded and its reference is never paid again.
	DecidePaid Decision = "paid"
	// DecideNotPaid: the person checked with Pike that no payout of the row
	// was made and none can be. The row becomes failed, so a rerun may pay
	// it — unless Pike reported any of its attempts paid, which the ledger
	// never forgets (the rerun then refuses it).
	DecideNotPaid Decision = "not-paid"
)

// ParseDecision parses "paid" or "not-paid".
func ParseDecision(s string) (Decision, error) {
	switch d := Decision(strings.ToLower(strings.TrimSpace(s))); d {
	case DecidePaid, DecideNotPaid:
		return d, nil
	}
	return "", fmt.Errorf("unknown decision %q: use paid or not-paid", s)
}

// ErrNotInReview is returned by Decide for a row that is not in review.
var ErrNotInReview = errors.New("row is not in review")

// Decide records a person's decision about a row in review — the only way
// out of review. operator names the person; note says what they checked.
// Both are kept in the row's audit trail. Returns ErrNotInReview for a row
// in any other state and ledger.ErrNotFound for an unknown reference.
func Decide(ctx context.Context, store Store, batchID, reference string, d Decision, operator, note string) (ledger.Row, error) {
	if strings.TrimSpace(operator) == "" {
		return ledger.Row{}, fmt.Errorf("decide %s: who decides must be named", reference)
	}
	if strings.TrimSpace(note) == "" {
		return ledger.Row{}, fmt.Errorf("decide %s: say what was checked (a note is required)", reference)
	}
	row, err := store.RowByReference(ctx, batchID, reference)
	if err != nil {
		return ledger.Row{}, fmt.Errorf("decide %s: %w", reference, err)
	}
	if row.State != ledger.StateReview {
		return row, fmt.Errorf("decide %s: %w (it is %s)", reference, ErrNotInReview, row.State)
	}
	c := ledger.Change{RowID: row.ID, From: row.State, Reason: "operator_decision", Operator: operator,
		Detail: fmt.Sprintf("decided %s (was %s: %s): %s", d, row.FailureCode, row.FailureDescription, note)}
	switch d {
	case DecidePaid:
		c.To, c.Failure = ledger.StateSucceeded, &ledger.Failure{}
	case DecideNotPaid:
		c.To = ledger.StateFailed
		c.Failure = &ledger.Failure{Code: ledger.CodeDecidedNotPaid, Description: note}
	default:
		return row, fmt.Errorf("decide %s: unknown decision %q", reference, d)
	}
	next, err := store.Apply(ctx, c)
	if err != nil {
		return row, fmt.Errorf("decide %s: %w", reference, err)
	}
	return next, nil
}
