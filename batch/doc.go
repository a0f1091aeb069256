// Package batch is the engine of the payout processor: the runner that
// drives a batch's rows through Pike's two-step payout flow along the
// ledger's row state machine, the confirm policy (confirm only what was
// asked, or hold for approval), webhook intake and application, polling of
// rows that wait too long, and reruns and decisions on rows in review. It
// pays the rows package manifest reads and validates; package report
// (batch/report) writes the reconciliation report from what it leaves in
// the ledger.
//
// The engine reaches its two dependencies through two interfaces defined
// where they are used, in store.go: Store (what it needs from the ledger,
// implemented by *ledger.DB) and Pike (what it needs from the API,
// implemented by *pike.Client). The command wires in exactly those two.
//
// There are no fake implementations of either. The tests run the engine
// against the real ledger (SQLite in a temporary directory) and the
// sandbox (pike/sandbox, a real HTTP server on loopback), and bend
// behaviour with the sandbox's fault injection or with small wrappers that
// embed the real Pike and override one method, such as statusFilter in
// money_test.go and the wrappers in adversary_test.go.
package batch
