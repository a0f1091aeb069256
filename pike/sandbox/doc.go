// Package sandbox is a local Pike: the same HTTP API as the real one
// (pike-api.md), with signed requests and webhooks, the session and payout
// state machine, idempotency keys, test cards with fixed outcomes, fault
// injection, and a journal of the money it actually moved.
//
// The sandbox is built to be stricter than Pike where Pike's documentation
// is silent, so that a processor cannot pass against it while being wrong
// against Pike: only the path version's field names are understood, a
// repeated idempotency key is rejected (unless Config.IdempotencyReplay),
// a payout is paid with the amount the sandbox reported, not the amount the
// processor meant, and webhooks may be duplicated, reordered, delayed or
// dropped on request.
//
// Tests and the torture suite judge "paid exactly once" from Journal, never
// from the processor's own records. The journal keeps the card's last four
// digits and a SHA-256 of the number; the sandbox never stores or logs a
// full card number.
//
// Use it in-process behind httptest.NewServer (Sandbox is an http.Handler)
// or standalone with `payouts sandbox`.
package sandbox
