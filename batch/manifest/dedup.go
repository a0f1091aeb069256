package manifest

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"os"
	"strconv"

	"github.com/payouts/payouts/internal/refid"
)

// seenSet remembers references and payouts (card, amount, currency)
// by hash, with the line where each was first seen. It keeps 96 bits of a
// SHA-256 and a line number per reference and per payout — never the
// values, so no card number stays in memory beyond its row — in
// open-addressing tables of 16-byte slots: 37.5 MiB live after a million
// rows, where Go maps of the same keys took 72 MiB (and the process twice
// that at the garbage collector's peak).
//
// Equal values always have equal keys, so a duplicate is never missed.
// Distinct values sharing 96 bits would be a false "duplicate": a refusal,
// never a payment, with a chance of about 6·10^-18 in a million rows.
type seenSet struct {
	refs tables
	pays tables
	buf  []byte
}

// tables shards keys over 64 tables that grow independently: each
// growth allocates a small slice, so the heap does not fragment into the
// freed copies of one huge table.
type tables [64]table

func (ts *tables) remember(sum [32]byte, line int) (int, bool) {
	return ts[sum[12]%64].remember(sum, line)
}

func newSeenSet() seenSet {
	return seenSet{buf: make([]byte, 0, 128)}
}

// reference records ref by its key (refid.Key) at line, or returns the line
// it was first seen on: "EMP-1", "emp-1" and "ＥＭＰ-１" in one file are one
// reference, a mistake, not three payouts.
func (s *seenSet) reference(ref string, line int) (int, bool) {
	s.buf = refid.AppendKey(append(s.buf[:0], 'r', 0), ref)
	return s.refs.remember(sha256.Sum256(s.buf), line)
}

// payout records (card, amount, currency) at line, or returns the line it
// was first seen on.
func (s *seenSet) payout(card PAN, amount int64, cur string, line int) (int, bool) {
	s.buf = append(s.buf[:0], 'p', 0)
	s.buf = append(s.buf, card.Digits()...)
	s.buf = append(s.buf, 0)
	s.buf = strconv.AppendInt(s.buf, amount, 10)
	s.buf = append(s.buf, 0)
	s.buf = append(s.buf, cur...)
	first, dup := s.pays.remember(sha256.Sum256(s.buf), line)
	clear(s.buf) // the card number
	return first, dup
}

// table is a set of 96-bit keys with a line each: linear probing
// over 16-byte slots (one cache line holds four), grown by half when 85%
// full. The shard was chosen by byte 12 of the hash, the slot by bytes 0–7.
type table struct {
	slots []slot
	n     int
}

type slot struct {
	hi   uint64
	lo   uint32
	line uint32 // 0 = empty (lines start at 1)
}

// remember inserts the key of sum at line, or returns the line already
// there.
func (t *table) remember(sum [32]byte, line int) (int, bool) {
	k := slot{hi: binary.LittleEndian.Uint64(sum[0:8]), lo: binary.LittleEndian.Uint32(sum[8:12])}
	k.line = uint32(min(line, 1<<32-1)) // a 4 GiB file of blank lines must not wrap to "empty"
	if (t.n+1)*100 > len(t.slots)*85 {
		t.grow()
	}
	for i := t.index(k.hi); ; i++ {
		if i == len(t.slots) {
			i = 0
		}
		s := &t.slots[i]
		switch {
		case s.line == 0:
			*s = k
			t.n++
			return 0, false
		case s.hi == k.hi && s.lo == k.lo:
			return int(s.line), true
		}
	}
}

// index maps hi onto [0, len(slots)) with a multiply, not a modulo.
func (t *table) index(hi uint64) int {
	i, _ := bits.Mul64(hi, uint64(len(t.slots)))
	return int(i)
}

func (t *table) grow() {
	old := t.slots
	t.slots = make([]slot, max(64, len(old)*3/2))
	for _, s := range old {
		if s.line == 0 {
			continue
		}
		i := t.index(s.hi)
		for t.slots[i].line != 0 {
			if i++; i == len(t.slots) {
				i = 0
			}
		}
		t.slots[i] = s
	}
}

// dupPayout is a duplicate payout found at one line; the reference
// of its first line is filled in later when the file can be read again. It
// keeps what the message needs, not the card number.
type dupPayout struct {
	re        *RowError
	reason    *reason
	firstLine int
	ref       string
	amount    int64
	currency  string
}

func newDupPayout(row Row, firstLine int, allowed bool) *dupPayout {
	d := &dupPayout{firstLine: firstLine, ref: row.Reference, amount: row.Amount, currency: row.Currency}
	d.reason = &reason{kinds: []error{ErrDuplicatePayout}}
	d.name("")
	hint := "if both payouts are meant, allow duplicates (--allow-duplicates); otherwise delete one row"
	if allowed {
		hint = "allowed by --allow-duplicates: make sure both payouts are meant"
	}
	d.re = &RowError{Line: row.Line, Column: "card_number", Value: row.Card.Mask(), Code: CodeDuplicatePayout, Err: d.reason, Hint: hint}
	return d
}

// name writes the message, naming the first row's reference if known.
func (d *dupPayout) name(firstRef string) {
	first := fmt.Sprintf("line %d", d.firstLine)
	if firstRef != "" {
		first += fmt.Sprintf(" (%s)", strconv.Quote(redact("reference", firstRef)))
	}
	d.reason.msg = fmt.Sprintf("%s pays the same card the same %s %s as %s",
		strconv.Quote(redact("reference", d.ref)), FormatAmount(d.amount, d.currency), d.currency, first)
}

// dupReference is a reference found again at one line (in any
// spelling with the same key); the spelling of its first line is filled in
// later when the file can be read again.
type dupReference struct {
	re        *RowError
	reason    *reason
	firstLine int
}

func newDupReference(row Row, firstLine int) *dupReference {
	d := &dupReference{firstLine: firstLine}
	d.reason = &reason{kinds: []error{ErrDuplicateReference}}
	d.name("")
	d.re = &RowError{Line: row.Line, Column: "reference", Value: redact("reference", row.Reference), Code: CodeDuplicateReference, Err: d.reason,
		Hint: "every payout needs its own reference: delete the repeated row or give it a new reference"}
	return d
}

// name writes the message, naming the first row's spelling if known. The
// row's own spelling is the RowError's Value.
func (d *dupReference) name(firstRef string) {
	first := fmt.Sprintf("line %d", d.firstLine)
	if firstRef != "" {
		first = fmt.Sprintf("%s on line %d", strconv.Quote(redact("reference", firstRef)), d.firstLine)
	}
	d.reason.msg = "same reference as " + first + ": references are compared in one canonical form (Unicode NFKC and case folding), " +
		"so letter case, full-width characters and ligatures do not make another reference"
}

// nameFirstReferences reads the file at path again to name the first
// reference of every duplicate payout and every duplicate reference. It
// does so only if the file still has the same SHA-256; otherwise (or on any
// error) the messages keep naming lines only.
func (m *reader) nameFirstReferences(path string) {
	want := map[int]string{}
	for _, d := range m.dupPays {
		want[d.firstLine] = ""
	}
	for _, d := range m.dupRefs {
		want[d.firstLine] = ""
	}
	refs, err := referencesAt(path, m.sum.Delimiter, m.opts.MaxLineBytes, m.header.refIndex, want, m.sum.SHA256)
	if err != nil {
		return
	}
	for _, d := range m.dupPays {
		d.name(refs[d.firstLine])
	}
	for _, d := range m.dupRefs {
		d.name(refs[d.firstLine])
	}
}

// referencesAt returns the reference column of the records starting
// at the lines in want, reading path with the grammar of the first pass.
func referencesAt(path string, delim rune, limit, refIndex int, want map[int]string, sha string) (map[int]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	h := sha256.New()
	br := bufio.NewReaderSize(io.TeeReader(f, h), 64<<10)
	if _, _, problem := sniff(br); problem != nil {
		return nil, problem
	}
	cr := csv.NewReader(newRecordGuard(br, delim, limit))
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
			want[line] = trim(rec[refIndex])
		}
	}
	if hex.EncodeToString(h.Sum(nil)) != sha {
		return nil, errors.New("manifest changed")
	}
	return want, nil
}
