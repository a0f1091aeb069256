package report

import (
	"context"
	"iter"
	"time"

	"github.com/payouts/payouts/ledger"
)

// Store is what the report reads from the ledger; it never writes.
// *ledger.DB implements it, and the methods' error contracts are documented
// there (Batch returns ledger.ErrNotFound for an unknown batch).
type Store interface {
	// Batch returns the batch with the given id.
	Batch(ctx context.Context, id string) (ledger.Batch, error)
	// Rows yields the batch's rows in manifest order.
	Rows(ctx context.Context, batchID string, states ...ledger.State) iter.Seq2[ledger.Row, error]
	// WebhooksForSession returns the webhooks stored about one session.
	WebhooksForSession(ctx context.Context, sessionID string) ([]ledger.Webhook, error)
	// UnmatchedWebhooks returns the webhooks received since a time about
	// sessions no batch in the ledger made.
	UnmatchedWebhooks(ctx context.Context, since time.Time) ([]ledger.Webhook, error)
	// Decisions returns the batch-level approve and reject events of a
	// batch, oldest first.
	Decisions(ctx context.Context, batchID string) ([]ledger.Event, error)
}
