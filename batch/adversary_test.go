package batch_test

// Adversarial tests against the issue 13 engine (667416e..main). Each test
// drives the real engine, ledger, client and sandbox through a sequence a
// documented Pike may produce (pike-api.md is the only contract; where it
// is silent Pike may do anything it allows), and fails while the broken
// promise is broken. Wrappers around batch.Pike (or an HTTP proxy in front
// of the sandbox) model what the sandbox cannot do by itself.

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

// journalCount is how many times the sandbox's journal paid ref.
func (h *harness) journalCount(ref string) int {
	n := 0
	for _, p := range h.sb.Journal() {
		if p.Reference == ref {
			n++
		}
	}
	return n
}

// logEvents logs the audit trail of a row (from → to, reason).
func (h *harness) logEvents(id, ref string) {
	h.t.Helper()
	r := h.row(id, ref)
	evs, err := h.db.Events(context.Background(), id, r.ID)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, ev := range evs {
		h.t.Logf("  %s attempt %d: %s → %s %s", ref, ev.Attempt, ev.From, ev.To, ev.Reason)
	}
}

// batchIDOf is the batch id a run of path gets.
func batchIDOf(t *testing.T, path string) string {
	t.Helper()
	sum, err := manifest.ReadFile(path, manifest.Options{AllowDuplicates: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return batch.BatchIDFor(sum.SHA256)
}

// rerunWith reruns a batch's failed/cancelled rows with the manifest, like
// `payouts rerun --batch ID MANIFEST`.
func (h *harness) rerunWith(pk batch.Pike, id, path string) {
	h.t.Helper()
	if _, _, err := batch.Rerun(context.Background(), h.db, pk, batch.RerunOptions{BatchID: id, Manifest: path,
		ManifestOptions: manifest.Options{AllowDuplicates: true},
		SettleOptions:   batch.SettleOptions{Config: h.config(), Wait: 15 * time.Second, Intake: h.intake}}); err != nil {
		h.t.Fatalf("rerun: %v", err)
	}
}

// ---------------------------------------------------------------------------
// Finding A1: an ambiguous init answered "credentials refused" on the
// client's retry is taken for "not applied".

// ambiguousAuthProxy stands in front of the sandbox. The first
// session/init/payout is applied by Pike, and answered 429 too_many_requests
// (the client resends the same bytes with the same key; by the client's own
// rule a 429 to a mutating call is no proof it was not applied); the resend
// is answered 401 authentication_error (Pike's auth flapping, or the key
// rotated between the two tries). Everything else goes to the sandbox.
type ambiguousAuthProxy struct {
	sb    http.Handler
	inits atomic.Int32
}

func (p *ambiguousAuthProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/api/v1/"+pike.MethodInitPayout {
		switch p.inits.Add(1) {
		case 1:
			rec := httptest.NewRecorder()
			p.sb.ServeHTTP(rec, r) // applied at Pike
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			io.WriteString(w, `{"status":"error","error":{"code":"too_many_requests","description":"slow down"}}`)
			return
		case 2:
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusUnauthorized)
			io.WriteString(w, `{"status":"error","error":{"code":"authentication_error","description":"signature check failed"}}`)
			return
		}
	}
	p.sb.ServeHTTP(w, r)
}

// TestAmbiguousInitThenCredentialsRefusalPaysTwice — broken promise: at
// most one successful payout per reference.
//
// Single flow, Pike-side auto-confirm (a documented manager switch).
// Run 1: init of R1 is applied by Pike and answered 429; the client resends
// it (same key) and gets 401 authentication_error. The client correctly
// wraps this in *pike.AmbiguousError (ClassUnknown), but callFailed checks
// errors.Is(err, pike.ErrCredentials) first, which sees through the
// AmbiguousError, and credentialsRefused moves an init row back to planned
// ("not applied") and stops the run. Pike pays attempt 1 by itself. Run 2
// (credentials "fixed") opens attempt 2 with new keys: paid again.
func TestAmbiguousInitThenCredentialsRefusalPaysTwice(t *testing.T) {
	h := newHarness(t, sandbox.Config{AutoConfirm: true})
	proxy := httptest.NewServer(&ambiguousAuthProxy{sb: h.sb})
	t.Cleanup(proxy.Close)
	flaky, err := pike.NewClient(proxy.URL, "test-project", partnerKey, pike.WithLogger(h.log),
		pike.WithRetryPolicy(pike.RetryPolicy{MaxAttempts: 4, BaseDelay: 5 * time.Millisecond, MaxDelay: 50 * time.Millisecond}),
		pike.WithRequestTimeout(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	path := h.manifest("m.csv", row{ref: "R1", amount: "10", card: sandbox.CardVisa})
	cfg := h.config()
	cfg.Flow = batch.FlowSingle
	res, err := h.runWith(context.Background(), flaky, path, cfg, 10*time.Second)
	t.Logf("run 1: %v; R1 %s", err, h.row(res.Batch.ID, "R1").State)
	// Pike paid attempt 1 (auto-confirm); its webhooks are stored and settled.
	poll.Until(t, "attempt 1 paid at Pike", func() bool { return h.journalCount("R1") == 1 })
	// The operator checks the key, finds nothing wrong, runs again.
	if _, err := h.runWith(context.Background(), h.client, path, cfg, 15*time.Second); err != nil {
		t.Fatalf("run 2: %v", err)
	}
	h.logEvents(res.Batch.ID, "R1")
	h.expectPaid("R1")
}

// ---------------------------------------------------------------------------
// Finding A2: a resent init answered with "the same refusal" is taken for
// proof, but Pike documents answering a repeated key with the original
// response.

// initRefusedAfterApply applies ref's session/init/payout at Pike and
// answers it with a business refusal; a repeat of the same idempotency key
// gets the original response again (pike-api.md §8 / DESIGN: "a repeated
// idempotency key may be rejected or answered with the original response").
type initRefusedAfterApply struct {
	batch.Pike
	ref   string
	mu    sync.Mutex
	first map[string]error
}

func (p *initRefusedAfterApply) InitPayout(ctx context.Context, key string, req pike.PayoutRequest) (*pike.Session, error) {
	if req.Customer == nil || req.Customer.Reference != p.ref {
		return p.Pike.InitPayout(ctx, key, req)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if err, ok := p.first[key]; ok {
		return nil, err // the original response, replayed
	}
	if _, err := p.Pike.InitPayout(ctx, key, req); err != nil {
		return nil, err
	}
	err := &pike.APIError{HTTPStatus: 400, Code: pike.CodeProviderExceedsLimit, Description: "the provider's amount limit is exceeded", Method: pike.MethodInitPayout}
	p.first[key] = err
	return nil, err
}

// TestInitRefusalReplayedIsTakenForProofPaysTwice — broken promise: at most
// one successful payout per reference (and a row reported failed while its
// money moved).
//
// Single flow, Pike-side auto-confirm, R1's webhooks dropped (documented).
// init of R1 is applied and answered 400 provider_exceeds_amount_limit — a
// business refusal, which by the new rule is not proof. The row goes
// unknown with that failure kept; resolveLostInit resends with the same
// key; Pike answers with the original response (the same refusal), and
// callFailed's "refused_again" case (advance.go, third case of the switch)
// marks the row failed: a replay of an answer that proved nothing proves
// nothing. Pike pays attempt 1 (auto-confirm). `rerun` plans R1 again and
// pays it a second time.
func TestInitRefusalReplayedIsTakenForProofPaysTwice(t *testing.T) {
	h := newHarness(t, sandbox.Config{AutoConfirm: true})
	h.sb.Inject(sandbox.Rule{Reference: "R1", Fault: sandbox.FaultDropWebhook, Times: 1 << 30})
	pk := &initRefusedAfterApply{Pike: h.client, ref: "R1", first: map[string]error{}}
	path := h.manifest("m.csv", row{ref: "R1", amount: "10", card: sandbox.CardVisa})
	cfg := h.config()
	cfg.Flow = batch.FlowSingle
	res, err := h.runWith(context.Background(), pk, path, cfg, 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "attempt 1 paid at Pike", func() bool { return h.journalCount("R1") == 1 })
	got := h.row(res.Batch.ID, "R1")
	t.Logf("after run: R1 %s %s", got.State, got.FailureCode)
	h.logEvents(res.Batch.ID, "R1")
	if got.State == ledger.StateFailed {
		t.Errorf("R1 is failed (%s) while Pike paid it", got.FailureCode)
	}
	h.rerunWith(h.client, res.Batch.ID, path)
	h.expectPaid("R1")
}

// ---------------------------------------------------------------------------
// Finding A3: a start refusal "confirmed" by one status reading `created`
// fails the row without cancelling the session, which can still pay.

// lateStart answers ref's first session/start/payout with a business
// refusal without passing it on; the test applies the held request later,
// as Pike would apply a start it had queued (an error answer to a mutating
// call is not proof, and one status reading `created` only says "not yet").
type lateStart struct {
	batch.Pike
	ref  string
	mu   sync.Mutex
	key  string
	req  pike.PayoutRequest
	held bool
}

func (p *lateStart) StartPayout(ctx context.Context, key string, req pike.PayoutRequest) (*pike.Session, error) {
	if req.Customer != nil && req.Customer.Reference == p.ref {
		p.mu.Lock()
		first := !p.held
		if first {
			p.key, p.req, p.held = key, req, true
		}
		p.mu.Unlock()
		if first {
			return nil, &pike.APIError{HTTPStatus: 400, Code: pike.CodeProviderExceedsLimit, Description: "the provider's amount limit is exceeded", Method: pike.MethodStartPayout}
		}
	}
	return p.Pike.StartPayout(ctx, key, req)
}

// TestStartRefusedThenAppliedLatePaysTwice — broken promise: at most one
// successful payout per reference (and a failed row whose live attempt's
// success is never recorded).
//
// Two-step flow, Pike-side auto-confirm. start of R1 is answered 400
// provider_exceeds_amount_limit (not proof); status shows the session
// `created`; interpret's start_refused (outcome.go, SessionCreated case,
// eff starting) moves the row to failed — the session is left `created`,
// able to take a payout. Pike then applies the start it had queued; the
// payout is paid. Its payment_finished webhook reaches check(), which asks
// nothing about a failed row (askStatus only asks awaiting_confirm,
// confirmed, cancelling), so the row stays failed. `rerun` pays R1 again.
func TestStartRefusedThenAppliedLatePaysTwice(t *testing.T) {
	h := newHarness(t, sandbox.Config{AutoConfirm: true})
	pk := &lateStart{Pike: h.client, ref: "R1"}
	path := h.manifest("m.csv", row{ref: "R1", amount: "10", card: sandbox.CardVisa})
	res, err := h.runWith(context.Background(), pk, path, h.config(), 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := h.row(res.Batch.ID, "R1")
	t.Logf("after run: R1 %s %s session %s", got.State, got.FailureCode, got.SessionID)
	h.logEvents(res.Batch.ID, "R1")
	// Pike applies the start it had queued (whatever it answers now: if
	// the engine had cancelled the session, Pike refuses it).
	pk.mu.Lock()
	key, req := pk.key, pk.req
	pk.mu.Unlock()
	if _, err := h.client.StartPayout(context.Background(), key, req); err != nil {
		t.Logf("late start refused by Pike: %v", err)
	}
	if s, ok := h.sb.Session(got.SessionID); ok && s.Status != pike.SessionCancelled {
		poll.Until(t, "the late start paid at Pike", func() bool { return h.journalCount("R1") == 1 })
		quiesce, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = h.sb.Quiesce(quiesce) // its payment_finished is delivered and stored
		cancel()
		// Let an engine hear the webhook, as `payouts serve` would.
		serveUntilApplied(t, h, res.Batch.ID)
		if st := h.row(res.Batch.ID, "R1").State; st != ledger.StateSucceeded && st != ledger.StateReview {
			t.Errorf("R1's live attempt was paid, and after its payment_finished webhook the row is still %s", st)
		}
	}
	h.rerunWith(h.client, res.Batch.ID, path)
	h.expectPaid("R1")
}

// ---------------------------------------------------------------------------
// Finding A4: a cancel answer showing the session still `created` makes
// absorb resend the cancel at once, synchronously, without bound.

// preStateCancel answers session/cancel with the session as it was before
// the cancel took effect (`created`, as Pike's own confirm example shows
// the pre-state), and a repeated key with that original response. After
// limit cancels it answers with the truth so the test ends.
type preStateCancel struct {
	batch.Pike
	limit int
	mu    sync.Mutex
	n     int
	first map[string]*pike.Session
}

func (p *preStateCancel) Cancel(ctx context.Context, key, id string) (*pike.Session, error) {
	p.mu.Lock()
	p.n++
	n := p.n
	prev, ok := p.first[key]
	p.mu.Unlock()
	if n > p.limit {
		return p.Pike.Status(ctx, id)
	}
	if ok {
		s := *prev
		return &s, nil
	}
	s, err := p.Pike.Cancel(ctx, key, id)
	if err != nil {
		return nil, err
	}
	pre := *s
	pre.Status, pre.Payouts, pre.NextAction = pike.SessionCreated, nil, ""
	p.mu.Lock()
	p.first[key] = &pre
	p.mu.Unlock()
	out := pre
	return &out, nil
}

// TestCancelAnsweredWithCreatedSessionIsResentWithoutBound — broken
// promises: resends are bounded / no late answer stops the run (unbounded
// synchronous recursion absorb → sendCancel → absorb under the row lock;
// without the test's limit the goroutine stack overflows and the process
// dies).
//
// Two-step flow. start of R1 answered 500 for ever (FaultFailBeforeApply),
// so after 6 sends the engine cancels the `created` session. Pike applies
// the cancel and answers with the session still `created`; the repeat of
// the key gets that original response. interpret's SessionCreated case
// returns resendCancel for eff cancelling regardless of the source (unlike
// the pending case, which resends only on a status), and absorb calls
// sendCancel again straight away.
func TestCancelAnsweredWithCreatedSessionIsResentWithoutBound(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	h.sb.Inject(sandbox.Rule{Method: pike.MethodStartPayout, Reference: "R1", Fault: sandbox.FaultFailBeforeApply, Times: 1 << 30})
	pk := &preStateCancel{Pike: h.client, limit: 200, first: map[string]*pike.Session{}}
	path := h.manifest("m.csv", row{ref: "R1", amount: "10", card: sandbox.CardVisa})
	res, err := h.runWith(context.Background(), pk, path, h.config(), 15*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pk.mu.Lock()
	n := pk.n
	pk.mu.Unlock()
	got := h.row(res.Batch.ID, "R1")
	t.Logf("R1 %s %s; session/cancel sent %d times", got.State, got.FailureCode, n)
	if n > 6 {
		t.Errorf("session/cancel sent %d times for one attempt (the test's Pike stopped the loop at %d), want a bounded number", n, pk.limit)
	}
}

// ---------------------------------------------------------------------------
// Finding A5: a start answer showing the session still `created` is an
// illegal move starting → created, swallowed by rowError, and the row rests
// in `starting` with no next step.

// preStateStart applies ref's session/start/payout and answers with the
// session as it was before (status created, no payout yet).
type preStateStart struct {
	batch.Pike
	ref string
}

func (p *preStateStart) StartPayout(ctx context.Context, key string, req pike.PayoutRequest) (*pike.Session, error) {
	s, err := p.Pike.StartPayout(ctx, key, req)
	if err != nil || req.Customer == nil || req.Customer.Reference != p.ref {
		return s, err
	}
	pre := *s
	pre.Status, pre.Payouts, pre.NextAction = pike.SessionCreated, nil, ""
	return &pre, nil
}

// TestStartAnsweredWithCreatedSessionLeavesRowWithoutNextStep — broken
// promise: no row waits forever without a next step (and `run --wait 0`,
// "until every row is final", never returns).
//
// Two-step flow, R1's webhooks dropped (documented). start of R1 is
// applied; its ok answer shows the session as before (`created`).
// interpret says created/start_not_applied; apply(starting → created) is
// illegal (ledger/state.go transitions of starting); rowError records a
// not_applied note and settle(starting) schedules nothing (settle has no
// case for intent states). The payout waits at Pike for our confirm that
// never comes; the row stays `starting` until another process restarts it.
func TestStartAnsweredWithCreatedSessionLeavesRowWithoutNextStep(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	h.sb.Inject(sandbox.Rule{Reference: "R1", Fault: sandbox.FaultDropWebhook, Times: 1 << 30})
	pk := &preStateStart{Pike: h.client, ref: "R1"}
	path := h.manifest("m.csv", row{ref: "R1", amount: "10", card: sandbox.CardVisa})
	id := batchIDOf(t, path)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := h.runWith(ctx, pk, path, h.config(), 0) // until every row is final
		done <- err
	}()
	t.Cleanup(func() { cancel(); <-done })
	var last ledger.State
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("R1 rests in %s; Pike's session: %v", last, h.sb.SessionsFor("R1"))
		}
	})
	poll.Until(t, "R1 to move on from starting (a poll of its session shows the payout pending)", func() bool {
		r, err := h.db.RowByReference(context.Background(), id, "R1")
		last = r.State
		return err == nil && r.State != ledger.StateStarting && r.State != ledger.StatePlanned &&
			r.State != ledger.StateCreating && r.State != ledger.StateCreated
	})
}

// ---------------------------------------------------------------------------
// Finding A6: a success learnt for a superseded attempt of a row whose
// risk key was already dropped (failed, cancelled, mismatch) does not take
// the key back: the row is "paid for good" in its own batch only.

// TestSupersededSuccessLeavesReferenceFreeForAnotherBatch — broken promise:
// at most one successful payout per reference, ever (across batches).
//
// Setup as the lead's TestSupersededAttemptSuccessGoesToReview/"row
// failed": attempt 1 ends in Pike's session error (review); an operator
// records it failed; a rerun's attempt 2 fails (card does not exist): the
// row is failed and its risk key dropped. Pike's support then settles
// attempt 1 as paid; superseded() records attempt 1 succeeded and moves
// the row to review — but SetAttemptOutcome (ledger/attempt.go) never sets
// the row's risk key again, and SucceededElsewhere looks only at rows in
// state succeeded. A new manifest with the same reference (next month's
// file, a corrected copy) is a new batch: its row takes the free risk key
// and R1 is paid a second time.
func TestSupersededSuccessLeavesReferenceFreeForAnotherBatch(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	id, s1 := supersededSetup(t, h, sandbox.CardNotExist, h.config())
	got := resolveAndSettle(t, h, id, s1, ledger.StateReview)
	t.Logf("R1 in batch 1: %s %s, risk key %q", got.State, got.FailureCode, got.RiskKey)
	next := h.manifest("next.csv", row{ref: "R1", amount: "10", card: sandbox.CardMir}, row{ref: "R2", amount: "20", card: sandbox.CardVisa})
	res := h.mustRun(next, h.config())
	t.Logf("R1 in batch 2: %s", h.row(res.Batch.ID, "R1").State)
	if n := h.journalCount("R1"); n != 1 {
		t.Errorf("journal: R1 paid %d times (attempt 1 of batch 1 and again in batch 2), want once", n)
	}
}

// ---------------------------------------------------------------------------
// Issue 13 finding 2, retested on the change: one reference identity.

// TestReferenceCaseFoldAcrossBatchesPaysTwice — broken promise: at most one
// successful payout per reference, ever. "REF-ß" is paid in one batch;
// "REF-ẞ" (its capital form, the same reference under full case folding,
// which DESIGN.md's "one reference identity" rule asks for) in the next
// batch is paid again: the risk key is strings.ToUpper (advance.go begin),
// which leaves ß as it is, and SucceededElsewhere compares exactly.
func TestReferenceCaseFoldAcrossBatchesPaysTwice(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	first := h.manifest("a.csv", row{ref: "REF-ß", amount: "10", card: sandbox.CardVisa})
	h.mustRun(first, h.config())
	second := h.manifest("b.csv", row{ref: "REF-ẞ", amount: "10", card: sandbox.CardVisa})
	res := h.mustRun(second, h.config())
	if st := h.row(res.Batch.ID, "REF-ẞ").State; st == ledger.StateSucceeded {
		t.Errorf("REF-ẞ succeeded in a second batch after REF-ß was paid; journal: %d + %d payments",
			h.journalCount("REF-ß"), h.journalCount("REF-ẞ"))
	}
}
