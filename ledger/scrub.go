package ledger

import "strings"

// ScrubPAN replaces every card-number-like run in s with its masked form
// (first six digits, asterisks, last four: 424242******4242).
//
// A run is 13 to 19 ASCII digits, possibly split into groups by single
// spaces or dashes ("4242 4242 4242 4242"), that passes the Luhn check.
// Neighbouring groups are considered too: in "ref 2026-4242424242424242" the
// card number is found and masked, the date-like prefix kept. A single group
// of more than 19 digits is left alone (it is not shaped like a card number).
func ScrubPAN(s string) string {
	if !hasLongDigits(s) {
		return s
	}
	var b strings.Builder
	i := 0
	last := 0 // bytes of s before last are already in b
	for i < len(s) {
		if !isDigit(s[i]) {
			i++
			continue
		}
		groups := digitGroups(s, i)
		end := groups[len(groups)-1].end
		for g := 0; g < len(groups); {
			h, ok := panSpan(s, groups, g)
			if !ok {
				g++
				continue
			}
			b.WriteString(s[last:groups[g].start])
			b.WriteString(mask(s[groups[g].start:groups[h].end]))
			last = groups[h].end
			g = h + 1
		}
		i = end
	}
	if last == 0 {
		return s
	}
	b.WriteString(s[last:])
	return b.String()
}

// group is one maximal run of digits, s[start:end].
type group struct{ start, end int }

// digitGroups returns the digit groups starting at i that are chained by
// single spaces or dashes.
func digitGroups(s string, i int) []group {
	var gs []group
	for {
		j := i
		for j < len(s) && isDigit(s[j]) {
			j++
		}
		gs = append(gs, group{i, j})
		if j+1 < len(s) && (s[j] == ' ' || s[j] == '-') && isDigit(s[j+1]) {
			i = j + 1
			continue
		}
		return gs
	}
}

// panSpan finds the longest chain of groups from g whose digits form a
// Luhn-valid 13–19 digit number; it returns the index of its last group.
func panSpan(s string, gs []group, g int) (int, bool) {
	n := 0
	last := -1
	for h := g; h < len(gs); h++ {
		n += gs[h].end - gs[h].start
		if n > 19 {
			break
		}
		last = h
	}
	for h := last; h >= g; h-- {
		digits := digitsOf(s[gs[g].start:gs[h].end])
		if len(digits) < 13 {
			break
		}
		if luhn(digits) {
			return h, true
		}
	}
	return 0, false
}

// mask keeps the first six and last four digits of a card number.
func mask(span string) string {
	d := digitsOf(span)
	return d[:6] + strings.Repeat("*", len(d)-10) + d[len(d)-4:]
}

func digitsOf(s string) string {
	if !strings.ContainsAny(s, " -") {
		return s
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			b = append(b, s[i])
		}
	}
	return string(b)
}

// luhn reports whether the digit string passes the Luhn check.
func luhn(d string) bool {
	sum := 0
	double := false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if double {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

// hasLongDigits is a fast pre-check: could s hold 13 digits at all?
func hasLongDigits(s string) bool {
	n := 0
	for i := 0; i < len(s); i++ {
		if isDigit(s[i]) {
			n++
			if n >= 13 {
				return true
			}
		}
	}
	return false
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
