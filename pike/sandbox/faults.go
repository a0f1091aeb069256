package sandbox

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/payouts/payouts/pike"
)

// Faults are probabilistic failures, each drawn independently from the
// sandbox's random source (seeded by Config.Seed). A zero Faults is a
// perfectly behaved Pike.
type Faults struct {
	// Latency is added to every API call, plus a uniform random extra in
	// [0, LatencyJitter).
	Latency, LatencyJitter time.Duration
	// FailBeforeApply is the probability of answering an error (one of
	// FailAnswers) without applying anything (the idempotency key is not
	// recorded).
	FailBeforeApply float64
	// FailAfterApply is the probability (mutating calls) of applying the call
	// and then answering an error (one of FailAnswers) anyway: the outcome
	// is unknown to the caller. Pike documents no way to tell the two apart.
	FailAfterApply float64
	// FailAnswers are the error answers FailBeforeApply and FailAfterApply
	// pick from, uniformly; empty means HTTP 500 internal_error only.
	// AmbiguousAnswers lists the documented retry-later codes at 400, 500
	// and 503.
	FailAnswers []ErrorAnswer
	// SlowAnswer is the probability that a call is applied and its answer
	// held back for SlowAnswerDelay (a client that times out meanwhile
	// does not know the outcome). Unlike Latency it is decided per call and
	// happens after applying.
	SlowAnswer      float64
	SlowAnswerDelay time.Duration
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
	// SessionError is the probability that a confirmed payout ends failed
	// with its session in error (not final: Pike says ask support).
	SessionError float64
	// DeclineAfterConfirm is the probability that a confirmed payout still
	// fails (provider_exceeds_amount_limit, session cancelled).
	DeclineAfterConfirm float64
	// OmitAmount is the probability that a finished payout is shown (in
	// payment_finished and session/status) without amount_details.
	OmitAmount float64
	// ReplayWebhooks is the probability that a delivered webhook is
	// delivered once more, Config.WebhookReplayDelay later: the same signed
	// body, carrying the state of its moment.
	ReplayWebhooks float64
	// ForgedWebhooks is the probability that a webhook is followed by a
	// forged copy (payout and session shown as paid) signed with a key that
	// is not Pike's. It is sent once; its answer is counted in
	// Stats.ForgedRejected / ForgedAccepted.
	ForgedWebhooks float64
	// ForeignWebhooks is the probability that a session/create or
	// session/init/payout request is copied by another merchant's session
	// (same metadata, customer.reference, amount, currency and card last4)
	// whose genuine, Pike-signed ready_to_confirm and payment_finished
	// (succeeded) reach our webhook URL. See InjectForeignWebhook.
	ForeignWebhooks float64
}

// ErrorAnswer is an error answer: Pike's error code and the HTTP status it
// comes with. Pike documents neither the HTTP status of an error nor
// whether a retry-later code means "not applied".
type ErrorAnswer struct {
	Code       string
	HTTPStatus int
}

// AmbiguousAnswers returns the retry-later error codes of Pike's table
// (internal_error, provider_timeout, provider_issuer_unavailable), each at
// HTTP 400, 500 and 503: what a call may get whether or not it was applied.
func AmbiguousAnswers() []ErrorAnswer {
	var out []ErrorAnswer
	for _, code := range []string{pike.CodeInternal, pike.CodeProviderTimeout, pike.CodeProviderIssuerUnavail} {
		for _, st := range []int{400, 500, 503} {
			out = append(out, ErrorAnswer{Code: code, HTTPStatus: st})
		}
	}
	return out
}

// ParseErrorAnswer reads CODE:HTTP (session_not_found:404) into an
// ErrorAnswer. The status must be an HTTP error status (400–599): an
// answer outside that range would not read as an error to the client.
func ParseErrorAnswer(s string) (ErrorAnswer, error) {
	code, status, _ := strings.Cut(s, ":")
	httpStatus, err := strconv.Atoi(status)
	if code == "" || err != nil || httpStatus < 400 || httpStatus > 599 {
		return ErrorAnswer{}, fmt.Errorf("%q: want CODE:HTTP, e.g. session_not_found:404 or invalid_request:400", s)
	}
	return ErrorAnswer{Code: code, HTTPStatus: httpStatus}, nil
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
	FaultSlowAnswer                // applied, then the answer waits Rule.Delay (or Faults.SlowAnswerDelay)
	FaultOmitAmount                // the finished payout has no amount_details (Method: payment_finished)
	FaultReplayWebhook             // the webhook is delivered again WebhookReplayDelay after it was delivered
	FaultForgedWebhook             // the webhook is followed by a forged "paid" copy not signed by Pike
	FaultForeignWebhook            // create/init is copied by another merchant's session that sends its webhooks to us
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
	FaultSlowAnswer:          "slow_answer",
	FaultOmitAmount:          "omit_amount",
	FaultReplayWebhook:       "replay_webhook",
	FaultForgedWebhook:       "forged_webhook",
	FaultForeignWebhook:      "foreign_webhook",
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
	// Code and HTTPStatus choose the error answer of FaultFailBeforeApply
	// and FaultFailAfterApply; "" and 0 mean internal_error and HTTP 500.
	Code       string
	HTTPStatus int
	// Delay is how long FaultSlowAnswer holds the answer back; 0 means
	// Faults.SlowAnswerDelay, or DefaultSlowAnswerDelay when that is 0.
	Delay time.Duration
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
	_, ok := s.fireRule(f, method, ref, p)
	return ok
}

// fireRule is fire that also returns the rule that fired, nil when the
// probability did. Callers hold s.mu.
func (s *Sandbox) fireRule(f Fault, method, ref string, p float64) (*Rule, bool) {
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
		return &r.Rule, true
	}
	if p > 0 && s.rng.Float64() < p {
		s.countFault(f, method, ref, "random")
		return nil, true
	}
	return nil, false
}

// fireAnswer decides fail-before/after-apply fault f and the error it
// answers: the rule's Code and HTTPStatus, or one of Faults.FailAnswers.
// Callers hold s.mu.
func (s *Sandbox) fireAnswer(f Fault, method, ref string, p float64) (*apiError, bool) {
	r, ok := s.fireRule(f, method, ref, p)
	if !ok {
		return nil, false
	}
	a := ErrorAnswer{Code: pike.CodeInternal, HTTPStatus: 500}
	switch {
	case r != nil:
		if r.Code != "" {
			a.Code = r.Code
		}
		if r.HTTPStatus != 0 {
			a.HTTPStatus = r.HTTPStatus
		}
	case len(s.faults.FailAnswers) > 0:
		a = s.faults.FailAnswers[s.rng.IntN(len(s.faults.FailAnswers))]
		if a.Code == "" {
			a.Code = pike.CodeInternal
		}
		if a.HTTPStatus == 0 {
			a.HTTPStatus = 500
		}
	}
	s.stats.FaultAnswers[fmt.Sprintf("%s %s %d", f, a.Code, a.HTTPStatus)]++
	return errorf(a.HTTPStatus, a.Code, "%s: retry later", a.Code), true
}

// fireDelay decides FaultSlowAnswer and returns how long to hold the
// answer. Callers hold s.mu.
func (s *Sandbox) fireDelay(method, ref string) time.Duration {
	r, ok := s.fireRule(FaultSlowAnswer, method, ref, s.faults.SlowAnswer)
	if !ok {
		return 0
	}
	if r != nil && r.Delay > 0 {
		return r.Delay
	}
	if s.faults.SlowAnswerDelay > 0 {
		return s.faults.SlowAnswerDelay
	}
	return DefaultSlowAnswerDelay
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
