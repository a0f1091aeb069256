package manifest

import (
	"bufio"
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding"
	"golang.org/x/text/encoding/charmap"
)

// A CSV manifest is UTF-8 unless Options.Encoding says otherwise. A file
// that is not UTF-8 is one problem, found at its first value that is not,
// with a guess of what it is and how to save it as UTF-8: never one
// problem per cell.

// textEncoding is an encoding Options.Encoding may name.
type textEncoding struct {
	name string
	enc  encoding.Encoding // nil for UTF-8
	what string            // for messages
}

var encodings = []textEncoding{
	{"utf-8", nil, "Unicode"},
	{"windows-1251", charmap.Windows1251, "Cyrillic: what Excel's plain \"CSV\" export writes on a Russian system"},
	{"windows-1252", charmap.Windows1252, "Western European: what Excel's plain \"CSV\" export writes on an English or German system"},
}

// encodingOf returns the encoding named s ("" is UTF-8; case, '_' for '-'
// and the cp1251 spelling are forgiven).
func encodingOf(s string) (textEncoding, error) {
	n := strings.ReplaceAll(strings.ToLower(strings.TrimSpace(s)), "_", "-")
	switch n {
	case "", "utf8":
		n = "utf-8"
	case "cp1251", "windows1251":
		n = "windows-1251"
	case "cp1252", "windows1252":
		n = "windows-1252"
	}
	for _, e := range encodings {
		if e.name == n {
			return e, nil
		}
	}
	return textEncoding{}, fmt.Errorf("manifest options: unknown encoding %q: want utf-8, windows-1251 or windows-1252", s)
}

// EncodingName returns the canonical name of an encoding Options.Encoding
// accepts ("cp1251" is "windows-1251", "" is "utf-8"), or an error naming
// the ones accepted.
func EncodingName(s string) (string, error) {
	e, err := encodingOf(s)
	return e.name, err
}

// decode puts the decoder of Options.Encoding between the file and the
// CSV reader. The SHA-256 stays that of the file's bytes.
func (m *reader) decode(br **bufio.Reader) *reason {
	enc, _ := encodingOf(m.opts.Encoding)
	if enc.enc == nil {
		return nil
	}
	if head, _ := (*br).Peek(3); bytes.Equal(head, utf8BOM) {
		return newReason("file starts with a UTF-8 byte order mark, so it is UTF-8, not "+enc.name,
			"read it without --encoding (or with --encoding utf-8)", ErrEncoding)
	}
	*br = bufio.NewReaderSize(enc.enc.NewDecoder().Reader(*br), 64<<10)
	return nil
}

// guessEncoding says which legacy encoding the bytes b (not UTF-8) most
// likely are in: Cyrillic text in windows-1251 is made of bytes 0xC0–0xFF
// (and Ё, ё), most letters of a word high; Western text in windows-1252 is
// mostly ASCII letters with an accented one here and there.
func guessEncoding(b []byte) textEncoding {
	high, ascii := 0, 0
	for _, c := range b {
		switch {
		case c >= 0xC0 || c == 0xA8 || c == 0xB8:
			high++
		case 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z':
			ascii++
		}
	}
	if high > ascii {
		return encodings[1]
	}
	return encodings[2]
}

// notUTF8 is the one problem of a file that is not UTF-8: reading stops
// there. value is the first value that is not valid UTF-8; the error shows
// it as it reads in the likely encoding.
func (m *reader) notUTF8(line int, column, value string) {
	guess := guessEncoding([]byte(value))
	shown, err := guess.enc.NewDecoder().String(value)
	if err != nil {
		shown = value
	}
	msg := fmt.Sprintf("file is not UTF-8: it is most likely %s (%s)", guess.name, guess.what)
	if guess.name == "windows-1252" {
		msg = "file is not UTF-8, maybe windows-1252 (" + guess.what + ")"
	}
	if m.opts.Encoding != "utf-8" {
		msg = fmt.Sprintf("file is not %s", m.opts.Encoding)
	}
	hint := fmt.Sprintf("in Excel, save it as \"CSV UTF-8 (Comma delimited) (*.csv)\"; or read it as it is with --encoding %s (also for run and rerun)", guess.name)
	m.addError(newRowError(line, column, shown, newReason(msg+"; this value is shown as it reads in "+guess.name+", and reading stopped here", hint, ErrEncoding)))
	m.stopped = true
}

// utf8Check watches the bytes of a file read with a legacy encoding: a
// file whose non-ASCII text is all valid UTF-8 is UTF-8 (Cyrillic or
// accented text in windows-1251/1252 is practically never valid UTF-8),
// and reading it as windows-1251 would garble every name ("Иванов" becomes
// "Р�РІР°РЅРѕРІ") without any other problem.
type utf8Check struct {
	pending       []byte // an incomplete sequence at the end of the last write
	bad, nonASCII bool
}

func (u *utf8Check) Write(p []byte) (int, error) {
	if u.bad {
		return len(p), nil
	}
	b := p
	if len(u.pending) > 0 {
		b = append(u.pending, p...)
		u.pending = nil
	}
	for i := 0; i < len(b); {
		if b[i] < utf8.RuneSelf {
			i++
			continue
		}
		u.nonASCII = true
		if !utf8.FullRune(b[i:]) {
			u.pending = append([]byte(nil), b[i:]...)
			break
		}
		r, size := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && size <= 1 {
			u.bad = true
			break
		}
		i += size
	}
	return len(p), nil
}

// isUTF8 says whether everything written was UTF-8 with some non-ASCII
// text.
func (u *utf8Check) isUTF8() bool { return !u.bad && len(u.pending) == 0 && u.nonASCII }

// utf8NotLegacy is the problem of a UTF-8 file read with --encoding NAME.
func utf8NotLegacy(name string) *reason {
	enc, _ := encodingOf(name)
	return newReason("file is UTF-8, not "+enc.name+": its non-ASCII text reads as UTF-8, and as "+enc.name+" every name with such letters would be paid garbled (Иванов as РІР°РЅРѕРІ…)",
		"read it without --encoding (or with --encoding utf-8), also for run and rerun", ErrEncoding)
}
