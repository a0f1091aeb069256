package batch

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"

	"github.com/payouts/payouts/ledger"
)

// Recheck is the confirm check's verdict on one row waiting for
// confirmation, before an approval: what Pike's session says now.
type Recheck struct {
	Row ledger.Row
	// Refused says why approving would cancel the row instead of
	// confirming it ("" when the session matches its row).
	Refused string
	// Err is set when Pike could not be asked (the approval checks again).
	Err error
}

// RecheckRows runs the confirm check that Approve runs on each of rows
// (rows waiting for confirmation) without changing anything: it asks Pike
// for each session (session/status, at most 8 at once) and compares it
// with its row. A row already decided (a mismatch or a rejection waiting
// for its cancel) is refused as such. Results come in the order of rows.
func RecheckRows(ctx context.Context, pk Pike, batchID string, rows []ledger.Row) []Recheck {
	out := make([]Recheck, len(rows))
	var g errgroup.Group
	g.SetLimit(8)
	for i, row := range rows {
		out[i].Row = row
		g.Go(func() error {
			if cancelIntended(row) {
				out[i].Refused = "already decided: " + row.FailureCode
				return nil
			}
			s, err := pk.Status(ctx, row.SessionID)
			if err != nil {
				out[i].Err = fmt.Errorf("session/status %s: %w", row.SessionID, err)
				return nil
			}
			if diffs, _ := checkSession(batchID, row, s); len(diffs) > 0 {
				out[i].Refused = describeDiscrepancies(diffs)
			}
			return nil
		})
	}
	_ = g.Wait()
	return out
}
