package pike

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"
	"time"

	"github.com/payouts/payouts/internal/pan"
)

// maxResponseBytes bounds a response body; Pike's are a few kilobytes.
const maxResponseBytes = 4 << 20

// Log keys, constant so that log queries keep working.
const (
	logKeyMethod   = "pike_method"
	logKeyKey      = "idempotency_key"
	logKeyStatus   = "http_status"
	logKeyLatency  = "latency"
	logKeyAttempt  = "attempt"
	logKeyClass    = "class"
	logKeyReason   = "reason"
	logKeyDelay    = "delay"
	logKeyError    = "error"
	logKeySession  = "session_id"
	logKeyType     = "webhook_type"
	logKeyBodyHash = "body_sha256"
	logKeyRemote   = "remote"
	logKeyRefused  = "refused"
)

// call sends one logical request: marshalled and signed once, then
// attempted until it succeeds, fails other than ClassRetryable, runs out of
// attempts or ctx ends. Every attempt sends the same bytes, signature and
// idempotency key.
func (c *Client) call(ctx context.Context, method, key, sessionID string, body any) (*Response, error) {
	payload, err := MarshalVersion(body, c.version)
	if err != nil {
		return nil, fmt.Errorf("%s: %w: encode body: %w", method, ErrInvalidArgument, err)
	}
	sig, err := c.signer.Sign(payload)
	if err != nil {
		return nil, c.finish(&TransportError{Method: method, Err: err})
	}
	url := c.base + "/api/" + c.version.String() + "/" + method
	// maybeApplied is the first answer of this call that does not prove the
	// request was not applied: after it, no later answer proves it either.
	var maybeApplied error
	for attempt := 1; ; attempt++ {
		resp, err := c.attempt(ctx, method, key, sessionID, url, payload, sig, attempt)
		if err == nil {
			c.stats.ok.Add(1)
			return resp, nil
		}
		if maybeApplied != nil && Classify(err) == ClassDefinitive {
			err = &AmbiguousError{Tries: attempt, First: maybeApplied, Err: err}
		}
		if maybeApplied == nil && !isRead(method) && !errors.Is(err, ErrNotApplied) {
			maybeApplied = err
		}
		var te *TransportError
		if Classify(err) != ClassRetryable || attempt >= c.retry.MaxAttempts || ctx.Err() != nil ||
			errors.As(err, &te) && te.waiting { // the caller's deadline comes before the next slot
			return nil, c.finish(err)
		}
		delay := c.retry.backoff(attempt)
		var ae *APIError
		if errors.As(err, &ae) && ae.RetryAfter > delay {
			delay = ae.RetryAfter
		}
		c.log.Warn("pike retry", logKeyMethod, method, logKeyKey, key, logKeyAttempt, attempt,
			logKeyDelay, delay, logKeyReason, err.Error())
		if serr := sleep(ctx, delay); serr != nil {
			return nil, c.finish(&TransportError{Method: method,
				Err: fmt.Errorf("%w (while waiting to retry after: %s)", serr, err.Error())})
		}
	}
}

// finish counts err by class and returns it.
func (c *Client) finish(err error) error {
	switch Classify(err) {
	case ClassRetryable:
		c.stats.retryable.Add(1)
	case ClassDefinitive:
		c.stats.definitive.Add(1)
	default:
		c.stats.unknown.Add(1)
	}
	return err
}

// attempt makes one HTTP request. Waiting for the 429 gate, the rate
// limiter and an in-flight slot happens before anything is written, so an
// error there is ErrNotSent.
func (c *Client) attempt(ctx context.Context, method, key, sessionID, url string, payload []byte, sig string, n int) (*Response, error) {
	release, err := c.acquire(ctx)
	if err != nil {
		return nil, &TransportError{Method: method, Err: err, waiting: true}
	}
	defer release()

	actx := ctx
	if c.reqTimeout > 0 {
		var cancel context.CancelFunc
		actx, cancel = context.WithTimeout(ctx, c.reqTimeout)
		defer cancel()
	}
	var tr wireTrace
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(actx, tr.clientTrace()), http.MethodPost, url, bytes.NewReader(payload))
	if err != nil {
		return nil, &TransportError{Method: method, Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set(HeaderProject, c.project)
	req.Header.Set(HeaderSign, sig)
	if key != "" {
		req.Header.Set(HeaderIdempotencyKey, key)
	}
	if c.submerchant != "" {
		req.Header.Set(HeaderSubmerchant, c.submerchant)
	}

	c.stats.requests.Add(1)
	if n > 1 {
		c.stats.retries.Add(1)
	}
	c.stats.enter()
	defer c.stats.leave()
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		te := &TransportError{Method: method, Written: tr.mayHaveWritten(c.traced), Err: err}
		c.logAttempt(method, key, 0, start, n, te)
		return nil, te
	}
	data, rerr := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	resp.Body.Close()
	var out *Response
	switch {
	case rerr != nil:
		err = &TransportError{Method: method, Written: true, HTTPStatus: resp.StatusCode, Err: fmt.Errorf("read body: %w", rerr)}
	case len(data) > maxResponseBytes:
		err = &TransportError{Method: method, Written: true, HTTPStatus: resp.StatusCode,
			Err: fmt.Errorf("%w: body longer than %d bytes", ErrMalformedResponse, maxResponseBytes)}
	default:
		out, err = decodeResponse(method, sessionID, resp, data)
	}
	var ae *APIError
	if errors.As(err, &ae) && ae.HTTPStatus == http.StatusTooManyRequests {
		c.stats.rateLimited.Add(1)
		if ae.RetryAfter > 0 {
			c.gate.closeUntil(time.Now().Add(ae.RetryAfter))
		}
	}
	c.logAttempt(method, key, resp.StatusCode, start, n, err)
	return out, err
}

// acquire waits for the 429 gate, the rate limiter and an in-flight slot,
// in that order, and returns the function that frees the slot.
func (c *Client) acquire(ctx context.Context) (func(), error) {
	for {
		if err := c.gate.wait(ctx); err != nil {
			return nil, err
		}
		if c.limiter != nil {
			if err := c.limiter.Wait(ctx); err != nil {
				return nil, fmt.Errorf("rate limit: %w", err)
			}
		}
		release := func() {}
		if c.sem != nil {
			select {
			case c.sem <- struct{}{}:
				release = func() { <-c.sem }
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		// A 429 seen by another caller while this one waited shuts the
		// gate for it too.
		if time.Until(c.gate.openAt()) <= 0 {
			return release, nil
		}
		release()
	}
}

func (c *Client) logAttempt(method, key string, status int, start time.Time, n int, err error) {
	if !c.log.Enabled(context.Background(), slog.LevelDebug) {
		return
	}
	attrs := []any{logKeyMethod, method, logKeyKey, key, logKeyStatus, status,
		logKeyLatency, time.Since(start), logKeyAttempt, n}
	if err != nil {
		attrs = append(attrs, logKeyClass, Classify(err).String(), logKeyError, err.Error())
	}
	c.log.Debug("pike request", attrs...)
}

// decodeResponse turns a complete response into the envelope or an error.
// HTTP status and envelope status are both checked: a 200 carrying
// {"status":"error"} is an error.
func decodeResponse(method, sessionID string, resp *http.Response, data []byte) (*Response, error) {
	status := resp.StatusCode
	var env Response
	perr := json.Unmarshal(data, &env)
	errEnvelope := perr == nil && (env.Status == "error" || env.Error != nil)
	if errEnvelope || status == http.StatusTooManyRequests || status >= 500 {
		ae := &APIError{HTTPStatus: status, Method: method}
		if errEnvelope && env.Error != nil {
			ae.Code = pan.Scrub(env.Error.Code)
			ae.Description = pan.Scrub(env.Error.Description)
		}
		if ae.Code == "" && ae.Description == "" {
			ae.Description = http.StatusText(status)
		}
		if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
			ae.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		}
		return nil, ae
	}
	malformed := func(format string, args ...any) error {
		return &TransportError{Method: method, Written: true, HTTPStatus: status,
			Err: fmt.Errorf("%w: "+format, append([]any{ErrMalformedResponse}, args...)...)}
	}
	switch {
	case status < 200 || status > 299:
		return nil, malformed("HTTP %d without a Pike error envelope", status)
	case perr != nil:
		return nil, malformed("%w", perr)
	case env.Status != "ok" && env.Status != "":
		return nil, malformed("envelope status %q", env.Status)
	}
	if method == MethodWalletBalance {
		return &env, nil
	}
	switch {
	case env.Session == nil || env.Session.ID == "":
		return nil, malformed("no session in the answer")
	case sessionID != "" && env.Session.ID != sessionID:
		return nil, malformed("session %q in the answer to a call for %q", env.Session.ID, sessionID)
	}
	return &env, nil
}

// wireTrace records, through httptrace, whether a request may have reached
// the server. Only what the transport proves counts as "not written": no
// connection obtained, or every write attempt failed.
type wireTrace struct {
	gotConn, wroteOK, wroteErr atomic.Bool
}

func (t *wireTrace) clientTrace() *httptrace.ClientTrace {
	return &httptrace.ClientTrace{
		GotConn: func(httptrace.GotConnInfo) { t.gotConn.Store(true) },
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil {
				t.wroteOK.Store(true)
			} else {
				t.wroteErr.Store(true)
			}
		},
	}
}

// mayHaveWritten reports whether the server may have received the whole
// request. traced says that the transport is net/http's, which reports
// every connection it obtains (GotConn, for HTTP/1 and HTTP/2) and the end
// of every write (WroteRequest); with any other transport a failure proves
// nothing, so it counts as written.
func (t *wireTrace) mayHaveWritten(traced bool) bool {
	switch {
	case t.wroteOK.Load():
		return true
	case t.wroteErr.Load():
		return false
	}
	return t.gotConn.Load() || !traced
}
