package refid_test

import (
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"

	"github.com/payouts/payouts/internal/refid"
)

func TestKeySame(t *testing.T) {
	tests := []struct {
		name string
		a, b string
	}{
		{"ASCII letter case", "EMP-0042-2026-11", "emp-0042-2026-11"},
		{"sharp s and capital sharp s", "REF-ß", "REF-ẞ"},
		{"sharp s and ss", "REF-ß", "ref-SS"},
		{"full-width", "ＰＡＹ-１", "PAY-1"},
		{"full-width lower case", "ｐａｙ－１", "PAY-1"},
		{"ligature", "ﬁle-1", "FILE-1"},
		{"Kelvin sign", "\u212a-1", "k-1"},
		{"Ohm sign", "\u2126-1", "ω-1"},
		{"Angstrom sign", "\u212b-1", "å-1"},
		{"circled digit", "PAY-①", "pay-1"},
		{"Roman numeral", "PAY-Ⅻ", "pay-xii"},
		{"no-break space", "PAY\u00a01", "PAY 1"},
		{"ideographic space", "PAY\u30001", "PAY 1"},
		{"decomposed accent", "Pe\u0301tr-1", "PÉTR-1"},
		{"final sigma", "ΟΔΟΣ-1", "οδος-1"},
		{"Cyrillic case", "ЗП-ЁЛКА", "зп-ёлка"},
		{"Cherokee case", "Ꭰ-1", "ꭰ-1"},
		{"dotted capital I", "PAY-İ", "pay-i\u0307"},
		{"long s", "PAY-ſ", "PAY-S"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ka, kb := refid.Key(tt.a), refid.Key(tt.b); ka != kb {
				t.Errorf("Key(%q) = %q, Key(%q) = %q; want equal", tt.a, ka, tt.b, kb)
			}
		})
	}
}

func TestKeyDifferent(t *testing.T) {
	tests := []struct {
		name string
		a, b string
	}{
		{"dotless i and I", "PAY-ı", "PAY-I"},
		{"dotless i and i", "PAY-ı", "PAY-i"},
		{"dotted capital I and I", "PAY-İ", "PAY-I"},
		{"Cyrillic and Latin look-alikes", "PAY-А1", "PAY-A1"},
		{"Arabic-Indic digit", "PAY-١", "PAY-1"},
		{"accent", "PETR-1", "PÉTR-1"},
		{"space inside", "PAY 1", "PAY1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if ka, kb := refid.Key(tt.a), refid.Key(tt.b); ka == kb {
				t.Errorf("Key(%q) = Key(%q) = %q; want different", tt.a, tt.b, ka)
			}
		})
	}
}

func TestKeyValue(t *testing.T) {
	tests := []struct{ in, want string }{
		{"EMP-0042", "emp-0042"},
		{"REF-ẞ", "ref-ss"},
		{"ＰＡＹ-１", "pay-1"},
		{"PAY-ı", "pay-ı"},
		{"PAY-I", "pay-i"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := refid.Key(tt.in); got != tt.want {
			t.Errorf("Key(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestKeyEveryCodePoint: for every assigned code point, the key is stable
// (Key(Key(r)) == Key(r)) and every letter-case variant Go knows
// (unicode.SimpleFold's orbit: K, k and the Kelvin sign) has the same key.
// Unassigned and private-use code points (six in seven of all) are left
// out: no table maps them, Check refuses them, and the fuzz target covers
// them; without them the test is fast enough for -race.
func TestKeyEveryCodePoint(t *testing.T) {
	bad := 0
	for r := rune(0); r <= unicode.MaxRune; r++ {
		if !utf8.ValidRune(r) || unicode.Is(unicode.Co, r) ||
			!unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.Cc, unicode.Cf) {
			continue
		}
		k := refid.Key(string(r))
		if kk := refid.Key(k); kk != k {
			bad++
			if bad <= 10 {
				t.Errorf("%U: Key = %q, Key(Key) = %q; want stable", r, k, kk)
			}
		}
		for o := unicode.SimpleFold(r); o != r; o = unicode.SimpleFold(o) {
			if ko := refid.Key(string(o)); ko != k {
				bad++
				if bad <= 10 {
					t.Errorf("%U and its case variant %U: got keys %q and %q, want equal", r, o, k, ko)
				}
			}
		}
	}
	if bad > 10 {
		t.Errorf("… %d code points wrong in all", bad)
	}
}

// TestUnicodeVersionsAgree: Check's "unassigned" comes from the standard
// library's tables and Key from golang.org/x/text's. If an upgrade makes
// them disagree, a character could be accepted as assigned while Key does
// not know how to normalize it, and its key could change with the next
// upgrade.
func TestUnicodeVersionsAgree(t *testing.T) {
	versions := map[string]string{"unicode": unicode.Version, "norm": norm.Version, "cases": cases.UnicodeVersion}
	for pkg, v := range versions {
		if v != unicode.Version {
			t.Errorf("got Unicode %s in %s, %s in unicode; want one version", v, pkg, unicode.Version)
		}
	}
}
