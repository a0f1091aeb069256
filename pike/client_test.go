package pike_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/pike"
)

func TestNewClientRefuses(t *testing.T) {
	s := fixedSigner(t)
	tests := []struct {
		name    string
		url     string
		project string
		signer  *pike.Signer
		opts    []pike.Option
	}{
		{"no scheme", "proxy-demo.pikepayments.com", "p", s, nil},
		{"ftp", "ftp://x", "p", s, nil},
		{"query", "https://x/?a=1", "p", s, nil},
		{"no project", "https://x", " ", s, nil},
		{"no signer", "https://x", "p", nil, nil},
		{"version 3", "https://x", "p", s, []pike.Option{pike.WithVersion(3)}},
		{"negative in flight", "https://x", "p", s, []pike.Option{pike.WithMaxInFlight(-1)}},
		{"negative rate", "https://x", "p", s, []pike.Option{pike.WithRateLimit(-1, 1)}},
		{"negative attempts", "https://x", "p", s, []pike.Option{pike.WithRetryPolicy(pike.RetryPolicy{MaxAttempts: -1})}},
		{"nil HTTP client", "https://x", "p", s, []pike.Option{pike.WithHTTPClient(nil)}},
	}
	for _, tc := range tests {
		if _, err := pike.NewClient(tc.url, tc.project, tc.signer, tc.opts...); err == nil {
			t.Errorf("%s: got nil error, want a refusal", tc.name)
		}
	}
}

// TestWireFormat checks paths, headers and bodies as sent, per version.
func TestWireFormat(t *testing.T) {
	for _, v := range []pike.Version{pike.V1, pike.V2} {
		t.Run(v.String(), func(t *testing.T) {
			s := newScript(t, func(_ int, w http.ResponseWriter, r *http.Request) {
				if strings.HasSuffix(r.URL.Path, "wallet/balance") {
					reply(w, 200, `{"status":"ok","wallets":[]}`)
					return
				}
				reply(w, 200, okSession)
			})
			c := newClient(t, s.srv.URL+"/", pike.WithVersion(v), pike.WithSubmerchant("sub-7"))
			ctx := context.Background()
			init := payoutRequest()
			init.SessionID = ""
			steps := []struct {
				method, key string
				call        func() error
				wantBody    string // "" to skip the exact comparison
			}{
				{pike.MethodSessionCreate, "k1", func() error {
					_, err := c.CreateSession(ctx, "k1", pike.PayoutRequest{AmountDetails: &pike.AmountDetails{Amount: 100, Currency: "rub"}, Metadata: "m"})
					return err
				}, `{"amount_details":{"amount":100,"currency":"rub"},"metadata":"m"}`},
				{pike.MethodStartPayout, "k2", func() error { _, err := c.StartPayout(ctx, "k2", payoutRequest()); return err }, ""},
				{pike.MethodInitPayout, "k3", func() error { _, err := c.InitPayout(ctx, "k3", init); return err }, ""},
				{pike.MethodConfirm, "k4", func() error { _, err := c.Confirm(ctx, "k4", "ps_1"); return err }, `{"session_id":"ps_1"}`},
				{pike.MethodCancel, "k5", func() error { _, err := c.Cancel(ctx, "k5", "ps_1"); return err }, `{"session_id":"ps_1"}`},
				{pike.MethodStatus, "", func() error { _, err := c.Status(ctx, "ps_1"); return err }, `{"session_id":"ps_1"}`},
				{pike.MethodWalletBalance, "", func() error { _, err := c.Balance(ctx); return err }, `{}`},
			}
			verifier := fixedVerifier(t)
			for i, st := range steps {
				if err := st.call(); err != nil {
					t.Fatalf("%s: %v", st.method, err)
				}
				got := s.requests()[i]
				if want := "/api/" + v.String() + "/" + st.method; got.Path != want {
					t.Errorf("%s: got path %s, want %s", st.method, got.Path, want)
				}
				h := got.Header
				for name, want := range map[string]string{
					"Content-Type": "application/json", pike.HeaderProject: "proj-1",
					pike.HeaderSubmerchant: "sub-7", pike.HeaderIdempotencyKey: st.key,
				} {
					if h.Get(name) != want {
						t.Errorf("%s: got %s %q, want %q", st.method, name, h.Get(name), want)
					}
				}
				if _, present := h[http.CanonicalHeaderKey(pike.HeaderIdempotencyKey)]; st.key == "" && present {
					t.Errorf("%s: a read sent %s", st.method, pike.HeaderIdempotencyKey)
				}
				if err := verifier.Verify(got.Body, h.Get(pike.HeaderSign)); err != nil {
					t.Errorf("%s: signature over the body as received: %v", st.method, err)
				}
				if st.wantBody != "" && string(got.Body) != st.wantBody {
					t.Errorf("%s: got body %s, want %s", st.method, got.Body, st.wantBody)
				}
			}
			// The card goes out under the version's name only.
			for _, i := range []int{1, 2} {
				body := string(s.requests()[i].Body)
				want, wrong := `"payment_method":{"type":"card","card":{"type":"bank_card","bank_card":{"number":"`+testPAN+`"}}}`, `"payout_details"`
				if v == pike.V2 {
					want, wrong = `"payout_details":{"type":"card","card":{"type":"bank_card","bank_card":{"number":"`+testPAN+`"}}}`, `"payment_method"`
				}
				if !strings.Contains(body, want) || strings.Contains(body, wrong) {
					t.Errorf("%s body %s: want %s and no %s", steps[i].method, body, want, wrong)
				}
			}
			if start := string(s.requests()[1].Body); !strings.Contains(start, `"session_id":"ps_1"`) ||
				!strings.Contains(start, `"participant_details":{"recipient":{"full_name":"Ivanov Ivan"}}`) ||
				!strings.Contains(start, `"customer":{"reference":"EMP-0042-2026-11"}`) ||
				!strings.Contains(start, `"amount_details":{"amount":150050,"currency":"rub"}`) {
				t.Errorf("start body %s lacks a field", start)
			}
		})
	}
}

// TestParsesBothSpellings answers a client of each version in both
// versions' spellings, and in the mixed form of the Bank 131 SDK fixture.
func TestParsesBothSpellings(t *testing.T) {
	bodies := map[string]string{
		"v1":    `{"status":"ok","session":{"id":"ps_1","status":"in_progress","next_action":"confirm","payments":[{"id":"po_1","status":"pending","payment_method":{"type":"card","card":{"last4":"4242","brand":"visa"}},"amount_details":{"amount":150050,"currency":"rub"},"metadata":"b1/EMP-0042-2026-11"}],"acquiring_payments":[{"id":"pm_1"}]}}`,
		"v2":    `{"status":"ok","session":{"id":"ps_1","status":"in_progress","next_action":"confirm","payout_list":[{"id":"po_1","status":"pending","payout_details":{"type":"card","card":{"last4":"4242","brand":"visa"}},"amount_details":{"amount":150050,"currency":"rub"},"metadata":"b1/EMP-0042-2026-11"}],"payment_list":[{"id":"pm_1"}]}}`,
		"mixed": `{"status":"ok","session":{"id":"ps_1","status":"in_progress","next_action":"confirm","payments":[{"id":"po_1","status":"pending","payout_details":{"type":"card","card":{"last4":"4242","brand":"visa"}},"amount_details":{"amount":150050,"currency":"rub"},"metadata":"b1/EMP-0042-2026-11","new_field":true}],"payment_list":[{"id":"pm_1"}],"new_object":{"a":[1]}},"new_top":1}`,
	}
	for _, v := range []pike.Version{pike.V1, pike.V2} {
		for name, body := range bodies {
			t.Run(v.String()+"/"+name, func(t *testing.T) {
				s := newScript(t, func(_ int, w http.ResponseWriter, _ *http.Request) { reply(w, 200, body) })
				sess, err := newClient(t, s.srv.URL, pike.WithVersion(v)).Status(context.Background(), "ps_1")
				if err != nil {
					t.Fatal(err)
				}
				p := sess.Payout()
				if sess.NextAction != pike.NextActionConfirm || p == nil || p.ID != "po_1" || p.Status != pike.PayoutPending ||
					p.Last4() != "4242" || *p.AmountDetails != (pike.AmountDetails{Amount: 150050, Currency: "rub"}) ||
					p.MetadataString() != "b1/EMP-0042-2026-11" || len(sess.AcquiringPayments) != 1 {
					t.Errorf("got session %+v payout %+v, want the pending po_1 of 1500.50 rub to card 4242", sess, p)
				}
			})
		}
	}
}

func TestBalance(t *testing.T) {
	s := newScript(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		reply(w, 200, `{"status":"ok","wallets":[{"id":"w_1","amount_details":{"amount":100000000,"currency":"rub"}},{"id":"w_2","amount_details":{"amount":5,"currency":"usd"}}]}`)
	})
	got, err := newClient(t, s.srv.URL).Balance(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []pike.Wallet{{ID: "w_1", AmountDetails: pike.AmountDetails{Amount: 100000000, Currency: "rub"}}, {ID: "w_2", AmountDetails: pike.AmountDetails{Amount: 5, Currency: "usd"}}}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("got %+v, want %+v", got, want)
	}
}

// TestSessionIDMismatch refuses an answer about another session: the
// runner would otherwise record a state on the wrong row.
func TestSessionIDMismatch(t *testing.T) {
	s := newScript(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		reply(w, 200, `{"status":"ok","session":{"id":"ps_999","status":"accepted"}}`)
	})
	c := newClient(t, s.srv.URL, pike.WithRetryPolicy(pike.RetryPolicy{MaxAttempts: 1}))
	_, err := c.Confirm(context.Background(), "k", "ps_1")
	if !errors.Is(err, pike.ErrMalformedResponse) || pike.Classify(err) != pike.ClassUnknown {
		t.Errorf("confirm answered for another session: got %v (%v), want ErrMalformedResponse, ClassUnknown", err, pike.Classify(err))
	}
	if _, err := c.Status(context.Background(), "ps_1"); !errors.Is(err, pike.ErrMalformedResponse) {
		t.Errorf("status answered for another session: got %v, want ErrMalformedResponse", err)
	}
}

func TestInvalidArgumentsSendNothing(t *testing.T) {
	s := newScript(t, func(_ int, w http.ResponseWriter, _ *http.Request) { reply(w, 200, okSession) })
	c := newClient(t, s.srv.URL)
	ctx := context.Background()
	noCard := payoutRequest()
	noCard.SessionID, noCard.Method = "", nil
	upper := payoutRequest()
	upper.AmountDetails = &pike.AmountDetails{Amount: 100, Currency: "RUB"}
	zero := payoutRequest()
	zero.AmountDetails = &pike.AmountDetails{Amount: 0, Currency: "rub"}
	withID := payoutRequest()
	noID := payoutRequest()
	noID.SessionID = ""
	tests := map[string]func() error{
		"confirm without key": func() error { _, err := c.Confirm(ctx, "", "ps_1"); return err },
		"confirm key with a space": func() error {
			_, err := c.Confirm(ctx, "a b", "ps_1")
			return err
		},
		"confirm key with a newline": func() error { _, err := c.Confirm(ctx, "a\nX-Evil: 1", "ps_1"); return err },
		"confirm key too long":       func() error { _, err := c.Confirm(ctx, strings.Repeat("k", 256), "ps_1"); return err },
		"confirm without session":    func() error { _, err := c.Confirm(ctx, "k", ""); return err },
		"cancel without session":     func() error { _, err := c.Cancel(ctx, "k", ""); return err },
		"status without session":     func() error { _, err := c.Status(ctx, ""); return err },
		"start without session":      func() error { _, err := c.StartPayout(ctx, "k", noID); return err },
		"start with upper currency":  func() error { _, err := c.StartPayout(ctx, "k", upper); return err },
		"start with zero amount":     func() error { _, err := c.StartPayout(ctx, "k", zero); return err },
		"init without card":          func() error { _, err := c.InitPayout(ctx, "k", noCard); return err },
		"init with a session id":     func() error { _, err := c.InitPayout(ctx, "k", withID); return err },
		"create without key": func() error {
			_, err := c.CreateSession(ctx, "", pike.PayoutRequest{})
			return err
		},
		"create with unencodable metadata": func() error {
			_, err := c.CreateSession(ctx, "k", pike.PayoutRequest{Metadata: make(chan int)})
			return err
		},
	}
	for name, call := range tests {
		err := call()
		if !errors.Is(err, pike.ErrInvalidArgument) || pike.Classify(err) != pike.ClassDefinitive {
			t.Errorf("%s: got %v (%v), want ErrInvalidArgument, ClassDefinitive", name, err, pike.Classify(err))
		}
	}
	if n := len(s.requests()); n != 0 {
		t.Errorf("got %d requests, want none", n)
	}
}

// TestRetrySendsSameRequest retries every kind of retryable answer and
// checks that each attempt carries the same key, body and signature.
func TestRetrySendsSameRequest(t *testing.T) {
	answers := []func(w http.ResponseWriter){
		func(w http.ResponseWriter) {
			reply(w, 429, `{"status":"error","error":{"code":"too_many_requests"}}`)
		},
		func(w http.ResponseWriter) {
			reply(w, 429, `{"status":"error","error":{"code":"too_many_requests","description":"internal_error"}}`)
		},
		func(w http.ResponseWriter) {
			w.Header().Set("Retry-After", "0")
			reply(w, 429, `{}`)
		},
		func(w http.ResponseWriter) { reply(w, 200, okSession) },
	}
	s := newScript(t, func(n int, w http.ResponseWriter, _ *http.Request) { answers[n-1](w) })
	var logs syncBuffer
	c := newClient(t, s.srv.URL, pike.WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	sess, err := c.StartPayout(context.Background(), "idem-42", payoutRequest())
	if err != nil || sess.ID != "ps_1" {
		t.Fatalf("got %v, %v, want session ps_1", sess, err)
	}
	reqs := s.requests()
	if len(reqs) != 4 {
		t.Fatalf("got %d attempts, want 4", len(reqs))
	}
	for i, r := range reqs[1:] {
		if got := r.Header.Get(pike.HeaderIdempotencyKey); got != "idem-42" {
			t.Errorf("attempt %d: got key %q, want idem-42", i+2, got)
		}
		if !bytes.Equal(r.Body, reqs[0].Body) {
			t.Errorf("attempt %d: got body %s, want %s", i+2, r.Body, reqs[0].Body)
		}
		if r.Header.Get(pike.HeaderSign) != reqs[0].Header.Get(pike.HeaderSign) {
			t.Errorf("attempt %d: signature differs from the first", i+2)
		}
	}
	st := c.Stats()
	if st.Requests != 4 || st.Retries != 3 || st.RateLimited != 3 || st.OK != 1 || st.InFlight != 0 {
		t.Errorf("got %+v, want 4 requests, 3 retries, 3 rate limited, 1 ok, 0 in flight", st)
	}
	out := logs.String()
	for _, want := range []string{"pike retry", "reason=", "too_many_requests", "internal_error", "pike_method=session/start/payout", "idempotency_key=idem-42", "attempt=4", "http_status=200", "latency="} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	assertNoPAN(t, "log", out)
}

func TestRetryExhaustedReturnsLastError(t *testing.T) {
	s := newScript(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n == 1 {
			reply(w, 429, `{}`)
			return
		}
		reply(w, 429, `{"status":"error","error":{"code":"too_many_requests","description":"try later"}}`)
	})
	c := newClient(t, s.srv.URL, pike.WithRetryPolicy(pike.RetryPolicy{MaxAttempts: 3, BaseDelay: time.Millisecond}))
	_, err := c.Confirm(context.Background(), "k", "ps_1")
	var ae *pike.APIError
	if !errors.As(err, &ae) || ae.Code != pike.CodeRateLimited || ae.Method != pike.MethodConfirm || ae.HTTPStatus != 429 {
		t.Fatalf("got %v, want the last answer: too_many_requests on session/confirm", err)
	}
	if pike.Classify(err) != pike.ClassRetryable || len(s.requests()) != 3 {
		t.Errorf("got %v after %d attempts, want retryable after 3", pike.Classify(err), len(s.requests()))
	}
}

// TestNotWritten covers network failures before the request reached the
// server: they are retryable even for mutating calls.
func TestNotWritten(t *testing.T) {
	t.Run("connection refused", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		c := newClient(t, "http://"+addr)
		_, err = c.Confirm(context.Background(), "k", "ps_1")
		if pike.Classify(err) != pike.ClassRetryable || !errors.Is(err, pike.ErrNotSent) || errors.Is(err, pike.ErrOutcomeUnknown) {
			t.Errorf("got %v (%v), want retryable ErrNotSent", err, pike.Classify(err))
		}
		if st := c.Stats(); st.Requests != int64(fastRetry.MaxAttempts) {
			t.Errorf("got %d attempts, want %d", st.Requests, fastRetry.MaxAttempts)
		}
	})
	// net/http reports WroteRequest once the request is in its write
	// buffer (4 KiB), before flushing it to the socket. A body larger than
	// the buffer goes to the socket during the write, so a failure there
	// is reported and proves the request incomplete; a small request whose
	// flush fails looks written, and the client errs towards unknown.
	for _, tc := range []struct {
		name     string
		metadata string
		want     pike.Class
		attempts int32
	}{
		{"write fails halfway through a large body", strings.Repeat("m", 16<<10), pike.ClassRetryable, int32(fastRetry.MaxAttempts)},
		{"flush of a small request fails", "m", pike.ClassUnknown, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScript(t, func(_ int, w http.ResponseWriter, _ *http.Request) { reply(w, 200, okSession) })
			var dials atomic.Int32
			tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				dials.Add(1)
				conn, err := (&net.Dialer{}).DialContext(ctx, network, addr)
				if err != nil {
					return nil, err
				}
				return &brokenConn{Conn: conn, allow: 20}, nil
			}}
			c := newClient(t, s.srv.URL, pike.WithHTTPClient(&http.Client{Transport: tr}))
			_, err := c.CreateSession(context.Background(), "k", pike.PayoutRequest{Metadata: tc.metadata})
			if got := pike.Classify(err); got != tc.want || errors.Is(err, pike.ErrNotSent) != (tc.want == pike.ClassRetryable) {
				t.Errorf("got %v (%v), want %v", err, got, tc.want)
			}
			if got := dials.Load(); got != tc.attempts {
				t.Errorf("got %d dials, want %d", got, tc.attempts)
			}
			if n := len(s.requests()); n != 0 {
				t.Errorf("server handled %d requests, want 0", n)
			}
		})
	}
	t.Run("a transport that reports nothing counts as written", func(t *testing.T) {
		c := newClient(t, "http://pike.invalid", pike.WithHTTPClient(&http.Client{Transport: failingTransport{}}))
		_, err := c.Confirm(context.Background(), "k", "ps_1")
		if pike.Classify(err) != pike.ClassUnknown || !errors.Is(err, pike.ErrOutcomeUnknown) {
			t.Errorf("got %v (%v), want ClassUnknown", err, pike.Classify(err))
		}
	})
}

// brokenConn writes allow bytes, then fails every write.
type brokenConn struct {
	net.Conn
	allow int
}

func (b *brokenConn) Write(p []byte) (int, error) {
	if b.allow <= 0 {
		return 0, errors.New("broken pipe (test)")
	}
	n := min(len(p), b.allow)
	b.allow -= n
	if _, err := b.Conn.Write(p[:n]); err != nil {
		return 0, err
	}
	if n < len(p) {
		return n, errors.New("broken pipe (test)")
	}
	return n, nil
}

type failingTransport struct{}

func (failingTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("connection reset (test)")
}

// TestDroppedBeforeReading: the server hangs up without reading the body.
// The client wrote the whole request, so it cannot know what the server
// did: a mutating call is unknown.
func TestDroppedBeforeReading(t *testing.T) {
	var calls atomic.Int32
	srv := newRawServer(t, func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		hangUp(t, w)
	})
	c := newClient(t, srv)
	_, err := c.Confirm(context.Background(), "k", "ps_1")
	if pike.Classify(err) != pike.ClassUnknown || calls.Load() != 1 {
		t.Errorf("confirm: got %v (%v) after %d attempts, want ClassUnknown after 1", err, pike.Classify(err), calls.Load())
	}
	_, err = c.Status(context.Background(), "ps_1")
	if pike.Classify(err) != pike.ClassRetryable || calls.Load() != 1+int32(fastRetry.MaxAttempts) {
		t.Errorf("status: got %v (%v) after %d attempts, want retryable after %d", err, pike.Classify(err), calls.Load()-1, fastRetry.MaxAttempts)
	}
}

func TestContextCancel(t *testing.T) {
	t.Run("cancelled before sending", func(t *testing.T) {
		s := newScript(t, func(_ int, w http.ResponseWriter, _ *http.Request) { reply(w, 200, okSession) })
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := newClient(t, s.srv.URL).Confirm(ctx, "k", "ps_1")
		if pike.Classify(err) != pike.ClassRetryable || !errors.Is(err, pike.ErrNotSent) || !errors.Is(err, context.Canceled) {
			t.Errorf("got %v (%v), want retryable ErrNotSent wrapping context.Canceled", err, pike.Classify(err))
		}
		if n := len(s.requests()); n != 0 {
			t.Errorf("got %d requests, want 0", n)
		}
	})
	for _, name := range []string{"confirm", "status"} {
		t.Run("cancelled while the server works/"+name, func(t *testing.T) {
			arrived := make(chan struct{}, 10)
			s := newScript(t, func(_ int, w http.ResponseWriter, r *http.Request) {
				arrived <- struct{}{}
				<-r.Context().Done() // until the client goes away
			})
			c := newClient(t, s.srv.URL)
			ctx, cancel := context.WithCancel(context.Background())
			go func() { <-arrived; cancel() }()
			var err error
			if name == "confirm" {
				_, err = c.Confirm(ctx, "k", "ps_1")
			} else {
				_, err = c.Status(ctx, "ps_1")
			}
			want := pike.ClassUnknown
			if name == "status" {
				want = pike.ClassRetryable
			}
			if pike.Classify(err) != want || !errors.Is(err, context.Canceled) {
				t.Errorf("got %v (%v), want %v wrapping context.Canceled", err, pike.Classify(err), want)
			}
			if n := len(s.requests()); n != 1 {
				t.Errorf("got %d attempts, want 1 (no retry after cancel)", n)
			}
		})
	}
	t.Run("cancelled during backoff", func(t *testing.T) {
		s := newScript(t, func(_ int, w http.ResponseWriter, _ *http.Request) { reply(w, 429, `{}`) })
		c := newClient(t, s.srv.URL, pike.WithRetryPolicy(pike.RetryPolicy{MaxAttempts: 5, BaseDelay: time.Hour, MaxDelay: time.Hour}))
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { _, err := c.Confirm(ctx, "k", "ps_1"); done <- err }()
		poll.Until(t, "the 429 answered and the client backing off", func() bool { return c.Stats().RateLimited > 0 })
		cancel()
		err := <-done
		if pike.Classify(err) != pike.ClassRetryable || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "429") {
			t.Errorf("got %v (%v), want retryable, context.Canceled, naming the 429", err, pike.Classify(err))
		}
		if n := len(s.requests()); n != 1 {
			t.Errorf("got %d attempts, want 1", n)
		}
	})
}

// TestRequestTimeout bounds each attempt: a read is retried, a mutating
// call that timed out after sending is unknown.
func TestRequestTimeout(t *testing.T) {
	s := newScript(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			<-r.Context().Done()
			return
		}
		reply(w, 200, okSession)
	})
	c := newClient(t, s.srv.URL, pike.WithRequestTimeout(50*time.Millisecond))
	if _, err := c.Status(context.Background(), "ps_1"); err != nil {
		t.Fatalf("status: got %v, want success on the second attempt", err)
	}
	if n := len(s.requests()); n != 2 {
		t.Errorf("status: got %d attempts, want 2", n)
	}

	s2 := newScript(t, func(_ int, w http.ResponseWriter, r *http.Request) { <-r.Context().Done() })
	c2 := newClient(t, s2.srv.URL, pike.WithRequestTimeout(50*time.Millisecond))
	_, err := c2.Confirm(context.Background(), "k", "ps_1")
	if pike.Classify(err) != pike.ClassUnknown || !errors.Is(err, context.DeadlineExceeded) || len(s2.requests()) != 1 {
		t.Errorf("confirm: got %v (%v) after %d attempts, want ClassUnknown after 1", err, pike.Classify(err), len(s2.requests()))
	}
}

// TestMaxInFlight lets requests pile up at the server and checks that no
// more than the limit are ever inside it at once, and that the limit is
// reached (a client that serialised everything would pass the first check).
func TestMaxInFlight(t *testing.T) {
	const limit, callers = 3, 12
	var active, peak atomic.Int32
	full := make(chan struct{})
	var once sync.Once
	s := newScript(t, func(_ int, w http.ResponseWriter, r *http.Request) {
		n := active.Add(1)
		defer active.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		if n == limit {
			once.Do(func() { close(full) })
		}
		select { // hold the slot until the limit has been reached once
		case <-full:
		case <-time.After(10 * time.Second):
			t.Errorf("only %d requests ever in flight, want %d", peak.Load(), limit)
		}
		reply(w, 200, okSession)
	})
	c := newClient(t, s.srv.URL, pike.WithMaxInFlight(limit))
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			if _, err := c.Confirm(context.Background(), "k"+string(rune('a'+i)), "ps_1"); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got := peak.Load(); got != limit {
		t.Errorf("got at most %d requests in flight, want %d", got, limit)
	}
	if st := c.Stats(); st.MaxInFlight != limit || st.Requests != callers {
		t.Errorf("got %+v, want MaxInFlight %d and %d requests", st, limit, callers)
	}
}

// TestRetryAfterGateShared: a 429 with Retry-After seen by one caller holds
// every other caller of the same client until it passes. Only a lower
// bound on time is checked, which no slow machine can break.
func TestRetryAfterGateShared(t *testing.T) {
	var mu sync.Mutex
	var at []time.Time
	s := newScript(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		if n == 1 {
			w.Header().Set("Retry-After", "1")
			reply(w, 429, `{"status":"error","error":{"code":"too_many_requests"}}`)
			return
		}
		reply(w, 200, okSession)
	})
	c := newClient(t, s.srv.URL)
	first := make(chan error, 1)
	go func() { _, err := c.Confirm(context.Background(), "k-a", "ps_1"); first <- err }()
	poll.Until(t, "the 429 answered", func() bool { return c.Stats().RateLimited > 0 })
	if _, err := c.Status(context.Background(), "ps_1"); err != nil {
		t.Fatal(err)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(at) != 3 {
		t.Fatalf("got %d requests, want 3", len(at))
	}
	for i, ts := range at[1:] {
		if wait := ts.Sub(at[0]); wait < time.Second {
			t.Errorf("request %d reached the server %v after the 429, want at least 1s", i+2, wait)
		}
	}
}

func TestRetryAfterHTTPDate(t *testing.T) {
	var mu sync.Mutex
	var at []time.Time
	s := newScript(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		at = append(at, time.Now())
		mu.Unlock()
		if n == 1 {
			// HTTP dates have whole seconds: 2s ahead is at least 1s ahead.
			w.Header().Set("Retry-After", time.Now().Add(2*time.Second).UTC().Format(http.TimeFormat))
			reply(w, 429, `{}`)
			return
		}
		reply(w, 200, okSession)
	})
	if _, err := newClient(t, s.srv.URL).Confirm(context.Background(), "k", "ps_1"); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(at) != 2 || at[1].Sub(at[0]) < time.Second {
		t.Errorf("got requests at %v, want the second at least 1s after the first", at)
	}
}

func TestRateLimit(t *testing.T) {
	s := newScript(t, func(_ int, w http.ResponseWriter, _ *http.Request) { reply(w, 200, okSession) })
	var logs syncBuffer
	c := newClient(t, s.srv.URL, pike.WithRateLimit(0.5, 1), // one token, the next in 2 s
		pike.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if _, err := c.Status(context.Background(), "ps_1"); err != nil {
		t.Fatal(err)
	}
	_, err := c.Confirm(ctxTimeout(t, 100*time.Millisecond), "k", "ps_1")
	if pike.Classify(err) != pike.ClassRetryable || !errors.Is(err, pike.ErrNotSent) {
		t.Errorf("got %v (%v), want retryable ErrNotSent: the limiter cannot give a token before the deadline", err, pike.Classify(err))
	}
	if n := len(s.requests()); n != 1 {
		t.Errorf("got %d requests, want 1", n)
	}
	if strings.Contains(logs.String(), "pike retry") {
		t.Errorf("the client retried a call that could not get a token before its deadline:\n%s", logs.String())
	}
}

// TestNoPANInLogsOrErrors sends a card, gets an error whose description
// echoes it, and logs the request as slog attributes with both handlers.
func TestNoPANInLogsOrErrors(t *testing.T) {
	s := newScript(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
		reply(w, 400, `{"status":"error","error":{"code":"card_number_does_not_exist","description":"card `+testPAN+` (4242-4242-4242-4242) does not exist"}}`)
	})
	var logs syncBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := newClient(t, s.srv.URL, pike.WithLogger(logger))
	req := payoutRequest()
	_, err := c.StartPayout(context.Background(), "k", req)
	var ae *pike.APIError
	if !errors.As(err, &ae) || ae.Code != pike.CodeCardNumberNotExist {
		t.Fatalf("got %v, want card_number_does_not_exist", err)
	}
	assertNoPAN(t, "error", err.Error())
	assertNoPAN(t, "description", ae.Description)
	if !strings.Contains(ae.Description, "424242******4242") {
		t.Errorf("description %q: want the PAN masked as 424242******4242", ae.Description)
	}
	jsonLogger := slog.New(slog.NewJSONHandler(&logs, nil))
	for _, l := range []*slog.Logger{logger, jsonLogger} {
		l.Info("request", "req", req, "method", req.Method, "card", req.Method.Card, "bank_card", req.Method.Card.BankCard)
		l.Info("request", slog.Any("req", &req), slog.Any("card", *req.Method.Card))
	}
	out := logs.String()
	if !strings.Contains(out, "424242******4242") || !strings.Contains(out, "pike_method=session/start/payout") {
		t.Errorf("log lacks the masked card or the request line:\n%s", out)
	}
	assertNoPAN(t, "log", out)
	var printed bytes.Buffer
	for _, v := range []any{req, &req, *req.Method, req.Method, *req.Method.Card, req.Method.Card, req.Method.Card.BankCard, *req.Method.Card.BankCard} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			printed.WriteString(sprintf(verb, v))
		}
	}
	assertNoPAN(t, "fmt output", printed.String())
	// The wire body is unaffected: it must carry the full number.
	body, _ := pike.MarshalVersion(req, pike.V1)
	var back struct {
		PaymentMethod pike.PayoutMethod `json:"payment_method"`
	}
	if err := json.Unmarshal(body, &back); err != nil || back.PaymentMethod.Card.BankCard.Number != testPAN {
		t.Errorf("wire body %s: want the full card number", body)
	}
}
