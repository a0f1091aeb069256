package manifest_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/payouts/payouts/batch/manifest"
)

// TestReadReferenceIdentity: a reference that cannot have a safe
// identity is refused at its line and column, saying what is wrong and
// what to do.
func TestReadReferenceIdentity(t *testing.T) {
	tests := []struct {
		name string
		ref  string
		says string // "" = valid
	}{
		{"plain", "EMP-0042-2026-11", ""},
		{"Cyrillic alone", "ЗП-2026-11", ""},
		{"sharp s", "REF-ß", ""},
		{"dotless i", "PAY-ı", ""},
		{"full-width", "ＰＡＹ-１", ""},
		{"Japanese with Latin", "給与-2026-A", ""},
		{"64 characters whose key is longer", strings.Repeat("ß", 64), ""},
		{"Cyrillic А in Latin", "PAY-А1", "mixes Latin and Cyrillic"},
		{"Greek Α in Latin", "PAY-Α1", "mixes Latin and Greek"},
		{"Latin in Cyrillic", "ЗП-2026-A", "mixes Cyrillic and Latin"},
		{"zero-width joiner", "PAY-\u200d1", "U+200D"},
		{"bidi override", "PAY-\u202e1", "bidirectional"},
		{"word joiner", "PAY\u2060-1", "U+2060"},
		{"variation selector", "PAY-1\ufe0f", "U+FE0F"},
		{"Hangul filler", "PAY-\u3164", "U+3164"},
		{"private use", "PAY-\ue000", "private-use"},
		{"unassigned", "PAY-\u0378", "not an assigned character"},
		{"replacement character", "PAY-\ufffd", "U+FFFD"},
		{"canonical form starts with a space", "\u00a8PAY", "canonical form"},
		{"card number in full-width digits", "４２４２４２４２４２４２４２４２", "card number"},
		{"card number in circled digits", "④②④②④②④②④②④②④②④②", "card number"}, // ASCII digits in the key
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rows, ve := readString(t, manifestHeader+tt.ref+",1500,RUB,4242424242424242,Ivan,,\n", manifest.Options{})
			if tt.says == "" {
				if ve != nil || len(rows) != 1 || rows[0].Reference != tt.ref {
					t.Fatalf("got %v, rows %+v; want %q accepted as written", ve, rows, tt.ref)
				}
				return
			}
			if got, want := problems(ve), []problem{{2, "reference", manifest.ErrReference}}; !reflect.DeepEqual(got, want) {
				t.Fatalf("got problems %v, want %v\n%v", got, want, ve)
			}
			re := ve.Errors[0]
			if !strings.Contains(re.Err.Error(), tt.says) || re.Hint == "" {
				t.Errorf("got %q (hint %q), want it to say %q and what to do", re.Err, re.Hint, tt.says)
			}
			if strings.Contains(re.Error(), "4242424242424242") {
				t.Errorf("got %q, which shows a card number", re)
			}
		})
	}
}

// TestReadDuplicateReferenceSpellings: two spellings of one
// reference in one file are a duplicate naming both lines; ı and I are not
// one reference.
func TestReadDuplicateReferenceSpellings(t *testing.T) {
	in := manifestHeader +
		"PAY-1,1,RUB,4242424242424242,Ivan,,\n" + // 2
		"ＰＡＹ-１,2,RUB,4242424242424242,Ivan,,\n" + // 3: full-width PAY-1
		"REF-ß,3,RUB,4242424242424242,Ivan,,\n" + // 4
		"ref-SS,4,RUB,4242424242424242,Ivan,,\n" + // 5: ß is ss
		"REF-ẞ,5,RUB,4242424242424242,Ivan,,\n" + // 6: capital sharp s
		"ﬁle-1,6,RUB,4242424242424242,Ivan,,\n" + // 7: ligature
		"FILE-1,7,RUB,4242424242424242,Ivan,,\n" + // 8
		"PAY-ı,8,RUB,4242424242424242,Ivan,,\n" + // 9: dotless i
		"PAY-I,9,RUB,4242424242424242,Ivan,,\n" // 10: another reference
	want := []problem{{3, "reference", manifest.ErrDuplicateReference}, {5, "reference", manifest.ErrDuplicateReference},
		{6, "reference", manifest.ErrDuplicateReference}, {8, "reference", manifest.ErrDuplicateReference}}
	firsts := map[int]string{3: `"PAY-1" on line 2`, 5: `"REF-ß" on line 4`, 6: `"REF-ß" on line 4`, 8: `"ﬁle-1" on line 7`}
	firstLines := map[int]string{3: "line 2", 5: "line 4", 6: "line 4", 8: "line 7"}

	_, _, ve := readString(t, in, manifest.Options{})
	if got := problems(ve); !reflect.DeepEqual(got, want) {
		t.Fatalf("Read: got problems %v, want %v\n%v", got, want, ve)
	}
	for _, re := range ve.Errors {
		if !strings.Contains(re.Error(), firstLines[re.Line]) {
			t.Errorf("Read: %q does not name the first line", re)
		}
	}

	path := filepath.Join(t.TempDir(), "m.csv")
	if err := os.WriteFile(path, []byte(in), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := manifest.ReadFile(path, manifest.Options{AllowDuplicates: true}, nil)
	ve, _ = err.(*manifest.ValidationError)
	if got := problems(ve); !reflect.DeepEqual(got, want) {
		t.Fatalf("ReadFile: got problems %v, want %v\n%v", got, want, err)
	}
	for _, re := range ve.Errors {
		if !strings.Contains(re.Error(), firsts[re.Line]) || !strings.Contains(re.Error(), `"`+re.Value+`"`) {
			t.Errorf("ReadFile: %q does not name both spellings (want %s and %q)", re, firsts[re.Line], re.Value)
		}
	}
}
