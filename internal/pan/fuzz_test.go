package pan_test

import (
	"regexp"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/payouts/payouts/internal/pan"
)

// luhnValid is the test's own Luhn check, written unlike pan.Luhn: with a
// table of doubled digits.
func luhnValid(d string) bool {
	const doubled = "0246813579" // 2·n with its digits summed, for n = 0…9
	sum := 0
	for i := range len(d) {
		n := d[len(d)-1-i] - '0'
		if i%2 == 1 {
			n = doubled[n] - '0'
		}
		sum += int(n)
	}
	return sum%10 == 0
}

// digitRuns returns the maximal runs of decimal digits (of any script) in
// s that are made of ASCII digits only; runs with other digits are left to
// the table tests.
func digitRuns(s string) []string {
	var out []string
	for _, run := range strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsDigit(r) }) {
		if strings.Trim(run, "0123456789") == "" {
			out = append(out, run)
		}
	}
	return out
}

// countDigits counts the decimal digits of any script in s.
func countDigits(s string) int {
	n := 0
	for _, r := range s {
		if unicode.IsDigit(r) {
			n++
		}
	}
	return n
}

// containsNumber reports whether s holds number (digits and separators) not
// glued to more digits.
func containsNumber(s, number string) bool {
	for i := 0; ; {
		j := strings.Index(s[i:], number)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(number)
		before, _ := utf8.DecodeLastRuneInString(s[:start])
		after, _ := utf8.DecodeRuneInString(s[end:])
		if !unicode.IsDigit(before) && !unicode.IsDigit(after) {
			return true
		}
		i = start + 1
	}
}

// grouped matches a number printed in four groups of four with one of the
// common separators.
var grouped = regexp.MustCompile(`(?:^|[^0-9])([0-9]{4})[ \-./_]+([0-9]{4})[ \-./_]+([0-9]{4})[ \-./_]+([0-9]{4})(?:$|[^0-9])`)

// FuzzScrub: whatever the input, the output holds no Luhn-valid run of
// 13–19 digits, none of the input's card numbers printed in groups of
// four, no more digits than the input; scrubbing is
// idempotent, Contains agrees with it, and text without digits is left
// alone.
func FuzzScrub(f *testing.F) {
	for _, s := range []string{
		"4242424242424242", "4242 4242 4242 4242", "4242.4242.4242.4242", "4242/4242/4242/4242",
		"4242_4242_4242_4242", "4242  4242  4242  4242", "1-4242424242424242-1", "99999999999999.00",
		"1 500 000,00", `{"number":"5555555555554444"}`, "abc", "0000000000000",
		"1 4242 4242 4242 4242 9", "4242424242424242424242424242", "４２４２４２４２４２４２４２４２",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := pan.Scrub(s)
		for _, run := range digitRuns(out) {
			if len(run) >= pan.MinDigits && len(run) <= pan.MaxDigits && luhnValid(run) {
				t.Fatalf("Scrub(%q) = %q keeps the Luhn-valid run %s", s, out, run)
			}
		}
		for _, m := range grouped.FindAllStringSubmatch(s, -1) {
			written := strings.TrimFunc(m[0], func(r rune) bool { return r < '0' || r > '9' })
			if luhnValid(m[1]+m[2]+m[3]+m[4]) && containsNumber(out, written) {
				t.Fatalf("Scrub(%q) = %q keeps the input's card number %s", s, out, written)
			}
		}
		if again := pan.Scrub(out); again != out {
			t.Fatalf("Scrub is not idempotent: Scrub(%q) = %q, Scrub of that = %q", s, out, again)
		}
		if got, want := pan.Contains(s), out != s; got != want {
			t.Fatalf("Contains(%q) = %v, want %v (Scrub gives %q)", s, got, want, out)
		}
		if d, dIn := countDigits(out), countDigits(s); d > dIn {
			t.Fatalf("Scrub(%q) = %q has %d digits, more than the input's %d", s, out, d, dIn)
		}
		if !strings.ContainsFunc(s, unicode.IsDigit) && out != s {
			t.Fatalf("Scrub(%q) = %q changed a text without digits", s, out)
		}
	})
}
