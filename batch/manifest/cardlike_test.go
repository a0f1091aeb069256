package manifest_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/payouts/payouts/batch/manifest"
)

// TestRefusesCardNumbersInText: a card number in any column but
// card_number is refused at validation, however it is written, with an
// error addressed by line and column that never shows the number.
// (Issue 13, findings 7 and 13.)
func TestRefusesCardNumbersInText(t *testing.T) {
	tests := []struct {
		name, column, value string
		want                error
		message             string // part of the message
	}{
		{"reference IIN 7", "reference", "7000000000000005", manifest.ErrReference, "would be masked"},
		{"reference digits only", "reference", "4000000000000002", manifest.ErrReference, "would be masked"},
		{"reference with dots", "reference", "4242.4242.4242.4242", manifest.ErrReference, "would be masked"},
		{"reference with a prefix", "reference", "INV4242424242424242", manifest.ErrReference, "would be masked"},
		{"description dots", "description", "refund to 4242.4242.4242.4242", manifest.ErrDescription, "looks like a card number"},
		{"description slashes", "description", "refund to 4242/4242/4242/4242", manifest.ErrDescription, "looks like a card number"},
		{"description underscores", "description", "refund to 4242_4242_4242_4242", manifest.ErrDescription, "looks like a card number"},
		{"description double spaces", "description", "refund to 4242  4242  4242  4242", manifest.ErrDescription, "looks like a card number"},
		{"description thin spaces", "description", "refund to 4242\u20094242\u20094242\u20094242", manifest.ErrDescription, "looks like a card number"},
		{"description IIN 7", "description", "card 7000000000000005", manifest.ErrDescription, "looks like a card number"},
		{"description mistyped card", "description", "card 4242 4242 4242 4241", manifest.ErrDescription, "looks like a card number"},
		{"name dots", "recipient_name", "Ivan 4242.4242.4242.4242", manifest.ErrRecipientName, "looks like a card number"},
		{"name slashes", "recipient_name", "Ivan 2200/0000/0000/0004", manifest.ErrRecipientName, "looks like a card number"},
		{"email", "email", "4242424242424242@example.com", manifest.ErrEmail, "looks like a card number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := map[string]string{"reference": "R-1", "amount": "1500", "currency": "RUB", "card_number": "5555555555554444",
				"recipient_name": "Ivan Petrov", "email": "", "description": ""}
			rec[tt.column] = tt.value
			row := strings.Join([]string{rec["reference"], rec["amount"], rec["currency"], rec["card_number"],
				rec["recipient_name"], rec["email"], rec["description"]}, ",")
			_, rows, ve := readString(t, manifestHeader+row+"\n", manifest.Options{})
			if ve == nil {
				t.Fatalf("%s %q: got the row accepted (%d rows), want it refused", tt.column, tt.value, len(rows))
			}
			if got, want := problems(ve), []problem{{2, tt.column, tt.want}}; fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("got problems %v, want %v", got, want)
			}
			e := ve.Errors[0]
			if msg := e.Error(); !strings.Contains(msg, tt.message) {
				t.Errorf("got message %q, want it to say %q", msg, tt.message)
			}
			digits := strings.Map(func(r rune) rune {
				if r >= '0' && r <= '9' {
					return r
				}
				return -1
			}, tt.value)
			for _, s := range []string{e.Error(), e.Value, ve.Error()} {
				if strings.Contains(strings.Map(func(r rune) rune {
					if r >= '0' && r <= '9' {
						return r
					}
					return -1
				}, s), digits) {
					t.Errorf("error shows the card number: %s", s)
				}
			}
		})
	}
}

// TestShowsAmountsAsWritten: an amount is not a card number, so a
// refused amount is shown as written, not masked (issue 13, finding 13:
// 99999999999999.00 was shown as 999999******99.00).
func TestShowsAmountsAsWritten(t *testing.T) {
	for _, amount := range []string{"99999999999999.00", "99999999999999.999", "10000000000000.01"} {
		_, _, ve := readString(t, manifestHeader+"R-1,"+amount+",RUB,4242424242424242,Ivan,,\n", manifest.Options{})
		if ve == nil || len(ve.Errors) != 1 || ve.Errors[0].Column != "amount" {
			t.Fatalf("amount %s: got %v, want one amount error", amount, ve)
		}
		if got := ve.Errors[0].Value; got != amount {
			t.Errorf("amount %s: got value %q in the error, want it as written", amount, got)
		}
	}
}
