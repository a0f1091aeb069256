package report_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"

	"github.com/payouts/payouts/batch/report"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
)

// The ledger is the report's store.
var _ report.Store = (*ledger.DB)(nil)

// dangerous reports whether a spreadsheet would run cell as a formula.
func dangerous(cell string) bool {
	r, _ := utf8.DecodeRuneInString(cell)
	return strings.ContainsRune("=+-@\t\r＝＋－＠", r) && cell != ""
}

func TestSpreadsheetSafe(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"Иванов Иван", "Иванов Иван"},
		{"=HYPERLINK(\"http://x\")", "'=HYPERLINK(\"http://x\")"},
		{"+7 900", "'+7 900"},
		{"-1", "'-1"},
		{"@SUM(A1)", "'@SUM(A1)"},
		{"\tx", "'\tx"},
		{"\rx", "'\rx"},
		{"＝1+1", "'＝1+1"},
		{"＋7", "'＋7"},
		{"－1", "'－1"},
		{"＠SUM", "'＠SUM"},
		{"a=b", "a=b"},
		{"1500.00", "1500.00"},
		{" =1", " =1"},
	}
	for _, tt := range tests {
		if got := report.SpreadsheetSafe(tt.in); got != tt.want {
			t.Errorf("SpreadsheetSafe(%q): got %q, want %q", tt.in, got, tt.want)
		}
	}
}

func FuzzSpreadsheetSafe(f *testing.F) {
	for _, s := range []string{"", "=1", "+", "-1", "@", "\t", "＝", "name", "'=x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := report.SpreadsheetSafe(s)
		if dangerous(got) {
			t.Fatalf("SpreadsheetSafe(%q) = %q still starts like a formula", s, got)
		}
		if got != s && got != "'"+s {
			t.Fatalf("SpreadsheetSafe(%q) = %q: want the input or the input after an apostrophe", s, got)
		}
	})
}

func TestParseFormat(t *testing.T) {
	tests := []struct {
		in   string
		want report.Format
		ok   bool
	}{
		{"csv", report.CSV, true},
		{"JSON", report.JSON, true},
		{" json ", report.JSON, true},
		{"xlsx", report.XLSX, true},
		{"XLSX", report.XLSX, true},
		{"excel-csv", report.ExcelCSV, true},
		{"excel", "", false},
		{"xls", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, err := report.ParseFormat(tt.in)
		if got != tt.want || (err == nil) != tt.ok {
			t.Errorf("ParseFormat(%q): got %q, %v; want %q, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestWriteUnknownBatch(t *testing.T) {
	db, err := ledger.Open(context.Background(), filepath.Join(t.TempDir(), "payouts.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var buf bytes.Buffer
	err = report.Write(context.Background(), db, "no-such-batch", &buf, report.Options{})
	if err == nil || !strings.Contains(err.Error(), "no-such-batch") {
		t.Errorf("got %v, want an error naming the batch", err)
	}
	if buf.Len() != 0 {
		t.Errorf("got %d bytes written for an unknown batch, want none", buf.Len())
	}
}

// benchLedger is a ledger with one batch of n rows as a nightly run
// leaves it: nine in ten succeeded with their two webhooks stored, the rest
// failed. Built once per size, through the ledger's public API.
func benchLedger(b *testing.B, n int) (*ledger.DB, string) {
	b.Helper()
	ctx := context.Background()
	db, err := ledger.Open(ctx, filepath.Join(b.TempDir(), "bench.db"), ledger.WithSyncNormal())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	const id = "benchbatch"
	if _, _, err := db.CreateBatch(ctx, ledger.Batch{ID: id, ManifestName: "bench.csv", ManifestSHA256: "s", RowCount: n,
		Totals: map[string]int64{"RUB": int64(n) * 150050}}); err != nil {
		b.Fatal(err)
	}
	if _, err := db.InsertRows(ctx, id, func(yield func(ledger.Row, error) bool) {
		for i := range n {
			r := ledger.Row{Line: i + 2, Reference: "EMP-" + strconv.Itoa(100000+i), Amount: 150050, Currency: "RUB",
				RecipientName: "Иванов Иван Иванович", CardBIN: "424242", CardLast4: "4242", CardFingerprint: strings.Repeat("ab", 32)}
			if !yield(r, nil) {
				return
			}
		}
	}); err != nil {
		b.Fatal(err)
	}
	var rows []ledger.Row
	index := map[int64]int{}
	for r, err := range db.Rows(ctx, id) {
		if err != nil {
			b.Fatal(err)
		}
		index[r.ID] = len(rows)
		rows = append(rows, r)
	}
	steps := []ledger.State{ledger.StateCreating, ledger.StateCreated, ledger.StateStarting, ledger.StateAwaitingConfirm,
		ledger.StateConfirming, ledger.StateConfirmed, ledger.StateSucceeded}
	for si, to := range steps {
		var cs []ledger.Change
		for i, r := range rows {
			fail := i%10 == 9
			if fail && si > 3 {
				continue
			}
			c := ledger.Change{RowID: r.ID, From: r.State, To: to, Reason: "bench"}
			switch {
			case fail && si == 3:
				c.To, c.Failure = ledger.StateFailed, &ledger.Failure{Code: "card_number_does_not_exist", Description: "the card number does not exist"}
			case to == ledger.StateCreating:
				c.NewAttempt = map[string]string{"session/create": "k" + strconv.Itoa(i)}
			case to == ledger.StateCreated:
				c.SessionID = "ps_" + strconv.Itoa(i)
			case to == ledger.StateAwaitingConfirm:
				c.PayoutID = "po_" + strconv.Itoa(i)
			}
			cs = append(cs, c)
		}
		out, errs := db.ApplyAll(ctx, cs)
		for j, c := range cs {
			if errs[j] != nil {
				b.Fatalf("%s → %s: %v", c.From, c.To, errs[j])
			}
			rows[index[c.RowID]] = out[j]
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i, r := range rows {
		if r.State != ledger.StateSucceeded {
			continue
		}
		for _, typ := range []pike.WebhookType{pike.WebhookReadyToConfirm, pike.WebhookPaymentFinished} {
			body := fmt.Sprintf(`{"type":%q,"session":{"id":"ps_%d","status":"accepted","payments":[{"id":"po_%d","status":"succeeded","amount_details":{"amount":150050,"currency":"rub"}}]}}`, typ, i, i)
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				sum := sha256.Sum256([]byte(body))
				if _, _, err := db.RecordWebhook(ctx, ledger.Webhook{Type: string(typ), SessionID: "ps_" + strconv.Itoa(i), BodySHA256: hex.EncodeToString(sum[:]),
					Body: []byte(body), Verified: true, Applied: true}); err != nil {
					b.Error(err)
				}
			})
		}
	}
	wg.Wait()
	return db, id
}

// BenchmarkWrite measures regenerating the report of a 10 000-row
// batch (ns/op is the whole report; rows/s is derived).
func BenchmarkWrite(b *testing.B) {
	const n = 10000
	db, id := benchLedger(b, n)
	for _, f := range []report.Format{report.CSV, report.JSON, report.XLSX} {
		b.Run(string(f), func(b *testing.B) {
			var size int
			for b.Loop() {
				var w countingWriter
				if err := report.Write(context.Background(), db, id, &w, report.Options{Format: f}); err != nil {
					b.Fatal(err)
				}
				size = int(w)
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
			b.ReportMetric(float64(size), "bytes")
		})
	}
}

type countingWriter int

func (w *countingWriter) Write(p []byte) (int, error) {
	*w += countingWriter(len(p))
	return len(p), nil
}
