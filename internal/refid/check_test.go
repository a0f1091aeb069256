package refid_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/payouts/payouts/internal/refid"
)

func TestCheckAccepts(t *testing.T) {
	for _, ref := range []string{
		"EMP-0042-2026-11",
		"INV/2026/11.3_a",
		"REF-ß",
		"PAY-ı",
		"ＰＡＹ-１",
		"ЗП-2026-11-Иванов", // Cyrillic alone
		"ΜΙΣΘΟΣ-11",         // Greek alone
		"請求-2026-ABC",       // Han with Latin
		"注文カタカナ-ひらがな-X1",    // Japanese with Latin
		"급여-2026-KR",        // Hangul with Latin
		"Pétr-1",
		"PAY-İ",    // Turkish dotted capital I: its key has i + U+0307, the reference does not
		"Ẹ́KỌ-1",   // Yoruba: an accent with no precomposed letter stays separate in NFC
		"नमस्ते-1", // Devanagari: nonspacing vowel signs and virama
		"PAY 1",
	} {
		if err := refid.Check(ref); err != nil {
			t.Errorf("Check(%q): got %v, want accepted", ref, err)
		}
	}
}

func TestCheckRefuses(t *testing.T) {
	tests := []struct {
		name string
		ref  string
		want error
		says string // in the message
	}{
		{"empty", "", refid.ErrEmpty, "empty"},
		{"invalid UTF-8", "PAY-\xff", refid.ErrEncoding, "UTF-8"},
		{"replacement character", "PAY-\ufffd", refid.ErrEncoding, "U+FFFD"},
		{"tab", "PAY\t1", refid.ErrInvisible, "U+0009"},
		{"DEL", "PAY\x7f1", refid.ErrInvisible, "U+007F"},
		{"zero-width space", "PAY-\u200b1", refid.ErrInvisible, "U+200B"},
		{"zero-width joiner", "PAY-\u200d1", refid.ErrInvisible, "U+200D"},
		{"byte order mark inside", "PAY\ufeff-1", refid.ErrInvisible, "U+FEFF"},
		{"soft hyphen", "PAY\u00ad-1", refid.ErrInvisible, "U+00AD"},
		{"right-to-left override", "PAY-\u202e1", refid.ErrInvisible, "bidirectional"},
		{"left-to-right mark", "PAY-\u200e1", refid.ErrInvisible, "bidirectional"},
		{"isolate", "PAY-\u20661", refid.ErrInvisible, "bidirectional"},
		{"line separator", "PAY\u20281", refid.ErrInvisible, "U+2028"},
		{"variation selector", "PAY-1\ufe0f", refid.ErrInvisible, "U+FE0F"},
		{"variation selector supplement", "PAY-1\U000e0100", refid.ErrInvisible, "U+E0100"},
		{"Hangul filler", "PAY-\u3164", refid.ErrInvisible, "U+3164"},
		{"combining grapheme joiner", "PAY-\u034f1", refid.ErrInvisible, "U+034F"},
		{"braille blank", "PAY-\u28001", refid.ErrInvisible, "U+2800"},
		{"private use", "PAY-\ue0001", refid.ErrUnassigned, "private-use"},
		{"plane 15 private use", "PAY-\U000f0000", refid.ErrUnassigned, "private-use"},
		{"unassigned", "PAY-\u0378", refid.ErrUnassigned, "not an assigned character"},
		{"noncharacter", "PAY-\ufdd0", refid.ErrUnassigned, "U+FDD0"},
		{"dot above on i", "PAY-i̇", refid.ErrInvisible, "dot above"},
		{"dot above on j", "PAY-j̇", refid.ErrInvisible, "dot above"},
		{"accent twice", "PAY-é́", refid.ErrInvisible, "twice"},
		{"leading space", " PAY-1", refid.ErrSpace, "U+0020"},
		{"trailing ideographic space", "PAY-1\u3000", refid.ErrSpace, "U+3000"},
		{"trailing no-break space", "PAY-1\u00a0", refid.ErrSpace, "U+00A0"},
		{"canonical form starts with a space", "\u00a8PAY", refid.ErrSpace, "canonical form"},
		{"Cyrillic А among Latin", "PAY-А1", refid.ErrMixedScripts, "Latin and Cyrillic"},
		{"Latin among Cyrillic", "ЗП-2026-A", refid.ErrMixedScripts, "Cyrillic and Latin"},
		{"Greek Alpha among Latin", "PAY-Α1", refid.ErrMixedScripts, "Latin and Greek"},
		{"Greek micro sign among Latin", "PAY-5µ", refid.ErrMixedScripts, "Greek"},
		{"Ohm sign among Latin", "PAY-\u2126", refid.ErrMixedScripts, "Latin and Greek"},
		{"Cyrillic with Han", "請求-Д", refid.ErrMixedScripts, "Han and Cyrillic"},
		{"Hangul with Katakana", "급여-カ", refid.ErrMixedScripts, "Hangul and Katakana"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := refid.Check(tt.ref)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Check(%q): got %v, want %v", tt.ref, err, tt.want)
			}
			var p *refid.Problem
			if !errors.As(err, &p) || p.Msg == "" || p.Hint == "" {
				t.Fatalf("Check(%q): got %#v, want a *Problem with a message and a hint", tt.ref, err)
			}
			if !strings.Contains(err.Error(), tt.says) {
				t.Errorf("Check(%q): got message %q, want it to say %q", tt.ref, err, tt.says)
			}
		})
	}
}
