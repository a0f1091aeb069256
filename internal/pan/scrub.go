package pan

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Scrub returns s with every card number in it replaced by its masked form
// (424242******4242), by the rule of the package documentation: digits
// written together or in groups with any separators, inside words, JSON
// strings, URLs or anywhere else. Text without a card number is returned
// unchanged, and Scrub(Scrub(s)) == Scrub(s).
func Scrub(s string) string {
	// A pass only turns digits into '*', so this ends; a second pass is
	// needed only when masking one number left the tail of a long group
	// next to other digits that now read as a number of their own.
	for {
		t, changed := scrubOnce(s)
		if !changed {
			return s
		}
		s = t
	}
}

// Contains reports whether s holds a card number: exactly when Scrub would
// change it. Values that must survive storage unchanged (references, batch
// ids) are refused when it is true.
func Contains(s string) bool {
	if countDigits(s) < MinDigits {
		return false
	}
	found := false
	scan(s, func(start, end int, digits []byte) bool {
		found = true
		return false
	})
	return found
}

func scrubOnce(s string) (string, bool) {
	if countDigits(s) < MinDigits {
		return s, false
	}
	var b strings.Builder
	last := 0 // s[:last] is in b already
	scan(s, func(start, end int, digits []byte) bool {
		if last == 0 {
			b.Grow(len(s))
		}
		b.WriteString(s[last:start])
		maskDigits(&b, digits)
		last = end
		return true
	})
	if last == 0 {
		return s, false
	}
	b.WriteString(s[last:])
	return b.String(), true
}

// maskDigits writes the masked form of digits (ASCII, at least MinDigits).
func maskDigits(b *strings.Builder, d []byte) {
	n := len(d)
	b.Write(d[:keepFirst])
	for range n - keepFirst - keepLast {
		b.WriteByte('*')
	}
	b.Write(d[n-keepLast:])
}

// group is one maximal run of digits, s[start:end]; its values are
// digits[off:off+n] of the number it belongs to.
type group struct {
	start, end int
	off, n     int
	sep        string // the separators before it; "" for a number's first group
}

// scan finds the card numbers of s in order and calls found with the span
// of each (whole groups, separators inside included) and its ASCII digits.
// Spans do not overlap. found returns false to stop.
func scan(s string, found func(start, end int, digits []byte) bool) {
	var gs []group
	var digits []byte
	for i := 0; i < len(s); {
		r, size := rune(s[i]), 1
		if r >= utf8.RuneSelf {
			r, size = utf8.DecodeRuneInString(s[i:])
		}
		if _, ok := digitValue(r); !ok {
			i += size
			continue
		}
		// A number: groups of digits joined by runs of separators.
		gs, digits = gs[:0], digits[:0]
		sep := ""
		for {
			g := group{start: i, off: len(digits), sep: sep}
			for i < len(s) {
				r, size := rune(s[i]), 1
				if r >= utf8.RuneSelf {
					r, size = utf8.DecodeRuneInString(s[i:])
				}
				d, ok := digitValue(r)
				if !ok {
					break
				}
				digits = append(digits, '0'+d)
				i += size
			}
			g.end, g.n = i, len(digits)-g.off
			gs = append(gs, g)
			j := i
			for j < len(s) {
				l := sepLen(s, j)
				if l == 0 {
					break
				}
				j += l
			}
			if j == i || !digitAt(s, j) {
				break // the separators after the last group are not part of it
			}
			sep, i = s[i:j], j
		}
		if !cards(gs, digits, found) {
			return
		}
	}
}

// cards calls found for the card numbers in one number of groups gs. It
// returns false if found asked to stop.
func cards(gs []group, digits []byte, found func(start, end int, digits []byte) bool) bool {
	if len(digits) < MinDigits {
		return true
	}
	emit := func(a, b int) bool {
		return found(gs[a].start, gs[b].end, digits[gs[a].off:gs[b].off+gs[b].n])
	}
	k := len(gs)
	// A decimal point: 99999999999999.00 is two numbers, and the fraction of
	// 1 500 000 000 000.00 is not part of the integer.
	if k == 2 && gs[1].sep == "." {
		for g := range gs {
			if n := gs[g].n; n >= MinDigits && n <= MaxDigits && luhn(digits[gs[g].off:gs[g].off+n]) {
				if !emit(g, g) {
					return false
				}
			}
		}
		return true
	}
	if k > 2 && gs[k-1].sep == "." && gs[k-1].n <= 3 && !dotted(gs[1:k-1]) {
		k--
	}
	// Printed like a card number: a mistyped one is still one.
	if printed(gs[:k]) {
		return emit(0, k-1)
	}
	// Every Luhn-valid stretch of whole groups; overlapping stretches are
	// masked as one, so none keeps more than ten digits visible.
	from, to := -1, -1
	for g := 0; g < k; g++ {
		best := -1
		var sum luhnSum
		for h := g; h < k; h++ {
			if sum.n+gs[h].n > MaxDigits {
				break
			}
			sum.add(digits[gs[h].off : gs[h].off+gs[h].n])
			if sum.n >= MinDigits && sum.valid() {
				best = h
			}
		}
		switch {
		case best < 0:
		case from >= 0 && g <= to:
			to = max(to, best)
		default:
			if from >= 0 && !emit(from, to) {
				return false
			}
			from, to = g, best
		}
	}
	if from >= 0 {
		return emit(from, to)
	}
	return true
}

// luhnSum is the Luhn check of a digit string growing at its end: the
// digits in even and odd places, plain and doubled, summed apart, so that
// whichever place ends up last, the check needs no second pass.
type luhnSum struct {
	n            int
	plain, twice [2]int // by place parity, counted from the first digit
}

func (s *luhnSum) add(d []byte) {
	for _, c := range d {
		v := int(c - '0')
		w := 2 * v
		if w > 9 {
			w -= 9
		}
		s.plain[s.n%2] += v
		s.twice[s.n%2] += w
		s.n++
	}
}

// valid reports whether the digits added so far pass the Luhn check: the
// last digit is plain, the one before doubled, and so on.
func (s *luhnSum) valid() bool {
	last := (s.n - 1) % 2
	return (s.plain[last]+s.twice[1-last])%10 == 0
}

// printed reports whether gs is laid out the way card numbers are printed:
// 4-4-4-4 (a last group of one to four digits) or 4-6-4 and 4-6-5.
func printed(gs []group) bool {
	k, n := len(gs), 0
	for _, g := range gs {
		n += g.n
	}
	if k < 3 || n < MinDigits || n > MaxDigits || gs[0].n != 4 {
		return false
	}
	if k == 3 && gs[1].n == 6 && (gs[2].n == 4 || gs[2].n == 5) {
		return true
	}
	for _, g := range gs[1 : k-1] {
		if g.n != 4 {
			return false
		}
	}
	return gs[k-1].n <= 4
}

// dotted reports whether any of gs follows separators with a '.'.
func dotted(gs []group) bool {
	for _, g := range gs {
		if strings.IndexByte(g.sep, '.') >= 0 {
			return true
		}
	}
	return false
}

func digitAt(s string, i int) bool {
	if i >= len(s) {
		return false
	}
	r, _ := utf8.DecodeRuneInString(s[i:])
	_, ok := digitValue(r)
	return ok
}

// sepLen returns the length in bytes of the separator at s[i:], or 0.
func sepLen(s string, i int) int {
	c := s[i]
	switch c {
	case ' ', '\t', '-', '.', '/', '_':
		return 1
	}
	if c < utf8.RuneSelf {
		return 0
	}
	r, size := utf8.DecodeRuneInString(s[i:])
	switch {
	case unicode.In(r, unicode.Zs, unicode.Pd, unicode.Cf):
		return size
	case r == '\u2212', r == '\uff0e', r == '\uff0f', r == '\uff3f': // minus sign, full-width . / _
		return size
	}
	return 0
}
