package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
	"github.com/payouts/payouts/web"
)

// password is every test user's password.
const password = "correct horse battery staple"

var partnerKey = sync.OnceValue(func() *pike.Signer {
	k, err := pike.GenerateKey()
	if err != nil {
		panic(err)
	}
	s, err := pike.NewSigner(k)
	if err != nil {
		panic(err)
	}
	return s
})

// syncBuffer is a log sink safe for concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.b.Bytes()...)
}

// rig is a console on an httptest server, over a real ledger in a
// temporary directory and the Pike sandbox.
type rig struct {
	t       testing.TB
	dir     string
	db      *ledger.DB
	sb      *sandbox.Sandbox
	client  *pike.Client
	fp      *batch.Fingerprinter
	uploads *web.Uploads
	cfg     web.Config
	srv     *web.Server
	ts      *httptest.Server
	log     *syncBuffer
	offset  atomic.Int64 // added to the clock, to test expiry
	seen    *syncBuffer  // every answer body the tests read (for the card scan)
}

type rigOption func(*web.Config)

func newRig(t testing.TB, sbcfg sandbox.Config, opts ...rigOption) *rig {
	t.Helper()
	r := &rig{t: t, dir: t.TempDir(), log: &syncBuffer{}, seen: &syncBuffer{}}
	sbcfg.PartnerKey = partnerKey().Public()
	sbcfg.Project = "web-test"
	if sbcfg.ReadyDelay == 0 {
		sbcfg.ReadyDelay, sbcfg.FinishDelay = 5*time.Millisecond, 5*time.Millisecond
	}
	sb, err := sandbox.New(sbcfg)
	if err != nil {
		t.Fatal(err)
	}
	r.sb = sb
	pikeSrv := httptest.NewServer(sb)
	r.db, err = ledger.Open(context.Background(), filepath.Join(r.dir, "payouts.db"))
	if err != nil {
		t.Fatal(err)
	}
	r.db.Now = r.now
	r.client, err = pike.NewClient(pikeSrv.URL, "web-test", partnerKey(),
		pike.WithRetryPolicy(pike.RetryPolicy{MaxAttempts: 4, BaseDelay: 5 * time.Millisecond, MaxDelay: 50 * time.Millisecond}),
		pike.WithRequestTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	key, _ := batch.FingerprintKeyFromSigner(partnerKey())
	r.fp, _ = batch.NewFingerprinter(key)
	r.uploads, err = web.NewUploads(filepath.Join(r.dir, "uploads"), bytes.Repeat([]byte{42}, 32))
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(r.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r.cfg = web.Config{
		DB: r.db, Pike: r.client, Uploads: r.uploads, Logger: logger, Now: r.now,
		Engine: batch.Config{PollAfter: 50 * time.Millisecond, PollMax: 200 * time.Millisecond, RetryAfter: 10 * time.Millisecond,
			StopGrace: 2 * time.Second, Workers: 8, Fingerprinter: r.fp, Logger: logger},
	}
	for _, o := range opts {
		o(&r.cfg)
	}
	r.start()
	t.Cleanup(func() {
		r.stop()
		sb.Close()
		pikeSrv.Close()
		r.db.Close()
	})
	return r
}

func (r *rig) now() time.Time { return time.Now().Add(time.Duration(r.offset.Load())) }

// start starts a console server (again, after stop: a restart).
func (r *rig) start() {
	r.t.Helper()
	srv, err := web.New(r.cfg)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := srv.Resume(context.Background()); err != nil {
		r.t.Fatal(err)
	}
	r.srv = srv
	if r.ts == nil {
		r.ts = httptest.NewServer(srv)
	} else {
		r.ts.Config.Handler = srv
	}
}

// stop stops the console's payers (the HTTP server stays, see start).
func (r *rig) stop() {
	if r.srv != nil {
		r.srv.Close()
	}
	if r.ts != nil {
		r.ts.Close()
		r.ts = nil
	}
}

func (r *rig) addUser(name, roles string) {
	r.t.Helper()
	rs, err := ledger.ParseRoles(roles)
	if err != nil {
		r.t.Fatal(err)
	}
	h, err := web.HashPassword(password)
	if err != nil {
		r.t.Fatal(err)
	}
	if err := r.db.AddUser(context.Background(), name, rs, h, ledger.AuditEntry{Actor: "test"}); err != nil {
		r.t.Fatal(err)
	}
}

// browser is an HTTP client with a cookie jar that does not follow redirects.
func (r *rig) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// login signs name in through the API and returns its client.
func (r *rig) login(name string) *http.Client {
	r.t.Helper()
	c := r.browser()
	resp := r.do(c, "POST", "/api/v1/login", "application/json", strings.NewReader(`{"username":"`+name+`","password":"`+password+`"}`))
	if resp.StatusCode != http.StatusOK {
		r.t.Fatalf("login %s: %d", name, resp.StatusCode)
	}
	return c
}

// answer is a response with its body read.
type answer struct {
	*http.Response
	Body string
}

func (r *rig) do(c *http.Client, method, path, ctype string, body io.Reader, hdr ...string) answer {
	r.t.Helper()
	req, err := http.NewRequest(method, r.ts.URL+path, body)
	if err != nil {
		r.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := c.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r.seen.Write(b)
	r.seen.Write([]byte(strings.Join(resp.Header.Values("Set-Cookie"), "\n")))
	return answer{resp, string(b)}
}

func (r *rig) get(c *http.Client, path string) answer { return r.do(c, "GET", path, "", nil) }

func (r *rig) post(c *http.Client, path string, hdr ...string) answer {
	return r.do(c, "POST", path, "", nil, hdr...)
}

// multipartBody builds an upload: fields first, then the file.
func multipartBody(fileName, content string, fields ...string) (string, io.Reader) {
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	for i := 0; i+1 < len(fields); i += 2 {
		mw.WriteField(fields[i], fields[i+1])
	}
	fw, _ := mw.CreateFormFile("manifest", fileName)
	io.WriteString(fw, content)
	mw.Close()
	return mw.FormDataContentType(), &b
}

func (r *rig) upload(c *http.Client, fileName, content string, fields ...string) answer {
	r.t.Helper()
	ct, body := multipartBody(fileName, content, fields...)
	return r.do(c, "POST", "/api/v1/batches", ct, body)
}

// uploadOK uploads a valid manifest and returns its batch id.
func (r *rig) uploadOK(c *http.Client, fileName, content string) string {
	r.t.Helper()
	a := r.upload(c, fileName, content)
	if a.StatusCode != http.StatusCreated {
		r.t.Fatalf("upload %s: %d %s", fileName, a.StatusCode, a.Body)
	}
	var v web.BatchView
	if err := json.Unmarshal([]byte(a.Body), &v); err != nil {
		r.t.Fatal(err)
	}
	return v.ID
}

func (r *rig) batchView(c *http.Client, id string) web.BatchView {
	r.t.Helper()
	a := r.get(c, "/api/v1/batches/"+id)
	if a.StatusCode != http.StatusOK {
		r.t.Fatalf("GET batch %s: %d %s", id, a.StatusCode, a.Body)
	}
	var v web.BatchView
	if err := json.Unmarshal([]byte(a.Body), &v); err != nil {
		r.t.Fatal(err)
	}
	return v
}

// waitState waits until the batch is in state.
func (r *rig) waitState(id, state string) {
	r.t.Helper()
	poll.Until(r.t, "batch "+id+" "+state, func() bool {
		cb, err := r.db.ConsoleBatch(context.Background(), id)
		return err == nil && string(cb.State) == state
	})
}

// manifestCSV builds a manifest of rows {reference, amount, currency, card, name}.
func manifestCSV(rows ...[5]string) string {
	var b strings.Builder
	b.WriteString("reference,amount,currency,card_number,recipient_name\n")
	for _, r := range rows {
		for i, f := range r {
			if i > 0 {
				b.WriteByte(',')
			}
			if strings.ContainsAny(f, ",\"\n") {
				f = `"` + strings.ReplaceAll(f, `"`, `""`) + `"`
			}
			b.WriteString(f)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// journalCounts is how many times the sandbox paid each reference.
func (r *rig) journalCounts() map[string]int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = r.sb.Quiesce(ctx)
	out := map[string]int{}
	for _, p := range r.sb.Journal() {
		out[p.Reference]++
	}
	return out
}

// uploadFiles lists the upload store's directory.
func (r *rig) uploadFiles() []string {
	ents, _ := os.ReadDir(r.uploads.Dir())
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func readAll(p string) ([]byte, error) { return os.ReadFile(p) }
