package ledger

import "github.com/payouts/payouts/internal/pan"

// ScrubPAN replaces every card number in s with its masked form
// (424242******4242). It is pan.Scrub, the product's one card-number rule,
// kept under this name for the callers that scrub what they hand to the
// ledger.
func ScrubPAN(s string) string { return pan.Scrub(s) }
