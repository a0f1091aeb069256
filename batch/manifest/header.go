package manifest

import (
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/gocarina/gocsv"
)

// The manifest columns, in the documented order; the first
// requiredColumns are required.
var columnNames = [...]string{"reference", "amount", "currency", "card_number", "recipient_name", "email", "description"}

const requiredColumns = 5

// headerHint is the expected header, for messages.
const headerHint = "reference,amount,currency,card_number,recipient_name,email,description (email and description are optional)"

var columnIndex = func() map[string]int {
	m := make(map[string]int, len(columnNames))
	for i, c := range columnNames {
		m[c] = i
	}
	return m
}()

// headerInfo is what the rows need to know about the header.
type headerInfo struct {
	line     int // physical line of the header
	refIndex int // position of the reference column in a record
}

// normalizeColumn is how header names compare: surrounding spaces
// (and zero-width characters spreadsheets leave) removed, lower-case.
func normalizeColumn(s string) string {
	s = strings.TrimFunc(s, func(r rune) bool {
		return isSpace(r) || r == '\u200b' || r == '\u200c' || r == '\u200d' || r == '\u2060'
	})
	return strings.ToLower(s)
}

// upper is strings.ToUpper of a trimmed code.
func upper(s string) string { return strings.ToUpper(trim(s)) }

// trim removes surrounding spaces, including no-break ones.
func trim(s string) string {
	if n := len(s); n > 0 && s[0] > ' ' && s[0] < utf8.RuneSelf && s[n-1] > ' ' && s[n-1] < utf8.RuneSelf {
		return s // the usual case, without decoding runes
	}
	return strings.TrimFunc(s, isSpace)
}

// checkHeader validates the header gocsv read, reports every problem with
// it, and hands gocsv the normalized names. false means the header is
// unusable and reading stops.
func (m *reader) checkHeader(um *gocsv.Unmarshaller, line int) bool {
	canonical, ok := m.checkHeaderNames(um.Headers, line)
	if !ok {
		return false
	}
	problem := func(value string, r *reason) {
		m.addError(newRowError(line, "", value, r))
	}
	if err := um.RenormalizeHeaders(func([]string) []string { return canonical }); err != nil {
		problem("", newReason("header cannot be decoded: "+err.Error(), "the header must be: "+headerHint, ErrHeader))
		return false
	}
	// Defence against a process-wide gocsv setting changing how names
	// match: every column present must reach its field.
	for _, c := range canonical {
		if _, isKnown := columnIndex[c]; isKnown && slices.Contains(um.MismatchedStructFields, c) {
			problem(c, newReason("column is not decoded (gocsv header normalizer changed)", "report this as a bug", ErrHeader))
			return false
		}
	}
	return true
}

// checkHeaderNames validates the header's names (raw, as in the file),
// reports every problem with them, and returns the canonical name of
// each position (a known column's name; for others a name that matches
// no field). false means the header is unusable and reading stops.
func (m *reader) checkHeaderNames(raw []string, line int) ([]string, bool) {
	m.header = headerInfo{line: line, refIndex: -1}
	names := make([]string, len(raw))
	ok := true
	problem := func(value string, r *reason) {
		m.addError(newRowError(line, "", value, r))
		ok = false
	}
	for i, h := range raw {
		if !utf8.ValidString(h) && ok {
			m.notUTF8(line, "", h)
			ok = false
		}
		names[i] = normalizeColumn(h)
	}
	// Redacted: a file without a header has data here, maybe a card number.
	m.sum.Columns = make([]string, len(names))
	for i, n := range names {
		m.sum.Columns[i] = redact("", n)
	}
	if !ok {
		return nil, false
	}

	first := map[string]int{}
	known := 0
	for i, n := range names {
		if _, isKnown := columnIndex[n]; isKnown {
			known++
		}
		if j, dup := first[n]; dup {
			if _, isKnown := columnIndex[n]; isKnown {
				problem(n, newReason(fmt.Sprintf("column appears twice (columns %d and %d)", j+1, i+1), "delete one of them", ErrHeader))
			}
			continue
		}
		first[n] = i
	}
	if known == 0 {
		hint := "the first line must be the header: " + headerHint
		if len(names) == 1 && strings.Contains(raw[0], "\t") {
			hint = "the file is tab-separated; save it as CSV with ',' or ';' — " + hint
		}
		m.errs, m.total = nil, 0 // the checks above are noise on a line that is not a header
		re := newRowError(line, "", "", newReason("first line is not the manifest header", hint, ErrHeader))
		// Each name is redacted already; redacting the joined line again
		// would mask digits across columns.
		re.Value = truncate(strings.Join(m.sum.Columns, string(m.sum.Delimiter)))
		m.addError(re)
		return nil, false
	}
	if !m.opts.AllowExtraColumns {
		for i, n := range names {
			if _, isKnown := columnIndex[n]; isKnown {
				continue
			}
			if n == "" {
				problem("", newReason(fmt.Sprintf("column %d of the header has no name", i+1), "delete the empty column (or its trailing delimiter), or allow extra columns", ErrHeader))
				continue
			}
			hint := "expected columns: " + headerHint + "; delete it or allow extra columns"
			if guess := guessColumn(n); guess != "" {
				hint = "did you mean " + guess + "?"
			}
			problem(n, newReason(fmt.Sprintf("unknown column %d", i+1), hint, ErrHeader))
		}
	}
	var missing []string
	for _, c := range columnNames[:requiredColumns] {
		if _, ok := first[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		problem("", newReason("missing required columns: "+strings.Join(missing, ", "), "the header must be: "+headerHint, ErrHeader))
	}
	if !ok {
		return nil, false
	}

	m.header.refIndex = first["reference"]
	canonical := make([]string, len(names))
	for i, n := range names {
		if _, isKnown := columnIndex[n]; isKnown {
			canonical[i] = n
		} else {
			canonical[i] = fmt.Sprintf("\x00extra%d", i) // matches no field
		}
	}
	return canonical, true
}

// guessColumn suggests the known column an unknown name probably
// means ("Card Number", "card-number" → card_number).
func guessColumn(n string) string {
	g := strings.NewReplacer(" ", "_", "-", "_", ".", "_").Replace(n)
	if _, ok := columnIndex[g]; ok {
		return g
	}
	switch g {
	case "card", "pan", "card_no", "cardnumber", "card_num":
		return "card_number"
	case "name", "recipient", "full_name", "recipientname":
		return "recipient_name"
	case "ref", "id":
		return "reference"
	case "sum", "value":
		return "amount"
	case "e_mail", "mail":
		return "email"
	case "comment", "note", "purpose":
		return "description"
	}
	return ""
}
