package ledger

import (
	"errors"
	"fmt"
	"time"
)

// Sentinel errors. Errors returned by the ledger wrap one of these; test with
// errors.Is.
var (
	// ErrNotFound means the batch, row, attempt or webhook does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means a compare-and-set failed: the row was not in the
	// expected state (see ConflictError), or an id already set differs.
	ErrConflict = errors.New("conflict")
	// ErrIllegalTransition means the state machine forbids the change.
	ErrIllegalTransition = errors.New("illegal transition")
	// ErrPaid means the change would plan a new attempt for a row an
	// attempt of which already succeeded. It is also ErrIllegalTransition.
	ErrPaid = fmt.Errorf("an attempt of the row succeeded; it is never paid again: %w", ErrIllegalTransition)
	// ErrInvalidChange means a Change or a row is malformed (an Amend or
	// NewAttempt where it does not belong, a non-positive amount, ...).
	ErrInvalidChange = errors.New("invalid change")
	// ErrReferenceBusy means another row already holds the risk key: a
	// payout for the same reference is in flight or has succeeded.
	ErrReferenceBusy = errors.New("reference busy")
	// ErrDuplicateSession means the Pike session id is already recorded for
	// another attempt.
	ErrDuplicateSession = errors.New("duplicate session")
	// ErrManifestChanged means a batch id is reused with a different
	// manifest.
	ErrManifestChanged = errors.New("manifest changed")
	// ErrLeaseHeld means another live runner holds the batch lease.
	ErrLeaseHeld = errors.New("lease held")
	// ErrLeaseLost means the lease was taken over by another runner.
	ErrLeaseLost = errors.New("lease lost")
	// ErrSchemaTooNew means the ledger file was written by a newer payouts.
	ErrSchemaTooNew = errors.New("ledger schema too new")
	// ErrLegacyFingerprints means the ledger's card fingerprints were made
	// with a key derived from the partner private key, by a payouts older
	// than fingerprint key files.
	ErrLegacyFingerprints = errors.New("fingerprints made with the partner key")
	// ErrUnfinishedRows means an operation needs every row to be final.
	ErrUnfinishedRows = errors.New("unfinished rows")
	// ErrNoLedger means Open was told the ledger must exist, and it does not.
	ErrNoLedger = errors.New("no ledger")
	// ErrClosed means the DB was closed.
	ErrClosed = errors.New("ledger closed")
	// ErrClaimLost: a change fenced by a claim (Change.Claim) whose owner
	// no longer holds it: it expired or was taken over. Nothing was
	// written; the runner must stop touching the row.
	ErrClaimLost = errors.New("claim lost")
	// ErrClaimed: a change without a claim for a row another runner holds
	// an unexpired claim on. Nothing was written.
	ErrClaimed = errors.New("row claimed by another runner")
)

// ConflictError is returned by Apply when the row is not in the state the
// change expected. Nothing was written. It wraps ErrConflict.
type ConflictError struct {
	RowID    int64
	Expected State // the Change's From
	Current  State // the row's state in the ledger
}

// Error implements error.
func (e *ConflictError) Error() string {
	return fmt.Sprintf("row %d is %s, not %s", e.RowID, e.Current, e.Expected)
}

// Unwrap returns ErrConflict.
func (e *ConflictError) Unwrap() error { return ErrConflict }

// ReferenceBusyError is returned when a row cannot enter creating because
// another row holds the same risk key. It names the holder and wraps
// ErrReferenceBusy.
type ReferenceBusyError struct {
	RiskKey string
	BatchID string // the holder's batch
	RowID   int64  // the holder's row
	Line    int
	State   State // the holder's state
}

// Error implements error.
func (e *ReferenceBusyError) Error() string {
	return fmt.Sprintf("reference %q is held by batch %s row %d (line %d, %s): a payout for it is in flight or has succeeded",
		e.RiskKey, e.BatchID, e.RowID, e.Line, e.State)
}

// Unwrap returns ErrReferenceBusy.
func (e *ReferenceBusyError) Unwrap() error { return ErrReferenceBusy }

// LeaseHeldError is returned by AcquireLease when a live runner holds the
// batch. It wraps ErrLeaseHeld.
type LeaseHeldError struct {
	BatchID   string
	Owner     Owner
	Heartbeat time.Time // last heartbeat of the holder
	TTL       time.Duration
}

// Error implements error.
func (e *LeaseHeldError) Error() string {
	return fmt.Sprintf("batch %s is being run by pid %d on host %s (%s), last heartbeat %s: "+
		"wait for it to finish or stop that process; a lease whose heartbeat is older than %s, "+
		"or whose process has exited on this host, is taken over automatically",
		e.BatchID, e.Owner.PID, e.Owner.Host, e.Owner.Command,
		e.Heartbeat.UTC().Format(time.RFC3339), e.TTL)
}

// Unwrap returns ErrLeaseHeld.
func (e *LeaseHeldError) Unwrap() error { return ErrLeaseHeld }
