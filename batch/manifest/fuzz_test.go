package manifest_test

import (
	"bytes"
	"errors"
	"fmt"
	"net/mail"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/internal/refid"
)

// FuzzRead: Read never panics, every row it hands to fn obeys
// every rule, a valid file's rows add up to its summary, and no output shows
// a card number from the input.
func FuzzRead(f *testing.F) {
	seeds, _ := filepath.Glob("testdata/*.csv")
	samples, _ := filepath.Glob("../../samples/*.csv")
	for _, p := range append(seeds, samples...) {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, uint8(0))
		f.Add(data, uint8(3))
	}
	f.Add([]byte(manifestHeader+"R-1,1500,RUB,4242424242424242,Ivan,,\nR-2,1500,RUB,4242424242424242,Ivan,,\n"), uint8(1))
	f.Add([]byte("reference;amount;currency;card_number;recipient_name\r\nR;\"1 500,5\";rub;2200000000000004;\"A\r\nB\"\r\n"), uint8(0))
	f.Add(makeXLSX(f, xlsxSheet{name: "S", rows: [][]any{xlsxHeader, {"R-1", 1500.5, "RUB", "4242424242424242", "Ivan", nil, "a\nb"}, {7, "1,500", "RUB", 4242424242424242, "Ivan"}}}), uint8(0))
	f.Fuzz(func(t *testing.T, data []byte, flags uint8) {
		opts := manifest.Options{
			AllowDuplicates:   flags&1 != 0,
			AllowExtraColumns: flags&2 != 0,
			MaxErrors:         5,
		}
		if flags&4 != 0 {
			opts.MaxLineBytes = 64
			opts.MaxRows = 3
		}
		var rows []manifest.Row
		sum, err := manifest.Read(bytes.NewReader(data), opts, func(r manifest.Row) error {
			rows = append(rows, r)
			return nil
		})
		var ve *manifest.ValidationError
		if err != nil && !errors.As(err, &ve) {
			t.Fatalf("Read: %v, want nil or *ValidationError", err)
		}

		refs := map[string]int{}
		payouts := map[string]int{}
		totals := map[string]int64{}
		prevLine := 1
		for _, r := range rows {
			checkRowRules(t, r)
			if r.Line <= prevLine {
				t.Fatalf("row line %d after line %d", r.Line, prevLine)
			}
			prevLine = r.Line
			// One reference identity: two spellings with one key are one
			// reference (and PAY-İ, PAY-I, equal in lower case, are two).
			ref := refid.Key(r.Reference)
			if first, dup := refs[ref]; dup {
				t.Fatalf("reference %q on lines %d and %d accepted", r.Reference, first, r.Line)
			}
			refs[ref] = r.Line
			key := fmt.Sprintf("%s|%d|%s", r.Card.Digits(), r.Amount, r.Currency)
			if first, dup := payouts[key]; dup && !opts.AllowDuplicates {
				t.Fatalf("duplicate payout on lines %d and %d accepted without AllowDuplicates", first, r.Line)
			}
			payouts[key] = r.Line
			totals[r.Currency] += r.Amount
		}
		if err == nil {
			if len(rows) != sum.Rows || sum.Rows == 0 {
				t.Fatalf("valid file: fn saw %d rows, summary has %d", len(rows), sum.Rows)
			}
			if fmt.Sprint(totals) != fmt.Sprint(sum.Totals) {
				t.Fatalf("valid file: rows add up to %v, summary says %v", totals, sum.Totals)
			}
			if sum.SHA256 == "" {
				t.Fatal("valid file without SHA256")
			}
		} else {
			if ve.Total < len(ve.Errors) || len(ve.Errors) == 0 || len(ve.Errors) > 5 {
				t.Fatalf("ValidationError lists %d of %d problems (cap 5)", len(ve.Errors), ve.Total)
			}
			for _, e := range ve.Errors {
				if s := e.Code.Err(); s == nil || !errors.Is(e, s) {
					t.Fatalf("problem %q (code %q) wraps no sentinel, or not its code's", e, e.Code)
				}
			}
		}

		// No output may show a card number of the input.
		outputs := []string{fmt.Sprintf("%+v", sum), fmt.Sprintf("%+v", rows)}
		if ve != nil {
			outputs = append(outputs, ve.Error())
			for _, e := range append(ve.Errors, ve.Warnings...) {
				outputs = append(outputs, e.Error(), e.Value)
			}
		}
		for _, pan := range pansIn(string(data), false) {
			for _, out := range outputs {
				if showsAlone(out, pan) {
					t.Fatalf("output shows card number %s: %s", pan, out)
				}
			}
		}
	})
}

// showsAlone reports whether out holds pan other than as part of a longer
// digit run. The same digits inside a 20-digit run (which the input may
// hold as well, by chance or by the fuzzer) are not a card number by pan's
// rule and are shown as they are.
func showsAlone(out, pan string) bool {
	digit := func(b byte) bool { return b >= '0' && b <= '9' }
	for i := 0; ; {
		j := strings.Index(out[i:], pan)
		if j < 0 {
			return false
		}
		start, end := i+j, i+j+len(pan)
		if (start == 0 || !digit(out[start-1])) && (end == len(out) || !digit(out[end])) {
			return true
		}
		i = start + 1
	}
}

// checkRowRules fails t unless r obeys every rule of the manifest format.
func checkRowRules(t *testing.T, r manifest.Row) {
	t.Helper()
	text := func(what, s string, min, max int, strictInvisible bool) {
		n := utf8.RuneCountInString(s)
		if !utf8.ValidString(s) || n < min || n > max || strings.TrimSpace(s) != s {
			t.Fatalf("line %d: %s %q breaks its length, encoding or trimming rule", r.Line, what, s)
		}
		for _, c := range s {
			if unicode.IsControl(c) || (strictInvisible && unicode.Is(unicode.Cf, c)) {
				t.Fatalf("line %d: %s %q has control character %U", r.Line, what, s, c)
			}
		}
		if len(pansIn(s, true)) > 0 {
			t.Fatalf("line %d: %s %q holds a card number", r.Line, what, s)
		}
	}
	text("reference", r.Reference, 1, 64, true)
	if err := refid.Check(r.Reference); err != nil {
		t.Fatalf("line %d: reference %q accepted without a safe identity: %v", r.Line, r.Reference, err)
	}
	if len(pansIn(refid.Key(r.Reference), true)) > 0 {
		t.Fatalf("line %d: reference %q holds a card number in its canonical form", r.Line, r.Reference)
	}
	if !norm.NFC.IsNormalString(r.Reference) || !norm.NFC.IsNormalString(r.RecipientName) {
		t.Fatalf("line %d: reference %q or name %q not NFC", r.Line, r.Reference, r.RecipientName)
	}
	text("recipient_name", r.RecipientName, 1, 128, false)
	if strings.IndexFunc(r.RecipientName, unicode.IsLetter) < 0 {
		t.Fatalf("line %d: name %q has no letter", r.Line, r.RecipientName)
	}
	text("description", r.Description, 0, 256, false)
	if r.Email != "" {
		text("email", r.Email, 1, 254, true)
		if a, err := mail.ParseAddress(r.Email); err != nil || a.Address != r.Email || a.Name != "" {
			t.Fatalf("line %d: email %q is not one plain address", r.Line, r.Email)
		}
	}
	if _, err := manifest.CurrencyDigits(r.Currency); err != nil || strings.ToUpper(r.Currency) != r.Currency {
		t.Fatalf("line %d: currency %q: %v", r.Line, r.Currency, err)
	}
	if r.Amount <= 0 || r.Amount > manifest.AmountMaxMinor {
		t.Fatalf("line %d: amount %d out of range", r.Line, r.Amount)
	}
	if back, err := manifest.ParseAmount(manifest.FormatAmount(r.Amount, r.Currency), r.Currency); err != nil || back != r.Amount {
		t.Fatalf("line %d: amount %d %s does not round-trip: %d, %v", r.Line, r.Amount, r.Currency, back, err)
	}
	if p, err := manifest.ParseCard(r.Card.Digits()); err != nil || p != r.Card {
		t.Fatalf("line %d: card %s is not a valid card number: %v", r.Line, r.Card.Mask(), err)
	}
}

// pansIn returns the Luhn-valid runs of 13–19 digits in s (single spaces,
// no-break spaces or dashes between digits allowed): each as written and as
// digits only. cardLike keeps only those starting with 2–6, as payment cards
// do.
func pansIn(s string, cardLike bool) []string {
	var out []string
	var run []byte
	start, end := -1, -1
	flush := func() {
		if n := len(run); n >= 13 && n <= 19 && luhn(run) && (!cardLike || run[0] >= '2' && run[0] <= '6') {
			out = append(out, string(run), s[start:end])
		}
		run, start = run[:0], -1
	}
	prevSep := false
	for i, c := range s {
		switch {
		case c >= '0' && c <= '9':
			if start < 0 {
				start = i
			}
			run = append(run, byte(c))
			end = i + 1
			prevSep = false
		case (c == ' ' || c == '-' || c == '\u00a0') && len(run) > 0 && !prevSep:
			prevSep = true
		default:
			flush()
			prevSep = false
		}
	}
	flush()
	return out
}

func luhn(d []byte) bool {
	sum, double := 0, false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if double {
			if v *= 2; v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}
