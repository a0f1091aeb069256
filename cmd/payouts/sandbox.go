package main

import (
	"context"
	"errors"
	"fmt"
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

func (c *sandboxCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet(c.app, c)
	var lf logFlags
	lf.register(fs)
	listen := fs.StringEnv("listen", "SANDBOX_LISTEN", "127.0.0.1:8081", "address to serve the Pike API on")
	partnerPub := fs.StringEnv("partner-public-key", "SANDBOX_PARTNER_PUBLIC_KEY", "", "PEM file: the partner's public key, verifies X-PARTNER-SIGN (required)")
	webhookURL := fs.StringEnv("webhook-url", "SANDBOX_WEBHOOK_URL", "", "where webhooks are POSTed (none sent when empty)")
	privKey := fs.StringEnv("private-key", "SANDBOX_PRIVATE_KEY", "", "PEM file: the sandbox's webhook signing key (generated when empty)")
	pubOut := fs.StringEnv("public-key-out", "SANDBOX_PUBLIC_KEY_OUT", "", "write the webhook signing public key (PEM) to this file")
	project := fs.StringEnv("project", "PIKE_PROJECT", "", "required X-PARTNER-PROJECT (any non-empty value when empty)")

	var cfg sandbox.Config
	dur := func(p *time.Duration, name, env string, def time.Duration, usage string) {
		fs.DurationVar(p, name, def, usage)
		fs.env(name, env)
	}
	dur(&cfg.ReadyDelay, "ready-delay", "SANDBOX_READY_DELAY", sandbox.DefaultReadyDelay, "start → ready_to_confirm")
	dur(&cfg.FinishDelay, "finish-delay", "SANDBOX_FINISH_DELAY", sandbox.DefaultFinishDelay, "confirm → payment_finished")
	dur(&cfg.SlowDelay, "slow-delay", "SANDBOX_SLOW_DELAY", sandbox.DefaultSlowDelay, "extra delay of the slow test card")
	dur(&cfg.ConfirmDeadline, "confirm-deadline", "SANDBOX_CONFIRM_DEADLINE", sandbox.DefaultConfirmDeadline, "unconfirmed payouts are cancelled after this (confirm_timeout)")
	dur(&cfg.WebhookRetryBase, "webhook-retry-base", "SANDBOX_WEBHOOK_RETRY_BASE", sandbox.DefaultWebhookRetryBase, "first webhook retry delay (doubles)")
	dur(&cfg.WebhookRetryMax, "webhook-retry-max", "SANDBOX_WEBHOOK_RETRY_MAX", sandbox.DefaultWebhookRetryMax, "longest webhook retry delay")
	dur(&cfg.WebhookGiveUp, "webhook-give-up", "SANDBOX_WEBHOOK_GIVE_UP", sandbox.DefaultWebhookGiveUp, "stop retrying a webhook this long after its first attempt")
	balances := balanceFlag{}
	fs.Var(balances, "balance", "prefunded wallet CUR:AMOUNT in minor units, repeatable (unlimited when none)")
	fs.env("balance", "SANDBOX_BALANCE")
	fs.BoolVar(&cfg.AutoConfirm, "auto-confirm", false, "Pike-side auto-confirm: no ready_to_confirm, payouts proceed by themselves")
	fs.env("auto-confirm", "SANDBOX_AUTO_CONFIRM")
	fs.BoolVar(&cfg.IdempotencyReplay, "idempotency-replay", false, "answer a repeated idempotency key with the original response instead of idempotency_key_already_exists")
	fs.env("idempotency-replay", "SANDBOX_IDEMPOTENCY_REPLAY")

	f := &cfg.Faults
	dur(&f.Latency, "latency", "SANDBOX_LATENCY", 0, "added to every API call")
	dur(&f.LatencyJitter, "latency-jitter", "SANDBOX_LATENCY_JITTER", 0, "random extra latency, up to this")
	dur(&f.WebhookDelay, "webhook-delay", "SANDBOX_WEBHOOK_DELAY", 0, "wait before delivering each webhook")
	probs := []struct {
		p           *float64
		name, usage string
	}{
		{&f.FailBeforeApply, "fail-before-apply", "probability of HTTP 500 without applying the call"},
		{&f.FailAfterApply, "fail-after-apply", "probability of applying a mutating call, then answering HTTP 500"},
		{&f.DropAfterApply, "drop-after-apply", "probability of applying a mutating call, then closing the connection unanswered"},
		{&f.RateLimit, "rate-limit", "probability of HTTP 429 too_many_requests (Retry-After: 1)"},
		{&f.DuplicateWebhooks, "duplicate-webhooks", "probability a webhook is delivered twice"},
		{&f.ReorderWebhooks, "reorder-webhooks", "probability a webhook is held back behind the session's next one"},
		{&f.DropWebhooks, "drop-webhooks", "probability a webhook is never delivered"},
		{&f.MismatchAmount, "mismatch-amount", "probability ready_to_confirm reports the amount + 1 major unit"},
		{&f.SlowAnswer, "slow-answer", "probability a call is applied and its answer held back --slow-answer-delay"},
		{&f.SessionError, "session-error", "probability a confirmed payout ends failed with session error (not final)"},
		{&f.DeclineAfterConfirm, "decline-after-confirm", "probability a confirmed payout still fails"},
		{&f.OmitAmount, "omit-amount", "probability a finished payout is shown without amount_details"},
		{&f.ReplayWebhooks, "replay-webhooks", "probability a delivered webhook is delivered again --webhook-replay-delay later"},
		{&f.ForgedWebhooks, "forged-webhooks", "probability a webhook is followed by a forged paid copy with a bad signature"},
		{&f.ForeignWebhooks, "foreign-webhooks", "probability a create/init is copied by another merchant's session that sends us its signed webhooks"},
	}
	for _, p := range probs {
		fs.Float64Var(p.p, p.name, 0, p.usage)
		fs.env(p.name, "SANDBOX_"+strings.ToUpper(strings.ReplaceAll(p.name, "-", "_")))
	}
	dur(&f.SlowAnswerDelay, "slow-answer-delay", "SANDBOX_SLOW_ANSWER_DELAY", sandbox.DefaultSlowAnswerDelay, "how long --slow-answer holds an answer")
	dur(&cfg.WebhookReplayDelay, "webhook-replay-delay", "SANDBOX_WEBHOOK_REPLAY_DELAY", sandbox.DefaultWebhookReplay, "how long after delivery --replay-webhooks sends a webhook again")
	ambiguous := fs.Bool("ambiguous-errors", false, "fail-before/after-apply answer internal_error, provider_timeout or provider_issuer_unavailable at HTTP 400, 500 or 503 (default: 500 internal_error)")
	fs.env("ambiguous-errors", "SANDBOX_AMBIGUOUS_ERRORS")
	fs.BoolVar(&cfg.ExtraFields, "extra-fields", false, "add an unknown field to every JSON object of answers and webhooks")
	fs.env("extra-fields", "SANDBOX_EXTRA_FIELDS")
	fs.BoolVar(&cfg.V2MixedNames, "v2-mixed-names", false, "answer v2 with the payout array under the v1 name payments")
	fs.env("v2-mixed-names", "SANDBOX_V2_MIXED_NAMES")
	ids := fs.StringEnv("ids", "SANDBOX_IDS", "prefixed", "id spelling: prefixed (ps_1), digits (1) or opaque (hex)")
	times := fs.StringEnv("times", "SANDBOX_TIMES", "micro", "timestamp form: micro (.000000Z), offset (+03:00), seconds, nano or mixed")
	unknown := fs.StringEnv("unknown-session", "SANDBOX_UNKNOWN_SESSION", "session_not_found:404", "CODE:HTTP answered for a session this project does not have (never made, or another merchant's)")
	fs.Int64Var(&cfg.Seed, "seed", 0, "seed of the random faults (same seed, same sequence of calls: same faults)")
	fs.env("seed", "SANDBOX_SEED")

	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("sandbox takes no arguments, got %q — run `payouts help sandbox`", fs.Args())
	}
	if *partnerPub == "" {
		return usageErrorf("sandbox needs --partner-public-key FILE (the public key your requests are signed for; make one with `payouts keygen`)")
	}
	for _, p := range probs {
		if *p.p < 0 || *p.p > 1 {
			return usageErrorf("--%s %v: a probability is between 0 and 1", p.name, *p.p)
		}
	}
	if *ambiguous {
		f.FailAnswers = sandbox.AmbiguousAnswers()
	}
	var ok bool
	if cfg.IDs, ok = map[string]sandbox.IDFormat{"prefixed": sandbox.IDPrefixed, "digits": sandbox.IDDigits, "opaque": sandbox.IDOpaque}[*ids]; !ok {
		return usageErrorf("--ids %q: use prefixed, digits or opaque", *ids)
	}
	if cfg.Times, ok = map[string]sandbox.TimeFormat{"micro": sandbox.TimeMicroZ, "offset": sandbox.TimeOffset, "seconds": sandbox.TimeSeconds, "nano": sandbox.TimeNano, "mixed": sandbox.TimeMixed}[*times]; !ok {
		return usageErrorf("--times %q: use micro, offset, seconds, nano or mixed", *times)
	}
	code, status, _ := strings.Cut(*unknown, ":")
	httpStatus, err := strconv.Atoi(status)
	if code == "" || err != nil || httpStatus < 400 || httpStatus > 599 {
		return usageErrorf("--unknown-session %q: want CODE:HTTP, e.g. session_not_found:404 or invalid_request:400", *unknown)
	}
	cfg.UnknownSession = sandbox.ErrorAnswer{Code: code, HTTPStatus: httpStatus}
	log, err := lf.logger(c.app.Stderr)
	if err != nil {
		return err
	}

	cfg.Project, cfg.WebhookURL, cfg.Logger = *project, *webhookURL, log
	if len(balances) > 0 {
		cfg.Balances = balances
	}
	if cfg.PartnerKey, err = pike.LoadPublicKey(*partnerPub); err != nil {
		return err
	}
	if *privKey != "" {
		if cfg.SigningKey, err = pike.LoadPrivateKey(*privKey); err != nil {
			return err
		}
	}
	sb, err := sandbox.New(cfg)
	if err != nil {
		if errors.Is(err, sandbox.ErrBadBalance) {
			return usageErrorf("--balance: %v", err)
		}
		return err
	}
	defer sb.Close()
	if *pubOut != "" {
		pem, err := pike.EncodePublicKeyPEM(sb.PublicKey())
		if err == nil {
			err = os.WriteFile(*pubOut, pem, 0o644)
		}
		if err != nil {
			return fmt.Errorf("write --public-key-out: %w", err)
		}
	} else if *privKey == "" && *webhookURL != "" {
		log.Warn("webhooks are signed with a key generated for this run and not written anywhere: pass --public-key-out FILE so the processor can verify them")
	}

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	srv := &http.Server{Handler: sb, ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	log.Info("sandbox listening", "url", "http://"+ln.Addr().String(), "webhook_url", *webhookURL,
		"project", *project, "public_key_out", *pubOut, "auto_confirm", cfg.AutoConfirm,
		"idempotency_replay", cfg.IdempotencyReplay, "balances", balances.String(), "seed", cfg.Seed)

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
