package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

// sandboxCommand implements `payouts sandbox`: the local Pike, standalone.
type sandboxCommand struct {
	app *App
}

func (c *sandboxCommand) Name() string     { return "sandbox" }
func (c *sandboxCommand) Synopsis() string { return "run the local Pike sandbox" }
func (c *sandboxCommand) Usage() string {
	return `Usage: payouts sandbox --partner-public-key FILE [--webhook-url URL] [flags]

Runs a local Pike on --listen until interrupted: POST /api/v1/<method> and
/api/v2/<method>, signatures verified with the partner's public key, signed
webhooks to --webhook-url, test cards, fault injection, and the journal of
the money it moved at GET /sandbox/journal (statistics at GET /sandbox/stats).

Webhooks are signed with --private-key, or with a key generated at start;
--public-key-out writes its public half for the processor's PIKE_PUBLIC_KEY.
Durations are Go durations (150ms, 2s, 4h); probabilities are 0 to 1.
Test cards and faults: docs/sandbox.md.

Example:
  payouts keygen --out keys
  payouts sandbox --partner-public-key keys/partner-public.pem \
      --public-key-out keys/pike-public.pem \
      --webhook-url http://127.0.0.1:8080/webhooks/pike --drop-webhooks 0.1`
}

// balanceFlag collects --balance CUR:MINOR_UNITS (repeatable, or
// comma-separated).
type balanceFlag map[string]int64

func (b balanceFlag) String() string {
	var parts []string
	for cur, amt := range b {
		parts = append(parts, cur+":"+strconv.FormatInt(amt, 10))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (b balanceFlag) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		cur, amt, ok := strings.Cut(strings.TrimSpace(part), ":")
		n, err := strconv.ParseInt(amt, 10, 64)
		if !ok || err != nil || n < 0 || len(cur) != 3 {
			return fmt.Errorf("%q: want CUR:AMOUNT in minor units, e.g. rub:100000000 (1 000 000.00 RUB)", part)
		}
		b[strings.ToLower(cur)] = n
	}
	return nil
}

// Run parses the flags, builds the sandbox they describe and serves it
// until ctx is cancelled. Every step that can refuse the flags runs before
// anything listens, so a bad flag never leaves a half-started sandbox.
func (c *sandboxCommand) Run(ctx context.Context, args []string) error {
	f := newSandboxFlags()
	fs := newFlagSet(c.app, c)
	f.register(fs)
	if err := f.parse(fs, args); err != nil {
		return helpOK(err)
	}
	log, err := c.app.logger()
	if err != nil {
		return err
	}
	sb, err := f.newSandbox(log)
	if err != nil {
		return err
	}
	defer sb.Close()
	if err := f.writePublicKey(sb, log); err != nil {
		return err
	}
	return f.serve(ctx, sb, log)
}

// sandboxFlags are the flags of `payouts sandbox`. Most of them land
// straight in cfg; the rest are checked or translated by parse and
// newSandbox, which is why they are kept apart.
type sandboxFlags struct {
	listen, partnerPub, webhookURL *string
	privKey, pubOut, project       *string
	ids, times, unknown            *string
	ambiguous                      *bool
	balances                       balanceFlag
	probs                          []probFlag
	cfg                            sandbox.Config
}

// probFlag is one fault probability flag: a pointer into cfg.Faults, so
// that parse can range over them to check 0 ≤ p ≤ 1 by flag name.
type probFlag struct {
	p           *float64
	name, usage string
}

// newSandboxFlags returns the flags with their fault probabilities bound to
// its own cfg.Faults (the table needs the address of the struct it fills).
func newSandboxFlags() *sandboxFlags {
	f := &sandboxFlags{balances: balanceFlag{}}
	f.probs = faultProbs(&f.cfg.Faults)
	return f
}

// register defines every flag on fs, in the order `payouts help sandbox`
// lists them.
func (f *sandboxFlags) register(fs *flagSet) {
	f.listen = fs.StringEnv("listen", "SANDBOX_LISTEN", "127.0.0.1:8081", "address to serve the Pike API on")
	f.partnerPub = fs.StringEnv("partner-public-key", "SANDBOX_PARTNER_PUBLIC_KEY", "", "PEM file: the partner's public key, verifies X-PARTNER-SIGN (required)")
	f.webhookURL = fs.StringEnv("webhook-url", "SANDBOX_WEBHOOK_URL", "", "where webhooks are POSTed (none sent when empty)")
	f.privKey = fs.StringEnv("private-key", "SANDBOX_PRIVATE_KEY", "", "PEM file: the sandbox's webhook signing key (generated when empty)")
	f.pubOut = fs.StringEnv("public-key-out", "SANDBOX_PUBLIC_KEY_OUT", "", "write the webhook signing public key (PEM) to this file")
	f.project = fs.StringEnv("project", "PIKE_PROJECT", "", "required X-PARTNER-PROJECT (any non-empty value when empty)")
	f.registerTiming(fs)
	f.registerFaults(fs)
	f.registerWire(fs)
}

// registerTiming defines how fast the sandbox's Pike moves, and what it
// has to pay with.
func (f *sandboxFlags) registerTiming(fs *flagSet) {
	cfg := &f.cfg
	fs.DurationEnv(&cfg.ReadyDelay, "ready-delay", "SANDBOX_READY_DELAY", sandbox.DefaultReadyDelay, "start → ready_to_confirm")
	fs.DurationEnv(&cfg.FinishDelay, "finish-delay", "SANDBOX_FINISH_DELAY", sandbox.DefaultFinishDelay, "confirm → payment_finished")
	fs.DurationEnv(&cfg.SlowDelay, "slow-delay", "SANDBOX_SLOW_DELAY", sandbox.DefaultSlowDelay, "extra delay of the slow test card")
	fs.DurationEnv(&cfg.ConfirmDeadline, "confirm-deadline", "SANDBOX_CONFIRM_DEADLINE", sandbox.DefaultConfirmDeadline, "unconfirmed payouts are cancelled after this (confirm_timeout)")
	fs.DurationEnv(&cfg.WebhookRetryBase, "webhook-retry-base", "SANDBOX_WEBHOOK_RETRY_BASE", sandbox.DefaultWebhookRetryBase, "first webhook retry delay (doubles)")
	fs.DurationEnv(&cfg.WebhookRetryMax, "webhook-retry-max", "SANDBOX_WEBHOOK_RETRY_MAX", sandbox.DefaultWebhookRetryMax, "longest webhook retry delay")
	fs.DurationEnv(&cfg.WebhookGiveUp, "webhook-give-up", "SANDBOX_WEBHOOK_GIVE_UP", sandbox.DefaultWebhookGiveUp, "stop retrying a webhook this long after its first attempt")
	fs.Var(f.balances, "balance", "prefunded wallet CUR:AMOUNT in minor units, repeatable (unlimited when none)")
	fs.env("balance", "SANDBOX_BALANCE")
	fs.BoolVar(&cfg.AutoConfirm, "auto-confirm", false, "Pike-side auto-confirm: no ready_to_confirm, payouts proceed by themselves")
	fs.env("auto-confirm", "SANDBOX_AUTO_CONFIRM")
	fs.BoolVar(&cfg.IdempotencyReplay, "idempotency-replay", false, "answer a repeated idempotency key with the original response instead of idempotency_key_already_exists")
	fs.env("idempotency-replay", "SANDBOX_IDEMPOTENCY_REPLAY")
}

// registerFaults defines the injected failures: latencies, then one
// probability flag per fault, each read from SANDBOX_<NAME> as well.
func (f *sandboxFlags) registerFaults(fs *flagSet) {
	ft := &f.cfg.Faults
	fs.DurationEnv(&ft.Latency, "latency", "SANDBOX_LATENCY", 0, "added to every API call")
	fs.DurationEnv(&ft.LatencyJitter, "latency-jitter", "SANDBOX_LATENCY_JITTER", 0, "random extra latency, up to this")
	fs.DurationEnv(&ft.WebhookDelay, "webhook-delay", "SANDBOX_WEBHOOK_DELAY", 0, "wait before delivering each webhook")
	for _, p := range f.probs {
		fs.Float64Var(p.p, p.name, 0, p.usage)
		fs.env(p.name, "SANDBOX_"+strings.ToUpper(strings.ReplaceAll(p.name, "-", "_")))
	}
	fs.DurationEnv(&ft.SlowAnswerDelay, "slow-answer-delay", "SANDBOX_SLOW_ANSWER_DELAY", sandbox.DefaultSlowAnswerDelay, "how long --slow-answer holds an answer")
	fs.DurationEnv(&f.cfg.WebhookReplayDelay, "webhook-replay-delay", "SANDBOX_WEBHOOK_REPLAY_DELAY", sandbox.DefaultWebhookReplay, "how long after delivery --replay-webhooks sends a webhook again")
	f.ambiguous = fs.Bool("ambiguous-errors", false, "fail-before/after-apply answer internal_error, provider_timeout or provider_issuer_unavailable at HTTP 400, 500 or 503 (default: 500 internal_error)")
	fs.env("ambiguous-errors", "SANDBOX_AMBIGUOUS_ERRORS")
}

// faultProbs is the table of probability flags, bound to ft.
func faultProbs(ft *sandbox.Faults) []probFlag {
	return []probFlag{
		{&ft.FailBeforeApply, "fail-before-apply", "probability of HTTP 500 without applying the call"},
		{&ft.FailAfterApply, "fail-after-apply", "probability of applying a mutating call, then answering HTTP 500"},
		{&ft.DropAfterApply, "drop-after-apply", "probability of applying a mutating call, then closing the connection unanswered"},
		{&ft.RateLimit, "rate-limit", "probability of HTTP 429 too_many_requests (Retry-After: 1)"},
		{&ft.DuplicateWebhooks, "duplicate-webhooks", "probability a webhook is delivered twice"},
		{&ft.ReorderWebhooks, "reorder-webhooks", "probability a webhook is held back behind the session's next one"},
		{&ft.DropWebhooks, "drop-webhooks", "probability a webhook is never delivered"},
		{&ft.MismatchAmount, "mismatch-amount", "probability ready_to_confirm reports the amount + 1 major unit"},
		{&ft.SlowAnswer, "slow-answer", "probability a call is applied and its answer held back --slow-answer-delay"},
		{&ft.SessionError, "session-error", "probability a confirmed payout ends failed with session error (not final)"},
		{&ft.DeclineAfterConfirm, "decline-after-confirm", "probability a confirmed payout still fails"},
		{&ft.OmitAmount, "omit-amount", "probability a finished payout is shown without amount_details"},
		{&ft.ReplayWebhooks, "replay-webhooks", "probability a delivered webhook is delivered again --webhook-replay-delay later"},
		{&ft.ForgedWebhooks, "forged-webhooks", "probability a webhook is followed by a forged paid copy with a bad signature"},
		{&ft.ForeignWebhooks, "foreign-webhooks", "probability a create/init is copied by another merchant's session that sends us its signed webhooks"},
	}
}

// registerWire defines how the answers are spelled (ids, timestamps,
// unknown fields, the unknown-session error) and the fault seed.
func (f *sandboxFlags) registerWire(fs *flagSet) {
	fs.BoolVar(&f.cfg.ExtraFields, "extra-fields", false, "add an unknown field to every JSON object of answers and webhooks")
	fs.env("extra-fields", "SANDBOX_EXTRA_FIELDS")
	fs.BoolVar(&f.cfg.V2MixedNames, "v2-mixed-names", false, "answer v2 with the payout array under the v1 name payments")
	fs.env("v2-mixed-names", "SANDBOX_V2_MIXED_NAMES")
	f.ids = fs.StringEnv("ids", "SANDBOX_IDS", "prefixed", "id spelling: prefixed (ps_1), digits (1) or opaque (hex)")
	f.times = fs.StringEnv("times", "SANDBOX_TIMES", "micro", "timestamp form: micro (.000000Z), offset (+03:00), seconds, nano or mixed")
	f.unknown = fs.StringEnv("unknown-session", "SANDBOX_UNKNOWN_SESSION", "session_not_found:404", "CODE:HTTP answered for a session this project does not have (never made, or another merchant's)")
	fs.Int64Var(&f.cfg.Seed, "seed", 0, "seed of the random faults (same seed, same sequence of calls: same faults)")
	fs.env("seed", "SANDBOX_SEED")
}

// parse parses args and checks what the flag package cannot: the required
// key, probabilities, and the named forms, which it translates into cfg.
// Every refusal is a usage error (exit 2) naming the flag.
func (f *sandboxFlags) parse(fs *flagSet, args []string) error {
	if err := fs.parse(args); err != nil {
		return err // errHelp included: Run turns it into exit 0
	}
	if fs.NArg() > 0 {
		return usageErrorf("sandbox takes no arguments, got %q — run `payouts help sandbox`", fs.Args())
	}
	if *f.partnerPub == "" {
		return usageErrorf("sandbox needs --partner-public-key FILE (the public key your requests are signed for; make one with `payouts keygen`)")
	}
	for _, p := range f.probs {
		if *p.p < 0 || *p.p > 1 {
			return usageErrorf("--%s %v: a probability is between 0 and 1", p.name, *p.p)
		}
	}
	if *f.ambiguous {
		f.cfg.Faults.FailAnswers = sandbox.AmbiguousAnswers()
	}
	var err error
	if f.cfg.IDs, err = sandbox.ParseIDFormat(*f.ids); err != nil {
		return usageErrorf("--ids %v", err)
	}
	if f.cfg.Times, err = sandbox.ParseTimeFormat(*f.times); err != nil {
		return usageErrorf("--times %v", err)
	}
	if f.cfg.UnknownSession, err = sandbox.ParseErrorAnswer(*f.unknown); err != nil {
		return usageErrorf("--unknown-session %v", err)
	}
	return nil
}

// newSandbox loads the keys and builds the sandbox. A bad --balance is
// only found by sandbox.New, so its refusal is turned into a usage error
// here.
func (f *sandboxFlags) newSandbox(log *slog.Logger) (*sandbox.Sandbox, error) {
	cfg := f.cfg
	cfg.Project, cfg.WebhookURL, cfg.Logger = *f.project, *f.webhookURL, log
	if len(f.balances) > 0 {
		cfg.Balances = f.balances // nil, not empty, means unlimited
	}
	var err error
	if cfg.PartnerKey, err = pike.LoadPublicKey(*f.partnerPub); err != nil {
		return nil, err
	}
	if *f.privKey != "" {
		if cfg.SigningKey, err = pike.LoadPrivateKey(*f.privKey); err != nil {
			return nil, err
		}
	}
	sb, err := sandbox.New(cfg)
	if errors.Is(err, sandbox.ErrBadBalance) {
		return nil, usageErrorf("--balance: %v", err)
	}
	return sb, err
}

// writePublicKey writes the webhook signing public key for the processor
// (--public-key-out). Without it, webhooks signed by a key generated for
// this run cannot be verified by anyone, so that case is warned about.
func (f *sandboxFlags) writePublicKey(sb *sandbox.Sandbox, log *slog.Logger) error {
	if *f.pubOut == "" {
		if *f.privKey == "" && *f.webhookURL != "" {
			log.Warn("webhooks are signed with a key generated for this run and not written anywhere: pass --public-key-out FILE so the processor can verify them")
		}
		return nil
	}
	pem, err := pike.EncodePublicKeyPEM(sb.PublicKey())
	if err == nil {
		err = os.WriteFile(*f.pubOut, pem, 0o644)
	}
	if err != nil {
		return fmt.Errorf("write --public-key-out: %w", err)
	}
	return nil
}

// serve serves sb on --listen until ctx is cancelled, then shuts the
// server down gracefully (bounded: a stuck client must not hold the exit)
// and logs what the sandbox did. A serve failure returns at once.
func (f *sandboxFlags) serve(ctx context.Context, sb *sandbox.Sandbox, log *slog.Logger) error {
	ln, err := net.Listen("tcp", *f.listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: sb, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("sandbox listening", "url", "http://"+ln.Addr().String(), "webhook_url", *f.webhookURL,
		"project", *f.project, "public_key_out", *f.pubOut, "auto_confirm", f.cfg.AutoConfirm,
		"idempotency_replay", f.cfg.IdempotencyReplay, "balances", f.balances.String(), "seed", f.cfg.Seed)

	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shutCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(shutCtx)
	st := sb.Stats()
	log.Info("sandbox stopped", "payments", len(sb.Journal()), "sessions", st.Sessions,
		"webhooks_delivered", st.WebhooksDelivered, "webhooks_given_up", st.WebhooksGivenUp)
	return nil
}
