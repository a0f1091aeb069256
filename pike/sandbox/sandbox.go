package sandbox

import (
	"context"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/payouts/payouts/pike"
)

// Defaults for zero Config durations.
const (
	DefaultReadyDelay       = 20 * time.Millisecond
	DefaultFinishDelay      = 20 * time.Millisecond
	DefaultSlowDelay        = 2 * time.Second
	DefaultConfirmDeadline  = pike.ConfirmDeadline
	DefaultWebhookRetryBase = 10 * time.Second
	DefaultWebhookRetryMax  = 15 * time.Minute
	DefaultWebhookGiveUp    = 30 * time.Minute
	DefaultWebhookReplay    = time.Minute
	DefaultSlowAnswerDelay  = 2 * time.Second
)

// Errors returned by New.
var (
	ErrNoPartnerKey = errors.New("partner public key is required")
	ErrBadBalance   = errors.New("bad balance")
)

// Config configures a Sandbox. Zero durations take the defaults above; a
// negative ReadyDelay or FinishDelay means "at once".
type Config struct {
	// PartnerKey verifies X-PARTNER-SIGN on every request.
	PartnerKey *rsa.PublicKey
	// Project is the required X-PARTNER-PROJECT; "" accepts any non-empty value.
	Project string
	// SigningKey signs webhooks; a 2048-bit key is generated when nil.
	SigningKey *rsa.PrivateKey
	// WebhookURL is where webhooks are POSTed; "" sends none.
	WebhookURL string
	// ReadyDelay is start → payout pending + ready_to_confirm.
	ReadyDelay time.Duration
	// FinishDelay is confirm → payment_finished.
	FinishDelay time.Duration
	// SlowDelay is added to both delays for CardSlow.
	SlowDelay time.Duration
	// ConfirmDeadline cancels payouts left unconfirmed (code confirm_timeout).
	ConfirmDeadline time.Duration
	// WebhookRetryBase is the first retry delay of a failed delivery; it
	// doubles up to WebhookRetryMax, and retries stop once the next attempt
	// would come later than WebhookGiveUp after the first.
	WebhookRetryBase, WebhookRetryMax, WebhookGiveUp time.Duration
	// AutoConfirm is Pike's manager-enabled auto-confirm: no
	// ready_to_confirm, the payout proceeds by itself.
	AutoConfirm bool
	// IdempotencyReplay answers a repeated idempotency key with the original
	// response instead of 400 idempotency_key_already_exists.
	IdempotencyReplay bool
	// Balances are the prefunded wallets: lower-case currency → minor units.
	// nil means unlimited; otherwise a currency absent from the map has none.
	Balances map[string]int64
	// IDs chooses how session and payout ids are spelled (opaque strings
	// in Pike's documentation: prefixed or bare digits).
	IDs IDFormat
	// Times chooses how timestamps are written (any RFC 3339 form).
	Times TimeFormat
	// ExtraFields adds an unknown field to every JSON object of every
	// answer and webhook (Pike: new fields may appear at any time).
	ExtraFields bool
	// V2MixedNames answers v2 calls with the payout array under the v1 name
	// "payments" (and payout_details inside), as the Bank 131 SDK's v2
	// fixture does.
	V2MixedNames bool
	// UnknownSession is the error answered to a call about a session this
	// project does not have (never made, or another merchant's). Zero is
	// HTTP 404 session_not_found; Pike documents neither, so
	// {invalid_request, 400} and {authorization_error, 403} are as
	// plausible.
	UnknownSession ErrorAnswer
	// WebhookReplayDelay is how long after delivery a replayed webhook
	// (Faults.ReplayWebhooks) comes again; zero means DefaultWebhookReplay.
	WebhookReplayDelay time.Duration
	// Faults are the initial probabilistic faults (see SetFaults).
	Faults Faults
	// Seed seeds the random source of faults and bank identifiers.
	Seed int64
	// Logger receives the sandbox's log; nil discards it. Card numbers are
	// never logged.
	Logger *slog.Logger
}

// Sandbox is a local Pike. It is an http.Handler for all endpoints and safe
// for concurrent use. Call Close when done.
type Sandbox struct {
	cfg      Config
	verifier *pike.Verifier // guarded by mu (SetPartnerKey)
	signer   *pike.Signer
	log      *slog.Logger
	client   *http.Client
	ctx      context.Context // cancelled by Close; bounds webhook deliveries
	cancel   context.CancelFunc
	wg       sync.WaitGroup // webhook delivery goroutines

	mu          sync.Mutex
	closed      bool
	faults      Faults
	webhookURL  string
	rules       []*rule
	rng         *rand.Rand
	nextSession int64
	nextPayout  int64
	sessions    map[string]*session
	foreign     map[string]*session // other merchants' sessions (InjectForeignWebhook)
	foreignPaid []Payment           // what they paid: never in journal
	idem        map[string]*stored
	journal     []Payment
	balances    map[string]int64 // nil = unlimited
	reserved    map[string]int64 // confirmed, not yet finished
	stats       Stats
	pending     int           // webhook deliveries queued or in flight
	idle        chan struct{} // closed while pending == 0
}

// New returns a Sandbox for cfg.
func New(cfg Config) (*Sandbox, error) {
	if cfg.PartnerKey == nil {
		return nil, ErrNoPartnerKey
	}
	v, err := pike.NewVerifier(cfg.PartnerKey)
	if err != nil {
		return nil, fmt.Errorf("partner key: %w", err)
	}
	if cfg.SigningKey == nil {
		if cfg.SigningKey, err = pike.GenerateKey(); err != nil {
			return nil, fmt.Errorf("generate signing key: %w", err)
		}
	}
	signer, err := pike.NewSigner(cfg.SigningKey)
	if err != nil {
		return nil, fmt.Errorf("signing key: %w", err)
	}
	setDefault(&cfg.ReadyDelay, DefaultReadyDelay)
	setDefault(&cfg.FinishDelay, DefaultFinishDelay)
	setDefault(&cfg.SlowDelay, DefaultSlowDelay)
	setDefault(&cfg.ConfirmDeadline, DefaultConfirmDeadline)
	setDefault(&cfg.WebhookRetryBase, DefaultWebhookRetryBase)
	setDefault(&cfg.WebhookRetryMax, DefaultWebhookRetryMax)
	setDefault(&cfg.WebhookGiveUp, DefaultWebhookGiveUp)
	setDefault(&cfg.WebhookReplayDelay, DefaultWebhookReplay)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	var balances map[string]int64
	if cfg.Balances != nil {
		balances = make(map[string]int64, len(cfg.Balances))
		for cur, amt := range cfg.Balances {
			if !validCurrency(cur) || amt < 0 {
				return nil, fmt.Errorf("%w: %s:%d (want a lower-case ISO 4217 code and a non-negative amount)", ErrBadBalance, cur, amt)
			}
			balances[cur] = amt
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Sandbox{
		cfg:        cfg,
		verifier:   v,
		signer:     signer,
		log:        cfg.Logger,
		client:     &http.Client{Timeout: webhookTimeout},
		ctx:        ctx,
		cancel:     cancel,
		faults:     cfg.Faults,
		webhookURL: cfg.WebhookURL,
		rng:        rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(cfg.Seed)^0x9e3779b97f4a7c15)),
		sessions:   map[string]*session{},
		foreign:    map[string]*session{},
		idem:       map[string]*stored{},
		balances:   balances,
		reserved:   map[string]int64{},
		stats:      newStats(),
		idle:       make(chan struct{}),
	}
	close(s.idle)
	return s, nil
}

func setDefault(d *time.Duration, def time.Duration) {
	switch {
	case *d == 0:
		*d = def
	case *d < 0:
		*d = 0
	}
}

// SetWebhookURL changes where webhooks are sent from the next delivery
// attempt on; "" stops sending new ones.
func (s *Sandbox) SetWebhookURL(url string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.webhookURL = url
}

// SetPartnerKey replaces the partner public key that verifies requests, as
// when a partner registers a new key pair with Pike: the project and its
// sessions stay, requests signed with the old key are refused from now on.
func (s *Sandbox) SetPartnerKey(key *rsa.PublicKey) error {
	v, err := pike.NewVerifier(key)
	if err != nil {
		return fmt.Errorf("partner key: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.verifier = v
	return nil
}

// PublicKey returns the public half of the webhook signing key, the key a
// processor verifies webhooks with.
func (s *Sandbox) PublicKey() *rsa.PublicKey { return s.signer.Public() }

// Session returns the session with id as session/status would answer it
// (v1 and v2 differ only in field names), and whether it exists.
func (s *Sandbox) Session(id string) (pike.Session, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[id]
	if !ok {
		return pike.Session{}, false
	}
	return ss.view(), true
}

// SessionsFor returns every session whose customer.reference is ref, oldest
// first. Tests use it to check that a reference was not retried when it
// must not be.
func (s *Sandbox) SessionsFor(ref string) []pike.Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*session
	for _, ss := range s.sessions {
		if ss.reference() == ref {
			out = append(out, ss)
		}
	}
	slices.SortFunc(out, func(a, b *session) int { return int(a.seq - b.seq) })
	views := make([]pike.Session, len(out))
	for i, ss := range out {
		views[i] = ss.view()
	}
	return views
}

// Balances returns the wallets' current balances (minor units, after
// succeeded payouts), or nil when they are unlimited.
func (s *Sandbox) Balances() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.balances)
}

// Close stops every timer and webhook delivery and waits for the delivery
// goroutines to end. API calls after Close get HTTP 503.
func (s *Sandbox) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	for _, m := range []map[string]*session{s.sessions, s.foreign} {
		for _, ss := range m {
			ss.stopTimer()
			if ss.hold != nil {
				ss.hold.timer.Stop()
			}
		}
	}
	s.mu.Unlock()
	s.cancel()
	s.wg.Wait()
}

// Quiesce waits until no webhook delivery is queued, held back or in
// flight (given up deliveries count as done), or until ctx ends. State
// changes still scheduled (ready, finish, deadline) are not waited for.
func (s *Sandbox) Quiesce(ctx context.Context) error {
	for {
		s.mu.Lock()
		idle, closed := s.idle, s.closed
		s.mu.Unlock()
		if closed {
			return nil
		}
		select {
		case <-idle:
			s.mu.Lock()
			done := s.pending == 0
			s.mu.Unlock()
			if done {
				return nil
			}
		case <-ctx.Done():
			return fmt.Errorf("quiesce: %w", ctx.Err())
		}
	}
}

// addPending and donePending track webhook deliveries for Quiesce. Callers
// hold s.mu.
func (s *Sandbox) addPending() {
	if s.pending == 0 {
		s.idle = make(chan struct{})
	}
	s.pending++
}

func (s *Sandbox) donePending() {
	s.pending--
	if s.pending == 0 {
		close(s.idle)
	}
}

// now is the sandbox clock: UTC with microseconds, as Pike writes times.
func now() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }

// validCurrency reports whether cur is a lower-case ISO 4217 code.
func validCurrency(cur string) bool {
	if len(cur) != 3 || strings.ToLower(cur) != cur {
		return false
	}
	_, ok := minorDigits(cur)
	return ok
}
