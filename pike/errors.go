package pike

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/payouts/payouts/internal/pan"
)

// Client errors. Test them with errors.Is; Classify tells what a caller may
// do next.
var (
	// ErrOutcomeUnknown is satisfied by every ClassUnknown error: a mutating
	// call that Pike may or may not have applied. Resolve it with
	// session/status (or a webhook); never send a new session for it.
	ErrOutcomeUnknown = errors.New("outcome unknown")
	// ErrIdempotencyKeyReused is satisfied by an APIError with code
	// idempotency_key_already_exists: Pike has seen the key before, so the
	// call it names is in progress or done. It is also ErrOutcomeUnknown.
	ErrIdempotencyKeyReused = errors.New("idempotency key already used")
	// ErrNotSent is satisfied by errors for requests that provably never
	// reached Pike in full (refused connection, failed write, context done
	// before sending, invalid arguments).
	ErrNotSent = errors.New("request not sent")
	// ErrInvalidArgument is satisfied by errors for calls refused by the
	// client before anything was sent: a missing idempotency key or session
	// id, an amount that is not positive, a currency that is not lower case.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrNotApplied is satisfied by errors that prove Pike did not apply a
	// mutating call: a request that never reached Pike in full, or a refusal
	// Pike gives before it applies anything (authentication, authorization,
	// identification, a request it names as malformed: invalid_request).
	// Every other error answer to a mutating call is no such proof, whatever
	// its HTTP status or code: the call may have been applied.
	ErrNotApplied = errors.New("not applied")
	// ErrCredentials is satisfied by refusals of the partner's credentials
	// (authentication_error, authorization_error, identification_error,
	// HTTP 401/403): the operator's problem, not the row's. No row can be
	// paid until it is fixed.
	ErrCredentials = errors.New("credentials refused")
	// ErrMalformedResponse is satisfied by errors for responses that are not
	// a usable Pike envelope (unparsable body, missing session, a session id
	// other than the one asked for, an unexpected HTTP status).
	ErrMalformedResponse = errors.New("malformed response")
)

// Class is what a caller may do after an error.
type Class int

// Error classes; see Classify.
const (
	// ClassNone is the class of a nil error.
	ClassNone Class = iota
	// ClassRetryable errors are definitely not applied: sending the same
	// request again with the same idempotency key is safe. The client has
	// already retried these up to RetryPolicy.MaxAttempts times.
	ClassRetryable
	// ClassDefinitive errors are answers from Pike that will not change on
	// a retry: bad request, authentication, card errors, not found.
	ClassDefinitive
	// ClassUnknown errors come from mutating calls that Pike may have
	// applied. They satisfy errors.Is(err, ErrOutcomeUnknown).
	ClassUnknown
)

// String returns the class name used in logs.
func (c Class) String() string {
	switch c {
	case ClassNone:
		return "none"
	case ClassRetryable:
		return "retryable"
	case ClassDefinitive:
		return "definitive"
	case ClassUnknown:
		return "unknown"
	}
	return fmt.Sprintf("Class(%d)", int(c))
}

// Classify returns the class of err:
//
//   - nil: ClassNone.
//   - *APIError: by code and HTTP status (see APIError.Class).
//   - *TransportError: ClassUnknown if a mutating request may have been
//     written, ClassRetryable otherwise.
//   - errors wrapping ErrInvalidArgument: ClassDefinitive.
//   - anything else that wraps ErrOutcomeUnknown: ClassUnknown; ErrNotSent:
//     ClassRetryable.
//   - any other error: ClassUnknown, because an error the client cannot
//     explain must never be taken for "not paid".
func Classify(err error) Class {
	if err == nil {
		return ClassNone
	}
	// The outermost typed error decides: a TransportError may carry the
	// text of an earlier APIError, never the other way round.
	for e := err; e != nil; e = errors.Unwrap(e) {
		switch x := e.(type) {
		case *AmbiguousError:
			return ClassUnknown
		case *APIError:
			return x.Class()
		case *TransportError:
			return x.Class()
		}
	}
	switch {
	case errors.Is(err, ErrInvalidArgument):
		return ClassDefinitive
	case errors.Is(err, ErrOutcomeUnknown):
		return ClassUnknown
	case errors.Is(err, ErrNotSent):
		return ClassRetryable
	}
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Class()
	}
	var te *TransportError
	if errors.As(err, &te) {
		return te.Class()
	}
	return ClassUnknown
}

// APIError is an error answer from Pike: an error envelope
// ({"status":"error","error":{...}}), whatever the HTTP status, or a 429/5xx.
type APIError struct {
	// HTTPStatus is the HTTP status code of the response.
	HTTPStatus int
	// Code is Pike's error code (error.code), "" when the body had none.
	Code string
	// Description is Pike's error.description with anything that looks like
	// a card number masked.
	Description string
	// Method is the Pike method called, e.g. "session/confirm".
	Method string
	// RetryAfter is the delay the server asked for with Retry-After (429,
	// 503), zero when it sent none.
	RetryAfter time.Duration
}

// Error returns "pike METHOD: HTTP STATUS CODE: DESCRIPTION". It never
// contains a PAN: descriptions are masked when the error is built, and
// masked again here in case the error was built by hand.
func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("pike ")
	b.WriteString(e.Method)
	fmt.Fprintf(&b, ": HTTP %d", e.HTTPStatus)
	if e.Code != "" {
		b.WriteString(": ")
		b.WriteString(pan.Scrub(e.Code))
	}
	if e.Description != "" {
		b.WriteString(": ")
		b.WriteString(pan.Scrub(e.Description))
	}
	return b.String()
}

// Class classifies the error from its fields alone, so that an APIError
// built by a test fake classifies like one from the client:
//
//   - code idempotency_key_already_exists: ClassUnknown.
//   - HTTP 429: ClassRetryable (the client resends the same request with
//     the same key; for a mutating call that is safe whether or not the
//     429 was applied, and ErrNotApplied is not claimed for it).
//   - HTTP 5xx: ClassUnknown for mutating methods, ClassRetryable for reads.
//   - codes internal_error, provider_timeout, provider_issuer_unavailable,
//     provider_internal_error, too_many_requests: ClassUnknown for mutating
//     methods at any HTTP status (Pike's docs say "retry later", not "not
//     applied"), ClassRetryable for reads.
//   - anything else: ClassDefinitive. Only the codes of ErrNotApplied prove
//     that a mutating call was not applied; a definitive business refusal
//     (a card error, say) will not change on a resend, but is not proof.
//
// An empty or unrecognised Method counts as mutating.
func (e *APIError) Class() Class {
	switch {
	case e.Code == CodeIdempotencyKeyExists:
		return ClassUnknown
	case e.HTTPStatus == 429 && !e.refusedBeforeApply():
		return ClassRetryable
	case e.HTTPStatus >= 500 || e.Code == CodeInternal || e.Code == CodeProviderTimeout ||
		e.Code == CodeProviderIssuerUnavail || e.Code == CodeProviderInternal || e.Code == CodeRateLimited:
		if isRead(e.Method) {
			return ClassRetryable
		}
		return ClassUnknown
	}
	return ClassDefinitive
}

// refusedBeforeApply reports whether Pike refused the call before applying
// it: a credentials refusal or a request it names as malformed, below 500.
func (e *APIError) refusedBeforeApply() bool {
	if e.HTTPStatus >= 500 || e.Code == CodeIdempotencyKeyExists {
		return false
	}
	return e.credentials() || e.Code == CodeInvalidRequest
}

// credentials reports whether the error refuses the partner's credentials.
func (e *APIError) credentials() bool {
	switch e.Code {
	case CodeAuthentication, CodeAuthorization, CodeIdentification:
		return e.HTTPStatus < 500
	case "":
		return e.HTTPStatus == 401 || e.HTTPStatus == 403
	}
	return false
}

// Is reports ErrOutcomeUnknown for ClassUnknown errors,
// ErrIdempotencyKeyReused for code idempotency_key_already_exists,
// ErrNotApplied for refusals before applying (and every error of a read),
// and ErrCredentials for refusals of the partner's credentials.
func (e *APIError) Is(target error) bool {
	switch target {
	case ErrOutcomeUnknown:
		return e.Class() == ClassUnknown
	case ErrIdempotencyKeyReused:
		return e.Code == CodeIdempotencyKeyExists
	case ErrNotApplied:
		return isRead(e.Method) || e.refusedBeforeApply()
	case ErrCredentials:
		return e.credentials()
	}
	return false
}

// AmbiguousError is the last answer to a call whose earlier tries may have
// been applied: the client resent the same request (same bytes, same key)
// after an answer that proved nothing, and then got a definitive refusal.
// The refusal may be about the resend (the session already moved on because
// the first try was applied), so it proves nothing either: ClassUnknown.
type AmbiguousError struct {
	// Tries is the number of HTTP requests sent for the call.
	Tries int
	// First is the error of the first try that may have been applied.
	First error
	// Err is the last answer.
	Err error
}

// Error describes both answers.
func (e *AmbiguousError) Error() string {
	return fmt.Sprintf("%v (after %d tries; an earlier one may have been applied: %v)", e.Err, e.Tries, e.First)
}

// Is reports ErrOutcomeUnknown, and ErrIdempotencyKeyReused when the last
// answer is that. It deliberately has no Unwrap: the last answer's own
// claims (ErrNotApplied, ErrCredentials: "refused before applying") are
// about the resend, not about the call, and must not show through.
func (e *AmbiguousError) Is(target error) bool {
	switch target {
	case ErrOutcomeUnknown:
		return true
	case ErrIdempotencyKeyReused:
		return errors.Is(e.Err, target)
	}
	return false
}

// As gives errors.As the last answer's *APIError or *TransportError, for
// its code and description.
func (e *AmbiguousError) As(target any) bool {
	return errors.As(e.Err, target)
}

// TransportError is a call that got no usable answer from Pike: a network
// error, a context that ended, or a response that could not be read or
// parsed.
type TransportError struct {
	// Method is the Pike method called.
	Method string
	// Written is false only when the client knows the request never reached
	// Pike in full (no connection, a failed write, a context that ended
	// before sending). Anything the client cannot prove counts as written.
	Written bool
	// HTTPStatus is the status of a response whose body was unusable, 0
	// when no response arrived.
	HTTPStatus int
	// Err is the underlying error.
	Err error

	waiting bool // failed while waiting for the 429 gate, rate limiter or a slot
}

// Error returns "pike METHOD: outcome unknown: ..." or "pike METHOD: not sent: ...".
func (e *TransportError) Error() string {
	what := "not sent"
	switch {
	case e.Class() == ClassUnknown:
		what = "outcome unknown"
	case e.Written:
		what = "failed"
	}
	if e.HTTPStatus != 0 {
		return fmt.Sprintf("pike %s: %s: HTTP %d: %v", e.Method, what, e.HTTPStatus, e.Err)
	}
	return fmt.Sprintf("pike %s: %s: %v", e.Method, what, e.Err)
}

// Unwrap returns the underlying error.
func (e *TransportError) Unwrap() error { return e.Err }

// Class is ClassUnknown when a mutating request may have been written and
// ClassRetryable otherwise (reads, and requests that never left).
func (e *TransportError) Class() Class {
	if e.Written && !isRead(e.Method) {
		return ClassUnknown
	}
	return ClassRetryable
}

// Is reports ErrOutcomeUnknown for ClassUnknown errors, ErrNotSent for
// requests that were never written, and ErrNotApplied for those and for
// every error of a read.
func (e *TransportError) Is(target error) bool {
	switch target {
	case ErrOutcomeUnknown:
		return e.Class() == ClassUnknown
	case ErrNotSent:
		return !e.Written
	case ErrNotApplied:
		return !e.Written || isRead(e.Method)
	}
	return false
}

// isRead reports whether method only reads: retrying it can move no money.
func isRead(method string) bool {
	return method == MethodStatus || method == MethodWalletBalance
}
