package pike_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payouts/payouts/pike"
)

// recordingBody is a request body that records whether anyone read it.
type recordingBody struct {
	r    io.Reader
	read atomic.Bool
}

func (b *recordingBody) Read(p []byte) (int, error) {
	b.read.Store(true)
	return b.r.Read(p)
}

func (b *recordingBody) Close() error { return nil }

// TestWebhookHandlerRefusesBeforeReadingBody: a request that cannot be a
// Pike webhook — no or a malformed signature header, not JSON, not POST,
// announced too large — is refused without reading its body, so a stranger
// cannot make the listener read a megabyte per request (issue 13, finding
// 17). A well-formed signature is verified over the body as before.
func TestWebhookHandlerRefusesBeforeReadingBody(t *testing.T) {
	body := string(readTestdata(t, "webhook_ready_to_confirm_v1.json"))
	good := mustSign(t, fixedSigner(t), []byte(body))
	other := mustSign(t, fixedSigner(t), []byte(body+" "))
	size := fixedSigner(t).Public().Size()
	tests := []struct {
		name     string
		edit     func(r *http.Request)
		wantCode int
		wantRead bool
	}{
		{"no signature", func(r *http.Request) { r.Header.Del(pike.HeaderSign) }, 401, false},
		{"blank signature", func(r *http.Request) { r.Header.Set(pike.HeaderSign, "   ") }, 401, false},
		{"not Base64", func(r *http.Request) { r.Header.Set(pike.HeaderSign, strings.Repeat("%", len(good))) }, 401, false},
		{"too short for the key", func(r *http.Request) {
			r.Header.Set(pike.HeaderSign, base64.StdEncoding.EncodeToString(make([]byte, size/2)))
		}, 401, false},
		{"too long for the key", func(r *http.Request) { r.Header.Set(pike.HeaderSign, good+good) }, 401, false},
		{"URL-safe Base64", func(r *http.Request) {
			r.Header.Set(pike.HeaderSign, base64.URLEncoding.EncodeToString(bytes.Repeat([]byte{0xff}, size)))
		}, 401, false},
		// The signature is the proof, not the header: a genuine webhook
		// with another content type (or none) is taken.
		{"no content type", func(r *http.Request) { r.Header.Del("Content-Type") }, 200, true},
		{"text content type", func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, 200, true},
		{"form content type, bad signature", func(r *http.Request) {
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.Header.Set(pike.HeaderSign, other)
		}, 401, true},
		{"GET", func(r *http.Request) { r.Method = http.MethodGet }, 405, false},
		{"announced too large", func(r *http.Request) { r.ContentLength = pike.DefaultMaxWebhookBytes + 1 }, 413, false},
		{"signed by another body", func(r *http.Request) { r.Header.Set(pike.HeaderSign, other) }, 401, true},
		{"JSON with a charset", func(r *http.Request) { r.Header.Set("Content-Type", "Application/JSON; charset=utf-8") }, 200, true},
		{"good", func(r *http.Request) {}, 200, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			called := false
			h := pike.NewWebhookHandler(fixedVerifier(t), func(context.Context, pike.Delivery) error { called = true; return nil })
			req := webhookRequest(t, body, true)
			rb := &recordingBody{r: strings.NewReader(body)}
			req.Body = rb
			tt.edit(req)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.wantCode {
				t.Errorf("got HTTP %d (%s), want %d", rec.Code, strings.TrimSpace(rec.Body.String()), tt.wantCode)
			}
			if got := rb.read.Load(); got != tt.wantRead {
				t.Errorf("got body read %v, want %v", got, tt.wantRead)
			}
			if called != (tt.wantCode == 200) {
				t.Errorf("got callback called %v, want %v", called, tt.wantCode == 200)
			}
			if tt.wantCode != 200 && rec.Header().Get("Connection") != "close" {
				t.Errorf("got Connection %q on a refusal, want close", rec.Header().Get("Connection"))
			}
		})
	}
}

// TestWebhookHandlerRefusalsDoNotFloodTheLog: every refused request is
// logged at DEBUG, but at WARN at most once per RefusalWarnEvery, with the
// number refused since the previous WARN (issue 13, finding 17).
func TestWebhookHandlerRefusalsDoNotFloodTheLog(t *testing.T) {
	body := string(readTestdata(t, "webhook_ready_to_confirm_v1.json"))
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	var logs syncBuffer
	h := pike.NewWebhookHandler(fixedVerifier(t), func(context.Context, pike.Delivery) error { return nil },
		pike.WithHandlerLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))),
		pike.WithHandlerClock(func() time.Time { return now }))
	forged := func(n int) {
		for i := range n {
			req := webhookRequest(t, body, false)
			if i%2 == 1 {
				req.Header.Set(pike.HeaderSign, "forged")
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != http.StatusUnauthorized {
				t.Fatalf("forged request %d: got HTTP %d, want 401", i, rec.Code)
			}
		}
	}
	count := func(level string) int { return strings.Count(logs.String(), "level="+level+" ") }

	forged(1000)
	if got, want := count("WARN"), 1; got != want {
		t.Fatalf("after 1000 forged requests in one minute: got %d WARN lines, want %d", got, want)
	}
	if got, want := count("DEBUG"), 1000; got != want {
		t.Errorf("got %d DEBUG lines, want %d", got, want)
	}
	now = now.Add(pike.RefusalWarnEvery - time.Second)
	forged(10)
	if got, want := count("WARN"), 1; got != want {
		t.Fatalf("59 s later: got %d WARN lines, want %d", got, want)
	}
	now = now.Add(time.Second)
	forged(1)
	if got, want := count("WARN"), 2; got != want {
		t.Fatalf("a minute later: got %d WARN lines, want %d", got, want)
	}
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	var last string
	for _, l := range lines {
		if strings.Contains(l, "level=WARN") {
			last = l
		}
	}
	if !strings.Contains(last, "refused=1010 ") {
		t.Errorf("got WARN line %q, want it to count the 1010 refusals since the previous one", last)
	}

	// A genuine delivery is not a refusal: DEBUG, and no WARN.
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, webhookRequest(t, body, true))
	if rec.Code != http.StatusOK || count("WARN") != 2 {
		t.Errorf("genuine delivery: got HTTP %d and %d WARN lines, want 200 and still 2", rec.Code, count("WARN"))
	}
}
