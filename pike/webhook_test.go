package pike_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payouts/payouts/pike"
)

func TestParseWebhook(t *testing.T) {
	at := func(s string) time.Time {
		tm, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	session := func(extra string) string {
		return `{"type":"payment_finished","session":{"id":"ps_1","status":"accepted"` + extra + `}}`
	}
	tests := []struct {
		name  string
		body  string
		check func(t *testing.T, w *pike.Webhook)
	}{
		{"v1 fixture", string(readTestdata(t, "webhook_ready_to_confirm_v1.json")), func(t *testing.T, w *pike.Webhook) {
			p := w.Session.Payout()
			if w.Type != pike.WebhookReadyToConfirm || w.Session.ID != "ps_3230" || w.Session.NextAction != "confirm" ||
				p.ID != "po_1313" || p.Status != pike.PayoutPending || p.Last4() != "4242" || p.AmountDetails.Amount != 10000 ||
				p.Customer.Reference != "user123" || p.MetadataString() != "good" || !w.Session.CreatedAt.Equal(at("2024-05-27T02:03:00Z")) {
				t.Errorf("got %+v / %+v", w, p)
			}
		}},
		{"v2 fixture with unknown fields", string(readTestdata(t, "webhook_payment_finished_v2.json")), func(t *testing.T, w *pike.Webhook) {
			p := w.Session.Payout()
			if w.Type != pike.WebhookPaymentFinished || p.Status != pike.PayoutSucceeded || p.Last4() != "4242" ||
				p.Method.Card.BIN != "424242" || p.AmountDetails.Amount != 150050 || p.TransactionInfo.RRN != "425307614918" ||
				p.MetadataString() != `{"row":"b1/EMP-0042-2026-11"}` {
				t.Errorf("got %+v / %+v", w, p)
			}
			if !w.Session.CreatedAt.Equal(at("2024-05-27T02:03:00Z")) || !w.Session.UpdatedAt.Equal(at("2024-05-27T02:04:10.5Z")) ||
				!p.FinishedAt.Equal(at("2024-05-27T02:04:10.123456789Z")) {
				t.Errorf("got times %v %v %v", w.Session.CreatedAt, w.Session.UpdatedAt, p.FinishedAt)
			}
		}},
		{"v2 array in v1 name (Bank 131 fixture)", `{"type":"ready_to_confirm","session":{"id":"ps_1","payments":[{"id":"po_1","payout_details":{"type":"card","card":{"last4":"1111"}}}]}}`,
			func(t *testing.T, w *pike.Webhook) {
				if w.Session.Payout().Last4() != "1111" {
					t.Errorf("got %+v", w.Session.Payout())
				}
			}},
		{"unknown type kept", `{"type":"payout_reversed","session":{"id":"ps_1"}}`, func(t *testing.T, w *pike.Webhook) {
			if w.Type != "payout_reversed" || pike.KnownWebhookType(w.Type) {
				t.Errorf("got type %q known=%v, want payout_reversed, unknown", w.Type, pike.KnownWebhookType(w.Type))
			}
		}},
		{"numeric ids as strings, null fields", `{"type":"payment_finished","event_id":7,"session":{"id":"3230","next_action":null,"error":null,"payments":[{"id":"2018","metadata":null,"finished_at":null}]}}`,
			func(t *testing.T, w *pike.Webhook) {
				if w.Session.ID != "3230" || w.Session.Payout().ID != "2018" || !w.Session.Payout().FinishedAt.IsZero() {
					t.Errorf("got %+v", w.Session)
				}
			}},
		{"session error kept", session(`,"error":{"code":"internal_error","description":"x"}`), func(t *testing.T, w *pike.Webhook) {
			if w.Session.Error == nil || w.Session.Error.Code != "internal_error" {
				t.Errorf("got %+v", w.Session.Error)
			}
		}},
	}
	for _, tc := range []struct{ in, want string }{
		{"2024-05-27T02:03:00Z", "2024-05-27T02:03:00Z"},
		{"2024-05-27T02:03:00.000000Z", "2024-05-27T02:03:00Z"},
		{"2024-05-27T05:03:00+03:00", "2024-05-27T02:03:00Z"},
		{"2024-05-27T05:03:00.123+03:00", "2024-05-27T02:03:00.123Z"},
		{"2024-05-26T21:33:00-04:30", "2024-05-27T02:03:00Z"},
		{"2024-05-27t02:03:00.5z", "2024-05-27T02:03:00.5Z"},
		{"2024-05-27T02:03:00.123456789Z", "2024-05-27T02:03:00.123456789Z"},
		{"2024-05-27 02:03:00Z", "2024-05-27T02:03:00Z"},
		{"2024-05-27T05:03:00+0300", "2024-05-27T02:03:00Z"},
	} {
		tests = append(tests, struct {
			name  string
			body  string
			check func(t *testing.T, w *pike.Webhook)
		}{"timestamp " + tc.in, session(`,"updated_at":"` + tc.in + `"`), func(t *testing.T, w *pike.Webhook) {
			if got := w.Session.UpdatedAt; !got.Equal(at(tc.want)) || got.Raw != "" {
				t.Errorf("got %v (raw %q), want %s", got.Time, got.Raw, tc.want)
			}
		}})
	}
	tests = append(tests, struct {
		name  string
		body  string
		check func(t *testing.T, w *pike.Webhook)
	}{"unparsable timestamp kept raw", session(`,"updated_at":"yesterday"`), func(t *testing.T, w *pike.Webhook) {
		if got := w.Session.UpdatedAt; !got.Time.IsZero() || got.Raw != "yesterday" {
			t.Errorf("got %v raw %q, want zero time with raw yesterday", got.Time, got.Raw)
		}
	}})
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w, err := pike.ParseWebhook([]byte(tc.body))
			if err != nil {
				t.Fatalf("got %v, want nil", err)
			}
			tc.check(t, w)
		})
	}
}

func TestParseWebhookMalformed(t *testing.T) {
	full := string(readTestdata(t, "webhook_ready_to_confirm_v1.json"))
	for name, body := range map[string]string{
		"empty":                  "",
		"spaces":                 "  \n",
		"array":                  `[{"type":"ready_to_confirm"}]`,
		"string":                 `"ready_to_confirm"`,
		"null":                   `null`,
		"truncated":              full[:len(full)/2],
		"two objects":            `{"type":"a","session":{"id":"1"}}{"type":"b","session":{"id":"2"}}`,
		"no type":                `{"session":{"id":"ps_1"}}`,
		"empty type":             `{"type":"","session":{"id":"ps_1"}}`,
		"numeric type":           `{"type":5,"session":{"id":"ps_1"}}`,
		"no session":             `{"type":"ready_to_confirm"}`,
		"null session":           `{"type":"ready_to_confirm","session":null}`,
		"session is a string":    `{"type":"ready_to_confirm","session":"ps_1"}`,
		"session without id":     `{"type":"ready_to_confirm","session":{"status":"in_progress"}}`,
		"numeric session id":     `{"type":"ready_to_confirm","session":{"id":3230}}`,
		"amount as string":       `{"type":"ready_to_confirm","session":{"id":"ps_1","payments":[{"amount_details":{"amount":"100.00","currency":"rub"}}]}}`,
		"fractional amount":      `{"type":"ready_to_confirm","session":{"id":"ps_1","payments":[{"amount_details":{"amount":100.5,"currency":"rub"}}]}}`,
		"payments not an array":  `{"type":"ready_to_confirm","session":{"id":"ps_1","payments":{"id":"po_1"}}}`,
		"invalid UTF-8 escapes":  "{\"type\":\"a\",\"session\":{\"id\":\"ps_1\"}\xff}",
		"deeply nested garbage":  `{"type":"a","session":{"id":"1","payments":[[[[[]]]]]}}`,
		"type after broken JSON": `{"session":{"id":"1"},"type":"a",}`,
	} {
		t.Run(name, func(t *testing.T) {
			w, err := pike.ParseWebhook([]byte(body))
			if !errors.Is(err, pike.ErrMalformedWebhook) || w != nil {
				t.Errorf("got %+v, %v, want nil and ErrMalformedWebhook", w, err)
			}
		})
	}
}

// webhookRequest builds a POST of body signed with the fixed key.
func webhookRequest(t testing.TB, body string, sign bool) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/pike", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	if sign {
		r.Header.Set(pike.HeaderSign, mustSign(t, fixedSigner(t), []byte(body)))
	}
	return r
}

func TestWebhookHandler(t *testing.T) {
	good := string(readTestdata(t, "webhook_ready_to_confirm_v1.json"))
	v2 := string(readTestdata(t, "webhook_payment_finished_v2.json"))
	big := `{"type":"ready_to_confirm","session":{"id":"ps_1"},"pad":"` + strings.Repeat("x", pike.DefaultMaxWebhookBytes) + `"}`
	errStore := errors.New("ledger is down")
	tests := []struct {
		name     string
		req      func() *http.Request
		fnErr    error
		fnPanic  bool
		wantCode int
		wantCall bool
	}{
		{"good", func() *http.Request { return webhookRequest(t, good, true) }, nil, false, 200, true},
		{"v2 spellings and unknown fields", func() *http.Request { return webhookRequest(t, v2, true) }, nil, false, 200, true},
		{"unknown type handed on", func() *http.Request {
			return webhookRequest(t, `{"type":"payout_reversed","session":{"id":"ps_1"}}`, true)
		}, nil, false, 200, true},
		{"bad signature", func() *http.Request {
			r := webhookRequest(t, good, false)
			r.Header.Set(pike.HeaderSign, mustSign(t, fixedSigner(t), []byte(v2)))
			return r
		}, nil, false, 401, false},
		{"body changed after signing", func() *http.Request {
			r := webhookRequest(t, good, true)
			r.Body = io.NopCloser(strings.NewReader(strings.Replace(good, "10000", "99999", 1)))
			return r
		}, nil, false, 401, false},
		{"missing signature", func() *http.Request { return webhookRequest(t, good, false) }, nil, false, 401, false},
		{"signed but truncated JSON", func() *http.Request { return webhookRequest(t, good[:len(good)/2], true) }, nil, false, 400, false},
		{"body cut off in transit", func() *http.Request {
			r := webhookRequest(t, good, true)
			r.Body = io.NopCloser(io.MultiReader(strings.NewReader(good[:40]), errReader{io.ErrUnexpectedEOF}))
			return r
		}, nil, false, 400, false},
		{"oversized body", func() *http.Request { return webhookRequest(t, big, true) }, nil, false, 413, false},
		{"wrong method", func() *http.Request {
			r := webhookRequest(t, good, true)
			r.Method = http.MethodGet
			return r
		}, nil, false, 405, false},
		{"signed but not a webhook", func() *http.Request { return webhookRequest(t, `{"type":"x"}`, true) }, nil, false, 400, false},
		{"callback fails", func() *http.Request { return webhookRequest(t, good, true) }, errStore, false, 500, true},
		{"callback panics", func() *http.Request { return webhookRequest(t, good, true) }, nil, true, 500, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []pike.Delivery
			var logs syncBuffer
			now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
			h := pike.NewWebhookHandler(fixedVerifier(t), func(ctx context.Context, d pike.Delivery) error {
				got = append(got, d)
				if tc.fnPanic {
					panic("boom")
				}
				return tc.fnErr
			}, pike.WithHandlerLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))), pike.WithHandlerClock(func() time.Time { return now }))
			req := tc.req()
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tc.wantCode {
				t.Errorf("got HTTP %d (%s), want %d", rec.Code, strings.TrimSpace(rec.Body.String()), tc.wantCode)
			}
			if (len(got) == 1) != tc.wantCall || len(got) > 1 {
				t.Fatalf("callback called %d times, want called=%v", len(got), tc.wantCall)
			}
			if tc.wantCode == 405 && rec.Header().Get("Allow") != "POST" {
				t.Errorf("got Allow %q, want POST", rec.Header().Get("Allow"))
			}
			if !strings.Contains(logs.String(), "http_status="+strconv.Itoa(tc.wantCode)) || !strings.Contains(logs.String(), "pike webhook") {
				t.Errorf("no outcome logged: %s", logs.String())
			}
			if len(got) == 1 {
				d := got[0]
				body, _ := io.ReadAll(webhookRequestBody(tc.req()))
				sum := sha256.Sum256(body)
				if string(d.Body) != string(body) || d.BodySHA256 != hex.EncodeToString(sum[:]) ||
					d.Signature != req.Header.Get(pike.HeaderSign) || !d.ReceivedAt.Equal(now) || d.Remote == "" || d.Webhook == nil {
					t.Errorf("got delivery %+v, want the raw body, its hash, the signature, the clock and the peer", d)
				}
			}
		})
	}
}

func webhookRequestBody(r *http.Request) io.Reader { return r.Body }

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestWebhookHandlerMaxBodyBytes(t *testing.T) {
	body := `{"type":"ready_to_confirm","session":{"id":"ps_1"}}`
	called := false
	h := pike.NewWebhookHandler(fixedVerifier(t), func(context.Context, pike.Delivery) error { called = true; return nil },
		pike.WithMaxBodyBytes(int64(len(body)-1)))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, webhookRequest(t, body, true))
	if rec.Code != http.StatusRequestEntityTooLarge || called {
		t.Errorf("got HTTP %d, called=%v, want 413 and no call", rec.Code, called)
	}
}

// orderWriter records when the status line is written.
type orderWriter struct {
	http.ResponseWriter
	events *[]string
}

func (o orderWriter) WriteHeader(code int) {
	*o.events = append(*o.events, "status "+http.StatusText(code))
	o.ResponseWriter.WriteHeader(code)
}

// TestWebhookAckAfterStore: the 200 is written only after the callback
// returned.
func TestWebhookAckAfterStore(t *testing.T) {
	var events []string
	h := pike.NewWebhookHandler(fixedVerifier(t), func(context.Context, pike.Delivery) error {
		events = append(events, "stored")
		return nil
	})
	h.ServeHTTP(orderWriter{httptest.NewRecorder(), &events}, webhookRequest(t, string(readTestdata(t, "webhook_ready_to_confirm_v1.json")), true))
	if strings.Join(events, ",") != "stored,status OK" {
		t.Errorf("got events %v, want stored then status OK", events)
	}
}

// TestWebhookHandlerOverHTTP delivers through a real server, concurrently,
// with duplicates: every delivery reaches the callback and gets 200.
func TestWebhookHandlerOverHTTP(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	h := pike.NewWebhookHandler(fixedVerifier(t), func(_ context.Context, d pike.Delivery) error {
		mu.Lock()
		seen[d.BodySHA256]++
		mu.Unlock()
		return nil
	})
	srv := httptest.NewServer(h)
	defer srv.Close()
	bodies := []string{string(readTestdata(t, "webhook_ready_to_confirm_v1.json")), string(readTestdata(t, "webhook_payment_finished_v2.json"))}
	var wg sync.WaitGroup
	for i := range 10 {
		wg.Go(func() {
			body := bodies[i%2]
			req, _ := http.NewRequest(http.MethodPost, srv.URL, strings.NewReader(body))
			req.Header.Set(pike.HeaderSign, mustSign(t, fixedSigner(t), []byte(body)))
			req.Header.Set("Content-Type", "application/json")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("got HTTP %d, want 200", resp.StatusCode)
			}
		})
	}
	wg.Wait()
	if len(seen) != 2 || seen[sha(bodies[0])] != 5 || seen[sha(bodies[1])] != 5 {
		t.Errorf("got deliveries by hash %v, want 5 of each body", seen)
	}
}

func sha(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
