package main_test

import (
	"bytes"
	"database/sql"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// panScanner looks for card numbers in what the product wrote. It knows
// two kinds of secret:
//
//   - every run of 12 or more digits in the manifests the product was given
//     (card numbers in any column, damaged or not, and anything else that
//     long), found anywhere, also inside a longer digit run or written in
//     groups — except amounts, which are shown as written (99999999999999.00
//     is not a card number), unless an amount is itself a Luhn-valid 13–19
//     digit number (a card number typed into the amount column);
//   - any Luhn-valid run of 13–19 digits, possibly in groups separated by
//     single spaces or dashes, bounded by non-digits.
//
// A manifest value found is always a failure. A Luhn-valid run can be a
// coincidence inside an identifier made of hex digits; such a hit is only
// excused when it is proven to be one (see panHit.Why), and every excused
// hit is printed with its exact bytes.
type panScanner struct {
	secrets map[string]bool // digits of every long number in the manifests
	lengths []int           // distinct lengths of secrets
	known   []string        // identifiers known not to be card numbers (batch ids)
}

// panHit is one finding: File and Offset locate Bytes exactly.
type panHit struct {
	File    string
	Offset  int
	Bytes   string
	Context string
	// Manifest is set when the digits are a number from a manifest.
	Manifest bool
	// Why explains a Luhn-valid run proven not to be a card number; "" is
	// an unexplained hit, which fails the scan.
	Why string
	// raw is the file's bytes around the hit, which starts at raw[rawAt:].
	raw   []byte
	rawAt int
}

func (h panHit) String() string {
	kind := "Luhn-valid digit run"
	if h.Manifest {
		kind = "MANIFEST NUMBER"
	}
	s := fmt.Sprintf("%s at %s+%d: %q in %q", kind, h.File, h.Offset, h.Bytes, h.Context)
	if h.Why != "" {
		s += " — excused: " + h.Why
	}
	return s
}

// newPANScanner collects the secrets of the given manifests.
func newPANScanner(t *testing.T, manifests ...string) *panScanner {
	t.Helper()
	s := &panScanner{secrets: map[string]bool{}}
	for _, m := range manifests {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		cr := csv.NewReader(bytes.NewReader(b))
		if first, _, _ := bytes.Cut(b, []byte("\n")); bytes.Count(first, []byte(";")) > bytes.Count(first, []byte(",")) {
			cr.Comma = ';'
		}
		cr.FieldsPerRecord, cr.LazyQuotes = -1, true
		records, err := cr.ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		amount := -1
		for i, name := range records[0] {
			if strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(name, "\ufeff")), "amount") {
				amount = i
			}
		}
		for _, rec := range records {
			for i, v := range rec {
				for _, r := range digitRuns([]byte(v)) {
					d := r.digits([]byte(v))
					if len(d) < 12 || i == amount && !(len(d) <= 19 && len(d) >= 13 && luhn(d)) {
						continue
					}
					s.secrets[d] = true
				}
			}
		}
	}
	lens := map[int]bool{}
	for d := range s.secrets {
		lens[len(d)] = true
	}
	for l := range lens {
		s.lengths = append(s.lengths, l)
	}
	sort.Ints(s.lengths)
	if len(s.secrets) == 0 {
		t.Fatal("no card numbers in the manifests: the scan would prove nothing")
	}
	return s
}

// run is a maximal run of digit groups joined by single spaces or dashes.
// groups holds [start, end) of each group of consecutive digits.
type run struct{ groups [][2]int }

func (r run) start() int { return r.groups[0][0] }
func (r run) end() int   { return r.groups[len(r.groups)-1][1] }

func (r run) digits(b []byte) string {
	var sb strings.Builder
	for _, g := range r.groups {
		sb.Write(b[g[0]:g[1]])
	}
	return sb.String()
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// digitRuns returns every maximal run in b.
func digitRuns(b []byte) []run {
	var runs []run
	for i := 0; i < len(b); {
		if !isDigit(b[i]) {
			i++
			continue
		}
		var r run
		for {
			j := i
			for j < len(b) && isDigit(b[j]) {
				j++
			}
			r.groups = append(r.groups, [2]int{i, j})
			if j+1 < len(b) && (b[j] == ' ' || b[j] == '-') && isDigit(b[j+1]) {
				i = j + 1
				continue
			}
			i = j
			break
		}
		runs = append(runs, r)
	}
	return runs
}

func luhn(d string) bool {
	sum, double := 0, false
	for i := len(d) - 1; i >= 0; i-- {
		n := int(d[i] - '0')
		if double {
			if n *= 2; n > 9 {
				n -= 9
			}
		}
		sum += n
		double = !double
	}
	return sum%10 == 0
}

// scan returns every hit in b (the content of file name).
func (s *panScanner) scan(name string, b []byte) []panHit {
	var hits []panHit
	for _, r := range digitRuns(b) {
		d := r.digits(b)
		if len(d) < 12 {
			continue
		}
		// Manifest numbers anywhere in the run, whatever the grouping.
		found := false
		for _, l := range s.lengths {
			for i := 0; i+l <= len(d) && !found; i++ {
				if s.secrets[d[i:i+l]] {
					hits = append(hits, s.hit(name, b, r.start(), r.end(), true))
					found = true
				}
			}
		}
		if found {
			continue
		}
		// Luhn-valid runs of whole groups.
		for i := range r.groups {
			n := 0
			for j := i; j < len(r.groups); j++ {
				n += r.groups[j][1] - r.groups[j][0]
				if n > 19 {
					break
				}
				if n < 13 {
					continue
				}
				from, to := r.groups[i][0], r.groups[j][1]
				if luhn(digitsOnly(b[from:to])) {
					h := s.hit(name, b, from, to, false)
					h.Why = s.excuse(b, from, to)
					hits = append(hits, h)
				}
			}
		}
	}
	return hits
}

func digitsOnly(b []byte) string {
	out := make([]byte, 0, len(b))
	for _, c := range b {
		if isDigit(c) {
			out = append(out, c)
		}
	}
	return string(out)
}

func (s *panScanner) hit(name string, b []byte, from, to int, manifest bool) panHit {
	lo, hi := max(0, from-40), min(len(b), to+40)
	wlo, whi := max(0, from-600), min(len(b), to+600)
	return panHit{File: name, Offset: from, Bytes: string(b[from:to]), Context: string(b[lo:hi]), Manifest: manifest,
		raw: bytes.Clone(b[wlo:whi]), rawAt: from - wlo}
}

var uuidRE = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)

func isLowerHex(c byte) bool { return isDigit(c) || (c >= 'a' && c <= 'f') }

// excuse proves that b[from:to] lies inside an identifier made of hex
// digits, or returns "". Only lower-case hex counts (the product writes
// hashes, HMACs, tokens and idempotency keys that way), and only long
// identifiers: a whole hex string of exactly 64 digits (SHA-256,
// HMAC-SHA256) or 32 (lease token), a UUID-shaped idempotency key, or one
// of the known batch ids. A card number glued to a word or a short token is not excused.
func (s *panScanner) excuse(b []byte, from, to int) string {
	// The maximal lower-case hex token around the run, dashes included.
	lo, hi := from, to
	for lo > 0 && (isLowerHex(b[lo-1]) || b[lo-1] == '-') {
		lo--
	}
	for hi < len(b) && (isLowerHex(b[hi]) || b[hi] == '-') {
		hi++
	}
	for _, m := range uuidRE.FindAllIndex(b[lo:hi], -1) {
		if lo+m[0] <= from && to <= lo+m[1] {
			return "inside the UUID-shaped idempotency key " + string(b[lo+m[0]:lo+m[1]])
		}
	}
	if !bytes.ContainsAny(b[from:to], " -") {
		l, h := from, to
		for l > 0 && isLowerHex(b[l-1]) {
			l--
		}
		for h < len(b) && isLowerHex(b[h]) {
			h++
		}
		if h-l == 32 || h-l == 64 {
			return fmt.Sprintf("inside the %d-digit hex identifier %s", h-l, b[l:h])
		}
		for _, k := range s.known {
			for i := max(0, to-len(k)); i <= from && i+len(k) <= len(b); i++ {
				if string(b[i:i+len(k)]) == k {
					return "inside the batch id " + k
				}
			}
		}
	}
	return ""
}

// scanDir scans every file under dir.
func (s *panScanner) scanDir(t *testing.T, dir string) (hits []panHit, files int, size int64) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		size += int64(len(b))
		rel, _ := filepath.Rel(dir, path)
		hits = append(hits, s.scan(rel, b)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return hits, files, size
}

// sqliteValues returns every value stored in the SQLite file at path, each
// as the bytes SQLite writes for it in a record (text and blobs as they
// are, integers big-endian in the fewest bytes, 0 and 1 and NULL as
// nothing). It also scans each text and blob value on its own and returns
// the hits, so that a value is judged by itself too, not only by the raw
// pages where it sits next to its neighbours.
func (s *panScanner) sqliteValues(t *testing.T, path string) (vals map[string]bool, hits []panHit) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tables, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table'`)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for tables.Next() {
		var n string
		if err := tables.Scan(&n); err != nil {
			t.Fatal(err)
		}
		names = append(names, n)
	}
	tables.Close()
	vals = map[string]bool{}
	for _, table := range names {
		rows, err := db.Query(`SELECT * FROM "` + table + `"`)
		if err != nil {
			t.Fatal(err)
		}
		cols, _ := rows.Columns()
		for rows.Next() {
			cells := make([]any, len(cols))
			ptrs := make([]any, len(cols))
			for i := range cells {
				ptrs[i] = &cells[i]
			}
			if err := rows.Scan(ptrs...); err != nil {
				t.Fatal(err)
			}
			for i, c := range cells {
				var v []byte
				switch c := c.(type) {
				case int64:
					v = sqliteInt(c)
				case float64:
					continue
				case string:
					v = []byte(c)
				case []byte:
					v = c
				}
				if len(v) == 0 {
					continue
				}
				vals[string(v)] = true
				for _, h := range s.scan(fmt.Sprintf("%s:%s.%s", filepath.Base(path), table, cols[i]), v) {
					hits = append(hits, h)
				}
			}
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		rows.Close()
	}
	return vals, hits
}

// sqliteInt is an integer as a SQLite record stores it.
func sqliteInt(v int64) []byte {
	if v == 0 || v == 1 {
		return nil
	}
	for _, n := range []int{1, 2, 3, 4, 6, 8} {
		lim := int64(1) << (8*n - 1)
		if v >= -lim && v < lim {
			out := make([]byte, n)
			for i := n - 1; i >= 0; i-- {
				out[i] = byte(v)
				v >>= 8
			}
			return out
		}
	}
	return nil
}

func isSQLiteFile(name string) bool {
	for _, suf := range []string{".db", ".db-wal", ".db-shm"} {
		if strings.HasSuffix(name, suf) {
			return true
		}
	}
	return false
}

// valueIndex is every value stored in a SQLite file, findable by the
// bytes it starts with.
type valueIndex struct {
	set    map[string]bool
	one    map[byte]bool        // values of one byte
	lens   map[[2]byte][]int    // distinct lengths of longer values by first two bytes, longest first
	values map[[2]byte][]string // the longer values by first two bytes
}

func newValueIndex(vals map[string]bool) *valueIndex {
	idx := &valueIndex{set: map[string]bool{}, one: map[byte]bool{}, lens: map[[2]byte][]int{}, values: map[[2]byte][]string{}}
	seen := map[[2]byte]map[int]bool{}
	for v := range vals {
		if len(v) > 512 {
			continue
		}
		idx.set[v] = true
		if len(v) == 1 {
			idx.one[v[0]] = true
			continue
		}
		k := [2]byte{v[0], v[1]}
		idx.values[k] = append(idx.values[k], v)
		if seen[k] == nil {
			seen[k] = map[int]bool{}
		}
		if !seen[k][len(v)] {
			seen[k][len(v)] = true
			idx.lens[k] = append(idx.lens[k], len(v))
		}
	}
	for _, ls := range idx.lens {
		sort.Sort(sort.Reverse(sort.IntSlice(ls)))
	}
	return idx
}

// at returns the values found exactly at b[p:], longest first.
func (idx *valueIndex) at(b []byte, p int) []string {
	if p < 0 || p >= len(b) {
		return nil
	}
	var out []string
	if p+1 < len(b) {
		for _, l := range idx.lens[[2]byte{b[p], b[p+1]}] {
			if p+l <= len(b) && idx.set[string(b[p:p+l])] {
				out = append(out, string(b[p:p+l]))
			}
		}
	}
	if idx.one[b[p]] {
		out = append(out, string(b[p:p+1]))
	}
	return out
}

// prefixAt returns a value that b[p:to] is a proper beginning of: a value
// whose end was overwritten (free space in a page keeps old fragments).
func (idx *valueIndex) prefixAt(b []byte, p, to int) string {
	if to-p < 2 || p+1 >= len(b) {
		return ""
	}
	for _, v := range idx.values[[2]byte{b[p], b[p+1]}] {
		if to-p < len(v) && string(b[p:to]) == v[:to-p] {
			return v
		}
	}
	return ""
}

// suffixOf returns a value that piece is a proper end of.
func (idx *valueIndex) suffixOf(piece []byte) string {
	for v := range idx.set {
		if len(piece) < len(v) && strings.HasSuffix(v, string(piece)) {
			return v
		}
	}
	return ""
}

// excuseAdjacent proves that a Luhn-valid run in a raw SQLite file (the
// database, its WAL) is made of values stored there: SQLite writes a
// record's values back to back with no separator, so a reference ending in
// digits followed by a timestamp, or a description ending in a year
// followed by a card's BIN, last four digits and fingerprint, read as one
// long digit run; and free space in a page keeps fragments of old records.
// The proof is a chain of stored values, each found exactly at its place in
// the file, that covers the run (its first piece may be the end of a value
// and its last the beginning of one, when the rest was overwritten). Every
// value is also scanned on its own (sqliteValues), so a card number inside
// one value is caught there; a manifest number split across two values is
// caught by the manifest scan.
func excuseAdjacent(b []byte, from, to int, idx *valueIndex) string {
	var chain func(p, depth int) []string
	chain = func(p, depth int) []string {
		if depth > 10 {
			return nil
		}
		for _, v := range idx.at(b, p) {
			if p+len(v) >= to {
				return []string{fmt.Sprintf("%q", v)}
			}
			if rest := chain(p+len(v), depth+1); rest != nil {
				return append([]string{fmt.Sprintf("%q", v)}, rest...)
			}
		}
		if v := idx.prefixAt(b, p, to); v != "" {
			return []string{fmt.Sprintf("the beginning %q of %q", b[p:to], v)}
		}
		return nil
	}
	explain := func(parts []string) string {
		if len(parts) == 1 {
			return "inside the stored value " + parts[0] + ", judged on its own by the value scan"
		}
		return "stored values side by side in one SQLite record: " + strings.Join(parts, " + ")
	}
	for p0 := max(0, from-512); p0 <= from; p0++ {
		for _, v := range idx.at(b, p0) {
			p1 := p0 + len(v)
			if p1 <= from {
				continue
			}
			parts := []string{fmt.Sprintf("%q", v)}
			if p1 < to {
				rest := chain(p1, 0)
				if rest == nil {
					continue
				}
				parts = append(parts, rest...)
			}
			return explain(parts)
		}
	}
	// The run is inside the beginning of a value whose end was overwritten.
	for p0 := max(0, from-512); p0 <= from; p0++ {
		if v := idx.prefixAt(b, p0, to); v != "" {
			return fmt.Sprintf("a fragment of a stored value in free space of a page: the beginning %q of %q", b[p0:to], v)
		}
	}
	// The run starts with the end of a value whose beginning was overwritten.
	for p1 := from + 1; p1 <= to; p1++ {
		v := idx.suffixOf(b[from:p1])
		if v == "" {
			continue
		}
		parts := []string{fmt.Sprintf("the end %q of %q", b[from:p1], v)}
		if p1 < to {
			rest := chain(p1, 0)
			if rest == nil {
				continue
			}
			parts = append(parts, rest...)
		}
		return "fragments of stored values in free space of a page: " + strings.Join(parts, " + ")
	}
	return ""
}

// judge excuses the Luhn-valid hits in raw SQLite files (names ending in
// .db, .db-wal, .db-shm) by adjacency of stored values (vals, from
// sqliteValues), then fails the test for every hit left unexplained and
// logs the excused ones.
func judge(t *testing.T, what string, hits []panHit, vals map[string]bool) {
	t.Helper()
	idx := newValueIndex(vals)
	memo := map[string]string{} // the same pages recur in every snapshot
	bad, excused := 0, 0
	seen := map[string]bool{}
	for _, h := range hits {
		if !h.Manifest && h.Why == "" && vals != nil && isSQLiteFile(h.File) {
			key := fmt.Sprintf("%d:%d:%s", h.rawAt, len(h.Bytes), h.raw)
			why, ok := memo[key]
			if !ok {
				why = excuseAdjacent(h.raw, h.rawAt, h.rawAt+len(h.Bytes), idx)
				memo[key] = why
			}
			h.Why = why
		}
		key := h.Bytes + "|" + h.Why + "|" + strings.TrimRight(h.File, "0123456789")
		if h.Manifest || h.Why == "" {
			bad++
			t.Errorf("%s: %v", what, h)
			continue
		}
		excused++
		if !seen[key] {
			seen[key] = true
			t.Logf("%s: %v", what, h)
		}
	}
	t.Logf("%s: %d card-number hits, %d Luhn-valid coincidences excused", what, bad, excused)
}
