package pike

import (
	"log/slog"

	"github.com/payouts/payouts/internal/pan"
)

// The request types below carry a full card number inside BankCard. slog's
// JSON handler encodes nested structs with encoding/json, which would print
// it, so each of them resolves to a masked group instead. (The wire body is
// built from the same types through MarshalVersion and is not affected.)
// Log them as top-level attributes: a PayoutRequest buried inside another
// struct is encoded without consulting these methods.

// LogValue returns the request with its card number masked.
func (r PayoutRequest) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("session_id", r.SessionID)}
	if r.Method != nil {
		attrs = append(attrs, slog.Any("method", *r.Method))
	}
	if r.AmountDetails != nil {
		attrs = append(attrs, slog.Int64("amount", r.AmountDetails.Amount), slog.String("currency", r.AmountDetails.Currency))
	}
	if r.Customer != nil {
		attrs = append(attrs, slog.String("reference", r.Customer.Reference))
	}
	if m := r.MetadataString(); m != "" {
		attrs = append(attrs, slog.String("metadata", m))
	}
	return slog.GroupValue(attrs...)
}

// LogValue returns the payout method with its card number masked.
func (m PayoutMethod) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("type", m.Type)}
	if m.Card != nil {
		attrs = append(attrs, slog.Any("card", *m.Card))
	}
	return slog.GroupValue(attrs...)
}

// LogValue returns the card with its number masked.
func (c Card) LogValue() slog.Value {
	var attrs []slog.Attr
	if c.Type != "" {
		attrs = append(attrs, slog.String("type", c.Type))
	}
	if c.BankCard != nil {
		attrs = append(attrs, slog.String("number", pan.Mask(c.BankCard.Number)))
	}
	if c.Last4 != "" {
		attrs = append(attrs, slog.String("last4", c.Last4))
	}
	if c.Brand != "" {
		attrs = append(attrs, slog.String("brand", c.Brand))
	}
	if c.BIN != "" {
		attrs = append(attrs, slog.String("bin", c.BIN))
	}
	return slog.GroupValue(attrs...)
}
