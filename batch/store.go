package batch

import (
	"context"
	"iter"
	"time"

	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
)

// Store is what the runner needs from the ledger. *ledger.DB implements it;
// the methods' error contracts are documented there.
type Store interface {
	CreateBatch(ctx context.Context, b ledger.Batch) (ledger.Batch, bool, error)
	Batch(ctx context.Context, id string) (ledger.Batch, error)
	Batches(ctx context.Context) ([]ledger.Batch, error)
	UpdateBatch(ctx context.Context, b ledger.Batch) error
	LoadRows(ctx context.Context, batchID string, rows iter.Seq2[ledger.Row, error], want int) (int, error)
	Row(ctx context.Context, id int64) (ledger.Row, error)
	RowByReference(ctx context.Context, batchID, reference string) (ledger.Row, error)
	Rows(ctx context.Context, batchID string, states ...ledger.State) iter.Seq2[ledger.Row, error]
	CountRows(ctx context.Context, batchID string, states ...ledger.State) (int, error)
	SucceededElsewhere(ctx context.Context, reference, exceptBatch string) (ledger.Row, bool, error)
	ReferenceHolders(ctx context.Context, reference string) ([]ledger.Row, error)
	Apply(ctx context.Context, c ledger.Change) (ledger.Row, error)
	AttemptBySession(ctx context.Context, sessionID string) (ledger.Attempt, ledger.Row, error)
	Attempts(ctx context.Context, rowID int64) ([]ledger.Attempt, error)
	SetAttemptOutcome(ctx context.Context, attemptID int64, state ledger.State, f ledger.Failure, reason, detail string) error
	AddEvent(ctx context.Context, e ledger.Event) error
	Events(ctx context.Context, batchID string, rowID int64) ([]ledger.Event, error)
	RecordWebhook(ctx context.Context, w ledger.Webhook) (ledger.Webhook, bool, error)
	PendingWebhooks(ctx context.Context, batchID string, afterID int64, limit int) ([]ledger.Webhook, error)
	MarkWebhookApplied(ctx context.Context, id int64, result string) error
	WebhooksForSession(ctx context.Context, sessionID string) ([]ledger.Webhook, error)
	UnmatchedWebhooks(ctx context.Context, since time.Time) ([]ledger.Webhook, error)
	Summary(ctx context.Context, batchID string) ([]ledger.SummaryLine, error)
	AcquireLease(ctx context.Context, batchID string, o ledger.Owner, ttl time.Duration) (*ledger.Lease, error)
}

// Pike is what the runner needs from the Pike API. *pike.Client implements
// it. Errors are classified with pike.Classify: ClassRetryable calls were not
// applied, ClassUnknown calls may have been, ClassDefinitive ones were refused.
type Pike interface {
	CreateSession(ctx context.Context, idempotencyKey string, req pike.PayoutRequest) (*pike.Session, error)
	StartPayout(ctx context.Context, idempotencyKey string, req pike.PayoutRequest) (*pike.Session, error)
	InitPayout(ctx context.Context, idempotencyKey string, req pike.PayoutRequest) (*pike.Session, error)
	Confirm(ctx context.Context, idempotencyKey, sessionID string) (*pike.Session, error)
	Cancel(ctx context.Context, idempotencyKey, sessionID string) (*pike.Session, error)
	Status(ctx context.Context, sessionID string) (*pike.Session, error)
}
