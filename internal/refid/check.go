package refid

import (
	"errors"
	"fmt"
	"slices"
	"unicode"
	"unicode/utf8"
)

// Sentinels: every *Problem from Check wraps exactly one of them.
var (
	// ErrEmpty: the reference, or its canonical form, is empty.
	ErrEmpty = errors.New("empty reference")
	// ErrEncoding: the reference is not valid UTF-8, or holds the
	// replacement character U+FFFD left by a lossy conversion.
	ErrEncoding = errors.New("reference is not clean UTF-8")
	// ErrInvisible: a control, format (zero-width, bidirectional), variation
	// selector or other invisible character, a line or paragraph separator,
	// or a character that prints as blank.
	ErrInvisible = errors.New("reference has an invisible character")
	// ErrUnassigned: a private-use, surrogate or unassigned code point.
	ErrUnassigned = errors.New("reference has a character with no agreed meaning")
	// ErrSpace: the reference or its canonical form starts or ends with a
	// space.
	ErrSpace = errors.New("reference starts or ends with a space")
	// ErrMixedScripts: letters from scripts that are mixed in a confusable
	// way, such as Latin with Cyrillic or Greek.
	ErrMixedScripts = errors.New("reference mixes scripts")
)

// Problem says why a reference cannot have a safe identity.
type Problem struct {
	// Err is the sentinel (ErrEmpty, ErrInvisible, ...).
	Err error
	// Rune is the character at fault, or -1 when there is none.
	Rune rune
	// Msg says what is wrong, for people; it does not repeat the reference.
	Msg string
	// Hint says what to do about it.
	Hint string
}

// Error returns the message and the hint.
func (p *Problem) Error() string { return p.Msg + " — " + p.Hint }

// Unwrap returns Err.
func (p *Problem) Unwrap() error { return p.Err }

const retype = "retype the reference with visible characters only (letters, digits and punctuation such as - _ / .)"

// Check returns a *Problem if the reference cannot have a safe identity
// (see the package documentation), nil if it can. It does not trim: a
// reference with surrounding spaces is refused, so callers trim first if
// their format allows it. Length limits are the caller's.
func Check(reference string) error {
	if reference == "" {
		return &Problem{Err: ErrEmpty, Rune: -1, Msg: "reference is empty", Hint: "every payout needs a reference, e.g. EMP-0042-2026-11"}
	}
	ascii := true
	prev := rune(-1)
	for i, r := range reference {
		if r >= utf8.RuneSelf {
			ascii = false
		}
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(reference[i:]); size == 1 {
				return &Problem{Err: ErrEncoding, Rune: -1, Msg: "reference is not valid UTF-8",
					Hint: "save the file as UTF-8 text (it may be in a legacy encoding such as Windows-1251)"}
			}
		}
		if p := checkRune(r); p != nil {
			return p
		}
		if p := checkMark(prev, r); p != nil {
			return p
		}
		prev = r
	}
	if p := checkEnds(reference, "reference"); p != nil {
		return p
	}
	if ascii {
		return nil // one script at most, and the key is the reference in lower case
	}
	key := Key(reference)
	if key == "" {
		return &Problem{Err: ErrEmpty, Rune: -1, Msg: "reference has an empty canonical form", Hint: retype}
	}
	if p := checkEnds(key, "reference in its canonical form (NFKC, case-folded)"); p != nil {
		return p
	}
	if p := checkScripts(reference); p != nil {
		return p
	}
	if p := checkScripts(key); p != nil {
		return p
	}
	return nil
}

// checkRune refuses a character that is invisible, prints as blank, or has
// no agreed meaning.
func checkRune(r rune) *Problem {
	if r >= 0x20 && r < 0x7f {
		return nil
	}
	invisible := func(what string) *Problem {
		return &Problem{Err: ErrInvisible, Rune: r, Msg: fmt.Sprintf("reference contains %s %U", what, r),
			Hint: retype + "; a reference copied from a web page or a chat often carries invisible characters"}
	}
	switch {
	case r == utf8.RuneError:
		return &Problem{Err: ErrEncoding, Rune: r, Msg: "reference contains the replacement character U+FFFD (text damaged by a conversion between encodings)",
			Hint: "retype the reference, or export the file again as UTF-8"}
	case unicode.Is(unicode.Cc, r):
		return invisible("the control character")
	case isBidiControl(r):
		return &Problem{Err: ErrInvisible, Rune: r,
			Msg:  fmt.Sprintf("reference contains the bidirectional text control %U, which can make it display differently from what it is", r),
			Hint: retype}
	case unicode.Is(unicode.Cf, r):
		return invisible("the invisible formatting character (zero-width space, joiner or similar)")
	case unicode.Is(unicode.Zl, r) || unicode.Is(unicode.Zp, r):
		return invisible("the line or paragraph separator")
	case unicode.Is(unicode.Variation_Selector, r):
		return invisible("the invisible variation selector")
	case unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r):
		return invisible("the invisible character")
	case r == 0x2800: // BRAILLE PATTERN BLANK: a letter-like character that prints as a space
		return invisible("the blank-looking character")
	case unicode.Is(unicode.Co, r):
		return &Problem{Err: ErrUnassigned, Rune: r,
			Msg:  fmt.Sprintf("reference contains the private-use character %U, which has no meaning outside one font or program", r),
			Hint: retype}
	case unicode.Is(unicode.Cs, r):
		return &Problem{Err: ErrUnassigned, Rune: r, Msg: fmt.Sprintf("reference contains the surrogate code point %U", r), Hint: retype}
	case !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs):
		return &Problem{Err: ErrUnassigned, Rune: r,
			Msg:  fmt.Sprintf("reference contains %U, which is not an assigned character in Unicode %s (the version this payouts knows)", r, unicode.Version),
			Hint: retype}
	}
	return nil
}

// checkMark refuses an accent that cannot be seen, so that the reference
// looks like another one (Unicode TR 39, section 5.4): a dot above (U+0307)
// on a letter that already has a dot (i + U+0307 looks like i), or the same
// nonspacing mark twice in a row (é + U+0301 looks like é).
func checkMark(prev, r rune) *Problem {
	if r < 0x300 || !unicode.Is(unicode.Mn, r) {
		return nil
	}
	var what string
	switch {
	case r == 0x307 && prev >= 0 && unicode.Is(unicode.Soft_Dotted, prev):
		what = fmt.Sprintf("a dot above (U+0307) on %q, which has a dot already", string(prev))
	case r == prev:
		what = fmt.Sprintf("the accent %U twice in a row", r)
	default:
		return nil
	}
	return &Problem{Err: ErrInvisible, Rune: r, Msg: "reference has " + what + ": it looks like the same reference without it",
		Hint: "retype the reference; a reference copied from another program may carry an accent as a separate character"}
}

// isBidiControl reports whether r is one of the Bidi_Control characters
// (ALM, LRM, RLM, the embeddings, overrides and isolates): they reorder how
// text is shown without being shown themselves.
func isBidiControl(r rune) bool {
	return r == 0x061c || r == 0x200e || r == 0x200f || (r >= 0x202a && r <= 0x202e) || (r >= 0x2066 && r <= 0x2069)
}

// checkEnds refuses a space at either end of s; what names s in messages.
func checkEnds(s, what string) *Problem {
	first, _ := utf8.DecodeRuneInString(s)
	last, _ := utf8.DecodeLastRuneInString(s)
	for _, r := range [2]rune{first, last} {
		if unicode.Is(unicode.White_Space, r) {
			return &Problem{Err: ErrSpace, Rune: r, Msg: fmt.Sprintf("%s starts or ends with the space character %U", what, r),
				Hint: "remove the spaces around the reference (the same reference without them would be another one)"}
		}
	}
	return nil
}

// scriptSets are the sets of scripts whose letters may be mixed in one
// reference: one script alone always may. They are the "highly restrictive"
// level of Unicode TR 39 (section 5.2): Latin only with the scripts Japanese,
// Chinese and Korean are written in, never with Cyrillic or Greek, whose
// letters include look-alikes of Latin ones.
var scriptSets = [][]string{
	{"Latin", "Han", "Hiragana", "Katakana"},
	{"Latin", "Han", "Bopomofo"},
	{"Latin", "Han", "Hangul"},
}

// checkScripts refuses letters from scripts that may not be mixed.
func checkScripts(s string) *Problem {
	var seen []string // scripts of the letters, in order of appearance
	var firstOf []rune
	for _, r := range s {
		if !unicode.IsLetter(r) {
			continue
		}
		sc := scriptOf(r)
		if sc == "" || slices.Contains(seen, sc) {
			continue
		}
		seen, firstOf = append(seen, sc), append(firstOf, r)
		if len(seen) > 1 && !mixable(seen) {
			return &Problem{Err: ErrMixedScripts, Rune: r,
				Msg: fmt.Sprintf("reference mixes %s and %s letters (%q %U is %s, %q %U is %s): letters of another alphabet can look exactly like Latin ones, so this reference could be taken for a different one",
					seen[0], sc, string(firstOf[0]), firstOf[0], seen[0], string(r), r, sc),
				Hint: "retype the reference in one alphabet; a keyboard left in another layout types Cyrillic А, В, Е, К, М, Н, О, Р, С, Т, Х that look Latin"}
		}
	}
	return nil
}

// mixable reports whether the scripts may be mixed in one reference.
func mixable(scripts []string) bool {
	for _, set := range scriptSets {
		ok := true
		for _, sc := range scripts {
			if !slices.Contains(set, sc) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// commonScripts are tried first: the scripts of nearly every reference.
var commonScripts = []string{"Latin", "Cyrillic", "Greek", "Han", "Hiragana", "Katakana", "Hangul", "Arabic", "Hebrew", "Armenian", "Georgian"}

// allScripts is every script Go knows, in a fixed order.
var allScripts = func() []string {
	names := make([]string, 0, len(unicode.Scripts))
	for name := range unicode.Scripts {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}()

// scriptOf returns the script of r, or "" for Common and Inherited (shared
// by every script: they mix with anything).
func scriptOf(r rune) string {
	if r < utf8.RuneSelf {
		return "Latin" // only called for ASCII letters
	}
	for _, name := range commonScripts {
		if unicode.Is(unicode.Scripts[name], r) {
			return name
		}
	}
	for _, name := range allScripts {
		if name == "Common" || name == "Inherited" {
			continue
		}
		if unicode.Is(unicode.Scripts[name], r) {
			return name
		}
	}
	return ""
}
