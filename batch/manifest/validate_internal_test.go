package manifest

import (
	"net/mail"
	"testing"

	"golang.org/x/text/unicode/norm"
)

// TestSimpleNFC proves the fast path: every character it accepts
// is NFC, and so is every pair of them (nothing it accepts composes).
func TestSimpleNFC(t *testing.T) {
	var rs []rune
	for r := rune(0); r < 0x800; r++ {
		if simpleNFCRune(r) {
			rs = append(rs, r)
		}
	}
	if len(rs) < 300 {
		t.Fatalf("only %d characters on the fast path", len(rs))
	}
	for _, a := range rs {
		for _, b := range rs {
			if s := string([]rune{a, b}); !norm.NFC.IsNormalString(s) {
				t.Fatalf("%q (%U %U) is on the fast path but not NFC", s, a, b)
			}
		}
	}
	for _, s := range []string{"Иванов Иван", "Jean-Luc Dubois", "Anna Müller", "Пётр Алёнин", "O'Connor"} {
		if !simpleNFC(s) {
			t.Errorf("%q not on the fast path", s)
		}
	}
	for _, s := range []string{"Pe\u0301tr", "Й\u0306", "Ω\u2126", "ǅ"} {
		if simpleNFC(s) {
			t.Errorf("%q on the fast path", s)
		}
	}
}

// TestSimpleEmail: what the fast path accepts, net/mail accepts as
// exactly that address.
func TestSimpleEmail(t *testing.T) {
	for _, tt := range []struct {
		s    string
		fast bool
	}{
		{"ivan.petrov@example.com", true},
		{"a+tag@mail.example.co.uk", true},
		{"first_last%x@example-host.ru", true},
		{"a@b", true},
		{"", false}, {"@example.com", false}, {"ivan@", false}, {"a@@b", false}, {"a@b@c", false},
		{".a@b", false}, {"a.@b", false}, {"a..b@c", false}, {"a@.b", false}, {"a@b.", false}, {"a@b..c", false},
		{"Ivan <ivan@example.com>", false}, {"ivan@example.com, anna@example.com", false},
		{"иван@пример.рф", false}, {`"quoted"@example.com`, false}, {"a b@c", false},
	} {
		if got := simpleEmail(tt.s); got != tt.fast {
			t.Errorf("simpleEmail(%q) = %v, want %v", tt.s, got, tt.fast)
		}
		if tt.fast {
			a, err := mail.ParseAddress(tt.s)
			if err != nil || a.Name != "" || a.Address != tt.s {
				t.Errorf("fast path accepts %q, net/mail: %v, %+v", tt.s, err, a)
			}
		}
	}
}
