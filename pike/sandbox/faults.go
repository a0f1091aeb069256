package sandbox

import (
	"fmt"
	"time"
)

// Faults are probabilistic failures, each drawn independently from the
// sandbox's random source (seeded by Config.Seed). A zero Faults is a
// perfectly behaved Pike.
type Faults struct {
	// Latency is added to every API call, plus a uniform random extra in
	// [0, LatencyJitter).
	Latency, LatencyJitter time.Duration
	// FailBeforeApply is the probability of answering HTTP 500 internal_error
	// without applying anything (the idempotency key is not recorded).
	FailBeforeApply float64
	// FailAfterApply is the probability (mutating calls) of applying the call
	// and then answering HTTP 500 internal_error anyway: the outcome is
	// unknown to the caller.
	FailAfterApply float64
	// DropAfterApply is the probability (mutating calls) of applying the
	// call and then closing the connection without any answer.
	DropAfterApply float64
	// RateLimit is the probability of answering HTTP 429 too_many_requests
	// with Retry-After: 1, applying nothing.
	RateLimit float64
	// DuplicateWebhooks is the probability that a webhook is delivered twice.
	DuplicateWebhooks float64
	// ReorderWebhooks is the probability that a webhook is held back and
	// delivered after the session's next webhook, or after
	// Config.WebhookRetryBase when no next webhook comes.
	ReorderWebhooks float64
	// DropWebhooks is the probability that a webhook is never delivered.
	DropWebhooks float64
	// WebhookDelay is waited before the first attempt of every delivery.
	WebhookDelay time.Duration
	// MismatchAmount is the probability that a payout's ready_to_confirm
	// (and session/status) reports the requested amount plus one major unit
	// of its currency. If it is confirmed anyway, that amount is paid.
	MismatchAmount float64
}

// Fault is one kind of failure a Rule injects.
type Fault int

// Faults for Rules. Request faults match a Rule's Method against the API
// method (pike.MethodConfirm, ...; the session/start alias counts as
// pike.MethodStartPayout). Webhook faults match it against the webhook
// type (pike.WebhookReadyToConfirm, ...). FaultMismatchAmount is decided
// when the payout starts (Method pike.MethodStartPayout or
// pike.MethodInitPayout); FaultSessionError and FaultDeclineAfterConfirm
// when it is confirmed (Method pike.MethodConfirm, also under AutoConfirm).
const (
	FaultNone                Fault = iota
	FaultFailBeforeApply           // HTTP 500 internal_error, nothing applied
	FaultFailAfterApply            // applied, then HTTP 500 internal_error
	FaultDropAfterApply            // applied, then the connection is closed without an answer
	FaultRateLimit                 // HTTP 429 too_many_requests, Retry-After: 1, nothing applied
	FaultDropWebhook               // the webhook is never delivered
	FaultDuplicateWebhook          // the webhook is delivered twice
	FaultReorderWebhook            // the webhook is delivered after the session's next one (or late)
	FaultMismatchAmount            // ready_to_confirm reports amount + 1 major unit; that amount is paid if confirmed
	FaultSessionError              // after confirm: payout failed + session error (not final)
	FaultDeclineAfterConfirm       // after confirm: payout failed provider_exceeds_amount_limit
	numFaults
)

var faultNames = [numFaults]string{
	FaultNone:                "none",
	FaultFailBeforeApply:     "fail_before_apply",
	FaultFailAfterApply:      "fail_after_apply",
	FaultDropAfterApply:      "drop_after_apply",
	FaultRateLimit:           "rate_limit",
	FaultDropWebhook:         "drop_webhook",
	FaultDuplicateWebhook:    "duplicate_webhook",
	FaultReorderWebhook:      "reorder_webhook",
	FaultMismatchAmount:      "mismatch_amount",
	FaultSessionError:        "session_error",
	FaultDeclineAfterConfirm: "decline_after_confirm",
}

// String returns the fault's snake_case name, the key used in Stats.Faults.
func (f Fault) String() string {
	if f >= 0 && f < numFaults {
		return faultNames[f]
	}
	return fmt.Sprintf("fault(%d)", int(f))
}

// Rule is a deterministic fault for tests: the next Times calls (or
// webhooks) that match Method and Reference get Fault. Rules fire before,
// and independently of, the probabilities in Faults.
type Rule struct {
	// Method is the API method or webhook type to match; "" matches any.
	Method string
	// Reference is the session's customer.reference to match; "" matches any.
	// For session/create and session/init/payout it is taken from the request.
	Reference string
	Fault     Fault
	// Times is how many matches the rule fires for; 0 means 1.
	Times int
	// Skip lets the first Skip matches through untouched before the rule
	// starts firing.
	Skip int
}

type rule struct {
	Rule
	left, skip int
}

// Inject adds a one-shot (or Times-shot) fault. Rules are matched in the
// order they were injected.
func (s *Sandbox) Inject(r Rule) {
	n := r.Times
	if n <= 0 {
		n = 1
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = append(s.rules, &rule{Rule: r, left: n, skip: r.Skip})
}

// ClearRules removes every rule not yet spent: Pike recovers.
func (s *Sandbox) ClearRules() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = nil
}

// SetFaults replaces the probabilistic faults; calls and webhooks already in
// flight keep what was decided for them.
func (s *Sandbox) SetFaults(f Faults) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = f
}

// fire decides whether fault f happens now for method and ref: a matching
// rule first, then probability p. Callers hold s.mu.
func (s *Sandbox) fire(f Fault, method, ref string, p float64) bool {
	for i, r := range s.rules {
		if r.Fault != f || (r.Method != "" && r.Method != method) || (r.Reference != "" && r.Reference != ref) {
			continue
		}
		if r.skip > 0 {
			r.skip--
			continue
		}
		r.left--
		if r.left <= 0 {
			s.rules = append(s.rules[:i:i], s.rules[i+1:]...)
		}
		s.countFault(f, method, ref, "rule")
		return true
	}
	if p > 0 && s.rng.Float64() < p {
		s.countFault(f, method, ref, "random")
		return true
	}
	return false
}

func (s *Sandbox) countFault(f Fault, method, ref, why string) {
	s.stats.Faults[f.String()]++
	s.log.Info("fault injected", "fault", f.String(), "method", method, "reference", ref, "by", why)
}

// latency returns the delay to add to one API call.
func (s *Sandbox) latency() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.faults.Latency
	if j := s.faults.LatencyJitter; j > 0 {
		d += time.Duration(s.rng.Int64N(int64(j)))
	}
	return d
}
