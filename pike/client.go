package pike

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Client calls the Pike API. It is safe for concurrent use; all goroutines
// using one Client share its in-flight bound, rate limit and 429 gate.
type Client struct {
	base        string // server root without trailing slash
	project     string
	signer      *Signer
	hc          *http.Client
	log         *slog.Logger
	version     Version
	submerchant string
	retry       RetryPolicy
	reqTimeout  time.Duration
	maxInFlight int
	traced      bool          // hc's transport reports connections and writes through httptrace
	sem         chan struct{} // nil: unlimited
	limiter     *rate.Limiter // nil: off
	gate        gate
	stats       counters
	optErr      error
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient sets the HTTP client (default: a client with a 30 s
// overall timeout). Its CheckRedirect is replaced on a copy: redirects are
// never followed, because a request body carries a card number.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc == nil {
			c.optErr = errors.New("nil HTTP client")
			return
		}
		c.hc = hc
	}
}

// WithLogger sets the logger (default: discard). Requests are logged at
// Debug, retries at Warn; bodies never are.
func WithLogger(l *slog.Logger) Option {
	return func(c *Client) {
		if l != nil {
			c.log = l
		}
	}
}

// WithVersion selects the API version: path prefix and field names sent
// (default V1). Responses in either version's spelling are accepted.
func WithVersion(v Version) Option { return func(c *Client) { c.version = v } }

// WithSubmerchant sends X-PARTNER-SUBMERCHANT with every request.
func WithSubmerchant(id string) Option { return func(c *Client) { c.submerchant = id } }

// WithRetryPolicy sets the retry policy for ClassRetryable errors (default
// DefaultRetryPolicy).
func WithRetryPolicy(p RetryPolicy) Option { return func(c *Client) { c.retry = p } }

// WithMaxInFlight bounds the HTTP requests in flight across all goroutines
// using the client (0: unlimited). A call waiting out a backoff holds no
// slot.
func WithMaxInFlight(n int) Option { return func(c *Client) { c.maxInFlight = n } }

// WithRateLimit starts at most perSecond requests per second on average,
// with bursts of up to burst, at least 1 (token bucket shared by all
// calls; perSecond 0: off).
func WithRateLimit(perSecond float64, burst int) Option {
	return func(c *Client) {
		switch {
		case perSecond < 0 || burst < 0:
			c.optErr = fmt.Errorf("rate limit %v/s burst %d: must not be negative", perSecond, burst)
		case perSecond == 0:
			c.limiter = nil
		default:
			c.limiter = rate.NewLimiter(rate.Limit(perSecond), max(burst, 1))
		}
	}
}

// WithRequestTimeout bounds each HTTP attempt (0: only the caller's
// context and the HTTP client's own timeout apply). A mutating attempt
// that times out after its request was written is ClassUnknown.
func WithRequestTimeout(d time.Duration) Option { return func(c *Client) { c.reqTimeout = d } }

// NewClient returns a client for the Pike server at baseURL (the server
// root, e.g. https://proxy-demo.pikepayments.com; the client appends
// /api/v1/<method>) acting for project and signing with signer.
func NewClient(baseURL, project string, signer *Signer, opts ...Option) (*Client, error) {
	u, err := url.Parse(strings.TrimSpace(baseURL))
	switch {
	case err != nil:
		return nil, fmt.Errorf("pike base URL: %w", err)
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("pike base URL %q: scheme must be http or https", baseURL)
	case u.Host == "":
		return nil, fmt.Errorf("pike base URL %q: no host", baseURL)
	case u.RawQuery != "" || u.Fragment != "":
		return nil, fmt.Errorf("pike base URL %q: must not have a query or fragment", baseURL)
	case strings.TrimSpace(project) == "":
		return nil, errors.New("pike project id is empty: set --project or PIKE_PROJECT")
	case signer == nil:
		return nil, errors.New("pike signer is nil: load the private key first")
	}
	c := &Client{
		base:    strings.TrimRight(u.String(), "/"),
		project: project,
		signer:  signer,
		hc:      &http.Client{Timeout: 30 * time.Second},
		log:     slog.New(slog.NewTextHandler(io.Discard, nil)),
		version: V1,
		retry:   DefaultRetryPolicy,
	}
	for _, o := range opts {
		o(c)
	}
	if c.optErr != nil {
		return nil, fmt.Errorf("pike client: %w", c.optErr)
	}
	if c.version != V1 && c.version != V2 {
		return nil, fmt.Errorf("pike client: unknown API version %d", int(c.version))
	}
	if c.retry.MaxAttempts < 0 || c.retry.BaseDelay < 0 || c.retry.MaxDelay < 0 {
		return nil, fmt.Errorf("pike client: retry policy %+v must not be negative", c.retry)
	}
	c.retry = c.retry.withDefaults()
	if c.maxInFlight < 0 {
		return nil, fmt.Errorf("pike client: max in flight %d must not be negative", c.maxInFlight)
	}
	if c.maxInFlight > 0 {
		c.sem = make(chan struct{}, c.maxInFlight)
	}
	if c.reqTimeout < 0 {
		return nil, fmt.Errorf("pike client: request timeout %v must not be negative", c.reqTimeout)
	}
	switch c.hc.Transport.(type) {
	case nil, *http.Transport:
		c.traced = true
	}
	hc := *c.hc
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &hc
	return c, nil
}

// Version returns the API version the client speaks.
func (c *Client) Version() Version { return c.version }

// CreateSession calls session/create. req may be empty; the processor puts
// the amount, customer reference and metadata here so that the session id
// is known (and stored) before any card data is sent.
func (c *Client) CreateSession(ctx context.Context, idempotencyKey string, req PayoutRequest) (*Session, error) {
	if err := checkPayoutRequest(req, false); err != nil {
		return nil, fmt.Errorf("create session: %w", err)
	}
	return c.callSession(ctx, MethodSessionCreate, idempotencyKey, "", req)
}

// StartPayout calls session/start/payout for req.SessionID with the card
// and recipient in req.
func (c *Client) StartPayout(ctx context.Context, idempotencyKey string, req PayoutRequest) (*Session, error) {
	if req.SessionID == "" {
		return nil, fmt.Errorf("start payout: %w: no session id", ErrInvalidArgument)
	}
	if err := checkPayoutRequest(req, false); err != nil {
		return nil, fmt.Errorf("start payout %s: %w", req.SessionID, err)
	}
	return c.callSession(ctx, MethodStartPayout, idempotencyKey, req.SessionID, req)
}

// InitPayout calls session/init/payout (create and start in one call).
// req.Method and req.AmountDetails are required. A lost response leaves no
// session id to resolve the outcome with, so the processor prefers
// CreateSession + StartPayout.
func (c *Client) InitPayout(ctx context.Context, idempotencyKey string, req PayoutRequest) (*Session, error) {
	if req.SessionID != "" {
		return nil, fmt.Errorf("init payout: %w: session id %q given (use StartPayout)", ErrInvalidArgument, req.SessionID)
	}
	if err := checkPayoutRequest(req, true); err != nil {
		return nil, fmt.Errorf("init payout: %w", err)
	}
	return c.callSession(ctx, MethodInitPayout, idempotencyKey, "", req)
}

// Confirm calls session/confirm: Pike pays out the pending payout.
func (c *Client) Confirm(ctx context.Context, idempotencyKey, sessionID string) (*Session, error) {
	if sessionID == "" {
		return nil, fmt.Errorf("confirm: %w: no session id", ErrInvalidArgument)
	}
	return c.callSession(ctx, MethodConfirm, idempotencyKey, sessionID, SessionRequest{SessionID: sessionID})
}

// Cancel calls session/cancel.
func (c *Client) Cancel(ctx context.Context, idempotencyKey, sessionID string) (*Session, error) {
	if sessionID == "" {
		return nil, fmt.Errorf("cancel: %w: no session id", ErrInvalidArgument)
	}
	return c.callSession(ctx, MethodCancel, idempotencyKey, sessionID, SessionRequest{SessionID: sessionID})
}

// Status calls session/status, the only read of a session. It sends no
// idempotency key and is retried on 5xx and network errors.
func (c *Client) Status(ctx context.Context, sessionID string) (*Session, error) {
	if sessionID == "" {
		return nil, fmt.Errorf("status: %w: no session id", ErrInvalidArgument)
	}
	return c.callSession(ctx, MethodStatus, "", sessionID, SessionRequest{SessionID: sessionID})
}

// Balance calls wallet/balance and returns the prefunded wallets.
func (c *Client) Balance(ctx context.Context) ([]Wallet, error) {
	resp, err := c.call(ctx, MethodWalletBalance, "", "", struct{}{})
	if err != nil {
		return nil, err
	}
	return resp.Wallets, nil
}

func (c *Client) callSession(ctx context.Context, method, key, sessionID string, body any) (*Session, error) {
	if !isRead(method) {
		if err := checkIdempotencyKey(key); err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
	}
	resp, err := c.call(ctx, method, key, sessionID, body)
	if err != nil {
		return nil, err
	}
	return resp.Session, nil
}

// checkIdempotencyKey refuses keys that are empty or could not travel in a
// header unchanged.
func checkIdempotencyKey(key string) error {
	if key == "" {
		return fmt.Errorf("%w: no idempotency key", ErrInvalidArgument)
	}
	if len(key) > 255 {
		return fmt.Errorf("%w: idempotency key is %d bytes, at most 255", ErrInvalidArgument, len(key))
	}
	for i := 0; i < len(key); i++ {
		if key[i] <= ' ' || key[i] > '~' {
			return fmt.Errorf("%w: idempotency key has byte %#x at %d: use printable ASCII without spaces", ErrInvalidArgument, key[i], i)
		}
	}
	return nil
}

// checkPayoutRequest refuses requests Pike would reject anyway or, worse,
// misread: amounts are integer minor units > 0 and currencies are sent
// lower-case.
func checkPayoutRequest(r PayoutRequest, needPayout bool) error {
	if needPayout && r.Method == nil {
		return fmt.Errorf("%w: no payout method", ErrInvalidArgument)
	}
	if needPayout && r.AmountDetails == nil {
		return fmt.Errorf("%w: no amount", ErrInvalidArgument)
	}
	if a := r.AmountDetails; a != nil {
		if a.Amount <= 0 {
			return fmt.Errorf("%w: amount %d is not positive", ErrInvalidArgument, a.Amount)
		}
		if !isLowerCurrency(a.Currency) {
			return fmt.Errorf("%w: currency %q is not a lower-case ISO 4217 code", ErrInvalidArgument, a.Currency)
		}
	}
	return nil
}

func isLowerCurrency(s string) bool {
	if len(s) != 3 {
		return false
	}
	for i := 0; i < 3; i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}
