package batch_test

import (
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

// harness is a complete payout rig on loopback: the sandbox Pike, the real
// client, a real ledger in a temp dir, and a webhook receiver wired to the
// ledger exactly as `payouts run` wires it.
type harness struct {
	t       testing.TB
	dir     string
	loc     string // the ledger: a file in dir, or a PostgreSQL URL (ledgerLocation)
	sb      *sandbox.Sandbox
	pikeSrv *httptest.Server
	client  *pike.Client
	db      *ledger.DB
	intake  *batch.Intake
	hooks   *httptest.Server
	fp      *batch.Fingerprinter
	log     *slog.Logger
	cards   map[string]string // reference → card number, to check the journal
	amounts map[string]int64  // reference → minor units expected to be paid
}

var (
	partnerKey = mustKey()
	pikeKey    = mustKey()
)

func mustKey() *pike.Signer {
	k, err := pike.GenerateKey()
	if err != nil {
		panic(err)
	}
	s, err := pike.NewSigner(k)
	if err != nil {
		panic(err)
	}
	return s
}

func newHarness(t *testing.T, cfg sandbox.Config, opts ...pike.Option) *harness {
	t.Helper()
	return newHarnessLog(t, cfg, nil, opts...)
}

// newHarnessLog is newHarness with the processor's log (client, engine,
// webhook handler) written at debug level to logw as well, so a test can
// grep everything the product logged.
func newHarnessLog(t *testing.T, cfg sandbox.Config, logw io.Writer, opts ...pike.Option) *harness {
	t.Helper()
	return newHarnessAt(t, cfg, logw, "", opts...)
}

// newHarnessAt is newHarnessLog with the ledger at loc ("": by t's
// backend, see ledgerLocation), for benchmarks too.
func newHarnessAt(t testing.TB, cfg sandbox.Config, logw io.Writer, loc string, opts ...pike.Option) *harness {
	t.Helper()
	h := &harness{t: t, dir: t.TempDir(), cards: map[string]string{}, amounts: map[string]int64{}}
	h.log = slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		h.log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if logw != nil {
		if testing.Verbose() {
			logw = io.MultiWriter(logw, os.Stderr)
		}
		h.log = slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	cfg.PartnerKey = partnerKey.Public()
	cfg.SigningKey = pikeKey.Key()
	cfg.Project = "test-project"
	if cfg.ReadyDelay == 0 {
		cfg.ReadyDelay = 5 * time.Millisecond
	}
	if cfg.FinishDelay == 0 {
		cfg.FinishDelay = 5 * time.Millisecond
	}
	if cfg.WebhookRetryBase == 0 {
		cfg.WebhookRetryBase, cfg.WebhookRetryMax, cfg.WebhookGiveUp = 20*time.Millisecond, 200*time.Millisecond, 5*time.Second
	}
	if cfg.SlowDelay == 0 {
		cfg.SlowDelay = 300 * time.Millisecond
	}
	sb, err := sandbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.sb = sb
	h.pikeSrv = httptest.NewServer(sb)
	h.loc = loc
	if h.loc == "" {
		h.loc = ledgerLocation(t, h.dir)
	}
	db, err := ledger.Open(context.Background(), h.loc)
	if err != nil {
		t.Fatal(err)
	}
	h.db = db
	h.intake = batch.NewIntake(db)
	v, err := pike.NewVerifier(pikeKey.Public())
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/webhooks/pike", pike.NewWebhookHandler(v, h.intake.Handle, pike.WithHandlerLogger(h.log)))
	h.hooks = httptest.NewServer(mux)
	sb.SetWebhookURL(h.hooks.URL + "/webhooks/pike")
	opts = append([]pike.Option{pike.WithLogger(h.log), pike.WithMaxInFlight(8),
		pike.WithRetryPolicy(pike.RetryPolicy{MaxAttempts: 4, BaseDelay: 5 * time.Millisecond, MaxDelay: 50 * time.Millisecond}),
		pike.WithRequestTimeout(5 * time.Second)}, opts...)
	h.client, err = pike.NewClient(h.pikeSrv.URL, "test-project", partnerKey, opts...)
	if err != nil {
		t.Fatal(err)
	}
	key, err := batch.FingerprintKeyFromSigner(partnerKey)
	if err != nil {
		t.Fatal(err)
	}
	h.fp, err = batch.NewFingerprinter(key)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.sb.Close()
		h.hooks.Close()
		h.pikeSrv.Close()
		h.db.Close()
	})
	return h
}

// row is one manifest row for a test.
type row struct {
	ref, amount, currency, card, name string
	// email and description are written only when a row of the manifest
	// has one, so manifests without them keep their bytes (and batch ids).
	email, description string
}

// manifest writes rows to a CSV file and remembers what each reference
// should be paid (amount in minor units, card) if it succeeds.
func (h *harness) manifest(name string, rows ...row) string {
	h.t.Helper()
	var b strings.Builder
	cw := csv.NewWriter(&b)
	details := slices.ContainsFunc(rows, func(r row) bool { return r.email != "" || r.description != "" })
	header := []string{"reference", "amount", "currency", "card_number", "recipient_name"}
	if details {
		header = append(header, "email", "description")
	}
	cw.Write(header)
	for _, r := range rows {
		if r.currency == "" {
			r.currency = "RUB"
		}
		if r.name == "" {
			r.name = "Иванов Иван"
		}
		rec := []string{r.ref, r.amount, r.currency, r.card, r.name}
		if details {
			rec = append(rec, r.email, r.description)
		}
		cw.Write(rec)
		minor, err := manifest.ParseAmount(r.amount, r.currency)
		if err != nil {
			h.t.Fatalf("bad test amount %q: %v", r.amount, err)
		}
		h.cards[r.ref], h.amounts[r.ref] = r.card, minor
	}
	cw.Flush()
	path := filepath.Join(h.dir, name)
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		h.t.Fatal(err)
	}
	return path
}

// config is an engine configuration with test-sized timings.
func (h *harness) config() batch.Config {
	return batch.Config{
		PollAfter: 100 * time.Millisecond, PollMax: 400 * time.Millisecond, RetryAfter: 10 * time.Millisecond,
		GiveUpAfter: time.Nanosecond, // give up after maxSends sends, however fast
		StopGrace:   2 * time.Second, Workers: 16, Fingerprinter: h.fp, Logger: h.log,
	}
}

// run validates and runs a manifest like `payouts run`.
func (h *harness) run(ctx context.Context, path string, cfg batch.Config) (batch.Result, error) {
	h.t.Helper()
	// Test manifests pay the same test card the same amount many times.
	mopts := manifest.Options{AllowDuplicates: true}
	sum, err := manifest.ReadFile(path, mopts, nil)
	if err != nil {
		h.t.Fatalf("manifest invalid: %v", err)
	}
	return batch.Run(ctx, h.db, h.client, batch.RunOptions{
		Manifest: path, ManifestOptions: mopts, Summary: sum, Config: cfg, Wait: 20 * time.Second, Intake: h.intake,
	})
}

// mustRun runs and fails the test on error.
func (h *harness) mustRun(path string, cfg batch.Config) batch.Result {
	h.t.Helper()
	res, err := h.run(context.Background(), path, cfg)
	if err != nil {
		h.t.Fatalf("run: %v", err)
	}
	return res
}

// states returns every row's state by reference.
func (h *harness) states(batchID string) map[string]ledger.State {
	h.t.Helper()
	out := map[string]ledger.State{}
	for r, err := range h.db.Rows(context.Background(), batchID) {
		if err != nil {
			h.t.Fatal(err)
		}
		out[r.Reference] = r.State
	}
	return out
}

// expectStates compares row states with want.
func (h *harness) expectStates(batchID string, want map[string]ledger.State) {
	h.t.Helper()
	got := h.states(batchID)
	for ref, w := range want {
		if got[ref] != w {
			h.t.Errorf("row %s: got state %q, want %q", ref, got[ref], w)
		}
	}
}

// expectPaid judges from the sandbox's journal, not from the ledger: every
// reference in paid was paid exactly once, with the manifest's amount,
// currency and card, and nothing else was paid at all.
func (h *harness) expectPaid(paid ...string) {
	h.t.Helper()
	quiesce, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = h.sb.Quiesce(quiesce)
	want := map[string]bool{}
	for _, r := range paid {
		want[r] = true
	}
	count := map[string]int{}
	for _, p := range h.sb.Journal() {
		count[p.Reference]++
		if !want[p.Reference] {
			h.t.Errorf("journal: %s was paid (%d %s), want not paid", p.Reference, p.Amount, p.Currency)
			continue
		}
		if p.Amount != h.amounts[p.Reference] {
			h.t.Errorf("journal: %s paid %d, want %d", p.Reference, p.Amount, h.amounts[p.Reference])
		}
		sum := sha256.Sum256([]byte(h.cards[p.Reference]))
		if p.CardSHA256 != hex.EncodeToString(sum[:]) {
			h.t.Errorf("journal: %s paid to another card (last4 %s)", p.Reference, p.CardLast4)
		}
	}
	for ref, n := range count {
		if n > 1 {
			h.t.Errorf("journal: %s paid %d times, want once", ref, n)
		}
	}
	for ref := range want {
		if count[ref] == 0 {
			h.t.Errorf("journal: %s not paid, want paid once", ref)
		}
	}
}

// scanForPANs fails the test if any file in the harness dir (ledger, WAL,
// reports) contains any of the manifest's card numbers.
func (h *harness) scanForPANs(extra ...[]byte) {
	h.t.Helper()
	var blobs [][]byte
	entries, _ := os.ReadDir(h.dir)
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".csv") && !strings.Contains(e.Name(), "report") {
			continue // the manifests themselves
		}
		b, err := os.ReadFile(filepath.Join(h.dir, e.Name()))
		if err == nil {
			blobs = append(blobs, b)
		}
	}
	blobs = append(blobs, extra...)
	for ref, card := range h.cards {
		for _, b := range blobs {
			if strings.Contains(string(b), card) {
				h.t.Errorf("card number of %s found at rest", ref)
			}
		}
	}
}

// pikeCreate is the session/create request the engine sends for r.
func pikeCreate(batchID string, r ledger.Row) pike.PayoutRequest {
	return pike.PayoutRequest{
		AmountDetails: &pike.AmountDetails{Amount: r.Amount, Currency: strings.ToLower(r.Currency)},
		Customer:      &pike.Customer{Reference: r.Reference},
		Metadata:      ledger.RowKey(batchID, r.Reference, 1),
	}
}

// serveUntilApplied runs `payouts serve` until every stored webhook of the
// batch has been applied.
func serveUntilApplied(t *testing.T, h *harness, id string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- batch.Serve(ctx, h.db, h.client, batch.SettleOptions{Config: h.config(), Intake: h.intake}, 20*time.Millisecond)
	}()
	poll.Until(t, "every webhook applied", func() bool {
		ws, err := h.db.PendingWebhooks(context.Background(), id, 0, 1)
		return err == nil && len(ws) == 0
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}
