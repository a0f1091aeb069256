package pike

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// DefaultMaxWebhookBytes is the largest webhook body the handler reads.
const DefaultMaxWebhookBytes = 1 << 20

// Delivery is one verified, parsed webhook as received.
type Delivery struct {
	// Webhook is the parsed body.
	Webhook *Webhook
	// Body is the raw body, byte for byte as received and verified.
	Body []byte
	// BodySHA256 is the lower-case hex SHA-256 of Body, a natural key for
	// storing deliveries (Pike's webhooks carry no delivery id).
	BodySHA256 string
	// Signature is the X-PARTNER-SIGN header value.
	Signature string
	// ReceivedAt is when the handler read the body.
	ReceivedAt time.Time
	// Remote is the peer address (http.Request.RemoteAddr).
	Remote string
}

// HandlerOption configures NewWebhookHandler.
type HandlerOption func(*webhookHandler)

// WithMaxBodyBytes sets the largest body read (default
// DefaultMaxWebhookBytes); larger bodies get 413.
func WithMaxBodyBytes(n int64) HandlerOption {
	return func(h *webhookHandler) {
		if n > 0 {
			h.maxBytes = n
		}
	}
}

// WithHandlerLogger sets the handler's logger (default: discard). Each
// delivery is logged once with its outcome; bodies never are.
func WithHandlerLogger(l *slog.Logger) HandlerOption {
	return func(h *webhookHandler) {
		if l != nil {
			h.log = l
		}
	}
}

// WithHandlerClock sets the clock for Delivery.ReceivedAt (default time.Now).
func WithHandlerClock(now func() time.Time) HandlerOption {
	return func(h *webhookHandler) {
		if now != nil {
			h.now = now
		}
	}
}

type webhookHandler struct {
	verifier *Verifier
	fn       func(context.Context, Delivery) error
	maxBytes int64
	log      *slog.Logger
	now      func() time.Time

	mu       sync.Mutex
	lastWarn time.Time // of the last refusal logged at WARN
	refused  int       // refusals since then, each logged at DEBUG
}

// RefusalWarnEvery is how often at most the webhook handler logs at WARN
// that it refused requests before verifying them; each refusal is logged at
// DEBUG. A flood of forged or malformed requests costs one WARN line a
// minute, not one per request.
const RefusalWarnEvery = time.Minute

// NewWebhookHandler returns the http.Handler for Pike's webhooks. For each
// request it:
//
//   - answers 405 (Allow: POST) to anything but POST;
//   - answers 401 when X-PARTNER-SIGN is missing or cannot be a signature
//     of v's key (not standard Base64, or of the wrong length), without
//     reading the body;
//   - does not judge the Content-Type: Pike's docs say it sends
//     application/json, but a genuine signed webhook sent with another
//     (or none, by a proxy) must not be lost; the signature is the proof;
//   - reads the body through http.MaxBytesReader: 413 when it is larger
//     than the limit (at once when Content-Length says so), 400 when it
//     cannot be read in full;
//   - verifies X-PARTNER-SIGN over the raw bytes with v before parsing:
//     401 when wrong, and nothing is handed on;
//   - parses it with ParseWebhook: 400 when malformed;
//   - calls fn and answers 200 only if fn returned nil, 500 otherwise (also
//     when fn panics), so that Pike delivers it again.
//
// Requests refused before their signature verified can come from anyone:
// they are answered with Connection: close, logged at DEBUG, and summed up
// at WARN at most once per RefusalWarnEvery. The other outcomes are logged
// once each, at DEBUG for 200 and WARN otherwise; bodies never are.
//
// fn must store the delivery durably before returning nil; it may be
// called concurrently and with duplicates.
func NewWebhookHandler(v *Verifier, fn func(ctx context.Context, d Delivery) error, opts ...HandlerOption) http.Handler {
	if v == nil || fn == nil {
		panic("pike: NewWebhookHandler needs a Verifier and a callback")
	}
	h := &webhookHandler{verifier: v, fn: fn, maxBytes: DefaultMaxWebhookBytes,
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: time.Now}
	for _, o := range opts {
		o(h)
	}
	return h
}

func (h *webhookHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	attrs := []any{logKeyRemote, r.RemoteAddr}
	// refuse answers a request whose signature has not verified.
	refuse := func(code int, msg string, err error) {
		attrs = append(attrs, logKeyStatus, code, logKeyError, err.Error())
		h.refusal(r.Context(), attrs)
		w.Header().Set("Connection", "close") // do not read what is left of the body
		http.Error(w, msg, code)
	}
	reply := func(code int, msg string, err error) {
		attrs = append(attrs, logKeyStatus, code)
		// Every delivery is stored in the ledger; the log line is only
		// worth seeing by default when something went wrong.
		level := slog.LevelDebug
		if code != http.StatusOK {
			level = slog.LevelWarn
		}
		if err != nil {
			attrs = append(attrs, logKeyError, err.Error())
		}
		h.log.Log(r.Context(), level, "pike webhook", attrs...)
		if code == http.StatusOK {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(code)
			io.WriteString(w, "ok\n")
			return
		}
		http.Error(w, msg, code)
	}

	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		refuse(http.StatusMethodNotAllowed, "method not allowed: use POST", fmt.Errorf("method %s", r.Method))
		return
	}
	sig := r.Header.Get(HeaderSign)
	raw, err := h.verifier.decodeSignature(sig)
	if err != nil {
		refuse(http.StatusUnauthorized, "bad or missing "+HeaderSign, err)
		return
	}
	if r.ContentLength > h.maxBytes {
		refuse(http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", h.maxBytes), fmt.Errorf("content length %d", r.ContentLength))
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBytes))
	if err != nil {
		if tooBig := (*http.MaxBytesError)(nil); errors.As(err, &tooBig) {
			refuse(http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", h.maxBytes), err)
			return
		}
		refuse(http.StatusBadRequest, "could not read the body", err)
		return
	}
	sum := sha256.Sum256(body)
	d := Delivery{Body: body, BodySHA256: hex.EncodeToString(sum[:]), Signature: sig,
		ReceivedAt: h.now(), Remote: r.RemoteAddr}
	attrs = append(attrs, logKeyBodyHash, d.BodySHA256)
	if err := h.verifier.verifyRaw(body, raw); err != nil {
		refuse(http.StatusUnauthorized, "bad or missing "+HeaderSign, err)
		return
	}
	if d.Webhook, err = ParseWebhook(body); err != nil {
		reply(http.StatusBadRequest, "malformed webhook", err)
		return
	}
	attrs = append(attrs, logKeyType, d.Webhook.Type, logKeySession, d.Webhook.Session.ID)
	if err := h.call(r.Context(), d); err != nil {
		reply(http.StatusInternalServerError, "webhook not stored; deliver it again", err)
		return
	}
	reply(http.StatusOK, "", nil)
}

// refusal logs a request refused before its signature verified: at DEBUG
// each time, and at WARN for the first refusal after RefusalWarnEvery
// without one, with the number of refusals since the previous WARN.
func (h *webhookHandler) refusal(ctx context.Context, attrs []any) {
	h.log.Log(ctx, slog.LevelDebug, "pike webhook refused", attrs...)
	now := h.now()
	h.mu.Lock()
	h.refused++
	n, warn := h.refused, h.lastWarn.IsZero() || now.Sub(h.lastWarn) >= RefusalWarnEvery
	if warn {
		h.refused, h.lastWarn = 0, now
	}
	h.mu.Unlock()
	if warn {
		h.log.Log(ctx, slog.LevelWarn, "pike webhooks refused before their signature verified; more in the next minute are logged at DEBUG only",
			append([]any{logKeyRefused, n}, attrs...)...)
	}
}

// call runs the callback, turning a panic into an error so that the
// delivery is answered 500 (and retried by Pike) rather than dropped.
func (h *webhookHandler) call(ctx context.Context, d Delivery) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("webhook callback panicked: %v", p)
		}
	}()
	return h.fn(ctx, d)
}
