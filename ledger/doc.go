// Package ledger is the crash-safe store of payouts: batches, rows,
// attempts, events and webhooks, in a SQLite file (the embedded default)
// or a PostgreSQL database shared by several hosts (Open with a
// postgres:// URL; one set of queries, the differences in dialect.go,
// migrations for both under schema/ and schema/postgres/). On PostgreSQL
// several runners share a batch through row claims (claim.go).
//
// The ledger is how a run survives a crash without paying anyone twice. It
// enforces the row state machine (see [CanTransition]) with compare-and-set
// on the expected current state, keeps an append-only audit log of events,
// and guarantees in its schema that two rows with the same reference can
// never both be in flight or paid (the risk key, see [Change]).
//
// Writes made while a run is going (Apply, ApplyAll, AddEvent, RecordWebhook,
// MarkWebhookApplied, SetAttemptOutcome) go through a single writer goroutine
// that commits everything queued in one transaction (group commit): every
// caller returns only once its write is durable (synchronous=FULL), and one
// fsync is shared by many callers. Reads use a separate connection pool and
// never wait for the writer (WAL).
//
// No card number (PAN) is ever stored: rows keep the BIN, the last four
// digits and a keyed fingerprint computed by the caller, and every free text
// that is stored passes through [ScrubPAN] first.
package ledger
