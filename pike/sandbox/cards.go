package sandbox

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/payouts/payouts/internal/pan"
	"github.com/payouts/payouts/pike"
)

// Test cards. Every number is Luhn-valid. Any other Luhn-valid number of
// 13–19 digits behaves like CardVisa: the payout succeeds once confirmed.
const (
	// CardVisa, CardMastercard and CardMir succeed once confirmed.
	CardVisa       = "4242424242424242"
	CardMastercard = "5555555555554444"
	CardMir        = "2200000000000004"
	// CardNotExist fails right after start: payout failed with
	// card_number_does_not_exist, session cancelled, payment_finished and
	// no ready_to_confirm.
	CardNotExist = "4000000000000002"
	// CardExceedsLimit fails after confirm with provider_exceeds_amount_limit
	// (payout failed, session cancelled).
	CardExceedsLimit = "4000000000009995"
	// CardSessionError ends after confirm with payout failed and session
	// error, which is NOT final: Pike says to ask support. No money moves in
	// the sandbox, but a processor must hold the row, never retry it.
	CardSessionError = "4000000000000119"
	// CardNoWebhooks never produces a webhook: the session must be polled
	// with session/status.
	CardNoWebhooks = "4000000000000077"
	// CardSlow delays both ready_to_confirm and the final outcome by
	// Config.SlowDelay on top of the usual delays.
	CardSlow = "4000000000000259"
	// CardMismatch makes ready_to_confirm (and session/status) report the
	// requested amount plus one major unit. A processor must cancel it; if it
	// confirms anyway, the reported amount is paid and shows in the journal.
	CardMismatch = "4000000000000697"
	// CardExpired is refused synchronously by start/payout and init/payout
	// with HTTP 400 bank_card_expired; nothing is applied.
	CardExpired = "4000000000000036"
)

// cardBehaviour is what a test card does.
type cardBehaviour int

const (
	cardSuccess cardBehaviour = iota
	cardNotExist
	cardExceedsLimit
	cardSessionError
	cardNoWebhooks
	cardSlow
	cardMismatch
	cardExpired
)

var testCards = map[string]cardBehaviour{
	CardNotExist:     cardNotExist,
	CardExceedsLimit: cardExceedsLimit,
	CardSessionError: cardSessionError,
	CardNoWebhooks:   cardNoWebhooks,
	CardSlow:         cardSlow,
	CardMismatch:     cardMismatch,
	CardExpired:      cardExpired,
}

// cardInfo is everything the sandbox keeps about a card: the masked parts,
// a digest for the journal, and the test behaviour. Never the number.
type cardInfo struct {
	last4, bin, brand string
	sha256            string
	behaviour         cardBehaviour
}

// checkCard validates a payout instrument from a request and reduces it to
// a cardInfo. The returned message is safe to send back: it never contains
// the number.
func checkCard(m *pike.PayoutMethod) (cardInfo, string) {
	if m.Type != "card" {
		return cardInfo{}, `payout method type must be "card"`
	}
	if m.Card == nil {
		return cardInfo{}, "payout method has no card"
	}
	if m.Card.Type != "bank_card" || m.Card.BankCard == nil {
		return cardInfo{}, `card type must be "bank_card" with a bank_card object`
	}
	number := m.Card.BankCard.Number
	if len(number) < 13 || len(number) > 19 || strings.Trim(number, "0123456789") != "" {
		return cardInfo{}, "bank_card.number must be 13 to 19 digits"
	}
	if !pan.Luhn(number) {
		return cardInfo{}, "bank_card.number fails the Luhn check"
	}
	sum := sha256.Sum256([]byte(number))
	return cardInfo{
		last4:     number[len(number)-4:],
		bin:       number[:6],
		brand:     cardBrand(number),
		sha256:    hex.EncodeToString(sum[:]),
		behaviour: testCards[number],
	}, ""
}

// cardBrand names the card scheme by its BIN prefix.
func cardBrand(pan string) string {
	p4 := atoi(pan[:4])
	switch {
	case pan[0] == '4':
		return "visa"
	case p4 >= 2200 && p4 <= 2204:
		return "mir"
	case p4 >= 2221 && p4 <= 2720, pan[:2] >= "51" && pan[:2] <= "55":
		return "mastercard"
	case pan[:2] == "34", pan[:2] == "37":
		return "amex"
	}
	return "unknown"
}

func atoi(digits string) int {
	n := 0
	for _, c := range digits {
		n = n*10 + int(c-'0')
	}
	return n
}

// masked is the card as Pike echoes it in responses and webhooks.
func (c cardInfo) masked() *pike.PayoutMethod {
	return &pike.PayoutMethod{Type: "card", Card: &pike.Card{Last4: c.last4, Brand: c.brand, BIN: c.bin}}
}
