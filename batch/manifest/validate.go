package manifest

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/payouts/payouts/internal/pan"
	"github.com/payouts/payouts/internal/refid"
)

// Field limits, in characters (runes).
const (
	referenceMax   = 64
	nameMax        = 128
	emailMax       = 254
	descriptionMax = 256
)

// checkRow validates one decoded record, reports its problems, runs the
// batch checks (duplicates, totals) and returns the row and whether it is
// valid.
func (m *reader) checkRow(rec *record, line int) (Row, bool) {
	row := Row{Line: line}
	valid := true
	fail := func(column, value string, err error) {
		m.addError(newRowError(line, column, value, err))
		valid = false
	}
	// Invalid UTF-8 is one problem per field; such a field is not checked
	// further (every other message about it would be noise).
	// A value that is not valid UTF-8 stops the file (one problem for the
	// file, not one per cell: notUTF8); a spreadsheet error cell (#N/A) is
	// one problem of its cell. Neither is checked further.
	utf := func(column, value string) bool {
		if m.stopped {
			return false
		}
		if !utf8.ValidString(value) {
			m.notUTF8(line, column, value)
			valid = false
			return false
		}
		if rec.xl != nil {
			if e, bad := rec.xl.errorCell[column]; bad {
				fail(column, e, newReason("cell holds the spreadsheet error "+e+" (a formula that failed)", "fix the formula or type the value, and save again", ErrSpreadsheetDamage, columnErr(column)))
				return false
			}
			if r, bad := rec.xl.formula[column]; bad {
				fail(column, value, r)
				return false
			}
		}
		return true
	}

	refOK, curOK, amountOK, cardOK := false, false, false, false
	if utf("reference", rec.Reference) {
		ref, err := checkReference(rec.Reference)
		if rec.xl != nil && rec.xl.refNumber {
			err = refStoredAsNumber
		}
		if err != nil {
			fail("reference", rec.Reference, err)
		} else {
			row.Reference, refOK = ref, true
		}
	}
	digits := -1
	if utf("currency", rec.Currency) {
		d, err := CurrencyDigits(rec.Currency)
		if err != nil {
			fail("currency", rec.Currency, err)
		} else {
			row.Currency, digits, curOK = upper(rec.Currency), d, true
		}
	}
	if utf("amount", rec.Amount) {
		amount, number := rec.Amount, false
		if rec.xl != nil && rec.xl.amountNumber != "" {
			amount, number = rec.xl.amountNumber, true
		}
		v, err := amountParseAs(amount, digits, row.Currency, number)
		if err == nil && number && !amountShown(rec.Amount, amount) {
			err = amountShownDiffers(rec.Amount, amount)
		}
		switch {
		case err != nil:
			fail("amount", amount, err)
		case curOK:
			row.Amount, amountOK = v, true
		}
	}
	if utf("card_number", rec.CardNumber) {
		pan, err := ParseCard(rec.CardNumber)
		if rec.xl != nil && rec.xl.cardNumber {
			err = cardStoredAsNumber
		}
		if err != nil {
			fail("card_number", rec.CardNumber, err)
		} else {
			row.Card, cardOK = pan, true
		}
	}
	if utf("recipient_name", rec.RecipientName) {
		name, err := checkName(rec.RecipientName)
		if err != nil {
			fail("recipient_name", rec.RecipientName, err)
		} else {
			row.RecipientName = name
		}
	}
	if utf("email", rec.Email) {
		email, err := checkEmail(rec.Email)
		if err != nil {
			fail("email", rec.Email, err)
		} else {
			row.Email = email
		}
	}
	if utf("description", rec.Description) {
		desc, err := checkDescription(rec.Description)
		if err != nil {
			fail("description", rec.Description, err)
		} else {
			row.Description = desc
		}
	}

	// Batch checks.
	dupRef := false
	if refOK && !m.opts.noDuplicateCheck {
		if first, dup := m.seen.reference(row.Reference, line); dup {
			d := newDupReference(row, first)
			if m.addError(d.re) {
				m.dupRefs = append(m.dupRefs, d) // only those listed get their first spelling named
			}
			valid, dupRef = false, true
		}
	}
	if amountOK && curOK {
		m.addTotal(row.Currency, row.Amount, line)
		if err := m.checkMaxAmount(row); err != nil {
			m.addError(newRowError(line, "amount", "", err))
			valid = false
		}
	} else {
		m.partial = true
	}
	if amountOK && curOK && cardOK && !dupRef && !m.opts.noDuplicateCheck {
		if first, dup := m.seen.payout(row.Card, row.Amount, row.Currency, line); dup {
			d := newDupPayout(row, first, m.opts.AllowDuplicates)
			var listed bool
			if m.opts.AllowDuplicates {
				listed = m.addWarning(d.re)
			} else {
				listed = m.addError(d.re)
				valid = false
			}
			if listed { // only those listed get their first reference named
				m.dupPays = append(m.dupPays, d)
			}
		}
	}
	return row, valid
}

// addTotal adds amount to the currency's total, refusing to overflow.
func (m *reader) addTotal(cur string, amount int64, line int) {
	if m.overflow[cur] {
		return
	}
	t := m.sum.Totals[cur]
	if t > (1<<63-1)-amount {
		if m.overflow == nil {
			m.overflow = map[string]bool{}
		}
		m.overflow[cur] = true
		m.addError(newRowError(line, "amount", "", newReason("total of "+cur+" overflows", "split the file into smaller batches", ErrAmount)))
		return
	}
	m.sum.Totals[cur] = t + amount
}

// checkText is the common check of free text: no control
// characters (invisible format characters too, when strict), no card
// number (by pan's rule, so that the ledger, which masks them, stores the
// value unchanged), at most limit characters. what names the field in
// messages.
func checkText(s, what string, limit int, strict bool, kind error) (string, error) {
	n := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf { // ASCII fast path
			if c < 0x20 || c == 0x7f {
				return "", controlProblem(what, rune(c), kind)
			}
			i++
			n++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || (strict && unicode.Is(unicode.Cf, r)) {
			return "", controlProblem(what, r, kind)
		}
		i += size
		n++
	}
	if n > limit {
		return "", newReason(fmt.Sprintf("%s has %d characters, at most %d", what, n, limit), "shorten it", kind)
	}
	if pan.Contains(s) {
		if kind == ErrReference {
			// The reference is an identity: masked in the ledger, it would
			// never match Pike's answers (issue 13, finding 7).
			return "", newReason("reference looks like a card number; card numbers are never stored, so this reference would be masked",
				"use a reference without 13 to 19 digits in a row or in groups that pass the card-number (Luhn) check, e.g. put a letter among the digits", kind)
		}
		return "", newReason(what+" contains what looks like a card number",
			"card numbers may only be in the card_number column (everything else is stored and shown in clear)", kind)
	}
	return s, nil
}

func controlProblem(what string, r rune, kind error) error {
	return newReason(fmt.Sprintf("%s contains the invisible or control character %U", what, r),
		"retype the value; line breaks, tabs and invisible characters are not allowed", kind)
}

// simpleNFC reports whether s is made only of characters that are
// in NFC and never compose with each other — printable ASCII, the Latin-1
// letters and the Cyrillic letters — and so is NFC without asking the
// normalizer (most names are; TestSimpleNFC checks every pair).
func simpleNFC(s string) bool {
	for _, r := range s {
		if !simpleNFCRune(r) {
			return false
		}
	}
	return true
}

func simpleNFCRune(r rune) bool {
	return (r >= 0x20 && r <= 0x7e) || (r >= 0xc0 && r <= 0xff) || (r >= 0x400 && r <= 0x482) || (r >= 0x48a && r <= 0x4ff)
}

// simpleEmail reports whether s is local@domain made of dot-atoms
// of letters, digits and ._%+- (no leading, trailing or doubled dots): an
// address net/mail accepts as it is. Anything else goes to net/mail.
func simpleEmail(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at != strings.LastIndexByte(s, '@') {
		return false
	}
	atom := func(a string, extra string) bool {
		if a == "" || a[0] == '.' || a[len(a)-1] == '.' || strings.Contains(a, "..") {
			return false
		}
		for i := 0; i < len(a); i++ {
			c := a[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '-' || strings.IndexByte(extra, c) >= 0) {
				return false
			}
		}
		return true
	}
	return atom(s[:at], "_%+") && atom(s[at+1:], "")
}

// checkReference: required, 1–64 characters as written, NFC, and a
// safe identity (refid.Check: no invisible, unassigned or private-use
// characters, no confusable mix of scripts). References are compared by
// refid.Key (see seenSet.reference).
//
// The length counts the characters as written, which is what Pike receives
// and people see; the key may be longer (ß is ss, ﬃ is ffi) and is not
// limited. A card number is refused in either form: full-width digits are
// ASCII digits in the key, which the ledger stores.
func checkReference(s string) (string, error) {
	t := trim(s)
	if t == "" {
		return "", newReason("reference is empty", "every row needs a unique reference, e.g. EMP-0042-2026-11", ErrReference)
	}
	// refid.Check first: it says the most about invisible characters.
	if err := refid.Check(t); err != nil {
		return "", refProblem(err)
	}
	t, err := checkText(t, "reference", referenceMax, true, ErrReference)
	if err != nil {
		return "", err
	}
	if !simpleNFC(t) && !norm.NFC.IsNormalString(t) {
		return "", newReason("reference is not in Unicode NFC form (an accent is a separate character)",
			"retype the reference, so that it cannot differ invisibly from the same reference elsewhere", ErrReference)
	}
	if !isASCII(t) && pan.Contains(refid.Key(t)) {
		return "", newReason("reference contains what looks like a card number (written with full-width or other non-ASCII digits)",
			"card numbers may only be in the card_number column (everything else is stored and shown in clear)", ErrReference)
	}
	return t, nil
}

// refProblem turns refid.Check's error into the manifest's.
func refProblem(err error) error {
	var p *refid.Problem
	if errors.As(err, &p) {
		return newReason(p.Msg, p.Hint, ErrReference)
	}
	return newReason(err.Error(), "retype the reference", ErrReference)
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// checkName: required, 1–128 characters after NFC normalization,
// at least one letter, no control characters.
func checkName(s string) (string, error) {
	t := trim(s)
	if !simpleNFC(t) {
		t = norm.NFC.String(t)
	}
	if t == "" {
		return "", newReason("recipient name is empty", "write the recipient's full name as on the card", ErrRecipientName)
	}
	t, err := checkText(t, "recipient name", nameMax, false, ErrRecipientName)
	if err != nil {
		return "", err
	}
	for _, r := range t {
		if unicode.IsLetter(r) {
			return t, nil
		}
	}
	return "", newReason("recipient name has no letters", "check that the columns are not shifted; write the full name", ErrRecipientName)
}

// checkEmail: optional; one plain address, no display name.
func checkEmail(s string) (string, error) {
	t := trim(s)
	if t == "" {
		return "", nil
	}
	t, err := checkText(t, "email", emailMax, true, ErrEmail)
	if err != nil {
		return "", err
	}
	if simpleEmail(t) {
		return t, nil
	}
	a, err := mail.ParseAddress(t)
	if err != nil || a.Name != "" || a.Address != t {
		return "", newReason("email is not one plain address", "write a single address like ivan.petrov@example.com, without a name or <>", ErrEmail)
	}
	return t, nil
}

// checkDescription: optional, at most 256 characters. A line break
// (Alt+Enter in a spreadsheet cell: LF, CRLF or CR) is valid data: it and
// the spaces around it become one space, so the description is stored,
// sent and reported on one line. Other control characters are refused.
func checkDescription(s string) (string, error) {
	t := trim(s)
	if t == "" {
		return "", nil
	}
	if strings.ContainsAny(t, "\r\n") {
		t = joinLines(t)
	}
	return checkText(t, "description", descriptionMax, false, ErrDescription)
}

// joinLines replaces every line break of s, with the spaces around it, by
// one space.
func joinLines(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); {
		if s[i] != '\r' && s[i] != '\n' {
			b.WriteByte(s[i])
			i++
			continue
		}
		out := strings.TrimRight(b.String(), " ")
		b.Reset()
		b.WriteString(out)
		b.WriteByte(' ')
		for i < len(s) && (s[i] == '\r' || s[i] == '\n' || s[i] == ' ') {
			i++
		}
	}
	return b.String()
}
