package sandbox_test

import (
	"bytes"
	"crypto/rsa"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

const project = "proj-test"

// Keys are generated once per test binary: RSA generation is slow.
var (
	keysOnce                      sync.Once
	partnerKey, pikeKey, otherKey *rsa.PrivateKey
)

func keys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		for _, k := range []**rsa.PrivateKey{&partnerKey, &pikeKey, &otherKey} {
			if *k, err = pike.GenerateKey(); err != nil {
				panic(err)
			}
		}
	})
}

// env is a sandbox behind a loopback server, a signing partner and a
// webhook receiver.
type env struct {
	t      testing.TB
	sb     *sandbox.Sandbox
	srv    *httptest.Server
	signer *pike.Signer
	hooks  *receiver
	logs   *syncBuffer
}

// newEnv starts a sandbox with fast timings; edit adjusts the config.
func newEnv(t testing.TB, edit func(*sandbox.Config)) *env {
	t.Helper()
	keys(t)
	signer, err := pike.NewSigner(partnerKey)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, signer: signer, hooks: newReceiver(t), logs: &syncBuffer{}}
	cfg := sandbox.Config{
		PartnerKey:       &partnerKey.PublicKey,
		Project:          project,
		SigningKey:       pikeKey,
		WebhookURL:       e.hooks.srv.URL,
		ReadyDelay:       time.Millisecond,
		FinishDelay:      time.Millisecond,
		SlowDelay:        time.Hour,
		WebhookRetryBase: time.Millisecond,
		WebhookRetryMax:  4 * time.Millisecond,
		WebhookGiveUp:    time.Minute,
		Seed:             1,
		Logger:           slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if edit != nil {
		edit(&cfg)
	}
	e.sb, err = sandbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.srv = httptest.NewServer(e.sb)
	t.Cleanup(func() {
		e.srv.Close()
		e.sb.Close()
		e.hooks.srv.Close()
	})
	return e
}

// reply is a decoded API answer plus its raw form.
type reply struct {
	HTTPStatus int
	Header     http.Header
	Raw        []byte
	pike.Response
}

// session returns the reply's session, failing the test when there is none.
func (r reply) session(t testing.TB) *pike.Session {
	t.Helper()
	if r.Session == nil {
		t.Fatalf("reply has no session: HTTP %d %s", r.HTTPStatus, r.Raw)
	}
	return r.Session
}

// code is the error code of the reply, "" when ok.
func (r reply) code() string {
	if r.Error == nil {
		return ""
	}
	return r.Error.Code
}

// call signs body (a request struct, encoded with v's names, or raw bytes)
// and posts it to /api/v<v>/<path> with idempotency key key.
func (e *env) call(v pike.Version, path string, body any, key string) reply {
	e.t.Helper()
	r, err := e.try(v, path, body, key, nil)
	if err != nil {
		e.t.Fatalf("%s: %v", path, err)
	}
	return r
}

// try is call that returns transport errors; edit may change the request.
func (e *env) try(v pike.Version, path string, body any, key string, edit func(*http.Request)) (reply, error) {
	e.t.Helper()
	raw := encode(e.t, v, body)
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/api/"+v.String()+"/"+path, bytes.NewReader(raw))
	if err != nil {
		e.t.Fatal(err)
	}
	sig, err := e.signer.Sign(raw)
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(pike.HeaderProject, project)
	req.Header.Set(pike.HeaderSign, sig)
	if key != "" {
		req.Header.Set(pike.HeaderIdempotencyKey, key)
	}
	if edit != nil {
		edit(req)
	}
	return do(e.t, http.DefaultClient, req)
}

func do(t testing.TB, c *http.Client, req *http.Request) (reply, error) {
	t.Helper()
	resp, err := c.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return reply{}, err
	}
	r := reply{HTTPStatus: resp.StatusCode, Header: resp.Header, Raw: raw}
	if err := json.Unmarshal(raw, &r.Response); err != nil {
		t.Fatalf("answer is not JSON: HTTP %d %q: %v", resp.StatusCode, raw, err)
	}
	switch {
	case r.Status == "ok" && resp.StatusCode != http.StatusOK:
		t.Fatalf("got status ok with HTTP %d", resp.StatusCode)
	case r.Status == "error" && (r.Error == nil || r.Error.Code == "" || resp.StatusCode < 400):
		t.Fatalf("got error envelope %s with HTTP %d", raw, resp.StatusCode)
	case r.Status != "ok" && r.Status != "error":
		t.Fatalf("got envelope status %q, want ok or error: %s", r.Status, raw)
	}
	return r, nil
}

func encode(t testing.TB, v pike.Version, body any) []byte {
	t.Helper()
	switch b := body.(type) {
	case []byte:
		return b
	case string:
		return []byte(b)
	}
	raw, err := pike.MarshalVersion(body, v)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// payoutReq is a complete payout request for init/payout.
func payoutReq(ref, pan string, amount int64, cur string) pike.PayoutRequest {
	return pike.PayoutRequest{
		Method:             pike.CardMethod(pan),
		AmountDetails:      &pike.AmountDetails{Amount: amount, Currency: cur},
		ParticipantDetails: &pike.ParticipantDetails{Recipient: &pike.Participant{FullName: "Ivan Ivanov"}},
		Customer:           &pike.Customer{Reference: ref},
		Metadata:           "meta-" + ref,
	}
}

// initPayout starts a payout with init/payout on v1 and returns its session id.
func (e *env) initPayout(ref, pan string, amount int64, cur string) string {
	e.t.Helper()
	r := e.call(pike.V1, pike.MethodInitPayout, payoutReq(ref, pan, amount, cur), "init-"+ref)
	if r.HTTPStatus != http.StatusOK {
		e.t.Fatalf("init/payout %s: HTTP %d %s", ref, r.HTTPStatus, r.Raw)
	}
	return r.session(e.t).ID
}

func (e *env) status(id string) *pike.Session {
	e.t.Helper()
	r := e.call(pike.V1, pike.MethodStatus, pike.SessionRequest{SessionID: id}, "")
	return r.session(e.t)
}

// waitStatus waits until session id has payout status ps (and session status ss if not "").
func (e *env) waitStatus(id string, ss pike.SessionStatus, ps pike.PayoutStatus) *pike.Session {
	e.t.Helper()
	var got *pike.Session
	poll.Until(e.t, id+" "+string(ss)+"/"+string(ps), func() bool {
		got = e.status(id)
		p := got.Payout()
		return (ss == "" || got.Status == ss) && (ps == "" || (p != nil && p.Status == ps))
	})
	return got
}

// hook is one webhook the receiver got.
type hook struct {
	Raw     []byte
	Header  http.Header
	SigErr  error
	Webhook pike.Webhook
}

// receiver is the processor's webhook endpoint: it verifies every webhook
// with the sandbox's key and answers with answer(n) for the n-th attempt
// (200 by default).
type receiver struct {
	t      testing.TB
	srv    *httptest.Server
	mu     sync.Mutex
	got    []hook
	tries  int
	answer func(n int, h hook) int
}

func newReceiver(t testing.TB) *receiver {
	r := &receiver{t: t}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	raw, _ := io.ReadAll(req.Body)
	h := hook{Raw: raw, Header: req.Header.Clone()}
	keys(r.t)
	v, _ := pike.NewVerifier(&pikeKey.PublicKey)
	h.SigErr = v.Verify(raw, req.Header.Get(pike.HeaderSign))
	if err := json.Unmarshal(raw, &h.Webhook); err != nil {
		h.SigErr = err
	}
	r.mu.Lock()
	r.tries++
	n, answer := r.tries, r.answer
	r.mu.Unlock()
	code := http.StatusOK
	if answer != nil {
		code = answer(n, h)
	}
	if code == http.StatusOK {
		r.mu.Lock()
		r.got = append(r.got, h)
		r.mu.Unlock()
	}
	w.WriteHeader(code)
}

func (r *receiver) setAnswer(f func(n int, h hook) int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.answer = f
}

// hooks returns the accepted webhooks about session id ("" = all), in order.
func (r *receiver) hooks(id string) []hook {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []hook
	for _, h := range r.got {
		if id == "" || h.Webhook.Session.ID == id {
			out = append(out, h)
		}
	}
	return out
}

func types(hs []hook) string {
	var s []string
	for _, h := range hs {
		s = append(s, string(h.Webhook.Type))
	}
	return strings.Join(s, ",")
}

// waitHooks waits until the receiver accepted n webhooks about id.
func (e *env) waitHooks(id string, n int) []hook {
	e.t.Helper()
	poll.Until(e.t, "webhooks", func() bool { return len(e.hooks.hooks(id)) >= n })
	return e.hooks.hooks(id)
}

// syncBuffer is a bytes.Buffer safe for concurrent writers (the log).
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
