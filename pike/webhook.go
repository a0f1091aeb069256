package pike

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ErrMalformedWebhook is wrapped by every ParseWebhook error.
var ErrMalformedWebhook = errors.New("malformed webhook")

// KnownWebhookType reports whether t is one of the webhook types Pike
// documents (ready_to_confirm, payment_finished, action_required,
// ready_to_capture, payment_refunded).
func KnownWebhookType(t WebhookType) bool {
	switch t {
	case WebhookReadyToConfirm, WebhookPaymentFinished, WebhookActionRequired,
		WebhookReadyToCapture, WebhookPaymentRefunded:
		return true
	}
	return false
}

// ParseWebhook parses a webhook body ({"type": ..., "session": {...}}).
// Verify the signature over the same bytes first.
//
// It is lenient where Pike may vary: unknown fields anywhere are ignored,
// v1 and v2 spellings are both read, timestamps may take any RFC 3339 form
// (a timestamp that parses as none is kept in Time.Raw). An unknown type is
// returned as is; check it with KnownWebhookType. It is strict where a
// wrong reading could move money: the body must be one JSON object with a
// non-empty string type and a session object with a non-empty id, and every
// known field must have its documented JSON type (an amount given as a
// string is an error, not a zero). Errors wrap ErrMalformedWebhook; it
// never panics.
func ParseWebhook(body []byte) (*Webhook, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, fmt.Errorf("%w: empty body", ErrMalformedWebhook)
	}
	if trimmed[0] != '{' {
		return nil, fmt.Errorf("%w: body is not a JSON object", ErrMalformedWebhook)
	}
	var raw struct {
		Type    *string         `json:"type"`
		Session json.RawMessage `json:"session"`
	}
	if err := json.Unmarshal(trimmed, &raw); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformedWebhook, err)
	}
	switch {
	case raw.Type == nil:
		return nil, fmt.Errorf("%w: no type", ErrMalformedWebhook)
	case *raw.Type == "":
		return nil, fmt.Errorf("%w: empty type", ErrMalformedWebhook)
	case len(raw.Session) == 0 || string(raw.Session) == "null":
		return nil, fmt.Errorf("%w: no session", ErrMalformedWebhook)
	case raw.Session[0] != '{':
		return nil, fmt.Errorf("%w: session is not an object", ErrMalformedWebhook)
	}
	w := &Webhook{Type: WebhookType(*raw.Type)}
	if err := json.Unmarshal(raw.Session, &w.Session); err != nil {
		return nil, fmt.Errorf("%w: session: %w", ErrMalformedWebhook, err)
	}
	if w.Session.ID == "" {
		return nil, fmt.Errorf("%w: session has no id", ErrMalformedWebhook)
	}
	return w, nil
}
