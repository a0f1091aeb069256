package ledger

import (
	"context"
	"fmt"
	"slices"
)

// SummaryLine is the count and sum of a batch's rows in one state and
// currency.
type SummaryLine struct {
	State    State
	Currency string
	Count    int
	Amount   int64 // minor units
}

// Summary returns counts and sums per state × currency for a batch, in flow
// order of the states, then by currency.
func (db *DB) Summary(ctx context.Context, batchID string) ([]SummaryLine, error) {
	rs, err := db.rdb.QueryContext(ctx, `SELECT state, currency, count(*), CAST(sum(amount) AS BIGINT) FROM rows
		WHERE batch_id = ? GROUP BY state, currency`, batchID)
	if err != nil {
		return nil, fmt.Errorf("summary of batch %s: %w", batchID, err)
	}
	defer rs.Close()
	var out []SummaryLine
	for rs.Next() {
		var l SummaryLine
		if err := rs.Scan(&l.State, &l.Currency, &l.Count, &l.Amount); err != nil {
			return nil, fmt.Errorf("summary of batch %s: %w", batchID, err)
		}
		out = append(out, l)
	}
	if err := rs.Err(); err != nil {
		return nil, fmt.Errorf("summary of batch %s: %w", batchID, err)
	}
	order := func(s State) int { return slices.Index(states, s) }
	slices.SortFunc(out, func(a, b SummaryLine) int {
		if d := order(a.State) - order(b.State); d != 0 {
			return d
		}
		switch {
		case a.Currency < b.Currency:
			return -1
		case a.Currency > b.Currency:
			return 1
		}
		return 0
	})
	return out, nil
}
