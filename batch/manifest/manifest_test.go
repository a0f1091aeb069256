package manifest_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/payouts/payouts/batch/manifest"
)

const manifestHeader = "reference,amount,currency,card_number,recipient_name,email,description\n"

// readString reads a manifest from s, collecting the rows fn saw.
func readString(t *testing.T, s string, opts manifest.Options) (manifest.Summary, []manifest.Row, *manifest.ValidationError) {
	t.Helper()
	var rows []manifest.Row
	sum, err := manifest.Read(strings.NewReader(s), opts, func(r manifest.Row) error {
		rows = append(rows, r)
		return nil
	})
	var ve *manifest.ValidationError
	if err != nil && !errors.As(err, &ve) {
		t.Fatalf("Read: %v, want nil or *ValidationError", err)
	}
	return sum, rows, ve
}

// problem is the part of a RowError a test checks.
type problem struct {
	Line   int
	Column string
	Err    error
}

func problems(ve *manifest.ValidationError) []problem {
	if ve == nil {
		return nil
	}
	var ps []problem
	for _, e := range ve.Errors {
		ps = append(ps, problem{e.Line, e.Column, sentinel(e)})
	}
	return ps
}

// sentinel returns the sentinel of e's Code if e wraps it, and an error
// saying so otherwise, so every comparison of problems also checks that
// the code and the wrapped sentinel agree.
func sentinel(e *manifest.RowError) error {
	s := e.Code.Err()
	if s == nil || !errors.Is(e, s) {
		return fmt.Errorf("code %q does not match the error %q", e.Code, e.Err)
	}
	return s
}

func TestReadSample(t *testing.T) {
	path := "../../samples/payroll.csv"
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var rows []manifest.Row
	sum, err := manifest.ReadFile(path, manifest.Options{}, func(r manifest.Row) error {
		rows = append(rows, r)
		return nil
	})
	if err != nil {
		t.Fatalf("ReadFile(%s): %v", path, err)
	}
	want := sha256.Sum256(data)
	if sum.SHA256 != hex.EncodeToString(want[:]) {
		t.Errorf("SHA256 = %s, want %x", sum.SHA256, want)
	}
	if sum.Rows != 20 || len(rows) != 20 {
		t.Fatalf("got %d rows, fn saw %d; want 20", sum.Rows, len(rows))
	}
	for i, r := range rows {
		if r.Line != i+2 {
			t.Errorf("row %d: Line = %d, want %d", i, r.Line, i+2)
		}
	}
	first := manifest.Row{Line: 2, Reference: "PAY-2026-11-0001", Amount: 8500000, Currency: "RUB",
		Card: "2200000000000004", RecipientName: "Иванов Иван Иванович", Email: "ivan.ivanov@example.com",
		Description: "Зарплата за ноябрь 2026"}
	if rows[0] != first {
		t.Errorf("first row = %+v, want %+v", rows[0], first)
	}
	wantTotals := map[string]int64{"RUB": 132019149, "EUR": 555050, "USD": 407500}
	if !reflect.DeepEqual(sum.Totals, wantTotals) {
		t.Errorf("Totals = %v, want %v", sum.Totals, wantTotals)
	}
	if sum.Delimiter != ',' || sum.BOM || len(sum.Warnings) != 0 {
		t.Errorf("Delimiter %q, BOM %v, Warnings %v; want ',', false, none", sum.Delimiter, sum.BOM, sum.Warnings)
	}
}

func TestReadSpreadsheetExport(t *testing.T) {
	var rows []manifest.Row
	sum, err := manifest.ReadFile("../../samples/payroll-semicolon.csv", manifest.Options{}, func(r manifest.Row) error {
		rows = append(rows, r)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !sum.BOM || sum.Delimiter != ';' {
		t.Errorf("BOM %v, Delimiter %q; want true, ';'", sum.BOM, sum.Delimiter)
	}
	if got, want := sum.Columns, []string{"reference", "amount", "currency", "card_number", "recipient_name", "email", "description"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Columns = %q, want %q", got, want)
	}
	type short struct {
		Line   int
		Ref    string
		Amount int64
		Cur    string
		Last4  string
		Desc   string
	}
	var got []short
	for _, r := range rows {
		got = append(got, short{r.Line, r.Reference, r.Amount, r.Currency, r.Card.Last4(), r.Description})
	}
	want := []short{
		{2, "ЗП-2026-11-001", 150050, "RUB", "0004", "Зарплата за ноябрь"},
		{3, "ЗП-2026-11-002", 8500000, "RUB", "4242", "Зарплата за ноябрь"},
		{4, "ЗП-2026-11-003", 6420000, "RUB", "4444", "Премия; проект «Север»"},
		{5, "ЗП-2026-11-004", 11875000, "RUB", "0004", "Зарплата за ноябрь"},
		{6, "ЗП-2026-11-005", 4730025, "RUB", "4242", "Аванс за ноябрь"},
		{7, "ЗП-2026-11-006", 240000, "EUR", "4444", "Contractor invoice"},
		{9, "ЗП-2026-11-007", 187550, "USD", "4242", "Consulting"}, // line 8 is ;;;;;; and skipped
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rows:\n got %+v\nwant %+v", got, want)
	}
}

func TestReadHeader(t *testing.T) {
	row := "R-1,1500.00,RUB,4242424242424242,Ivan Petrov\n"
	tests := []struct {
		name string
		in   string
		opts manifest.Options
		want []problem
	}{
		{"case and spaces ignored", " REFERENCE ,Amount, currency ,Card_Number,Recipient_Name\n" + row, manifest.Options{}, nil},
		{"any order", "card_number,recipient_name,reference,currency,amount\n4242424242424242,Ivan Petrov,R-1,RUB,1500\n", manifest.Options{}, nil},
		{"quoted names", `"reference","amount","currency","card_number","recipient_name"` + "\n" + row, manifest.Options{}, nil},
		{"missing columns: one problem", "reference,amount\nR-1,1500\n", manifest.Options{},
			[]problem{{1, "", manifest.ErrHeader}}},
		{"duplicate column", "reference,amount,currency,card_number,recipient_name,AMOUNT\n" + strings.TrimSuffix(row, "\n") + ",1\n", manifest.Options{},
			[]problem{{1, "", manifest.ErrHeader}}},
		{"unknown column", "reference,amount,currency,card_number,recipient_name,department\n" + strings.TrimSuffix(row, "\n") + ",Sales\n", manifest.Options{},
			[]problem{{1, "", manifest.ErrHeader}}},
		{"unknown column allowed", "reference,amount,currency,card_number,recipient_name,department,\n" + strings.TrimSuffix(row, "\n") + ",Sales,\n", manifest.Options{AllowExtraColumns: true}, nil},
		{"unknown and missing", "reference,amount,currency,card number,recipient_name\n" + row, manifest.Options{},
			[]problem{{1, "", manifest.ErrHeader}, {1, "", manifest.ErrHeader}}},
		{"no header: one problem", row + row, manifest.Options{}, []problem{{1, "", manifest.ErrHeader}}},
		{"empty file", "", manifest.Options{}, []problem{{0, "", manifest.ErrEmpty}}},
		{"blank lines only", "\n\r\n \n", manifest.Options{}, []problem{{3, "", manifest.ErrHeader}}},
		{"header only", manifestHeader, manifest.Options{}, []problem{{1, "", manifest.ErrEmpty}}},
		{"header after blank lines", "\n\n" + manifestHeader + "\n", manifest.Options{}, []problem{{3, "", manifest.ErrEmpty}}},
		{"header with a bad quote", "reference,am\"ount\n" + row, manifest.Options{}, []problem{{1, "", manifest.ErrHeader}}},
		{"tab separated", strings.ReplaceAll(manifestHeader, ",", "\t") + strings.ReplaceAll(row, ",", "\t"), manifest.Options{}, []problem{{1, "", manifest.ErrHeader}}},
		{"UTF-16", "\xff\xfe" + "r\x00e\x00f\x00", manifest.Options{}, []problem{{1, "", manifest.ErrEncoding}}},
		{"workbook", "PK\x03\x04\x14\x00", manifest.Options{}, []problem{{0, "", manifest.ErrEncoding}}}, // a zip, but not a workbook
		{"old or password-protected workbook", "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\x00\x00", manifest.Options{}, []problem{{1, "", manifest.ErrEncoding}}},
		{"NUL bytes", "reference\x00,amount\n", manifest.Options{}, []problem{{1, "", manifest.ErrEncoding}}},
		{"CR line breaks", strings.ReplaceAll(manifestHeader+row, "\n", "\r"), manifest.Options{}, []problem{{1, "", manifest.ErrEncoding}}},
		{"invalid UTF-8 in header", "reference,amount,currency,card_number,recipient_name,\xff\n", manifest.Options{}, []problem{{1, "", manifest.ErrEncoding}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rows, ve := readString(t, tt.in, tt.opts)
			if got := problems(ve); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems = %v, want %v\n%v", got, tt.want, ve)
			}
			if tt.want == nil && len(rows) != 1 {
				t.Errorf("got %d rows, want 1", len(rows))
			}
		})
	}
	// The one problem for missing columns names them all and the header.
	_, _, ve := readString(t, "reference,amount\nR-1,1500\n", manifest.Options{})
	if msg := ve.Errors[0].Error(); !strings.Contains(msg, "currency, card_number, recipient_name") || !strings.Contains(msg, "reference,amount,currency,card_number,recipient_name,email,description") {
		t.Errorf("missing-columns problem %q does not list the missing columns and the header", msg)
	}
}

// TestReadRowRules checks each rule with a one-row file.
func TestReadRowRules(t *testing.T) {
	long := func(n int) string { return strings.Repeat("я", n) }
	tests := []struct {
		name string
		row  string // after the header; line 2
		want []problem
	}{
		{"valid", "R-1,1500.00,RUB,4242424242424242,Ivan Petrov,ivan@example.com,November", nil},
		{"valid lower-case currency, grouped amount", `R-1,"1 500,50",rub,4242 4242 4242 4242,Иван Петров,,`, nil},
		{"reference 64 characters", long(64) + ",1500,RUB,4242424242424242,Ivan,,", nil},
		{"reference empty", ",1500,RUB,4242424242424242,Ivan,,", []problem{{2, "reference", manifest.ErrReference}}},
		{"reference blank", "  ,1500,RUB,4242424242424242,Ivan,,", []problem{{2, "reference", manifest.ErrReference}}},
		{"reference 65 characters", long(65) + ",1500,RUB,4242424242424242,Ivan,,", []problem{{2, "reference", manifest.ErrReference}}},
		{"reference control character", "\"R\t1\",1500,RUB,4242424242424242,Ivan,,", []problem{{2, "reference", manifest.ErrReference}}},
		{"reference zero-width space", "R-1\u200b,1500,RUB,4242424242424242,Ivan,,", []problem{{2, "reference", manifest.ErrReference}}},
		{"reference not NFC", "Pe\u0301tr-1,1500,RUB,4242424242424242,Ivan,,", []problem{{2, "reference", manifest.ErrReference}}},
		{"reference is a card number", "5555 5555 5555 4444,1500,RUB,4242424242424242,Ivan,,", []problem{{2, "reference", manifest.ErrReference}}},
		{"reference with a long number is fine", "INV-4081781009991234567,1500,RUB,4242424242424242,Ivan,,", nil},
		{"amount with thousands separators", `R-1,"1,500.50",RUB,4242424242424242,Ivan,,`, nil},
		{"amount ambiguous", `R-1,"1,500",RUB,4242424242424242,Ivan,,`, []problem{{2, "amount", manifest.ErrAmount}}},
		{"amount too many decimals", "R-1,1500.505,RUB,4242424242424242,Ivan,,", []problem{{2, "amount", manifest.ErrAmount}}},
		{"amount decimals in JPY", "R-1,1500.5,JPY,4242424242424242,Ivan,,", []problem{{2, "amount", manifest.ErrAmount}}},
		{"amount zero", "R-1,0,RUB,4242424242424242,Ivan,,", []problem{{2, "amount", manifest.ErrAmount}}},
		{"amount negative", "R-1,-5,RUB,4242424242424242,Ivan,,", []problem{{2, "amount", manifest.ErrAmount}}},
		{"amount absurd", "R-1,10000000000000.01,RUB,4242424242424242,Ivan,,", []problem{{2, "amount", manifest.ErrAmount}}},
		{"amount exponent", "R-1,1.5E+03,RUB,4242424242424242,Ivan,,", []problem{{2, "amount", manifest.ErrSpreadsheetDamage}}},
		{"amount empty", "R-1,,RUB,4242424242424242,Ivan,,", []problem{{2, "amount", manifest.ErrAmount}}},
		{"amount checked even when the currency is bad", "R-1,abc,XYZ,4242424242424242,Ivan,,", []problem{{2, "currency", manifest.ErrCurrency}, {2, "amount", manifest.ErrAmount}}},
		{"currency unknown", "R-1,1500,XYZ,4242424242424242,Ivan,,", []problem{{2, "currency", manifest.ErrCurrency}}},
		{"currency metal", "R-1,1500,XAU,4242424242424242,Ivan,,", []problem{{2, "currency", manifest.ErrCurrency}}},
		{"currency symbol", "R-1,1500,₽,4242424242424242,Ivan,,", []problem{{2, "currency", manifest.ErrCurrency}}},
		{"card Luhn", "R-1,1500,RUB,4242424242424241,Ivan,,", []problem{{2, "card_number", manifest.ErrCard}}},
		{"card short", "R-1,1500,RUB,424242424242,Ivan,,", []problem{{2, "card_number", manifest.ErrCard}}},
		{"card scientific", "R-1,1500,RUB,4.24242E+15,Ivan,,", []problem{{2, "card_number", manifest.ErrSpreadsheetDamage}}},
		{"card .0", "R-1,1500,RUB,4242424242424240.0,Ivan,,", []problem{{2, "card_number", manifest.ErrSpreadsheetDamage}}},
		{"card apostrophe", "R-1,1500,RUB,'4242424242424242,Ivan,,", []problem{{2, "card_number", manifest.ErrSpreadsheetDamage}}},
		{"card formula", `R-1,1500,RUB,"=""4242424242424242""",Ivan,,`, []problem{{2, "card_number", manifest.ErrSpreadsheetDamage}}},
		{"card formula unquoted", `R-1,1500,RUB,="4242424242424242",Ivan,,`, []problem{{2, "", manifest.ErrRecord}}},
		{"name empty", "R-1,1500,RUB,4242424242424242,,,", []problem{{2, "recipient_name", manifest.ErrRecipientName}}},
		{"name 128 characters", "R-1,1500,RUB,4242424242424242," + long(128) + ",,", nil},
		{"name 129 characters", "R-1,1500,RUB,4242424242424242," + long(129) + ",,", []problem{{2, "recipient_name", manifest.ErrRecipientName}}},
		{"name line break", "R-1,1500,RUB,4242424242424242,\"Ivan\nPetrov\",,", []problem{{2, "recipient_name", manifest.ErrRecipientName}}},
		{"name without letters", "R-1,1500,RUB,4242424242424242,1500.00,,", []problem{{2, "recipient_name", manifest.ErrRecipientName}}},
		{"name with a card number", "R-1,1500,RUB,4242424242424242,Ivan 2200-0000-0000-0004,,", []problem{{2, "recipient_name", manifest.ErrRecipientName}}},
		{"email bad", "R-1,1500,RUB,4242424242424242,Ivan,ivan@,", []problem{{2, "email", manifest.ErrEmail}}},
		{"email display name", "R-1,1500,RUB,4242424242424242,Ivan,Ivan <ivan@example.com>,", []problem{{2, "email", manifest.ErrEmail}}},
		{"email two", "R-1,1500,RUB,4242424242424242,Ivan,\"a@example.com, b@example.com\",", []problem{{2, "email", manifest.ErrEmail}}},
		{"description 256", "R-1,1500,RUB,4242424242424242,Ivan,," + long(256), nil},
		{"description 257", "R-1,1500,RUB,4242424242424242,Ivan,," + long(257), []problem{{2, "description", manifest.ErrDescription}}},
		{"description tab", "R-1,1500,RUB,4242424242424242,Ivan,,\"a\tb\"", []problem{{2, "description", manifest.ErrDescription}}},
		{"description card number", "R-1,1500,RUB,4242424242424242,Ivan,,refund to 4000000000000002", []problem{{2, "description", manifest.ErrDescription}}},
		{"every column wrong at once", ",0,XYZ,1,,x,\"a\tb\"", []problem{
			{2, "reference", manifest.ErrReference}, {2, "currency", manifest.ErrCurrency}, {2, "amount", manifest.ErrAmount},
			{2, "card_number", manifest.ErrCard}, {2, "recipient_name", manifest.ErrRecipientName}, {2, "email", manifest.ErrEmail},
			{2, "description", manifest.ErrDescription}}},
		{"wrong field count", "R-1,1,500.00,RUB,4242424242424242,Ivan,,", []problem{{2, "", manifest.ErrRecord}}},
		{"bare quote", `R-1,1500,RUB,4242424242424242,Ray "Sugar" Robinson,,`, []problem{{2, "", manifest.ErrRecord}}},
		{"invalid UTF-8", "R-1,1500,RUB,4242424242424242,\xc8\xe2\xe0\xed,,", []problem{{2, "recipient_name", manifest.ErrEncoding}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sum, rows, ve := readString(t, manifestHeader+tt.row+"\n", manifest.Options{})
			if got := problems(ve); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("problems = %v, want %v\n%v", got, tt.want, ve)
			}
			if sum.Rows != 1 {
				t.Errorf("Rows = %d, want 1", sum.Rows)
			}
			if wantRows := map[bool]int{true: 1, false: 0}[tt.want == nil]; len(rows) != wantRows {
				t.Errorf("fn saw %d rows, want %d", len(rows), wantRows)
			}
			if ve != nil && ve.Total != len(tt.want) {
				t.Errorf("Total = %d, want %d", ve.Total, len(tt.want))
			}
		})
	}
}

func TestReadNormalizes(t *testing.T) {
	_, rows, ve := readString(t, manifestHeader+" R-1 , 1500 , rub , 4242-4242-4242-4242 ,\u00a0Pe\u0301tr Ivanov\u00a0, ivan@example.com , note \n", manifest.Options{})
	if ve != nil {
		t.Fatal(ve)
	}
	want := manifest.Row{Line: 2, Reference: "R-1", Amount: 150000, Currency: "RUB", Card: "4242424242424242",
		RecipientName: "P\u00e9tr Ivanov", Email: "ivan@example.com", Description: "note"}
	if rows[0] != want {
		t.Errorf("row = %#v, want %#v", rows[0], want)
	}
}

func TestReadLineNumbers(t *testing.T) {
	in := "\n" + // line 1 blank
		manifestHeader + // line 2
		"L-1,1500,RUB,4242424242424242,Ivan,,\"quoted, with a comma\"\n" + // line 3
		"\n" + // line 4 blank
		"L-2,\"1600\",RUB,4242424242424242,\"Anna\r\nPetrova\",,\n" + // lines 5-6: name with a line break
		",,,,,,\n" + // line 7: a spreadsheet's empty row
		"L-3,0,RUB,4242424242424242,Boris,,\"two\nlines\"\n" + // lines 8-9
		"L-4,1700,RUB,4242424242424242,\"Boris \"\"Bob\"\" Ivanov\",,\n" + // line 10
		"L-5,-1,RUB,4242424242424242,Boris,,\n" // line 11
	sum, rows, ve := readString(t, in, manifest.Options{})
	want := []problem{
		{5, "recipient_name", manifest.ErrRecipientName},
		{8, "amount", manifest.ErrAmount}, // its description's line break is valid data
		{11, "amount", manifest.ErrAmount},
	}
	if got := problems(ve); !reflect.DeepEqual(got, want) {
		t.Errorf("problems = %v, want %v", got, want)
	}
	if sum.Rows != 5 {
		t.Errorf("Rows = %d, want 5", sum.Rows)
	}
	// fn saw only line 3: line 5 is invalid, and nothing after a problem.
	if len(rows) != 1 || rows[0].Line != 3 || rows[0].Description != "quoted, with a comma" {
		t.Errorf("fn saw %+v, want only the row of line 3", rows)
	}
	// Once the name is fixed, lines 3 and 5 are valid and keep their numbers.
	fixed := in[:strings.Index(in, "L-3")]
	fixed = strings.Replace(fixed, "\"Anna\r\nPetrova\"", "\"Anna\r\n\"", 1) + "L-6,1,RUB,4242424242424242,Ivan,,\n"
	_, rows, ve = readString(t, fixed, manifest.Options{})
	if ve != nil || len(rows) != 3 || rows[1].Line != 5 || rows[1].RecipientName != "Anna" || rows[2].Line != 8 {
		t.Errorf("got rows %+v, %v; want lines 3, 5 (surrounding line break trimmed) and 8 (after the empty row of line 7)", rows, ve)
	}
}

func TestReadContinuesAfterBrokenRecords(t *testing.T) {
	in := manifestHeader +
		"B-1,1500,RUB,4242424242424242,Ivan,,\n" +
		"B-2,1,500,RUB,4242424242424242,Ivan,,\n" + // 8 values
		"B-3,1500,RUB\n" + // 3 values
		`B-4,1500,RUB,4242424242424242,Ray "Sugar" Robinson,,` + "\n" + // bare quote
		`B-5,"1500"x,RUB,4242424242424242,Ivan,,` + "\n" + // junk after a closing quote
		"B-6,0,RUB,4242424242424242,Ivan,,\n" // still checked
	sum, _, ve := readString(t, in, manifest.Options{})
	want := []problem{{3, "", manifest.ErrRecord}, {4, "", manifest.ErrRecord}, {5, "", manifest.ErrRecord}, {6, "", manifest.ErrRecord}, {7, "amount", manifest.ErrAmount}}
	if got := problems(ve); !reflect.DeepEqual(got, want) {
		t.Errorf("problems = %v, want %v\n%v", got, want, ve)
	}
	if sum.Rows != 6 {
		t.Errorf("Rows = %d, want 6", sum.Rows)
	}
}

func TestReadDuplicates(t *testing.T) {
	in := manifestHeader +
		"D-1,1500.00,RUB,4242424242424242,Ivan,,\n" + // 2
		"D-2,1500,rub,4242 4242 4242 4242,Ivan,,\n" + // 3: same payout as line 2
		"d-1,1700.00,RUB,5555555555554444,Anna,,\n" + // 4: same reference as line 2, ignoring case
		"D-4,1500.00,EUR,4242424242424242,Ivan,,\n" + // 5: other currency
		"D-5,1500.01,RUB,4242424242424242,Ivan,,\n" + // 6: other amount
		"D-6,1500.00,RUB,5555555555554444,Ivan,,\n" // 7: other card

	_, rows, ve := readString(t, in, manifest.Options{})
	want := []problem{{3, "card_number", manifest.ErrDuplicatePayout}, {4, "reference", manifest.ErrDuplicateReference}}
	if got := problems(ve); !reflect.DeepEqual(got, want) {
		t.Fatalf("problems = %v, want %v\n%v", got, want, ve)
	}
	if len(rows) != 1 {
		t.Errorf("fn saw %d rows, want 1 (none after the first problem)", len(rows))
	}
	for _, e := range ve.Errors {
		msg := e.Error()
		if !strings.Contains(msg, "line 2") {
			t.Errorf("%q does not name line 2", msg)
		}
		if strings.Contains(msg, "4242424242424242") {
			t.Errorf("%q shows the card number", msg)
		}
	}
	if msg := ve.Errors[0].Error(); !strings.Contains(msg, `"D-2"`) || !strings.Contains(msg, "424242******4242") || !strings.Contains(msg, "1500.00 RUB") {
		t.Errorf("duplicate payout %q does not name the reference, masked card and amount", msg)
	}

	// Allowed: the duplicate payout becomes a warning, the reference stays an error.
	sum, _, ve := readString(t, in, manifest.Options{AllowDuplicates: true})
	if got := problems(ve); !reflect.DeepEqual(got, want[1:]) {
		t.Errorf("with AllowDuplicates problems = %v, want %v", got, want[1:])
	}
	if len(sum.Warnings) != 1 || sum.Warnings[0].Line != 3 || !errors.Is(sum.Warnings[0], manifest.ErrDuplicatePayout) || len(ve.Warnings) != 1 {
		t.Errorf("Warnings = %v (ValidationError has %v), want the duplicate payout of line 3", sum.Warnings, ve.Warnings)
	}
	// Without the duplicate reference the file is valid with a warning.
	in2 := strings.Replace(in, "d-1,", "D-3,", 1)
	sum, rows, ve = readString(t, in2, manifest.Options{AllowDuplicates: true})
	if ve != nil || len(sum.Warnings) != 1 || len(rows) != 6 {
		t.Errorf("got %v, %d warnings, %d rows; want valid, 1 warning, 6 rows", ve, len(sum.Warnings), len(rows))
	}

	// ReadFile also names the first row's reference.
	path := t.TempDir() + "/dup.csv"
	if err := os.WriteFile(path, []byte(in2), 0o600); err != nil {
		t.Fatal(err)
	}
	sum, err := manifest.ReadFile(path, manifest.Options{AllowDuplicates: true}, nil)
	if err != nil || len(sum.Warnings) != 1 {
		t.Fatalf("ReadFile: %v, %d warnings", err, len(sum.Warnings))
	}
	if msg := sum.Warnings[0].Error(); !strings.Contains(msg, `line 2 ("D-1")`) || !strings.Contains(msg, `"D-2"`) {
		t.Errorf("warning %q does not name both references", msg)
	}
}

func TestReadControlTotals(t *testing.T) {
	in := manifestHeader +
		"C-1,1500.00,RUB,4242424242424242,Ivan,,\n" +
		"C-2,2500.50,RUB,5555555555554444,Anna,,\n" +
		"C-3,100,EUR,2200000000000004,Boris,,\n"
	tests := []struct {
		name string
		opts manifest.Options
		want int // problems, all ErrControlTotal
	}{
		{"none expected", manifest.Options{}, 0},
		{"rows match", manifest.Options{ExpectRows: 3}, 0},
		{"rows differ", manifest.Options{ExpectRows: 4}, 1},
		{"totals match", manifest.Options{ExpectTotals: map[string]int64{"RUB": 400050, "eur": 10000}}, 0},
		{"total differs by a kopeck", manifest.Options{ExpectTotals: map[string]int64{"RUB": 400049, "EUR": 10000}}, 1},
		{"currency missing from expectations", manifest.Options{ExpectTotals: map[string]int64{"RUB": 400050}}, 1},
		{"currency missing from file", manifest.Options{ExpectTotals: map[string]int64{"RUB": 400050, "EUR": 10000, "USD": 1}}, 1},
		{"everything wrong", manifest.Options{ExpectRows: 2, ExpectTotals: map[string]int64{"RUB": 1, "USD": 1}}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, ve := readString(t, in, tt.opts)
			got := 0
			if ve != nil {
				got = ve.Total
				for _, e := range ve.Errors {
					if !errors.Is(e, manifest.ErrControlTotal) || e.Line != 0 {
						t.Errorf("problem %v: want a file-level ErrControlTotal", e)
					}
				}
			}
			if got != tt.want {
				t.Errorf("got %d problems, want %d\n%v", got, tt.want, ve)
			}
		})
	}
	// A broken amount is reported once, not again as a total mismatch.
	broken := strings.Replace(in, "2500.50", "2500.5.0", 1)
	_, _, ve := readString(t, broken, manifest.Options{ExpectTotals: map[string]int64{"RUB": 400050, "EUR": 10000}})
	if got := problems(ve); !reflect.DeepEqual(got, []problem{{3, "amount", manifest.ErrAmount}}) {
		t.Errorf("problems = %v, want only the amount of line 3", got)
	}
}

// TestReadCaps: the safety caps are problems of the file like any other,
// a row over --max-amount on its own line, a total over --max-total after
// the rows, in line order, and fn never sees a row once one is over.
func TestReadCaps(t *testing.T) {
	in := manifestHeader +
		"R-1,1500.50,RUB,4242424242424242,Ivan,,\n" +
		"R-2,100,EUR,5555555555554444,Anna,,\n" +
		"R-3,2500,rub,2200000000000004,Petr,,\n" +
		"R-4,10,RUB,4000000000000002,Olga,,\n" +
		"R-5,9000,RUB,4111111111111111,Oleg,,\n"
	tests := []struct {
		name string
		opts manifest.Options
		want []problem
		msg  string // part of the first problem's text
	}{
		{"within the caps", manifest.Options{MaxAmount: map[string]int64{"RUB": 900000}, MaxTotal: map[string]int64{"RUB": 1301050, "EUR": 10000}}, nil, ""},
		{"a cap in another currency", manifest.Options{MaxAmount: map[string]int64{"USD": 1}}, nil, ""},
		{"rows over --max-amount, in line order", manifest.Options{MaxAmount: map[string]int64{"rub": 150050}},
			[]problem{{4, "amount", manifest.ErrMaxAmount}, {6, "amount", manifest.ErrMaxAmount}},
			"line 4, column amount: reference R-3: 2500.00 RUB exceeds --max-amount 1500.50 RUB"},
		{"total over --max-total", manifest.Options{MaxTotal: map[string]int64{"RUB": 1301049, "EUR": 10000}},
			[]problem{{0, "amount", manifest.ErrMaxTotal}},
			"column amount: total 13010.50 RUB exceeds --max-total 13010.49 RUB"},
		{"both, rows first", manifest.Options{MaxAmount: map[string]int64{"EUR": 9999}, MaxTotal: map[string]int64{"EUR": 1}},
			[]problem{{3, "amount", manifest.ErrMaxAmount}, {0, "amount", manifest.ErrMaxTotal}},
			"line 3, column amount: reference R-2: 100.00 EUR exceeds --max-amount 99.99 EUR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, rows, ve := readString(t, in, tt.opts)
			if got := problems(ve); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got problems %v, want %v", got, tt.want)
			}
			if ve == nil {
				if len(rows) != 5 {
					t.Errorf("got %d rows, want 5", len(rows))
				}
				return
			}
			if got := ve.Errors[0].Error(); !strings.HasPrefix(got, tt.msg) {
				t.Errorf("got %q, want it to start with %q", got, tt.msg)
			}
			if first := tt.want[0].Line; first > 0 && len(rows) != first-2 {
				t.Errorf("fn saw %d rows, want the %d before line %d", len(rows), first-2, first)
			}
		})
	}
	if _, err := manifest.Read(strings.NewReader(in), manifest.Options{MaxTotal: map[string]int64{"XYZ": 1}}, nil); err == nil || errors.As(err, new(*manifest.ValidationError)) {
		t.Errorf("a cap in an unknown currency: got %v, want an options error", err)
	}
}

func TestReadLimits(t *testing.T) {
	row := "R-%d,1500,RUB,4242424242424242,Ivan,,\n"
	var b strings.Builder
	b.WriteString(manifestHeader)
	for i := range 10 {
		b.WriteString(strings.Replace(row, "%d", string(rune('a'+i)), 1))
	}
	sum, _, ve := readString(t, b.String(), manifest.Options{MaxRows: 5, AllowDuplicates: true})
	if got := problems(ve); !reflect.DeepEqual(got, []problem{{7, "", manifest.ErrTooManyRows}}) {
		t.Errorf("MaxRows 5: problems = %v, want too many rows at line 7", got)
	}
	if sum.Rows != 5 || sum.SHA256 != "" {
		t.Errorf("MaxRows 5: Rows %d, SHA256 %q; want 5 and none (not read to the end)", sum.Rows, sum.SHA256)
	}

	long := manifestHeader + "R-1,1500,RUB,4242424242424242,Ivan,," + strings.Repeat("x", 300) + "\nR-2,1500,RUB,5555555555554444,Ivan,,\n"
	_, rows, ve := readString(t, long, manifest.Options{MaxLineBytes: 200})
	if got := problems(ve); !reflect.DeepEqual(got, []problem{{2, "", manifest.ErrLineTooLong}}) {
		t.Errorf("MaxLineBytes: problems = %v, want line too long at line 2", got)
	}
	if len(rows) != 0 {
		t.Errorf("MaxLineBytes: fn saw %d rows, want 0", len(rows))
	}

	// An unclosed quote would make the rest of the file one value: the
	// guard stops it at the record limit, naming the line it started on.
	unclosed := manifestHeader + "R-1,1500,RUB,4242424242424242,\"Ivan,,\n" + strings.Repeat("R-2,1500,RUB,5555555555554444,Ivan,,\n", 10000)
	_, _, ve = readString(t, unclosed, manifest.Options{})
	if got := problems(ve); !reflect.DeepEqual(got, []problem{{2, "", manifest.ErrLineTooLong}}) {
		t.Errorf("unclosed quote: problems = %v, want line too long at line 2", got)
	}

	b.Reset()
	b.WriteString(manifestHeader)
	for range 30 {
		b.WriteString("R,0,RUB,1,Ivan,,\n")
	}
	_, _, ve = readString(t, b.String(), manifest.Options{MaxErrors: 10})
	if len(ve.Errors) != 10 || ve.Total != 30*2+29 { // amount and card on every row, and 29 duplicate references
		t.Errorf("MaxErrors 10: listed %d of %d, want 10 of %d", len(ve.Errors), ve.Total, 30*2+29)
	}
	if !strings.Contains(ve.Error(), "and 79 more") {
		t.Errorf("Error() = %q, want it to count the problems not listed", ve.Error())
	}

	// Warnings are capped the same way.
	b.Reset()
	b.WriteString(manifestHeader)
	for i := range 50 {
		b.WriteString("W-" + strconv.Itoa(i) + ",1500,RUB,4242424242424242,Ivan,,\n")
	}
	path := filepath.Join(t.TempDir(), "dups.csv")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	sum, err := manifest.ReadFile(path, manifest.Options{MaxErrors: 10, AllowDuplicates: true}, nil)
	if err != nil || len(sum.Warnings) != 10 || sum.Rows != 50 {
		t.Errorf("50 rows paying the same: %v, %d warnings, %d rows; want nil, 10, 50", err, len(sum.Warnings), sum.Rows)
	}
	for _, w := range sum.Warnings {
		if !strings.Contains(w.Error(), `line 2 ("W-0")`) {
			t.Errorf("warning %q does not name the first row", w)
		}
	}
}

func TestReadFn(t *testing.T) {
	in := manifestHeader + "F-1,1500,RUB,4242424242424242,Ivan,,\nF-2,1600,RUB,4242424242424242,Ivan,,\nF-3,1700,RUB,4242424242424242,Ivan,,\n"
	stop := errors.New("stop")
	var seen []string
	_, err := manifest.Read(strings.NewReader(in), manifest.Options{}, func(r manifest.Row) error {
		seen = append(seen, r.Reference)
		if r.Reference == "F-2" {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || !strings.Contains(err.Error(), "line 3") {
		t.Errorf("err = %v, want the callback's error wrapped with its line", err)
	}
	if !reflect.DeepEqual(seen, []string{"F-1", "F-2"}) {
		t.Errorf("fn saw %v, want F-1 F-2 and then nothing", seen)
	}
	sum, err := manifest.Read(strings.NewReader(in), manifest.Options{}, nil)
	if err != nil || sum.Rows != 3 {
		t.Errorf("nil fn: %v, %d rows; want nil, 3", err, sum.Rows)
	}
}

func TestReadOptions(t *testing.T) {
	for _, o := range []manifest.Options{
		{MaxRows: -1}, {MaxLineBytes: -1}, {MaxErrors: -1}, {ExpectRows: -1},
		{ExpectTotals: map[string]int64{"XYZ": 1}},
		{ExpectTotals: map[string]int64{"RUB": 1, "rub": 2}},
	} {
		_, err := manifest.Read(strings.NewReader(manifestHeader), o, nil)
		var ve *manifest.ValidationError
		if err == nil || errors.As(err, &ve) {
			t.Errorf("options %+v: err = %v, want an options error", o, err)
		}
	}
	if _, err := manifest.ReadFile(t.TempDir()+"/missing.csv", manifest.Options{}, nil); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want os.ErrNotExist", err)
	}
}

func TestRowErrorFormat(t *testing.T) {
	_, _, ve := readString(t, manifestHeader+`R-1,"1,500",RUB,4242424242424242,Ivan,,`+"\n", manifest.Options{})
	got := ve.Errors[0].Error()
	want := `line 2, column amount: "1,500": amount is ambiguous: 1500.00 if ',' separates thousands, 1.50 if it is the decimal mark — write 1500.00 without the separator (or 1,500.00 with the decimals) if thousands are meant; write 1.50 if not`
	if got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	if !errors.Is(ve, manifest.ErrAmount) || errors.Is(ve, manifest.ErrCard) {
		t.Errorf("errors.Is through ValidationError: ErrAmount %v, ErrCard %v; want true, false", errors.Is(ve, manifest.ErrAmount), errors.Is(ve, manifest.ErrCard))
	}
}
