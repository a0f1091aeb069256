package batch

import (
	"bufio"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"unicode/utf8"
)

// manifestKey is a 128-bit prefix of a SHA-256: duplicate detection keeps
// these and a line number, never the values, so a million rows cost tens of
// MiB and no card number is kept. A false match would need a 2^-64 chance
// per pair.
type manifestKey [16]byte

// manifestSeen remembers references and payouts (card, amount, currency)
// by hash, with the line where each was first seen.
type manifestSeen struct {
	refs map[manifestKey]uint32
	pays map[manifestKey]uint32
	buf  []byte
}

func newManifestSeen() manifestSeen {
	return manifestSeen{refs: map[manifestKey]uint32{}, pays: map[manifestKey]uint32{}, buf: make([]byte, 0, 128)}
}

func (s *manifestSeen) key() manifestKey {
	sum := sha256.Sum256(s.buf)
	return manifestKey(sum[:16])
}

// reference records ref at line, or returns the line it was first seen on.
// References compare ignoring letter case: "EMP-1" and "emp-1" in one file
// are a mistake, not two payouts.
func (s *manifestSeen) reference(ref string, line int) (int, bool) {
	s.buf = append(s.buf[:0], 'r', 0)
	for i := 0; i < len(ref); i++ {
		c := ref[i]
		if c >= utf8.RuneSelf {
			s.buf = append(s.buf[:2], strings.ToLower(ref)...)
			break
		}
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		s.buf = append(s.buf, c)
	}
	return s.remember(s.refs, line)
}

// payout records (card, amount, currency) at line, or returns the line it
// was first seen on.
func (s *manifestSeen) payout(card PAN, amount int64, cur string, line int) (int, bool) {
	s.buf = append(s.buf[:0], 'p', 0)
	s.buf = append(s.buf, card.Digits()...)
	s.buf = append(s.buf, 0)
	s.buf = strconv.AppendInt(s.buf, amount, 10)
	s.buf = append(s.buf, 0)
	s.buf = append(s.buf, cur...)
	return s.remember(s.pays, line)
}

func (s *manifestSeen) remember(m map[manifestKey]uint32, line int) (int, bool) {
	k := s.key()
	if first, ok := m[k]; ok {
		return int(first), true
	}
	m[k] = uint32(line)
	return 0, false
}

// manifestDupPayout is a duplicate payout found at one line; the reference
// of its first line is filled in later when the file can be read again.
type manifestDupPayout struct {
	re        *RowError
	reason    *manifestReason
	firstLine int
	row       ManifestRow
}

func newManifestDupPayout(row ManifestRow, firstLine int, allowed bool) *manifestDupPayout {
	d := &manifestDupPayout{firstLine: firstLine, row: row}
	d.reason = &manifestReason{kinds: []error{ErrDuplicatePayout}}
	d.name("")
	hint := "if both payouts are meant, allow duplicates (--allow-duplicates); otherwise delete one row"
	if allowed {
		hint = "allowed by --allow-duplicates: make sure both payouts are meant"
	}
	d.re = &RowError{Line: row.Line, Column: "card_number", Value: row.Card.Mask(), Err: d.reason, Hint: hint}
	return d
}

// name writes the message, naming the first row's reference if known.
func (d *manifestDupPayout) name(firstRef string) {
	first := fmt.Sprintf("line %d", d.firstLine)
	if firstRef != "" {
		first += fmt.Sprintf(" (%s)", strconv.Quote(manifestRedact("reference", firstRef)))
	}
	d.reason.msg = fmt.Sprintf("%s pays the same card the same %s %s as %s",
		strconv.Quote(manifestRedact("reference", d.row.Reference)), FormatAmount(d.row.Amount, d.row.Currency), d.row.Currency, first)
}

// nameFirstReferences reads the file at path again to name the first
// reference of every duplicate payout. It does so only if the file still has
// the same SHA-256; otherwise (or on any error) the messages keep naming
// lines only.
func (m *manifestReader) nameFirstReferences(path string) {
	want := map[int]string{}
	for _, d := range m.dupPays {
		want[d.firstLine] = ""
	}
	refs, err := manifestReferencesAt(path, m.sum.Delimiter, m.opts.MaxLineBytes, m.header.refIndex, want, m.sum.SHA256)
	if err != nil {
		return
	}
	for _, d := range m.dupPays {
		d.name(refs[d.firstLine])
	}
}

// manifestReferencesAt returns the reference column of the records starting
// at the lines in want, reading path with the grammar of the first pass.
func manifestReferencesAt(path string, delim rune, limit, refIndex int, want map[int]string, sha string) (map[int]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	br := bufio.NewReaderSize(io.TeeReader(f, h), 64<<10)
	if _, _, problem := manifestSniff(br); problem != nil {
		return nil, problem
	}
	cr := csv.NewReader(newManifestGuard(br, delim, limit))
	cr.Comma = delim
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header := true
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if header {
			header = false
			continue
		}
		line, _ := cr.FieldPos(0)
		if _, ok := want[line]; ok && refIndex >= 0 && refIndex < len(rec) {
			want[line] = manifestTrim(rec[refIndex])
		}
	}
	if hex.EncodeToString(h.Sum(nil)) != sha {
		return nil, errors.New("manifest changed")
	}
	return want, nil
}
