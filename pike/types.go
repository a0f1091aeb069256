package pike

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/payouts/payouts/internal/pan"
)

// Version is a Pike API version. It selects the path prefix (/api/v1, /api/v2)
// and the field names the client sends. Parsing always accepts both.
type Version int

// API versions.
const (
	V1 Version = 1
	V2 Version = 2
)

// String returns "v1" or "v2".
func (v Version) String() string { return fmt.Sprintf("v%d", int(v)) }

// ParseVersion parses "v1", "1", "v2" or "2".
func ParseVersion(s string) (Version, error) {
	switch strings.TrimPrefix(strings.ToLower(strings.TrimSpace(s)), "v") {
	case "1":
		return V1, nil
	case "2":
		return V2, nil
	}
	return 0, fmt.Errorf("unknown Pike API version %q: use v1 or v2", s)
}

// SessionStatus is a session's status (session.status). It is a string so
// that a status this package does not know still parses; callers compare it
// with the constants below and treat anything else as unknown.
type SessionStatus string

// Session statuses (session.status).
const (
	SessionCreated    SessionStatus = "created"
	SessionInProgress SessionStatus = "in_progress"
	SessionAccepted   SessionStatus = "accepted"
	SessionCancelled  SessionStatus = "cancelled"
	// SessionError is NOT final: the outcome is unknown until Pike support
	// resolves it. Never retry a payout whose session is in error.
	SessionError SessionStatus = "error"
)

// PayoutStatus is a payout's status (payments[].status /
// payout_list[].status). Unknown values parse as they are.
type PayoutStatus string

// Payout statuses (payments[].status / payout_list[].status).
const (
	PayoutInProgress PayoutStatus = "in_progress"
	PayoutPending    PayoutStatus = "pending" // waiting for session/confirm or session/cancel
	PayoutSucceeded  PayoutStatus = "succeeded"
	PayoutFailed     PayoutStatus = "failed"
)

// NextAction is what Pike waits for on a session (session.next_action).
// Unknown values parse as they are.
type NextAction string

// NextActionConfirm is session.next_action when Pike waits for confirm/cancel.
const NextActionConfirm NextAction = "confirm"

// ConfirmDeadline is how long Pike waits for session/confirm or
// session/cancel after ready_to_confirm; a payout left unanswered that long
// is finished as cancelled (pike-api.md §4, from [SG]). A payout held for
// approval must be approved within it.
const ConfirmDeadline = 240 * time.Minute

// WebhookType is a webhook's type ("type" of the notification body).
// Unknown values parse as they are; check them with KnownWebhookType.
type WebhookType string

// Webhook types.
const (
	WebhookReadyToConfirm  WebhookType = "ready_to_confirm"
	WebhookPaymentFinished WebhookType = "payment_finished"
	WebhookActionRequired  WebhookType = "action_required"
	WebhookReadyToCapture  WebhookType = "ready_to_capture"
	WebhookPaymentRefunded WebhookType = "payment_refunded"
)

// Error codes that the processor treats specially. Pike's own table was not
// readable; these come from Bank 131's table of the same platform.
const (
	CodeAuthentication         = "authentication_error"
	CodeAuthorization          = "authorization_error"
	CodeIdentification         = "identification_error"
	CodeInvalidRequest         = "invalid_request"
	CodeInternal               = "internal_error"
	CodeIdempotencyKeyExists   = "idempotency_key_already_exists"
	CodeConfirmTimeout         = "confirm_timeout"
	CodeCardNumberNotExist     = "card_number_does_not_exist"
	CodeProviderExceedsLimit   = "provider_exceeds_amount_limit"
	CodeProviderTimeout        = "provider_timeout"
	CodeProviderIssuerUnavail  = "provider_issuer_unavailable"
	CodeProviderInternal       = "provider_internal_error"
	CodeInsufficientFunds      = "insufficient_funds"
	CodeSessionNotFound        = "session_not_found"
	CodeInvalidSessionStatus   = "invalid_session_status"
	CodeRateLimited            = "too_many_requests"
	CodeAmountLessAllowed      = "amount_less_allowed_provider"
	CodeBankCardExpired        = "bank_card_expired"
	CodeForeignTransferBlocked = "provider_foreign_transfer_prohibited"
)

// HTTP headers of the Pike API.
const (
	HeaderProject        = "X-PARTNER-PROJECT"
	HeaderSign           = "X-PARTNER-SIGN"
	HeaderSubmerchant    = "X-PARTNER-SUBMERCHANT"
	HeaderIdempotencyKey = "X-PARTNER-IDEMPOTENCY-KEY"
)

// Method names (the path after /api/vN/).
const (
	MethodSessionCreate = "session/create"
	MethodStartPayout   = "session/start/payout"
	MethodInitPayout    = "session/init/payout"
	MethodConfirm       = "session/confirm"
	MethodCancel        = "session/cancel"
	MethodStatus        = "session/status"
	MethodWalletBalance = "wallet/balance"
)

// AmountDetails is an amount in integer minor units and a lower-case ISO 4217
// alphabetic currency code (10000 + "usd" is 100.00 USD).
type AmountDetails struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// ErrorInfo is the error object Pike puts in error responses and on failed
// sessions and payouts.
type ErrorInfo struct {
	Code        string `json:"code"`
	Description string `json:"description,omitempty"`
}

// Customer identifies the recipient in the partner's system. The processor
// puts the manifest row's reference in Reference.
type Customer struct {
	Reference string            `json:"reference,omitempty"`
	Contacts  []CustomerContact `json:"contacts,omitempty"`
}

// CustomerContact is one contact of a Customer.
type CustomerContact struct {
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
}

// ParticipantDetails names the sender and recipient of a payout.
type ParticipantDetails struct {
	Sender    *Participant `json:"sender,omitempty"`
	Recipient *Participant `json:"recipient,omitempty"`
}

// Participant is a person or company taking part in a payout.
type Participant struct {
	FullName    string `json:"full_name,omitempty"`
	FirstName   string `json:"first_name,omitempty"`
	LastName    string `json:"last_name,omitempty"`
	MiddleName  string `json:"middle_name,omitempty"`
	CompanyName string `json:"company_name,omitempty"`
	CountryISO3 string `json:"country_iso3,omitempty"`
	Email       string `json:"email,omitempty"`
}

// PayoutMethod is the payout instrument: payment_method in API v1,
// payout_details in API v2. In requests it carries the full card number; in
// responses Pike echoes only a masked card.
type PayoutMethod struct {
	Type string `json:"type"` // "card"
	Card *Card  `json:"card,omitempty"`
}

// CardMethod returns the PayoutMethod for paying to the card number pan.
func CardMethod(pan string) *PayoutMethod {
	return &PayoutMethod{Type: "card", Card: &Card{Type: "bank_card", BankCard: &BankCard{Number: pan}}}
}

// Card is the card inside a PayoutMethod. Requests set Type and BankCard;
// responses carry the masked fields (Last4, Brand, BIN).
type Card struct {
	Type        string    `json:"type,omitempty"` // "bank_card" in requests
	BankCard    *BankCard `json:"bank_card,omitempty"`
	Last4       string    `json:"last4,omitempty"`
	Brand       string    `json:"brand,omitempty"`
	BIN         string    `json:"bin,omitempty"`
	CountryISO3 string    `json:"country_iso3,omitempty"`
	CardID      string    `json:"card_id,omitempty"`
}

// BankCard holds a full card number (PAN). It exists only in request bodies.
// Its String, GoString and LogValue methods mask the number so that a stray
// %v, %#v or slog attribute cannot leak it.
type BankCard struct {
	Number string `json:"number"`
}

// String returns the masked card number.
func (b BankCard) String() string { return pan.Mask(b.Number) }

// GoString returns the masked card number.
func (b BankCard) GoString() string { return "pike.BankCard{" + pan.Mask(b.Number) + "}" }

// LogValue returns the masked card number.
func (b BankCard) LogValue() slog.Value { return slog.StringValue(pan.Mask(b.Number)) }

// TransactionInfo carries the bank's identifiers of a finished payout.
type TransactionInfo struct {
	RRN      string `json:"rrn,omitempty"`
	AuthCode string `json:"auth_code,omitempty"`
	ARN      string `json:"arn,omitempty"`
}

// Payout is one payout inside a session.
type Payout struct {
	ID                 string
	Status             PayoutStatus
	CreatedAt          Time
	FinishedAt         Time
	Customer           *Customer
	Method             *PayoutMethod // payment_method (v1) / payout_details (v2)
	AmountDetails      *AmountDetails
	ParticipantDetails *ParticipantDetails
	TransactionInfo    *TransactionInfo
	Metadata           json.RawMessage
	Error              *ErrorInfo
}

// Last4 returns the last four digits of the payout's card as Pike echoed
// them, or "" when the payout carries no card.
func (p *Payout) Last4() string {
	if p == nil || p.Method == nil || p.Method.Card == nil {
		return ""
	}
	if p.Method.Card.Last4 != "" {
		return p.Method.Card.Last4
	}
	if bc := p.Method.Card.BankCard; bc != nil && len(bc.Number) >= 4 {
		return bc.Number[len(bc.Number)-4:]
	}
	return ""
}

// MetadataString returns the payout's metadata when it is a JSON string, and
// its raw JSON text otherwise.
func (p *Payout) MetadataString() string { return metadataString(p.Metadata) }

func metadataString(raw json.RawMessage) string {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var s string
	if raw[0] == '"' && json.Unmarshal(raw, &s) == nil {
		return s
	}
	return string(raw)
}

// payoutWire is the JSON form of Payout with both versions' names.
type payoutWire struct {
	ID                 string              `json:"id,omitempty"`
	Status             PayoutStatus        `json:"status,omitempty"`
	CreatedAt          Time                `json:"created_at,omitzero"`
	FinishedAt         Time                `json:"finished_at,omitzero"`
	Customer           *Customer           `json:"customer,omitempty"`
	PaymentMethod      *PayoutMethod       `json:"payment_method,omitempty"` // v1
	PayoutDetails      *PayoutMethod       `json:"payout_details,omitempty"` // v2
	AmountDetails      *AmountDetails      `json:"amount_details,omitempty"`
	ParticipantDetails *ParticipantDetails `json:"participant_details,omitempty"`
	TransactionInfo    *TransactionInfo    `json:"transaction_info,omitempty"`
	Metadata           json.RawMessage     `json:"metadata,omitempty"`
	Error              *ErrorInfo          `json:"error,omitempty"`
}

func (p Payout) wire(v Version) payoutWire {
	w := payoutWire{
		ID: p.ID, Status: p.Status, CreatedAt: p.CreatedAt, FinishedAt: p.FinishedAt,
		Customer: p.Customer, AmountDetails: p.AmountDetails, ParticipantDetails: p.ParticipantDetails,
		TransactionInfo: p.TransactionInfo, Metadata: p.Metadata, Error: p.Error,
	}
	if v == V2 {
		w.PayoutDetails = p.Method
	} else {
		w.PaymentMethod = p.Method
	}
	return w
}

// UnmarshalJSON accepts both the v1 (payment_method) and v2 (payout_details)
// spelling; v2 wins when both are present.
func (p *Payout) UnmarshalJSON(b []byte) error {
	var w payoutWire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*p = Payout{
		ID: w.ID, Status: w.Status, CreatedAt: w.CreatedAt, FinishedAt: w.FinishedAt,
		Customer: w.Customer, Method: w.PayoutDetails, AmountDetails: w.AmountDetails,
		ParticipantDetails: w.ParticipantDetails, TransactionInfo: w.TransactionInfo,
		Metadata: w.Metadata, Error: w.Error,
	}
	if p.Method == nil {
		p.Method = w.PaymentMethod
	}
	return nil
}

// MarshalJSON encodes the payout with API v1 names. Use MarshalVersion for v2.
func (p Payout) MarshalJSON() ([]byte, error) { return json.Marshal(p.wire(V1)) }

// Session is a Pike session: a container for one payout in this processor.
type Session struct {
	ID         string
	Status     SessionStatus
	NextAction NextAction
	CreatedAt  Time
	UpdatedAt  Time
	// Payouts is payments (v1) / payout_list (v2).
	Payouts []Payout
	// AcquiringPayments is acquiring_payments (v1) / payment_list (v2); the
	// processor never makes any and keeps them only to report them.
	AcquiringPayments []json.RawMessage
	Error             *ErrorInfo
}

// Payout returns the session's payout, or nil when it has none yet. A payout
// session made by this processor holds at most one.
func (s *Session) Payout() *Payout {
	if s == nil || len(s.Payouts) == 0 {
		return nil
	}
	return &s.Payouts[len(s.Payouts)-1]
}

type sessionWire struct {
	ID                string            `json:"id,omitempty"`
	Status            SessionStatus     `json:"status,omitempty"`
	NextAction        NextAction        `json:"next_action,omitempty"`
	CreatedAt         Time              `json:"created_at,omitzero"`
	UpdatedAt         Time              `json:"updated_at,omitzero"`
	Payments          []payoutWire      `json:"payments,omitempty"`           // v1
	PayoutList        []payoutWire      `json:"payout_list,omitempty"`        // v2
	AcquiringPayments []json.RawMessage `json:"acquiring_payments,omitempty"` // v1
	PaymentList       []json.RawMessage `json:"payment_list,omitempty"`       // v2
	Error             *ErrorInfo        `json:"error,omitempty"`
}

type sessionWireIn struct {
	ID                string            `json:"id"`
	Status            SessionStatus     `json:"status"`
	NextAction        NextAction        `json:"next_action"`
	CreatedAt         Time              `json:"created_at"`
	UpdatedAt         Time              `json:"updated_at"`
	Payments          []Payout          `json:"payments"`
	PayoutList        []Payout          `json:"payout_list"`
	AcquiringPayments []json.RawMessage `json:"acquiring_payments"`
	PaymentList       []json.RawMessage `json:"payment_list"`
	Error             *ErrorInfo        `json:"error"`
}

func (s Session) wire(v Version) sessionWire {
	w := sessionWire{ID: s.ID, Status: s.Status, NextAction: s.NextAction, CreatedAt: s.CreatedAt, UpdatedAt: s.UpdatedAt, Error: s.Error}
	ps := make([]payoutWire, len(s.Payouts))
	for i, p := range s.Payouts {
		ps[i] = p.wire(v)
	}
	if len(ps) == 0 {
		ps = nil
	}
	if v == V2 {
		w.PayoutList, w.PaymentList = ps, s.AcquiringPayments
	} else {
		w.Payments, w.AcquiringPayments = ps, s.AcquiringPayments
	}
	return w
}

// UnmarshalJSON accepts both versions' names (payout_list ?? payments,
// payment_list ?? acquiring_payments) and ignores unknown fields.
func (s *Session) UnmarshalJSON(b []byte) error {
	var w sessionWireIn
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*s = Session{ID: w.ID, Status: w.Status, NextAction: w.NextAction, CreatedAt: w.CreatedAt, UpdatedAt: w.UpdatedAt, Error: w.Error}
	s.Payouts = w.PayoutList
	if s.Payouts == nil {
		s.Payouts = w.Payments
	}
	s.AcquiringPayments = w.PaymentList
	if s.AcquiringPayments == nil {
		s.AcquiringPayments = w.AcquiringPayments
	}
	return nil
}

// MarshalJSON encodes the session with API v1 names. Use MarshalVersion for v2.
func (s Session) MarshalJSON() ([]byte, error) { return json.Marshal(s.wire(V1)) }

// Webhook is a notification from Pike: {"type": ..., "session": {...}}.
type Webhook struct {
	Type    WebhookType `json:"type"`
	Session Session     `json:"session"`
}

// MarshalVersion encodes x (a Session, Payout, Webhook or one of the request
// types) with the field names of API version v.
func MarshalVersion(x any, v Version) ([]byte, error) {
	switch x := x.(type) {
	case Session:
		return json.Marshal(x.wire(v))
	case *Session:
		return json.Marshal(x.wire(v))
	case Payout:
		return json.Marshal(x.wire(v))
	case Webhook:
		return json.Marshal(struct {
			Type    WebhookType `json:"type"`
			Session sessionWire `json:"session"`
		}{x.Type, x.Session.wire(v)})
	case versioned:
		return json.Marshal(x.wire(v))
	}
	return json.Marshal(x)
}

// UnmarshalVersion decodes a request body as a Pike server of version v
// would: only that version's field names are understood, the other
// version's names are ignored like any unknown field. The sandbox uses it
// so that a client sending the wrong version's names fails as it would
// against Pike.
func UnmarshalVersion(b []byte, x versionedIn, v Version) error {
	return x.unwire(b, v)
}

type versioned interface{ wire(Version) any }

type versionedIn interface {
	unwire([]byte, Version) error
}

// requestWire is the JSON form of every payout request, with both names.
type requestWire struct {
	SessionID          string              `json:"session_id,omitempty"`
	PaymentMethod      *PayoutMethod       `json:"payment_method,omitempty"` // v1
	PayoutDetails      *PayoutMethod       `json:"payout_details,omitempty"` // v2
	AmountDetails      *AmountDetails      `json:"amount_details,omitempty"`
	ParticipantDetails *ParticipantDetails `json:"participant_details,omitempty"`
	Customer           *Customer           `json:"customer,omitempty"`
	Metadata           any                 `json:"metadata,omitempty"`
}

// PayoutRequest is the body of session/create, session/start/payout and
// session/init/payout. Which fields are required depends on the method
// (pike-api.md §3): create needs none; start needs SessionID and the method
// and amount unless given at create; init needs Method and AmountDetails.
type PayoutRequest struct {
	SessionID          string
	Method             *PayoutMethod
	AmountDetails      *AmountDetails
	ParticipantDetails *ParticipantDetails
	Customer           *Customer
	// Metadata is any JSON value; Pike echoes it in responses and webhooks.
	Metadata any
}

func (r PayoutRequest) wire(v Version) any {
	w := requestWire{SessionID: r.SessionID, AmountDetails: r.AmountDetails, ParticipantDetails: r.ParticipantDetails, Customer: r.Customer, Metadata: r.Metadata}
	if v == V2 {
		w.PayoutDetails = r.Method
	} else {
		w.PaymentMethod = r.Method
	}
	return w
}

func (r *PayoutRequest) unwire(b []byte, v Version) error {
	var w struct {
		requestWire
		Metadata json.RawMessage `json:"metadata"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*r = PayoutRequest{SessionID: w.SessionID, AmountDetails: w.AmountDetails, ParticipantDetails: w.ParticipantDetails, Customer: w.Customer}
	if len(w.Metadata) > 0 && string(w.Metadata) != "null" {
		r.Metadata = w.Metadata
	}
	if v == V2 {
		r.Method = w.PayoutDetails
	} else {
		r.Method = w.PaymentMethod
	}
	return nil
}

// MetadataString returns the request's metadata when it is a string (or a
// JSON string), and its JSON text otherwise.
func (r PayoutRequest) MetadataString() string {
	switch m := r.Metadata.(type) {
	case nil:
		return ""
	case string:
		return m
	case json.RawMessage:
		return metadataString(m)
	}
	b, _ := json.Marshal(r.Metadata)
	return string(b)
}

// SessionRequest is the body of session/confirm, session/cancel and
// session/status.
type SessionRequest struct {
	SessionID string `json:"session_id"`
}

func (r SessionRequest) wire(Version) any { return r }

func (r *SessionRequest) unwire(b []byte, _ Version) error { return json.Unmarshal(b, r) }

// Wallet is one prefunded balance returned by wallet/balance.
type Wallet struct {
	ID            string        `json:"id"`
	AmountDetails AmountDetails `json:"amount_details"`
}

// Response is Pike's response envelope:
// {"status":"ok","session":{...}} or {"status":"error","error":{...}}.
type Response struct {
	Status  string     `json:"status"`
	Session *Session   `json:"session,omitempty"`
	Wallets []Wallet   `json:"wallets,omitempty"`
	Error   *ErrorInfo `json:"error,omitempty"`
}

// Time is a timestamp as Pike writes it. Pike's examples use RFC 3339 with
// microseconds and Z, older ones +03:00 offsets; some write no zone or a
// space instead of T. All of those parse; a value that parses as none of
// them is kept in Raw with a zero Time instead of failing the whole body,
// because a timestamp never decides what happens to money.
type Time struct {
	time.Time
	Raw string
}

var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999Z0700",
}

// ParseTime parses s in any of the forms Time accepts. RFC 3339 allows a
// lower-case "t" and "z", which Go's layouts do not, so those are
// upper-cased first.
func ParseTime(s string) (time.Time, error) {
	u := strings.ToUpper(strings.TrimSpace(s))
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, u); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("unrecognised timestamp %q", s)
}

// UnmarshalJSON parses a JSON string or null.
func (t *Time) UnmarshalJSON(b []byte) error {
	*t = Time{}
	if string(b) == "null" {
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		t.Raw = string(b)
		return nil
	}
	if s == "" {
		return nil
	}
	if pt, err := ParseTime(s); err == nil {
		t.Time = pt
	} else {
		t.Raw = s
	}
	return nil
}

// MarshalJSON writes the time as Pike does (RFC 3339, microseconds, UTC).
func (t Time) MarshalJSON() ([]byte, error) {
	if t.Time.IsZero() {
		if t.Raw != "" {
			return json.Marshal(t.Raw)
		}
		return []byte("null"), nil
	}
	return json.Marshal(t.UTC().Format("2006-01-02T15:04:05.000000Z07:00"))
}

// IsZero reports whether t holds no timestamp at all.
func (t Time) IsZero() bool { return t.Time.IsZero() && t.Raw == "" }

// NewTime wraps a time.Time.
func NewTime(tm time.Time) Time { return Time{Time: tm} }
