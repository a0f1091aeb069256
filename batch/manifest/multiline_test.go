package manifest_test

import (
	"reflect"
	"testing"

	"github.com/payouts/payouts/batch/manifest"
)

// TestDescriptionLineBreaks: a quoted description with line breaks
// (Alt+Enter in a spreadsheet cell, LF or CRLF) is valid and stored on one
// line, the break and the spaces around it one space; the rows after it
// keep their physical line numbers; names and references still refuse
// line breaks. A reference with leading zeros stays as written.
func TestDescriptionLineBreaks(t *testing.T) {
	in := manifestHeader + // line 1
		"00123,10,RUB,4242424242424242,Ivan,,\"Bonus\nNovember\"\n" + // lines 2-3
		"R-2,11,RUB,4242424242424242,Ivan,,\"a \r\n\r\n  b\"\n" + // lines 4-6
		"R-3,12,RUB,4242424242424242,Ivan,,one line\n" + // line 7
		"R-4,13,RUB,4242424242424242,\"Ivan\nPetrov\",,\n" + // lines 8-9
		"\"R\n5\",14,RUB,4242424242424242,Ivan,,\n" + // lines 10-11
		"R-6,0,RUB,4242424242424242,Ivan,,\n" // line 12
	_, _, ve := readString(t, in, manifest.Options{})
	want := []problem{
		{8, "recipient_name", manifest.ErrRecipientName},
		{10, "reference", manifest.ErrReference},
		{12, "amount", manifest.ErrAmount},
	}
	if got := problems(ve); !reflect.DeepEqual(got, want) {
		t.Errorf("problems = %v, want %v\n%v", got, want, ve)
	}
	in = manifestHeader +
		"00123,10,RUB,4242424242424242,Ivan,,\"Bonus\nNovember\"\n" +
		"R-2,11,RUB,4242424242424242,Ivan,,\"a \r\n\r\n  b\"\n" +
		"R-3,12,RUB,4242424242424242,Ivan,,one line\n"
	_, rows, ve := readString(t, in, manifest.Options{AllowDuplicates: true})
	if ve != nil {
		t.Fatal(ve)
	}
	type got struct {
		Line       int
		Ref, Descr string
	}
	var g []got
	for _, r := range rows {
		g = append(g, got{r.Line, r.Reference, r.Description})
	}
	wantRows := []got{{2, "00123", "Bonus November"}, {4, "R-2", "a b"}, {7, "R-3", "one line"}}
	if !reflect.DeepEqual(g, wantRows) {
		t.Errorf("rows %+v, want %+v", g, wantRows)
	}
}
