package batch_test

// Second adversarial pass against the issue 13 change (5bca920..adversary2).
// Each test drives the real engine, ledger, client and sandbox through a
// sequence a documented Pike may produce, and fails while the promise it
// names is broken.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/internal/pan"
	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

// numericIDs makes the sandbox's session ids look like a Pike that spells
// them as long bare numbers (pike-api.md §3.8: "IDs are opaque strings
// (ps_3230, po_1313; older docs use bare digits)"; DESIGN: "ids are opaque
// strings (digits or prefixed)"). Every sandbox id ps_N becomes a 16-digit
// number that happens to pass the Luhn check, as one id in ten does.
//
// It is a batch.Pike wrapper for the API calls (ids rewritten both ways)
// and an HTTP proxy for Pike's webhooks (ids rewritten and the body signed
// again with Pike's key, as Pike itself would have signed it).
type numericIDs struct {
	inner batch.Pike
	luhn  bool   // ids pass the Luhn check (false: the control, same length)
	keep  bool   // keep the sandbox's ps_N ids (only extra applies)
	extra string // a JSON member added to every webhook body, e.g. "sent_at_ms":1764480000006
	mu    sync.Mutex
	toNum map[string]string
	toSb  map[string]string
}

func newNumericIDs(inner batch.Pike, luhn bool) *numericIDs {
	return &numericIDs{inner: inner, luhn: luhn, toNum: map[string]string{}, toSb: map[string]string{}}
}

// luhnID is a 16-digit number for n, "7" + 14 digits + a last digit that
// passes the Luhn check (valid) or does not.
func luhnID(n int, valid bool) string {
	body := fmt.Sprintf("7%014d", n)
	for d := 0; d <= 9; d++ {
		if s := body + strconv.Itoa(d); pan.Luhn(s) == valid {
			return s
		}
	}
	panic("unreachable")
}

var sbSessionID = regexp.MustCompile(`ps_(\d+)`)

func (p *numericIDs) num(sb string) string {
	if p.keep {
		return sb
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if n, ok := p.toNum[sb]; ok {
		return n
	}
	m := sbSessionID.FindStringSubmatch(sb)
	if m == nil || m[0] != sb {
		return sb
	}
	i, _ := strconv.Atoi(m[1])
	n := luhnID(i, p.luhn)
	p.toNum[sb], p.toSb[n] = n, sb
	return n
}

func (p *numericIDs) sb(num string) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.toSb[num]; ok {
		return s
	}
	return num
}

func (p *numericIDs) out(s *pike.Session, err error) (*pike.Session, error) {
	if s != nil {
		c := *s
		c.ID = p.num(s.ID)
		s = &c
	}
	return s, err
}

func (p *numericIDs) CreateSession(ctx context.Context, key string, req pike.PayoutRequest) (*pike.Session, error) {
	return p.out(p.inner.CreateSession(ctx, key, req))
}
func (p *numericIDs) StartPayout(ctx context.Context, key string, req pike.PayoutRequest) (*pike.Session, error) {
	req.SessionID = p.sb(req.SessionID)
	return p.out(p.inner.StartPayout(ctx, key, req))
}
func (p *numericIDs) InitPayout(ctx context.Context, key string, req pike.PayoutRequest) (*pike.Session, error) {
	return p.out(p.inner.InitPayout(ctx, key, req))
}
func (p *numericIDs) Confirm(ctx context.Context, key, id string) (*pike.Session, error) {
	return p.out(p.inner.Confirm(ctx, key, p.sb(id)))
}
func (p *numericIDs) Cancel(ctx context.Context, key, id string) (*pike.Session, error) {
	return p.out(p.inner.Cancel(ctx, key, p.sb(id)))
}
func (p *numericIDs) Status(ctx context.Context, id string) (*pike.Session, error) {
	return p.out(p.inner.Status(ctx, p.sb(id)))
}

// webhookProxy returns the URL the sandbox should deliver webhooks to:
// each body gets the numeric session ids and Pike's signature over the new
// bytes, and goes on to the harness's receiver.
func (p *numericIDs) webhookProxy(t *testing.T, h *harness) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		body = sbSessionID.ReplaceAllFunc(body, func(m []byte) []byte { return []byte(p.num(string(m))) })
		if p.extra != "" {
			body = append([]byte("{"+p.extra+","), bytes.TrimPrefix(bytes.TrimSpace(body), []byte("{"))...)
		}
		sig, err := pikeKey.Sign(body)
		if err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		req, _ := http.NewRequest(http.MethodPost, h.hooks.URL+"/webhooks/pike", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(pike.HeaderSign, sig)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), 502)
			return
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestAdversary2LuhnSessionIDLateSuccessLostPaysTwice — broken promise: at
// most one successful payout per reference, ever.
//
// Pike spells session ids as long bare numbers (documented: opaque strings,
// digits or prefixed). One in ten 16-digit ids passes the Luhn check.
// RecordWebhook (ledger/webhook.go:55) stores every body through
// pan.Scrub, which masks such an id ("700000******0013"), and the engine
// parses the stored, scrubbed body (batch/webhooks.go:182 webhookResult:
// pike.ParseWebhook(w.Body)). AttemptBySession then finds no attempt, the
// webhook is settled as unknown_session, and its news is gone.
//
// The news that matters: attempt 1 of R1 ended in Pike's session error
// (review); a person decides it was not paid; a rerun's attempt 2 fails
// (card does not exist): R1 is failed. Pike's support then settles attempt
// 1 as paid and sends payment_finished. That webhook is the only way the
// ledger learns of it (final rows are not polled); it is lost to the
// scrub, R1 stays failed, and the next rerun pays R1 a second time.
//
// The control subtest (the same 16-digit ids, failing the Luhn check)
// passes: R1 goes to review and is paid once.
func TestAdversary2LuhnSessionIDLateSuccessLostPaysTwice(t *testing.T) {
	t.Run("luhn-valid ids", func(t *testing.T) { lateSuccessNumericIDs(t, true, false, "") })
	t.Run("control: luhn-invalid ids", func(t *testing.T) { lateSuccessNumericIDs(t, false, false, "") })
}

// TestAdversary2NumericFieldInWebhookLateSuccessLostPaysTwice — broken
// promise: at most one successful payout per reference, ever.
//
// The same root cause with the sandbox's own ps_N ids: Pike adds a field
// to its webhooks (documented: "new fields may appear at any time —
// parsers must ignore unknown keys"), here a send time in epoch
// milliseconds as a JSON number, 1764480000006, 13 digits that happen to
// pass the Luhn check (one timestamp in ten does). pan.Scrub masks it in
// the stored body, which is then no longer JSON ("sent_at_ms":176448***0006);
// webhookResult (batch/webhooks.go:182-185) settles every such webhook as
// "unparsable", attempt 1's late success is never learnt, and the rerun
// pays R1 again. The control (a 13-digit time that fails Luhn) passes.
func TestAdversary2NumericFieldInWebhookLateSuccessLostPaysTwice(t *testing.T) {
	ms := func(valid bool) string {
		for n := int64(1764480000000); ; n++ {
			if s := strconv.FormatInt(n, 10); pan.Luhn(s) == valid {
				return `"sent_at_ms":` + s
			}
		}
	}
	t.Run("luhn-valid time", func(t *testing.T) { lateSuccessNumericIDs(t, false, true, ms(true)) })
	t.Run("control: luhn-invalid time", func(t *testing.T) { lateSuccessNumericIDs(t, false, true, ms(false)) })
}

func lateSuccessNumericIDs(t *testing.T, luhn, keep bool, extra string) {
	h := newHarness(t, sandbox.Config{})
	pk := newNumericIDs(h.client, luhn)
	pk.keep, pk.extra = keep, extra
	h.sb.SetWebhookURL(pk.webhookProxy(t, h))
	ctx := context.Background()
	cfg := h.config()
	settle := batch.SettleOptions{Config: cfg, Wait: 15 * time.Second, Intake: h.intake}

	path := h.manifest("m.csv", row{ref: "R1", amount: "10", card: sandbox.CardSessionError})
	sum, err := manifest.ReadFile(path, manifest.Options{AllowDuplicates: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := batch.Run(ctx, h.db, pk, batch.RunOptions{Manifest: path, ManifestOptions: manifest.Options{AllowDuplicates: true},
		Summary: sum, Config: cfg, Wait: 15 * time.Second, Intake: h.intake})
	if err != nil {
		t.Fatal(err)
	}
	id := res.Batch.ID
	r1 := h.row(id, "R1")
	if r1.State != ledger.StateReview {
		t.Fatalf("attempt 1: got %s, want review (session error)", r1.State)
	}
	s1 := r1.SessionID
	t.Logf("attempt 1 session id %s (Luhn-valid: %v)", s1, pan.Luhn(s1))
	if _, err := batch.Decide(ctx, h.db, id, "R1", batch.DecideNotPaid, "ops", "support said nothing was paid"); err != nil {
		t.Fatal(err)
	}
	h.rerunWith(pk, id, h.manifest("fixed.csv", row{ref: "R1", amount: "10", card: sandbox.CardNotExist}))
	if st := h.row(id, "R1").State; st != ledger.StateFailed {
		t.Fatalf("after rerun: R1 %s, want failed", st)
	}

	// Pike's support settles attempt 1 as paid; payment_finished comes.
	if err := h.sb.ResolveSessionError(pk.sb(s1), true); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "attempt 1's payment_finished stored", func() bool {
		ws, err := h.db.WebhooksForSession(ctx, s1)
		if err != nil {
			return false
		}
		for _, w := range ws {
			if w.PayoutStatus == string(pike.PayoutSucceeded) {
				return true
			}
		}
		return false
	})
	// `payouts serve` applies every stored webhook.
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- batch.Serve(sctx, h.db, pk, settle, 20*time.Millisecond) }()
	poll.Until(t, "every webhook applied", func() bool {
		ws, err := h.db.PendingWebhooks(ctx, id, 0, 1)
		return err == nil && len(ws) == 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	got := h.row(id, "R1")
	t.Logf("R1 after attempt 1's success was reported: %s %s", got.State, got.FailureCode)
	ws, _ := h.db.WebhooksForSession(ctx, s1)
	for _, w := range ws {
		sid := "(unparsable)"
		if parsed, err := pike.ParseWebhook(w.Body); err == nil {
			sid = parsed.Session.ID
		}
		t.Logf("stored webhook %d %s: session column %s, session in stored body %q, result %s", w.ID, w.Type, w.SessionID, sid, w.Result)
	}
	if got.State != ledger.StateReview {
		t.Errorf("R1 is %s after Pike reported attempt 1 (session %s) paid; want review (late success)", got.State, s1)
	}

	// The next rerun pays R1 again.
	// (A ledger that knows R1 is paid refuses this correction: that is fine.)
	again := h.manifest("again.csv", row{ref: "R1", amount: "10", card: sandbox.CardVisa})
	if _, _, err := batch.Rerun(ctx, h.db, pk, batch.RerunOptions{BatchID: id, Manifest: again,
		ManifestOptions: manifest.Options{AllowDuplicates: true}, SettleOptions: settle}); err != nil && !errors.Is(err, batch.ErrCorrectionsNotApplied) {
		t.Fatalf("rerun: %v", err)
	}
	h.cards["R1"] = sandbox.CardSessionError // attempt 1's card: the only payment wanted
	if n := h.journalCount("R1"); n != 1 {
		t.Errorf("journal: R1 paid %d times (attempt 1 resolved by support, then the rerun), want once", n)
	}
}
