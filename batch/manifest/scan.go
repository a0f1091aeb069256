package manifest

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strings"
)

// utf8BOM is the UTF-8 byte order mark spreadsheets put first.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// sniff looks at the start of the file: it skips a UTF-8 BOM,
// refuses what is not UTF-8 text, and picks the delimiter from the header
// line. The problem it returns, if any, is fatal.
func sniff(br *bufio.Reader) (bom bool, delim rune, problem *reason) {
	if head, _ := br.Peek(3); bytes.Equal(head, utf8BOM) {
		bom = true
		_, _ = br.Discard(3)
	}
	// The header line, or as much of it as the buffer holds.
	var head []byte
	for n := 512; ; n *= 2 {
		b, err := br.Peek(n)
		head = b
		if bytes.IndexByte(b, '\n') >= 0 || err != nil || n >= br.Size() {
			break
		}
	}
	const saveAs = "open it in the spreadsheet and save as \"CSV UTF-8 (comma delimited)\""
	switch {
	case bytes.HasPrefix(head, []byte{0xFF, 0xFE}) || bytes.HasPrefix(head, []byte{0xFE, 0xFF}):
		return bom, ',', newReason("file is UTF-16 text, not UTF-8", saveAs, ErrEncoding)
	case bytes.HasPrefix(head, []byte("PK\x03\x04")):
		// Not reached from Read, ReadFile, ReadBytes or ReadAt, which read
		// a zip as a workbook; kept for referencesAt.
		return bom, ',', newReason("file is a spreadsheet workbook (.xlsx), not CSV", saveAs, ErrEncoding)
	case bytes.HasPrefix(head, []byte{0xD0, 0xCF, 0x11, 0xE0}):
		return bom, ',', newReason("file is an old Excel workbook (.xls) or a password-protected one, not CSV or XLSX",
			"open it in the spreadsheet and save it without a password as \"Excel Workbook (*.xlsx)\" or \"CSV UTF-8 (comma delimited)\"", ErrEncoding)
	case bytes.IndexByte(head, 0) >= 0:
		return bom, ',', newReason("file contains NUL bytes: it is UTF-16 or not text at all", saveAs, ErrEncoding)
	}
	line := head
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	if i := bytes.IndexByte(line, '\r'); i >= 0 && i < len(line)-1 {
		return bom, ',', newReason("lines end with CR only (old Mac format)", "save the file with Windows (CRLF) or Unix (LF) line endings", ErrEncoding)
	}
	return bom, detectDelimiter(string(line)), nil
}

// detectDelimiter picks ',' or ';' for the header line: the one
// that appears outside quotes; if both do, the one that splits the line into
// more known column names (a ';' file's amounts have commas, never its
// header, but be careful anyway).
func detectDelimiter(line string) rune {
	count := func(d byte) int {
		n, quoted := 0, false
		for i := 0; i < len(line); i++ {
			switch line[i] {
			case '"':
				quoted = !quoted
			case d:
				if !quoted {
					n++
				}
			}
		}
		return n
	}
	commas, semis := count(','), count(';')
	switch {
	case semis > 0 && commas == 0:
		return ';'
	case commas > 0 && semis == 0, commas == 0 && semis == 0:
		return ','
	}
	known := func(d string) int {
		n := 0
		for _, f := range strings.Split(line, d) {
			if _, ok := columnIndex[normalizeColumn(strings.Trim(f, `"`))]; ok {
				n++
			}
		}
		return n
	}
	if kc, ks := known(","), known(";"); ks > kc || (ks == kc && semis > commas) {
		return ';'
	}
	return ','
}

// tooLongError is the guard's error: the record starting at line is
// longer than limit bytes.
type tooLongError struct {
	line, limit int
}

func (e *tooLongError) Error() string {
	return fmt.Sprintf("record at line %d is longer than %d bytes", e.line, e.limit)
}

// Guard states: the CSV grammar of encoding/csv with LazyQuotes off.
const (
	guardFieldStart = iota
	guardUnquoted
	guardQuoted
	guardQuote   // a '"' inside a quoted field: closing or first of ""
	guardQuoteCR // `"\r`: only "\n" may follow
	guardSkip    // after a syntax error encoding/csv drops the rest of the line
)

// recordGuard sits between the file and encoding/csv and bounds the
// memory one record can take. It follows the CSV grammar the way
// encoding/csv does, so it knows where records end even across quoted line
// breaks, and fails with *tooLongError as soon as a record exceeds limit
// bytes (an unclosed quote would otherwise pull the whole file into one
// record). The error is sticky.
type recordGuard struct {
	r       io.Reader
	delim   byte
	limit   int
	state   int
	n       int // bytes of the current record so far
	line    int // physical line being read, 1-based
	start   int // line where the current record started
	err     error
	special [256]bool // bytes that end a run of an unquoted field
}

func newRecordGuard(r io.Reader, delim rune, limit int) *recordGuard {
	g := &recordGuard{r: r, delim: byte(delim), limit: limit, line: 1, start: 1}
	g.special[g.delim], g.special['\n'], g.special['"'] = true, true, true
	return g
}

func (g *recordGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	for i := 0; i < n; {
		if g.n == 0 {
			g.start = g.line
		}
		// Fast path: skip the ordinary bytes of a field in one go.
		j := i
		switch g.state {
		case guardUnquoted:
			for j < n && !g.special[p[j]] {
				j++
			}
		case guardQuoted, guardSkip:
			for j < n && p[j] != '"' && p[j] != '\n' {
				j++
			}
		}
		if j > i {
			if g.n+(j-i) > g.limit {
				g.err = &tooLongError{line: g.start, limit: g.limit}
				return i, g.err
			}
			g.n += j - i
			i = j
			continue
		}
		b := p[i]
		i++
		g.n++
		if g.n > g.limit {
			g.err = &tooLongError{line: g.start, limit: g.limit}
			return i - 1, g.err
		}
		end := false
		switch g.state {
		case guardFieldStart:
			switch b {
			case '"':
				g.state = guardQuoted
			case g.delim:
			case '\n':
				end = true
			default:
				g.state = guardUnquoted
			}
		case guardUnquoted:
			switch b {
			case g.delim:
				g.state = guardFieldStart
			case '\n':
				end = true
			case '"':
				g.state = guardSkip
			}
		case guardQuoted:
			if b == '"' {
				g.state = guardQuote
			}
		case guardQuote:
			switch b {
			case '"':
				g.state = guardQuoted
			case g.delim:
				g.state = guardFieldStart
			case '\n':
				end = true
			case '\r':
				g.state = guardQuoteCR
			default:
				g.state = guardSkip
			}
		case guardQuoteCR:
			if b == '\n' {
				end = true
			} else {
				g.state = guardSkip
			}
		case guardSkip:
			if b == '\n' {
				end = true
			}
		}
		if b == '\n' {
			g.line++
		}
		if end {
			g.state, g.n = guardFieldStart, 0
		}
	}
	if err != nil {
		g.err = err
	}
	return n, err
}
