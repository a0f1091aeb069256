package ledger

// Failure codes the runner (package batch) itself records on rows; the
// report (package batch/report) reads them back. Pike's own codes are
// recorded as Pike sends them.
const (
	// CodeMismatch: the session Pike asked us to confirm differs from the row.
	CodeMismatch = "mismatch"
	// CodeRejected: an operator rejected the row (payouts reject).
	CodeRejected = "rejected"
	// CodeSupersededSuccess: an earlier attempt of the row reported success
	// after a newer attempt was opened; a human must check both.
	CodeSupersededSuccess = "superseded_attempt_succeeded"
	// CodeDecidedNotPaid: a person decided a row in review was not paid.
	CodeDecidedNotPaid = "decided_not_paid"
	// CodeLateSuccess: the live attempt of a row that had ended failed,
	// cancelled or mismatch was reported paid afterwards.
	CodeLateSuccess = "late_success"
	// CodeNoPikeRecord: Pike does not know the session the ledger holds.
	CodeNoPikeRecord = "session_not_found"
	// CodePaidAmountDiffers: Pike reports the payout succeeded with an
	// amount or currency other than the row's.
	CodePaidAmountDiffers = "paid_amount_differs"
	// CodePaidAmountUnverified: Pike reports the payout succeeded without
	// saying what it paid, and no confirm check of ours ever saw the amount
	// (Pike-side auto-confirm): a person checks what was paid.
	CodePaidAmountUnverified = "paid_amount_unverified"
	// CodeInitUnresolved: a single-flow session/init/payout whose session id
	// was never learnt, after every resend with the same key.
	CodeInitUnresolved = "init_unresolved"
	// CodeCancelUnresolved: session/cancel sent the most times allowed while
	// Pike kept showing the payout waiting for us.
	CodeCancelUnresolved = "cancel_unresolved"
	// CodeStartNotApplied: session/start/payout sent the most times allowed
	// without Pike ever showing a payout; the session was cancelled.
	CodeStartNotApplied = "start_not_applied"
)
