package report

import (
	"regexp"
	"strings"
	"testing"
)

// constant matches a formula that is one string constant, ="…" with every
// quote inside doubled; group 1 is its body.
var constant = regexp.MustCompile(`^="((?:[^"]|"")*)"$`)

// FuzzExcelCells: whatever the text, an Excel CSV cell is either one
// string constant whose value is exactly the text, or the text made
// spreadsheet-safe; a plain CSV cell is always the latter.
func FuzzExcelCells(f *testing.F) {
	for _, s := range []string{"", "00123", "PAY-01", `po"1`, `"`, `=2+5`, `")&HYPERLINK("x`, "12-05", "a\nb", "0\x00", strings.Repeat("9", 300)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		excel := csvCells{excel: true}
		for _, got := range []string{excel.ident(s), excel.text(s)} {
			if m := constant.FindStringSubmatch(got); m != nil {
				if v := strings.ReplaceAll(m[1], `""`, `"`); v != s {
					t.Fatalf("cell %q shows %q, want %q", got, v, s)
				}
				continue
			}
			if got != SpreadsheetSafe(s) {
				t.Fatalf("cell %q for %q: want a string constant or %q", got, s, SpreadsheetSafe(s))
			}
		}
		if got := (csvCells{}).ident(s); got != SpreadsheetSafe(s) {
			t.Fatalf("plain CSV ident %q: got %q, want %q", s, got, SpreadsheetSafe(s))
		}
	})
}

func TestExcelCells(t *testing.T) {
	excel := csvCells{excel: true}
	for _, tt := range []struct{ in, ident, text string }{
		{"00123", `="00123"`, `="00123"`},
		{"PAY-01", `="PAY-01"`, "PAY-01"},
		{`po"1`, `="po""1"`, `po"1`},
		{"=2+5", `="=2+5"`, "'=2+5"},
		{`")&HYPERLINK("http://x")&("`, `=""")&HYPERLINK(""http://x"")&("""`, `")&HYPERLINK("http://x")&("`},
		{"", "", ""},
		{"12\n34", "12\n34", "12\n34"}, // a control character: written the plain way
		{strings.Repeat("1", 256), strings.Repeat("1", 256), strings.Repeat("1", 256)}, // over Excel's constant limit
	} {
		if got := excel.ident(tt.in); got != tt.ident {
			t.Errorf("ident(%q): got %q, want %q", tt.in, got, tt.ident)
		}
		if got := excel.text(tt.in); got != tt.text {
			t.Errorf("text(%q): got %q, want %q", tt.in, got, tt.text)
		}
	}
}
