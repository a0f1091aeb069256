package ledger_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/payouts/payouts/internal/pgtest"
	"github.com/payouts/payouts/ledger"
)

func TestScrubPAN(t *testing.T) {
	tests := []struct{ in, want string }{
		{"card 4242424242424242 declined", "card 424242******4242 declined"},
		{"4242 4242 4242 4242", "424242******4242"},
		{"4242-4242-4242-4242", "424242******4242"},
		{`{"number":"5555555555554444"}`, `{"number":"555555******4444"}`},
		{"amex 378282246310005.", "amex 378282*****0005."},
		{"visa13 4222222222222", "visa13 422222***2222"},
		{"19 digits 6011000990139424000", "19 digits 6011000990139424000"}, // not Luhn-valid
		{"19 digits 4242424242424242428", "19 digits 424242*********2428"},
		{"card=4242424242424242;cvv", "card=424242******4242;cvv"},
		{"x4242424242424242y", "x424242******4242y"},
		{"2026-11-05 4242424242424242", "2026-11-05 424242******4242"},
		{"4242424242424242 and 5555555555554444", "424242******4242 and 555555******4444"},
		{"not luhn 4242424242424241", "not luhn 4242424242424241"},
		{"short 424242424242", "short 424242424242"},
		{"twenty 42424242424242424242", "twenty 42424242424242424242"},
		// Issue 13, finding 13: any separators people write between digits.
		{"double space 4242  4242  4242  4242", "double space 424242******4242"},
		{"dots 4242.4242.4242.4242", "dots 424242******4242"},
		{"slashes 4242/4242/4242/4242", "slashes 424242******4242"},
		{"underscores 4242_4242_4242_4242", "underscores 424242******4242"},
		{"no-break 4242\u00a04242\u00a04242\u00a04242", "no-break 424242******4242"},
		{`{"note":"card 5555.5555.5555.4444"}`, `{"note":"card 555555******4444"}`},
		{"amount 99999999999999.00 RUB", "amount 99999999999999.00 RUB"},
		{"amount 1 500 000,00 RUB", "amount 1 500 000,00 RUB"},
		{"amount 150000 RUB", "amount 150000 RUB"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := ledger.ScrubPAN(tt.in); got != tt.want {
			t.Errorf("ScrubPAN(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// luhnValid is the test's own Luhn check.
func luhnValid(d string) bool {
	sum := 0
	for i := 0; i < len(d); i++ {
		v := int(d[len(d)-1-i] - '0')
		if i%2 == 1 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return sum%10 == 0
}

// FuzzScrubPAN: whatever the input, no run of 13–19 digits in the output is
// Luhn-valid, and text without digits is left alone.
func FuzzScrubPAN(f *testing.F) {
	for _, s := range []string{"4242424242424242", "4242 4242 4242 4242", "1-4242424242424242-1", "abc", "0000000000000"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out := ledger.ScrubPAN(s)
		for _, run := range strings.FieldsFunc(out, func(r rune) bool { return r < '0' || r > '9' }) {
			if len(run) >= 13 && len(run) <= 19 && luhnValid(run) {
				t.Fatalf("ScrubPAN(%q) = %q keeps %s", s, out, run)
			}
		}
		if !strings.ContainsAny(s, "0123456789") && out != s {
			t.Fatalf("ScrubPAN(%q) = %q changed text without digits", s, out)
		}
	})
}

// TestNoPANAtRest puts card numbers into every free text the ledger stores
// and then looks for them in the database files.
//
// On PostgreSQL the files are a pg_dump of the test's schema and, when the
// test started the cluster itself, every file of the cluster's data
// directory: tables, indexes and the write-ahead log, which holds every
// value any statement ever wrote.
func TestNoPANAtRest(t *testing.T) {
	forEachBackend(t, testNoPANAtRest)
}

func testNoPANAtRest(t *testing.T) {
	ctx := context.Background()
	path := newLocation(t)
	db, err := ledger.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	pans := []string{"4242424242424242", "5555555555554444", "378282246310005"}
	spaced := "5555 5555 5555 4444"
	if _, _, err := db.CreateBatch(ctx, ledger.Batch{ID: "b", ManifestSHA256: "s"}); err != nil {
		t.Fatal(err)
	}
	row := testRow(2, "R1")
	row.Description = "salary to card " + pans[0]
	row.RecipientName = "Ivan " + spaced
	row.Email = pans[2] + "@example.com"
	if _, err := db.InsertRows(ctx, "b", seqOf(row)); err != nil {
		t.Fatal(err)
	}
	r, _ := db.RowByReference(ctx, "b", "R1")
	r, err = db.Apply(ctx, ledger.Change{RowID: r.ID, From: ledger.StatePlanned, To: ledger.StateCreating, Reason: "create",
		Detail: "sending card " + pans[0], NewAttempt: map[string]string{"session/create": "k1"}})
	if err != nil {
		t.Fatal(err)
	}
	r, err = db.Apply(ctx, ledger.Change{RowID: r.ID, From: ledger.StateCreating, To: ledger.StateFailed, Reason: "create_failed",
		Detail: "pike said: invalid " + spaced, Failure: &ledger.Failure{Code: "invalid_card", Description: "card " + pans[1] + " invalid"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Apply(ctx, ledger.Change{RowID: r.ID, From: ledger.StateFailed, To: ledger.StatePlanned, Reason: "rerun", Rerun: true,
		Amend: &ledger.Amendment{Amount: 1, Currency: "RUB", RecipientName: "x", Description: "now " + pans[2]}}); err != nil {
		t.Fatal(err)
	}
	if err := db.AddEvent(ctx, ledger.Event{BatchID: "b", Reason: "note", Detail: "operator pasted " + pans[1]}); err != nil {
		t.Fatal(err)
	}
	w, _, err := db.RecordWebhook(ctx, ledger.Webhook{BodySHA256: "h", SessionID: "ps_1",
		Body: []byte(`{"card":{"number":"` + pans[0] + `","pan":"` + spaced + `"}}`)})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.MarkWebhookApplied(ctx, w.ID, "ignored "+pans[1]); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(w.Body), pans[0]) {
		t.Errorf("returned webhook body keeps the PAN: %s", w.Body)
	}

	if ledger.IsPostgresURL(path) {
		noPANInPostgres(t, db, path, append(pans, spaced))
		return
	}
	grep := func(when string) {
		for _, name := range []string{path, path + "-wal", path + "-shm"} {
			b, err := os.ReadFile(name)
			if err != nil {
				continue // -wal and -shm are gone after Close
			}
			for _, p := range append(pans, spaced) {
				if bytes.Contains(b, []byte(p)) {
					t.Errorf("%s: %s contains card number %s", when, filepath.Base(name), p)
				}
			}
		}
	}
	grep("while open")
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	grep("after close")
	// The masked forms are there: the test looked at the right files.
	b, _ := os.ReadFile(path)
	if !bytes.Contains(b, []byte("424242******4242")) {
		t.Errorf("masked card not found in the ledger file: the grep above proves nothing")
	}
}

// noPANInPostgres looks for the card numbers in a pg_dump of the ledger's
// schema and in the cluster's files, and for the masked form in the dump.
func noPANInPostgres(t *testing.T, db *ledger.DB, location string, pans []string) {
	srv := pgtest.Get(t)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	dump, err := pgtest.Dump(srv, location)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pans {
		if bytes.Contains(dump, []byte(p)) {
			t.Errorf("pg_dump of the ledger contains card number %s", p)
		}
	}
	if !bytes.Contains(dump, []byte("424242******4242")) {
		t.Errorf("masked card not found in the pg_dump: the search above proves nothing")
	}
	if !srv.Own() {
		return
	}
	// Make the server write out what it holds in memory first.
	raw := rawOpen(t, srv.URL)
	if _, err := raw.Exec(`CHECKPOINT`); err != nil {
		t.Fatal(err)
	}
	files := 0
	err = filepath.WalkDir(srv.DataDir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return nil // files come and go under a running server
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		files++
		for _, pan := range pans {
			if bytes.Contains(b, []byte(pan)) {
				t.Errorf("cluster file %s contains card number %s", p, pan)
			}
		}
		return nil
	})
	if err != nil || files == 0 {
		t.Errorf("searched %d files of the cluster: %v", files, err)
	}
}
