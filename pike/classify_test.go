package pike_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/payouts/payouts/pike"
)

// calls invokes one client method by name: mutating or read.
var calls = map[string]func(c *pike.Client) error{
	"create": func(c *pike.Client) error {
		_, err := c.CreateSession(context.Background(), "k-create", pike.PayoutRequest{AmountDetails: &pike.AmountDetails{Amount: 100, Currency: "rub"}})
		return err
	},
	"start": func(c *pike.Client) error {
		_, err := c.StartPayout(context.Background(), "k-start", payoutRequest())
		return err
	},
	"init": func(c *pike.Client) error {
		r := payoutRequest()
		r.SessionID = ""
		_, err := c.InitPayout(context.Background(), "k-init", r)
		return err
	},
	"confirm": func(c *pike.Client) error {
		_, err := c.Confirm(context.Background(), "k-confirm", "ps_1")
		return err
	},
	"cancel": func(c *pike.Client) error {
		_, err := c.Cancel(context.Background(), "k-cancel", "ps_1")
		return err
	},
	"status": func(c *pike.Client) error {
		_, err := c.Status(context.Background(), "ps_1")
		return err
	},
	"balance": func(c *pike.Client) error {
		_, err := c.Balance(context.Background())
		return err
	},
}

var (
	mutating = []string{"create", "start", "init", "confirm", "cancel"}
	reads    = []string{"status", "balance"}
)

// TestClassification runs every scripted server behaviour against every
// method and checks the class, the number of HTTP attempts and the
// sentinels. fastRetry allows 4 attempts.
func TestClassification(t *testing.T) {
	const max = 4
	type want struct {
		class    pike.Class
		attempts int
	}
	tests := []struct {
		name   string
		handle func(t testing.TB, w http.ResponseWriter, r *http.Request)
		mut    want // for create, start, init, confirm, cancel
		read   want // for status, balance
		is     []error
		isMut  []error // only for the mutating calls
	}{
		{
			name:   "ok",
			handle: func(_ testing.TB, w http.ResponseWriter, _ *http.Request) { reply(w, 200, okSession) },
			mut:    want{pike.ClassNone, 1}, read: want{pike.ClassNone, 1},
		},
		{
			name: "400 invalid_request",
			handle: func(_ testing.TB, w http.ResponseWriter, _ *http.Request) {
				reply(w, 400, `{"status":"error","error":{"code":"invalid_request","description":"bad field"}}`)
			},
			mut: want{pike.ClassDefinitive, 1}, read: want{pike.ClassDefinitive, 1},
		},
		{
			name: "401 authentication_error",
			handle: func(_ testing.TB, w http.ResponseWriter, _ *http.Request) {
				reply(w, 401, `{"status":"error","error":{"code":"authentication_error"}}`)
			},
			mut: want{pike.ClassDefinitive, 1}, read: want{pike.ClassDefinitive, 1},
		},
		{
			name: "200 with an error envelope (card error)",
			handle: func(_ testing.TB, w http.ResponseWriter, _ *http.Request) {
				reply(w, 200, `{"status":"error","error":{"code":"card_number_does_not_exist"}}`)
			},
			mut: want{pike.ClassDefinitive, 1}, read: want{pike.ClassDefinitive, 1},
		},
		{
			name: "200 internal_error",
			handle: func(_ testing.TB, w http.ResponseWriter, _ *http.Request) {
				reply(w, 200, `{"status":"error","error":{"code":"internal_error"}}`)
			},
			// Not proof of anything for a mutating call: the client does
			// not resend, the engine resolves it (issue 13, finding 3).
			mut: want{pike.ClassUnknown, 1}, read: want{pike.ClassRetryable, max},
			isMut: []error{pike.ErrOutcomeUnknown},
		},
		{
			name: "400 provider_timeout",
			handle: func(_ testing.TB, w http.ResponseWriter, _ *http.Request) {
				reply(w, 400, `{"status":"error","error":{"code":"provider_timeout"}}`)
			},
			// Not proof of anything for a mutating call: the client does
			// not resend, the engine resolves it (issue 13, finding 3).
			mut: want{pike.ClassUnknown, 1}, read: want{pike.ClassRetryable, max},
			isMut: []error{pike.ErrOutcomeUnknown},
		},
		{
			name: "422 provider_issuer_unavailable",
			handle: func(_ testing.TB, w http.ResponseWriter, _ *http.Request) {
				reply(w, 422, `{"status":"error","error":{"code":"provider_issuer_unavailable"}}`)
			},
			// Not proof of anything for a mutating call: the client does
			// not resend, the engine resolves it (issue 13, finding 3).
			mut: want{pike.ClassUnknown, 1}, read: want{pike.ClassRetryable, max},
			isMut: []error{pike.ErrOutcomeUnknown},
		},
		{
			name: "500 internal_error",
			handle: func(_ testing.TB, w http.ResponseWriter, _ *http.Request) {
				reply(w, 500, `{"status":"error","error":{"code":"internal_error"}}`)
			},
			mut: want{pike.ClassUnknown, 1}, read: want{pike.ClassRetryable, max},
			isMut: []error{pike.ErrOutcomeUnknown},
		},
		{
			name: "502 from a proxy, HTML body",
			handle: func(_ testing.TB, w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(502)
				io.WriteString(w, "<html>Bad Gateway</html>")
			},
			mut: want{pike.ClassUnknown, 1}, read: want{pike.ClassRetryable, max},
			isMut: []error{pike.ErrOutcomeUnknown},
		},
		{
			name: "409 idempotency_key_already_exists",
			handle: func(_ testing.TB, w http.ResponseWriter, _ *http.Request) {
				reply(w, 409, `{"status":"error","error":{"code":"idempotency_key_already_exists","description":"already in progress or processed"}}`)
			},
			mut: want{pike.ClassUnknown, 1}, read: want{pike.ClassUnknown, 1},
			is: []error{pike.ErrIdempotencyKeyReused, pike.ErrOutcomeUnknown},
		},
		{
			name: "429 without Retry-After",
			handle: func(_ testing.TB, w http.ResponseWriter, _ *http.Request) {
				reply(w, 429, `{"status":"error","error":{"code":"too_many_requests"}}`)
			},
			mut: want{pike.ClassRetryable, max}, read: want{pike.ClassRetryable, max},
		},
		{
			name: "200 with a body that is not JSON",
			handle: func(_ testing.TB, w http.ResponseWriter, _ *http.Request) {
				reply(w, 200, `{"status":"ok","session":{"id":"ps_1"`)
			},
			mut: want{pike.ClassUnknown, 1}, read: want{pike.ClassRetryable, max},
			is: []error{pike.ErrMalformedResponse}, isMut: []error{pike.ErrOutcomeUnknown},
		},
		{
			name: "200 with an unknown envelope status",
			handle: func(_ testing.TB, w http.ResponseWriter, _ *http.Request) {
				reply(w, 200, `{"status":"pending","session":{"id":"ps_1"}}`)
			},
			mut: want{pike.ClassUnknown, 1}, read: want{pike.ClassRetryable, max},
			is: []error{pike.ErrMalformedResponse}, isMut: []error{pike.ErrOutcomeUnknown},
		},
		{
			name: "404 with an HTML body",
			handle: func(_ testing.TB, w http.ResponseWriter, _ *http.Request) {
				w.WriteHeader(404)
				io.WriteString(w, "<html>not found</html>")
			},
			mut: want{pike.ClassUnknown, 1}, read: want{pike.ClassRetryable, max},
			is: []error{pike.ErrMalformedResponse},
		},
		{
			name: "307 redirect is not followed",
			handle: func(t testing.TB, w http.ResponseWriter, r *http.Request) {
				if r.URL.Path == "/elsewhere" {
					t.Errorf("the client followed a redirect with the card body")
				}
				w.Header().Set("Location", "/elsewhere")
				w.WriteHeader(http.StatusTemporaryRedirect)
			},
			mut: want{pike.ClassUnknown, 1}, read: want{pike.ClassRetryable, max},
		},
		{
			name: "connection dropped after the request was read",
			handle: func(t testing.TB, w http.ResponseWriter, _ *http.Request) {
				hangUp(t, w)
			},
			mut: want{pike.ClassUnknown, 1}, read: want{pike.ClassRetryable, max},
			isMut: []error{pike.ErrOutcomeUnknown},
		},
		{
			name: "response cut short (Content-Length larger than the body)",
			handle: func(t testing.TB, w http.ResponseWriter, _ *http.Request) {
				conn, buf, err := http.NewResponseController(w).Hijack()
				if err != nil {
					t.Error(err)
					return
				}
				fmt.Fprintf(buf, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n%s", okSession[:20])
				buf.Flush()
				conn.Close()
			},
			mut: want{pike.ClassUnknown, 1}, read: want{pike.ClassRetryable, max},
			isMut: []error{pike.ErrOutcomeUnknown},
		},
	}
	for _, tc := range tests {
		for _, name := range append(append([]string(nil), mutating...), reads...) {
			t.Run(tc.name+"/"+name, func(t *testing.T) {
				s := newScript(t, func(_ int, w http.ResponseWriter, r *http.Request) {
					if name == "balance" {
						w = &balanceWriter{ResponseWriter: w}
					}
					tc.handle(t, w, r)
				})
				c := newClient(t, s.srv.URL)
				err := calls[name](c)
				w, sentinels := tc.mut, append(append([]error(nil), tc.is...), tc.isMut...)
				if name == "status" || name == "balance" {
					w, sentinels = tc.read, tc.is
					if w.class != pike.ClassUnknown && errors.Is(err, pike.ErrOutcomeUnknown) {
						t.Errorf("read error %v is ErrOutcomeUnknown", err)
					}
				}
				if got := pike.Classify(err); got != w.class {
					t.Errorf("Classify(%v) = %v, want %v", err, got, w.class)
				}
				if got := len(s.requests()); got != w.attempts {
					t.Errorf("got %d attempts, want %d", got, w.attempts)
				}
				for _, target := range sentinels {
					if !errors.Is(err, target) {
						t.Errorf("errors.Is(%v, %v) = false, want true", err, target)
					}
				}
				if w.class == pike.ClassUnknown && !errors.Is(err, pike.ErrOutcomeUnknown) {
					t.Errorf("ClassUnknown error %v is not ErrOutcomeUnknown", err)
				}
				if w.class != pike.ClassUnknown && errors.Is(err, pike.ErrOutcomeUnknown) {
					t.Errorf("%v error %v is ErrOutcomeUnknown", w.class, err)
				}
				st := c.Stats()
				if got := map[pike.Class]int64{pike.ClassNone: st.OK, pike.ClassRetryable: st.Retryable,
					pike.ClassDefinitive: st.Definitive, pike.ClassUnknown: st.Unknown}[w.class]; got != 1 {
					t.Errorf("Stats() = %+v: got %d calls counted as %v, want 1", st, got, w.class)
				}
				if st.Requests != int64(w.attempts) || st.Retries != int64(w.attempts-1) {
					t.Errorf("Stats() = %+v, want %d requests and %d retries", st, w.attempts, w.attempts-1)
				}
			})
		}
	}
}

// balanceWriter rewrites the scripted okSession into a balance answer so
// that the "ok" case means ok for wallet/balance too.
type balanceWriter struct {
	http.ResponseWriter
}

func (b *balanceWriter) Write(p []byte) (int, error) {
	if string(p) == okSession {
		return io.WriteString(b.ResponseWriter, `{"status":"ok","wallets":[{"id":"w1","amount_details":{"amount":1,"currency":"rub"}}]}`)
	}
	return b.ResponseWriter.Write(p)
}

// Unwrap lets http.NewResponseController hijack through the wrapper.
func (b *balanceWriter) Unwrap() http.ResponseWriter { return b.ResponseWriter }

func TestClassifyBuiltErrors(t *testing.T) {
	tests := []struct {
		err  error
		want pike.Class
	}{
		{nil, pike.ClassNone},
		{&pike.APIError{HTTPStatus: 500, Method: pike.MethodConfirm}, pike.ClassUnknown},
		{&pike.APIError{HTTPStatus: 500, Method: pike.MethodStatus}, pike.ClassRetryable},
		{&pike.APIError{HTTPStatus: 503}, pike.ClassUnknown}, // no method: counted as mutating
		{&pike.APIError{HTTPStatus: 400, Code: pike.CodeInvalidRequest, Method: pike.MethodConfirm}, pike.ClassDefinitive},
		{&pike.APIError{HTTPStatus: 200, Code: pike.CodeIdempotencyKeyExists, Method: pike.MethodStartPayout}, pike.ClassUnknown},
		{&pike.APIError{HTTPStatus: 429, Method: pike.MethodConfirm}, pike.ClassRetryable},
		{&pike.APIError{HTTPStatus: 200, Code: pike.CodeRateLimited, Method: pike.MethodConfirm}, pike.ClassUnknown},
		{&pike.APIError{HTTPStatus: 200, Code: pike.CodeRateLimited, Method: pike.MethodStatus}, pike.ClassRetryable},
		{&pike.APIError{HTTPStatus: 503, Code: pike.CodeRateLimited, Method: pike.MethodConfirm}, pike.ClassUnknown},
		{&pike.APIError{HTTPStatus: 500, Code: pike.CodeInternal, Method: pike.MethodInitPayout}, pike.ClassUnknown},
		{&pike.APIError{HTTPStatus: 400, Code: pike.CodeProviderTimeout, Method: pike.MethodInitPayout}, pike.ClassUnknown},
		{&pike.APIError{HTTPStatus: 400, Code: pike.CodeProviderIssuerUnavail, Method: pike.MethodStartPayout}, pike.ClassUnknown},
		{&pike.APIError{HTTPStatus: 503, Code: pike.CodeProviderIssuerUnavail, Method: pike.MethodSessionCreate}, pike.ClassUnknown},
		{&pike.APIError{HTTPStatus: 400, Code: pike.CodeInternal, Method: pike.MethodInitPayout}, pike.ClassUnknown},
		{&pike.APIError{HTTPStatus: 400, Code: pike.CodeProviderTimeout, Method: pike.MethodStatus}, pike.ClassRetryable},
		{&pike.AmbiguousError{Tries: 2, First: &pike.APIError{HTTPStatus: 429}, Err: &pike.APIError{HTTPStatus: 400, Code: pike.CodeInvalidSessionStatus, Method: pike.MethodStartPayout}}, pike.ClassUnknown},
		{fmt.Errorf("row 3: %w", &pike.APIError{HTTPStatus: 502, Method: pike.MethodCancel}), pike.ClassUnknown},
		{&pike.TransportError{Method: pike.MethodConfirm, Written: true, Err: io.EOF}, pike.ClassUnknown},
		{&pike.TransportError{Method: pike.MethodConfirm, Written: false, Err: io.EOF}, pike.ClassRetryable},
		{&pike.TransportError{Method: pike.MethodStatus, Written: true, Err: io.EOF}, pike.ClassRetryable},
		{fmt.Errorf("x: %w", pike.ErrInvalidArgument), pike.ClassDefinitive},
		{errors.New("something else"), pike.ClassUnknown},
		{context.Canceled, pike.ClassUnknown},
	}
	for _, tc := range tests {
		if got := pike.Classify(tc.err); got != tc.want {
			t.Errorf("Classify(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}

// TestNotAppliedAndCredentials: only a refusal Pike gives before applying
// (credentials, a request it names as malformed) or a request that never
// left proves a mutating call was not applied; every error of a read does.
func TestNotAppliedAndCredentials(t *testing.T) {
	tests := []struct {
		err               error
		notApplied, creds bool
	}{
		{&pike.APIError{HTTPStatus: 401, Code: pike.CodeAuthentication, Method: pike.MethodInitPayout}, true, true},
		{&pike.APIError{HTTPStatus: 403, Code: pike.CodeAuthorization, Method: pike.MethodSessionCreate}, true, true},
		{&pike.APIError{HTTPStatus: 400, Code: pike.CodeIdentification, Method: pike.MethodConfirm}, true, true},
		{&pike.APIError{HTTPStatus: 401, Method: pike.MethodStartPayout}, true, true},
		{&pike.APIError{HTTPStatus: 400, Code: pike.CodeInvalidRequest, Method: pike.MethodInitPayout}, true, false},
		{&pike.APIError{HTTPStatus: 500, Code: pike.CodeInvalidRequest, Method: pike.MethodInitPayout}, false, false},
		{&pike.APIError{HTTPStatus: 500, Code: pike.CodeAuthentication, Method: pike.MethodInitPayout}, false, false},
		{&pike.APIError{HTTPStatus: 400, Code: pike.CodeProviderTimeout, Method: pike.MethodInitPayout}, false, false},
		{&pike.APIError{HTTPStatus: 400, Code: pike.CodeInternal, Method: pike.MethodStartPayout}, false, false},
		{&pike.APIError{HTTPStatus: 503, Code: pike.CodeProviderIssuerUnavail, Method: pike.MethodInitPayout}, false, false},
		{&pike.APIError{HTTPStatus: 400, Code: pike.CodeCardNumberNotExist, Method: pike.MethodStartPayout}, false, false},
		{&pike.APIError{HTTPStatus: 429, Method: pike.MethodInitPayout}, false, false},
		{&pike.APIError{HTTPStatus: 409, Code: pike.CodeIdempotencyKeyExists, Method: pike.MethodInitPayout}, false, false},
		{&pike.APIError{HTTPStatus: 500, Method: pike.MethodStatus}, true, false},
		{&pike.TransportError{Method: pike.MethodInitPayout, Written: false, Err: io.EOF}, true, false},
		{&pike.TransportError{Method: pike.MethodInitPayout, Written: true, Err: io.EOF}, false, false},
		// A refusal of the resend proves nothing about the first try.
		{&pike.AmbiguousError{Tries: 2, First: &pike.APIError{HTTPStatus: 429}, Err: &pike.APIError{HTTPStatus: 400, Code: pike.CodeInvalidRequest, Method: pike.MethodStartPayout}}, false, false},
		{&pike.AmbiguousError{Tries: 2, First: &pike.APIError{HTTPStatus: 429}, Err: &pike.APIError{HTTPStatus: 401, Code: pike.CodeAuthentication, Method: pike.MethodInitPayout}}, false, false},
	}
	for _, tc := range tests {
		if got := errors.Is(tc.err, pike.ErrNotApplied); got != tc.notApplied {
			t.Errorf("errors.Is(%v, ErrNotApplied) = %v, want %v", tc.err, got, tc.notApplied)
		}
		if got := errors.Is(tc.err, pike.ErrCredentials); got != tc.creds {
			t.Errorf("errors.Is(%v, ErrCredentials) = %v, want %v", tc.err, got, tc.creds)
		}
	}
}

// TestDefinitiveAnswerAfterAnAmbiguousOneIsUnknown: a start/payout resent
// after an answer that proves nothing (here a 429, which the client resends
// with the same key) and then refused (invalid_session_status: the first
// try started the payout) is not a refusal of the payout (finding 19).
func TestDefinitiveAnswerAfterAnAmbiguousOneIsUnknown(t *testing.T) {
	s := newScript(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			reply(w, 429, `{"status":"error","error":{"code":"too_many_requests"}}`)
			return
		}
		reply(w, 400, `{"status":"error","error":{"code":"invalid_session_status"}}`)
	})
	c := newClient(t, s.srv.URL, pike.WithRetryPolicy(pike.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond}))
	_, err := c.StartPayout(context.Background(), "k", payoutRequest())
	if got := pike.Classify(err); got != pike.ClassUnknown || !errors.Is(err, pike.ErrOutcomeUnknown) {
		t.Fatalf("got %v (%v), want ClassUnknown", err, got)
	}
	var ae *pike.APIError
	if !errors.As(err, &ae) || ae.Code != pike.CodeInvalidSessionStatus {
		t.Errorf("got %v, want the last answer still reachable", err)
	}
	if n := len(s.requests()); n != 2 {
		t.Errorf("got %d requests, want 2", n)
	}
	// The same refusal on the first try is a refusal.
	s2 := newScript(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		reply(w, 400, `{"status":"error","error":{"code":"invalid_session_status"}}`)
	})
	c2 := newClient(t, s2.srv.URL)
	if _, err := c2.StartPayout(context.Background(), "k", payoutRequest()); pike.Classify(err) != pike.ClassDefinitive {
		t.Errorf("first-try refusal: got %v, want ClassDefinitive", pike.Classify(err))
	}
}
