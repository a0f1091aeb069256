package refid

import (
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// FuzzKey checks what the rest of the processor relies on: the key is
// stable, the ASCII shortcuts agree with the full computation, the
// normalization form of the input does not matter, and Check never accepts
// a reference whose key is empty or has surrounding spaces.
func FuzzKey(f *testing.F) {
	for _, s := range []string{"", "EMP-0042-2026-11", "REF-ß", "REF-ẞ", "ＰＡＹ-１", "PAY-ı", "PAY-İ", "ﬁle", "\u212a", "ΟΔΟΣ",
		"Ꭰꭰ", "α\u0345", "ᾼ", "ǅ", "\u0130\u0307", "i\u0307\u0301", "\xff", "PAY-А1", "¨PAY", "\u1e9e\u0301"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k := Key(s)
		if kk := Key(k); kk != k {
			t.Fatalf("Key(%q) = %q, Key of that = %q; want stable", s, k, kk)
		}
		if ascii, ok := asciiKey(s); ok && ascii != canonical(s) {
			t.Fatalf("Key(%q): ASCII shortcut %q, full computation %q", s, ascii, canonical(s))
		}
		if !utf8.ValidString(s) {
			return
		}
		for _, form := range []norm.Form{norm.NFC, norm.NFD, norm.NFKD} {
			if got := Key(form.String(s)); got != k {
				t.Fatalf("Key(%q) = %q, but Key of its %v form = %q", s, k, form, got)
			}
		}
		if isASCII(s) && (Key(strings.ToLower(s)) != k || Key(strings.ToUpper(s)) != k) {
			t.Fatalf("Key(%q) = %q; its upper and lower case have other keys", s, k)
		}
		if ak := AppendKey([]byte("x"), s); string(ak) != "x"+k {
			t.Fatalf("AppendKey(x, %q) = %q, want x%q", s, ak, k)
		}
		if err := Check(s); err == nil && (k == "" || strings.TrimSpace(k) != k) {
			t.Fatalf("Check(%q) accepted a reference whose key %q is empty or has surrounding spaces", s, k)
		}
	})
}
