package sandbox

import (
	"maps"
	"slices"
	"time"

	"golang.org/x/text/currency"
)

// Payment is one succeeded payout: money the sandbox actually moved.
type Payment struct {
	SessionID string `json:"session_id"`
	PayoutID  string `json:"payout_id"`
	// Reference is the session's customer.reference.
	Reference string `json:"reference"`
	// Metadata is the session's metadata: the string itself for a JSON
	// string, the JSON text otherwise.
	Metadata string `json:"metadata"`
	// Amount is what was paid, in minor units: the amount the sandbox
	// reported in ready_to_confirm, which is not the requested amount when
	// a mismatch was injected.
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	// CardLast4 and CardSHA256 (hex SHA-256 of the full number) identify the
	// card; the journal never holds the number itself.
	CardLast4  string    `json:"card_last4"`
	CardSHA256 string    `json:"card_sha256"`
	At         time.Time `json:"at"`
}

// Journal returns every succeeded payout in the order it succeeded. Each
// payout appears once; a reference appears once per payout made for it.
func (s *Sandbox) Journal() []Payment {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.journal)
}

// Totals sums payments by currency, in minor units: the money the sandbox
// moved, which is what a run should be reconciled against.
func Totals(payments []Payment) map[string]int64 {
	total := map[string]int64{}
	for _, p := range payments {
		total[p.Currency] += p.Amount
	}
	return total
}

// Stats counts what the sandbox saw and did.
type Stats struct {
	// Requests counts API calls per method (pike.MethodConfirm, ...), the
	// session/start alias under pike.MethodStartPayout, rejected ones included.
	Requests map[string]int64 `json:"requests"`
	// AuthFailures counts calls refused with authentication_error.
	AuthFailures int64 `json:"auth_failures"`
	// MissingIdempotencyKey counts mutating calls sent without
	// X-PARTNER-IDEMPOTENCY-KEY (accepted, as Pike does not document it
	// as required).
	MissingIdempotencyKey int64 `json:"missing_idempotency_key"`
	// IdempotencyRepeats counts calls whose key was already used (answered
	// with idempotency_key_already_exists or, in replay mode, the original).
	IdempotencyRepeats int64 `json:"idempotency_repeats"`
	// Faults counts faults fired, by Fault.String().
	Faults map[string]int64 `json:"faults"`
	// Sessions and Payouts count those created.
	Sessions int64 `json:"sessions"`
	Payouts  int64 `json:"payouts"`
	// WebhooksQueued counts webhook deliveries decided (duplicates
	// included, dropped ones and CardNoWebhooks sessions excluded).
	WebhooksQueued int64 `json:"webhooks_queued"`
	// WebhooksSent counts HTTP attempts, retries included.
	WebhooksSent int64 `json:"webhooks_sent"`
	// WebhooksDelivered counts deliveries answered 2xx.
	WebhooksDelivered int64 `json:"webhooks_delivered"`
	// WebhooksFailed counts attempts that got no 2xx answer.
	WebhooksFailed int64 `json:"webhooks_failed"`
	// WebhooksGivenUp counts deliveries abandoned after WebhookGiveUp.
	WebhooksGivenUp int64 `json:"webhooks_given_up"`
	// WebhooksDropped counts webhooks never sent on purpose (fault).
	WebhooksDropped int64 `json:"webhooks_dropped"`
	// WebhooksPending is the deliveries queued, held back or in flight now.
	WebhooksPending int64 `json:"webhooks_pending"`
	// WebhooksReplayed counts deliveries made again long after (fault).
	WebhooksReplayed int64 `json:"webhooks_replayed"`
	// ForgedSent counts forged webhooks sent; ForgedRejected those answered
	// 401 and ForgedAccepted those answered 2xx (a receiver bug).
	ForgedSent     int64 `json:"forged_sent"`
	ForgedRejected int64 `json:"forged_rejected"`
	ForgedAccepted int64 `json:"forged_accepted"`
	// ForeignSessions counts other merchants' sessions made to send us
	// their webhooks (InjectForeignWebhook, Faults.ForeignWebhooks).
	ForeignSessions int64 `json:"foreign_sessions"`
	// FaultAnswers counts the error answers of fail-before/after-apply
	// faults, by "fault code status".
	FaultAnswers map[string]int64 `json:"fault_answers"`
}

func newStats() Stats {
	return Stats{Requests: map[string]int64{}, Faults: map[string]int64{}, FaultAnswers: map[string]int64{}}
}

// Stats returns a snapshot of the counters.
func (s *Sandbox) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Requests = maps.Clone(s.stats.Requests)
	st.Faults = maps.Clone(s.stats.Faults)
	st.FaultAnswers = maps.Clone(s.stats.FaultAnswers)
	st.WebhooksPending = int64(s.pending)
	return st
}

// minorDigits returns how many minor-unit digits currency cur has (rub 2,
// jpy 0, kwd 3) and whether cur is a known ISO 4217 code.
func minorDigits(cur string) (int, bool) {
	u, err := currency.ParseISO(cur)
	if err != nil {
		return 0, false
	}
	scale, _ := currency.Standard.Rounding(u)
	return scale, true
}

// majorUnit returns one major unit of cur in minor units (100 for rub).
func majorUnit(cur string) int64 {
	d, _ := minorDigits(cur)
	u := int64(1)
	for range d {
		u *= 10
	}
	return u
}
