// Package batch is the domain of the payout processor: the row state
// machine, the runner that drives rows through Pike's two-step payout flow,
// the confirm policy, webhook application, polling, and the reconciliation
// report. It pays the rows package manifest reads and validates.
//
// batch owns small interfaces over its two dependencies (the Pike client and
// the ledger) so that its tests can use fakes as well as the real things.
package batch
