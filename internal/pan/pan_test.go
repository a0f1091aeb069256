package pan_test

import (
	"strings"
	"testing"

	"github.com/payouts/payouts/internal/pan"
)

func TestLuhn(t *testing.T) {
	tests := []struct {
		digits string
		want   bool
	}{
		{"4242424242424242", true},
		{"2200000000000004", true},
		{"4000000000000002", true},
		{"378282246310005", true},
		{"7000000000000005", true},
		{"4242424242424241", false},
		{"4242424242424240", false}, // a spreadsheet's 15-digit precision loss
		{"0", true},
		{"", false},
		{"4242-4242", false}, // digits only
		{"42424242424242４2", false},
	}
	for _, tt := range tests {
		if got := pan.Luhn(tt.digits); got != tt.want {
			t.Errorf("Luhn(%q): got %v, want %v", tt.digits, got, tt.want)
		}
	}
}

func TestMask(t *testing.T) {
	tests := []struct{ in, want string }{
		{"4242424242424242", "424242******4242"},
		{"4242 4242 4242 4242", "424242******4242"},
		{"4242-4242-4242-4242", "424242******4242"},
		{"4222222222222", "422222***2222"},               // 13 digits
		{"6200000000000000005", "620000*********0005"},   // 19 digits
		{"42424242424242424242", "424242**********4242"}, // 20: not a card, masked all the same
		{"４２４２４２４２４２４２４２４２", "424242******4242"},         // full-width digits
		{"'4242424242424242", "424242******4242"},
		{"424242424242", "********4242"}, // 12 digits: not a card, maybe a mistyped one
		{"4.24242E+15", "*.***42E+15"},   // what went wrong stays readable
		{"12345", "*2345"},
		{"1234", "****"},
		{"12", "**"},
		{"", ""},
		{"abc", "abc"},
	}
	for _, tt := range tests {
		if got := pan.Mask(tt.in); got != tt.want {
			t.Errorf("Mask(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMaskParts(t *testing.T) {
	tests := []struct{ bin, last4, want string }{
		{"424242", "4242", "424242******4242"},
		{"", "4242", "******4242"},
		{"", "", ""},
	}
	for _, tt := range tests {
		if got := pan.MaskParts(tt.bin, tt.last4); got != tt.want {
			t.Errorf("MaskParts(%q, %q): got %q, want %q", tt.bin, tt.last4, got, tt.want)
		}
	}
}

// scrubTests are shared by TestScrub and TestContains: Contains is true
// exactly when the text changes.
var scrubTests = []struct{ name, in, want string }{
	// Written together, in any context.
	{"alone", "4242424242424242", "424242******4242"},
	{"in a sentence", "card 4242424242424242 declined", "card 424242******4242 declined"},
	{"in JSON", `{"number":"5555555555554444"}`, `{"number":"555555******4444"}`},
	{"JSON number", `{"n":4242424242424242,"m":1}`, `{"n":424242******4242,"m":1}`},
	{"in a URL path", "https://x.test/cards/4242424242424242/status", "https://x.test/cards/424242******4242/status"},
	{"in a query", "/pay?card=4242424242424242&a=1", "/pay?card=424242******4242&a=1"},
	{"glued to letters", "x4242424242424242y", "x424242******4242y"},
	{"key=value", "card=4242424242424242;cvv", "card=424242******4242;cvv"},
	{"after a colon", "pan:4242424242424242", "pan:424242******4242"},
	{"amex 15", "amex 378282246310005.", "amex 378282*****0005."},
	{"visa 13", "visa13 4222222222222", "visa13 422222***2222"},
	{"19 digits", "19 digits 4242424242424242428", "19 digits 424242*********2428"},
	{"non-card IIN 7", "ref 7000000000000005", "ref 700000******0005"},
	{"two cards", "4242424242424242 and 5555555555554444", "424242******4242 and 555555******4444"},
	{"full-width digits", "card ４２４２４２４２４２４２４２４２", "card 424242******4242"},
	{"Arabic-Indic digits", "٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢", "424242******4242"},
	{"spreadsheet tail", "4242424242424242.00", "424242******4242.00"},

	// Written in groups, with any separators.
	{"spaces", "4242 4242 4242 4242", "424242******4242"},
	{"dashes", "4242-4242-4242-4242", "424242******4242"},
	{"dots", "4242.4242.4242.4242", "424242******4242"},
	{"slashes", "4242/4242/4242/4242", "424242******4242"},
	{"underscores", "4242_4242_4242_4242", "424242******4242"},
	{"double spaces", "4242  4242  4242  4242", "424242******4242"},
	{"no-break spaces", "4242\u00a04242\u00a04242\u00a04242", "424242******4242"},
	{"narrow no-break spaces", "4242\u202f4242\u202f4242\u202f4242", "424242******4242"},
	{"tabs", "4242\t4242\t4242\t4242", "424242******4242"},
	{"en dashes", "4242–4242–4242–4242", "424242******4242"},
	{"spaced dashes", "4242 - 4242 - 4242 - 4242", "424242******4242"},
	{"zero-width spaces", "4242\u200b4242\u200b4242\u200b4242", "424242******4242"},
	{"soft hyphens", "4242\u00ad4242\u00ad4242\u00ad4242", "424242******4242"},
	{"mixed", "4242 4242-4242.4242", "424242******4242"},
	{"amex groups", "3782 822463 10005", "378282*****0005"},
	{"irregular groups", "42 424242 42424242", "424242******4242"},
	{"in a description", "refund to card 5555 5555 5555 4444 please", "refund to card 555555******4444 please"},
	{"after a date", "2026-11-05 4242424242424242", "2026-11-05 424242******4242"},
	{"after a count", "line 12 4012 8888 8888 1881", "line 12 401288******1881"},
	{"followed by more digits", "4242 4242 4242 4242 1234 5678", "424242******4242 1234 5678"},
	{"dotted, then a sentence", "card 4242.4242.4242.4242.", "card 424242******4242."},
	{"two in one run", "4242424242424242 5555555555554444", "424242******4242 555555******4444"},
	{"overlapping candidates masked as one", "1 4242 4242 4242 4242 9", "1 424242******4242 9"},

	// A mistyped card number written like a card is still masked.
	{"printed, fails Luhn", "card 4242 4242 4242 4241", "card 424242******4241"},
	{"printed 4-4-4-4-3, fails Luhn", "4242-4242-4242-4242-421", "424242*********2421"},
	{"printed 4-6-5, fails Luhn", "3782 822463 10006", "378282*****0006"},
	{"printed with dots, fails Luhn", "4242.4242.4242.4241", "424242******4241"},
	{"printed, then cents", "4242 4242 4242 4241.00", "424242******4241.00"},

	// Not card numbers.
	{"fails Luhn, together", "not luhn 4242424242424241", "not luhn 4242424242424241"},
	{"12 digits", "short 424242424242", "short 424242424242"},
	{"20 digits", "twenty 42424242424242424242", "twenty 42424242424242424242"},
	{"23-digit ARN", "arn 74242424242424242424242", "arn 74242424242424242424242"},
	{"amount with cents", "amount 99999999999999.00", "amount 99999999999999.00"},
	{"amount 12 digits", "999999999999.00", "999999999999.00"},
	{"amount with comma", "1 500 000,00", "1 500 000,00"},
	{"amount thousands", "1 500 000.00 RUB", "1 500 000.00 RUB"},
	{"amount 1,500,000.00", "1,500,000.00", "1,500,000.00"},
	{"unix time with fraction", "1730800000.123456", "1730800000.123456"},
	{"decimal with a long fraction", "4242424242.424242", "4242424242.424242"},
	{"RFC 3339", "2026-11-05T12:00:00.123456Z", "2026-11-05T12:00:00.123456Z"},
	{"row key", "payouts:0123456789abcdef:1:EMP-0042-2026-11", "payouts:0123456789abcdef:1:EMP-0042-2026-11"},
	{"colons join nothing", "4242:4242:4242:4242", "4242:4242:4242:4242"},
	{"URL escapes join nothing", "?pan=4242%204242%204242%204242", "?pan=4242%204242%204242%204242"},
	{"commas join nothing", "4242,4242,4242,4242", "4242,4242,4242,4242"},
	{"line breaks join nothing", "4242\n4242\n4242\n4242", "4242\n4242\n4242\n4242"},
	{"already masked", "424242******4242", "424242******4242"},
	{"reference", "EMP-0042-2026-11", "EMP-0042-2026-11"},
	{"phone", "+7 916 123-45-67", "+7 916 123-45-67"},
	{"UK phone", "+44 20 7946 0958", "+44 20 7946 0958"},
	{"session id", "session ps_3230", "session ps_3230"},
	{"amount in minor units", "amount 150000 RUB", "amount 150000 RUB"},
	{"no digits", "Зарплата за ноябрь", "Зарплата за ноябрь"},
	{"empty", "", ""},
}

func TestScrub(t *testing.T) {
	for _, tt := range scrubTests {
		t.Run(tt.name, func(t *testing.T) {
			got := pan.Scrub(tt.in)
			if got != tt.want {
				t.Errorf("Scrub(%q): got %q, want %q", tt.in, got, tt.want)
			}
			if again := pan.Scrub(got); again != got {
				t.Errorf("Scrub(%q): got %q, want it unchanged (idempotent)", got, again)
			}
		})
	}
}

func TestContains(t *testing.T) {
	for _, tt := range scrubTests {
		if got, want := pan.Contains(tt.in), tt.in != tt.want; got != want {
			t.Errorf("%s: Contains(%q): got %v, want %v", tt.name, tt.in, got, want)
		}
	}
}

// TestScrubLongText: card numbers far into a long text (a webhook body)
// are found, and the text around them is kept byte for byte.
func TestScrubLongText(t *testing.T) {
	pad := strings.Repeat(`{"id":"ps_3230","amount":150000,"at":"2026-11-05T12:00:00.000000Z"},`, 2000)
	in := pad + `"number":"4242 4242 4242 4242"` + pad
	want := pad + `"number":"424242******4242"` + pad
	if got := pan.Scrub(in); got != want {
		t.Errorf("Scrub of a %d-byte text: got a %d-byte text, want %d bytes with the card masked", len(in), len(got), len(want))
	}
	if got := pan.Scrub(pad); got != pad {
		t.Errorf("Scrub changed a text without card numbers")
	}
}

func BenchmarkScrub(b *testing.B) {
	body := strings.Repeat(`{"type":"payment_finished","session":{"id":"ps_3230","status":"success","payments":[{"id":"po_1313","amount_details":{"amount":10000,"currency":"rub"},"metadata":"payouts:0123456789abcdef:1:EMP-0042-2026-11","created_at":"2024-05-27T02:03:00.000000Z","transaction_info":{"rrn":"425307614918"}}]}}`, 4)
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		pan.Scrub(body)
	}
}

// BenchmarkScrubWorst: a text that is one long run of short digit groups,
// every stretch of which is tried.
func BenchmarkScrubWorst(b *testing.B) {
	s := strings.Repeat("1 2 3 4 5 6 7 8 9 0 ", 1<<15)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		pan.Scrub(s)
	}
}
