package refid

import (
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/cases"
	"golang.org/x/text/unicode/norm"
)

// folders pools case folders: a cases.Caser may keep state between calls
// and must not be shared between goroutines.
var folders = sync.Pool{New: func() any { c := cases.Fold(); return &c }}

// Key returns the canonical form of a reference: NFKC, full case folding,
// NFKC again (see the package documentation for why). Two references are the
// same reference if and only if their keys are equal. Key is defined for
// every string, valid UTF-8 or not, and Key(Key(s)) == Key(s).
func Key(reference string) string {
	if k, ok := asciiKey(reference); ok {
		return k
	}
	return canonical(reference)
}

// AppendKey appends Key(reference) to dst and returns the extended buffer.
// For an ASCII reference it allocates nothing, which matters to a manifest
// of a million rows.
func AppendKey(dst []byte, reference string) []byte {
	if isASCII(reference) {
		for i := 0; i < len(reference); i++ {
			c := reference[i]
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			dst = append(dst, c)
		}
		return dst
	}
	return append(dst, canonical(reference)...)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// canonical is Key without the ASCII shortcut. Invalid UTF-8 is made valid
// first (each invalid run becomes one U+FFFD), because the normalizer
// passes invalid bytes through while the case folder replaces them, and
// the key would then change when computed again.
func canonical(reference string) string {
	if !utf8.ValidString(reference) {
		reference = strings.ToValidUTF8(reference, "\uFFFD")
	}
	s := norm.NFKC.String(reference)
	c := folders.Get().(*cases.Caser)
	s = c.String(s)
	c.Reset()
	folders.Put(c)
	s = strings.Map(foldCherokee, s)
	return norm.NFKC.String(s)
}

// asciiKey is Key for ASCII, where NFKC changes nothing and full case
// folding is A–Z to a–z. ok is false for anything else.
func asciiKey(s string) (string, bool) {
	upper := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			return "", false
		}
		if 'A' <= c && c <= 'Z' {
			upper = true
		}
	}
	if !upper {
		return s, true
	}
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b), true
}

// foldCherokee folds a Cherokee letter to upper case, as CaseFolding.txt
// does (golang.org/x/text folds it to lower case; see the package
// documentation).
func foldCherokee(r rune) rune {
	if (r >= 0x13a0 && r <= 0x13fd) || (r >= 0xab70 && r <= 0xabbf) {
		return unicode.ToUpper(r)
	}
	return r
}
