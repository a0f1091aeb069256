package pike_test

import (
	"bytes"
	"context"
	"crypto/rsa"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payouts/payouts/pike"
)

// testPAN is the card number the tests send; no output may contain it.
const testPAN = "4242424242424242"

var (
	fixedOnce sync.Once
	fixedKey  *rsa.PrivateKey
	fixedErr  error
)

// fixedSigner returns a Signer for testdata/fixed_key_pkcs8.pem.
func fixedSigner(t testing.TB) *pike.Signer {
	t.Helper()
	fixedOnce.Do(func() { fixedKey, fixedErr = pike.LoadPrivateKey(filepath.Join("testdata", "fixed_key_pkcs8.pem")) })
	if fixedErr != nil {
		t.Fatalf("load fixed key: %v", fixedErr)
	}
	s, err := pike.NewSigner(fixedKey)
	if err != nil {
		t.Fatalf("NewSigner: %v", err)
	}
	return s
}

// fixedVerifier returns a Verifier for the fixed key's public half.
func fixedVerifier(t testing.TB) *pike.Verifier {
	t.Helper()
	v, err := pike.NewVerifier(fixedSigner(t).Public())
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	return v
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// recorded is one request as the scripted server received it.
type recorded struct {
	Path   string
	Header http.Header
	Body   []byte
}

// script is an httptest server that answers request n (1-based) with
// handle and records every request it read.
type script struct {
	srv    *httptest.Server
	mu     sync.Mutex
	reqs   []recorded
	handle func(n int, w http.ResponseWriter, r *http.Request)
}

// newScript starts a scripted server. handle may hijack the connection;
// the body has already been read (r.Body is replaced by a copy).
func newScript(t testing.TB, handle func(n int, w http.ResponseWriter, r *http.Request)) *script {
	t.Helper()
	s := &script{handle: handle}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		s.reqs = append(s.reqs, recorded{Path: r.URL.Path, Header: r.Header.Clone(), Body: body})
		n := len(s.reqs)
		s.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		s.handle(n, w, r)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *script) requests() []recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]recorded(nil), s.reqs...)
}

// reply writes a JSON body with status code.
func reply(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	io.WriteString(w, body)
}

// hangUp closes the connection without answering.
func hangUp(t testing.TB, w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		t.Errorf("hijack: %v", err)
		return
	}
	conn.Close()
}

const okSession = `{"status":"ok","session":{"id":"ps_1","status":"in_progress","created_at":"2024-05-27T02:03:00.000000Z"}}`

// fastRetry makes retries quick so tests do not sleep.
var fastRetry = pike.RetryPolicy{MaxAttempts: 4, BaseDelay: time.Millisecond, MaxDelay: 2 * time.Millisecond}

func newClient(t testing.TB, url string, opts ...pike.Option) *pike.Client {
	t.Helper()
	opts = append([]pike.Option{pike.WithRetryPolicy(fastRetry)}, opts...)
	c, err := pike.NewClient(url, "proj-1", fixedSigner(t), opts...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

func payoutRequest() pike.PayoutRequest {
	return pike.PayoutRequest{
		SessionID:          "ps_1",
		Method:             pike.CardMethod(testPAN),
		AmountDetails:      &pike.AmountDetails{Amount: 150050, Currency: "rub"},
		ParticipantDetails: &pike.ParticipantDetails{Recipient: &pike.Participant{FullName: "Ivanov Ivan"}},
		Customer:           &pike.Customer{Reference: "EMP-0042-2026-11"},
		Metadata:           "b1/EMP-0042-2026-11",
	}
}

// syncBuffer is a bytes.Buffer safe for a logger shared by goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func ctxTimeout(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func assertNoPAN(t testing.TB, what, s string) {
	t.Helper()
	if strings.Contains(s, testPAN) || strings.Contains(s, "4242-4242-4242-4242") || strings.Contains(s, "4242 4242 4242 4242") {
		t.Errorf("%s contains the PAN: %s", what, s)
	}
}

// newRawServer starts a server whose handler sees the request unread.
func newRawServer(t testing.TB, h http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

func sprintf(format string, a ...any) string { return fmt.Sprintf(format, a...) }
