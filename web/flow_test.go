package web_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike/sandbox"
	"github.com/payouts/payouts/web"
)

// TestRestartResumesPaying: the server stops while an approved batch is
// being paid; a new server over the same ledger and upload store finishes
// it from the encrypted upload, each reference paid once.
func TestRestartResumesPaying(t *testing.T) {
	r := newRig(t, sandbox.Config{SlowDelay: 300 * time.Millisecond})
	r.addUser("mila", "maker")
	r.addUser("petr", "approver")
	maker, approver := r.login("mila"), r.login("petr")
	var rows [][5]string
	for i := 1; i <= 12; i++ {
		card := visa
		if i%2 == 0 {
			card = sandbox.CardSlow
		}
		rows = append(rows, [5]string{fmt.Sprintf("RS-%02d", i), fmt.Sprintf("%d.00", i), "RUB", card, "N"})
	}
	id := r.uploadOK(maker, "restart.csv", manifestCSV(rows...))
	if a := r.post(approver, "/api/v1/batches/"+id+"/approve"); a.StatusCode != http.StatusOK {
		t.Fatalf("approve: %d %s", a.StatusCode, a.Body)
	}
	poll.Until(t, "some rows paid, some in flight", func() bool {
		n, _ := r.db.CountRows(context.Background(), id, ledger.StateSucceeded)
		return n > 0 && n < 12
	})
	r.stop() // the payer stops mid-batch
	if cb, _ := r.db.ConsoleBatch(context.Background(), id); cb.State != ledger.ConsolePaying {
		t.Fatalf("after the stop: %s, want paying", cb.State)
	}
	if !r.uploads.Has(id) {
		t.Fatal("the upload was destroyed before the batch was done")
	}
	r.start() // Resume
	r.waitState(id, "done")
	paid := r.journalCounts()
	for _, row := range rows {
		if paid[row[0]] != 1 {
			t.Errorf("%s paid %d times, want once", row[0], paid[row[0]])
		}
	}
	if n, _ := r.db.CountRows(context.Background(), id, ledger.StateSucceeded); n != 12 {
		t.Fatalf("%d rows succeeded, want 12", n)
	}
	poll.Until(t, "the upload destroyed", func() bool { return !r.uploads.Has(id) })
}

// TestRerunNeedsSecondPerson: failed rows are rerun with a corrected file
// only after another person approves the rerun.
func TestRerunNeedsSecondPerson(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	r.addUser("mila", "maker")
	r.addUser("olga", "maker,approver")
	r.addUser("petr", "approver")
	mila, olga, petr := r.login("mila"), r.login("olga"), r.login("petr")
	first := manifestCSV([5]string{"RR-1", "10.00", "RUB", visa, "A"}, [5]string{"RR-2", "20.00", "RUB", sandbox.CardNotExist, "B"})
	id := r.uploadOK(mila, "rr.csv", first)
	if a := r.post(petr, "/api/v1/batches/"+id+"/approve"); a.StatusCode != http.StatusOK {
		t.Fatalf("approve: %d", a.StatusCode)
	}
	r.waitState(id, "done")
	if v := r.batchView(petr, id); v.Counts["failed"] != 1 || v.Counts["succeeded"] != 1 {
		t.Fatalf("after the first pass: %v", v.Counts)
	}
	if !strings.Contains(r.get(olga, "/batches/"+id).Body, `id="rerun"`) {
		t.Fatal("no rerun form for a maker on a batch with failed rows")
	}
	rerun := func(c *http.Client, content string) answer {
		ct, body := multipartBody("rr-fixed.csv", content)
		return r.do(c, "POST", "/api/v1/batches/"+id+"/rerun", ct, body)
	}
	if a := rerun(petr, first); a.StatusCode != http.StatusForbidden {
		t.Fatalf("rerun by an approver without the maker role: %d, want 403", a.StatusCode)
	}
	if a := rerun(olga, manifestCSV([5]string{"RR-9", "10.00", "RUB", visa, "new"})); a.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("rerun with a new reference: %d %s, want 422", a.StatusCode, a.Body)
	}
	ct, body := multipartBody("rr-new.csv", manifestCSV([5]string{"RR-9", "10.00", "RUB", visa, "new"}))
	if a := r.do(olga, "POST", "/batches/"+id+"/rerun", ct, body); a.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(a.Body, `action="/batches/`+id+`/rerun"`) || !strings.Contains(a.Body, "RR-9") {
		t.Fatalf("rerun form with a new reference: %d, want 422 and the rerun form again\n%s", a.StatusCode, a.Body)
	}
	if a := rerun(olga, manifestCSV([5]string{"RR-1", "15.00", "RUB", visa, "A"}, [5]string{"RR-2", "20.00", "RUB", "5555555555554444", "B"})); a.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(a.Body, "already paid") {
		t.Fatalf("rerun changing a paid row: %d %s, want 422 naming it", a.StatusCode, a.Body)
	}
	if a := rerun(olga, manifestCSV([5]string{"RR-1", "10.00", "RUB", visa, "A"})); a.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(a.Body, "failed or cancelled rows only") {
		t.Fatalf("rerun retrying nothing: %d %s, want 422", a.StatusCode, a.Body)
	}
	fixed := manifestCSV([5]string{"RR-1", "10.00", "RUB", visa, "A"}, [5]string{"RR-2", "20.00", "RUB", "5555555555554444", "B"})
	if a := rerun(olga, fixed); a.StatusCode != http.StatusAccepted {
		t.Fatalf("rerun: %d %s", a.StatusCode, a.Body)
	}
	if v := r.batchView(olga, id); v.State != "awaiting_approval" || v.Pending != "rerun" || v.RequestedBy != "olga" {
		t.Fatalf("after the rerun request: %+v", v)
	}
	if a := r.post(olga, "/api/v1/batches/"+id+"/approve"); a.StatusCode != http.StatusForbidden {
		t.Fatalf("the rerun's maker approves it: %d, want 403", a.StatusCode)
	}
	if a := r.post(mila, "/api/v1/batches/"+id+"/approve"); a.StatusCode != http.StatusForbidden {
		t.Fatalf("the uploader (no approver role) approves: %d, want 403", a.StatusCode)
	}
	if a := r.post(petr, "/api/v1/batches/"+id+"/approve"); a.StatusCode != http.StatusOK {
		t.Fatalf("petr approves the rerun: %d %s", a.StatusCode, a.Body)
	}
	r.waitState(id, "done")
	if v := r.batchView(petr, id); v.Counts["succeeded"] != 2 {
		t.Fatalf("after the rerun: %v", v.Counts)
	}
	paid := r.journalCounts()
	if paid["RR-1"] != 1 || paid["RR-2"] != 1 {
		t.Fatalf("journal %v, want each reference paid once", paid)
	}
	poll.Until(t, "the rerun's upload destroyed", func() bool { return len(r.uploadFiles()) == 0 })
}

// randomPAN is a Luhn-valid card number no other test uses, so a scan
// of shared places ($TMPDIR) finds only this test's leaks.
func randomPAN() string {
	d := []byte("4")
	for len(d) < 15 {
		d = append(d, byte('0'+rand.IntN(10)))
	}
	sum := 0
	for i := 0; i < 15; i++ {
		v := int(d[14-i] - '0')
		if i%2 == 0 {
			v *= 2
			if v > 9 {
				v -= 9
			}
		}
		sum += v
	}
	return string(append(d, byte('0'+(10-sum%10)%10)))
}

// TestNoCardNumberAnywhere drives uploads (valid, damaged, rejected, paid)
// and scans every page and API answer, the log, the upload store, the
// ledger files and $TMPDIR for the manifests' card numbers.
func TestNoCardNumberAnywhere(t *testing.T) {
	start := time.Now()
	r := newRig(t, sandbox.Config{})
	r.addUser("mila", "maker")
	r.addUser("petr", "approver")
	mila, petr := r.login("mila"), r.login("petr")
	pans := []string{randomPAN(), randomPAN(), randomPAN()}
	good := manifestCSV([5]string{"PS-1", "10.00", "RUB", pans[0], "A"}, [5]string{"PS-2", "11.00", "RUB", pans[1], pans[1]})
	bad := manifestCSV([5]string{"PS-3", "1,2.3", "RUB", pans[2], "C"}, [5]string{"PS-4", "12.00", "RUB", pans[2][:15] + "0", "D"})
	if a := r.upload(mila, "bad.csv", bad); a.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("bad upload: %d", a.StatusCode)
	}
	ct, body := multipartBody("bad.csv", bad)
	r.do(mila, "POST", "/upload", ct, body)
	// A recipient name that is a card number is refused or masked, never shown.
	id := r.upload(mila, "good.csv", good)
	var batchID string
	if id.StatusCode == http.StatusCreated {
		batchID = r.batchViewFromBody(id.Body)
		r.post(petr, "/api/v1/batches/"+batchID+"/approve")
		r.waitState(batchID, "done")
	}
	id2 := r.uploadOK(mila, "good2.csv", manifestCSV([5]string{"PS-5", "13.00", "RUB", pans[2], "E"}))
	for _, p := range []string{"/", "/audit", "/batches/" + id2, "/api/v1/batches", "/api/v1/batches/" + id2, "/api/v1/batches/" + id2 + "/rows", "/api/v1/batches/" + id2 + "/report", "/api/v1/batches/" + id2 + "/report?format=json", "/api/v1/audit"} {
		r.get(mila, p)
	}
	if batchID != "" {
		for _, p := range []string{"/batches/" + batchID, "/api/v1/batches/" + batchID + "/rows", "/api/v1/batches/" + batchID + "/report", "/api/v1/batches/" + batchID + "/report?format=excel"} {
			r.get(petr, p)
		}
	}
	r.post(petr, "/api/v1/batches/"+id2+"/reject")
	check := func(what string, b []byte) {
		for _, p := range pans {
			if bytes.Contains(b, []byte(p)) {
				t.Errorf("%s holds card number %s…", what, p[:6])
			}
		}
	}
	check("answers", r.seen.Bytes())
	check("log", r.log.Bytes())
	walk := func(root string, since time.Time) int {
		n := 0
		filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return nil
			}
			fi, err := d.Info()
			if err != nil || fi.ModTime().Before(since) || fi.Size() > 64<<20 {
				return nil
			}
			b, err := os.ReadFile(p)
			if err != nil {
				return nil
			}
			n++
			check(p, b)
			return nil
		})
		return n
	}
	if n := walk(r.dir, time.Time{}); n < 2 {
		t.Fatalf("scanned %d files of the ledger dir", n)
	}
	walk(os.TempDir(), start) // a spilled multipart file would be here
}

func (r *rig) batchViewFromBody(body string) string {
	i := strings.Index(body, `"id": "`)
	if i < 0 {
		r.t.Fatalf("no id in %s", body)
	}
	rest := body[i+7:]
	return rest[:strings.IndexByte(rest, '"')]
}

// TestUploadCutShort: a server stopped in the middle of an upload leaves at
// most an encrypted file and a batch of planned rows with no console
// record. The next start destroys the file; the same upload again completes
// the batch instead of being refused as a duplicate.
func TestUploadCutShort(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	r.addUser("mila", "maker")
	c := r.login("mila")
	content := goodManifest("CS", 3)
	id := r.uploadOK(c, "cut.csv", content)
	// Make it look cut short: a copy of the ledger batch without its
	// console record is not possible to forge through the API, so build the
	// remains directly: a stray encrypted file and a temporary file.
	if err := r.uploads.Put("0123456789abcdef", []byte("stray")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(r.uploads.Dir(), ".tmp-123.enc"), []byte("x"), 0o600)
	// The remains of an upload cut short after its rows were loaded.
	cut := goodManifest("CUT", 4)
	mopts := web.DefaultManifestOptions()
	sum, err := web.ValidateManifest("cut2.csv", []byte(cut), mopts)
	if err != nil {
		t.Fatal(err)
	}
	cutID := batch.BatchIDFor(sum.SHA256)
	if _, _, err := batch.PrepareSource(context.Background(), r.db, batch.MemorySource("upload cut2.csv", []byte(cut)), mopts, sum, cutID, r.fp, batch.BatchOptions{}); err != nil {
		t.Fatal(err)
	}
	r.stop()
	r.start()
	files := r.uploadFiles()
	if len(files) != 1 || files[0] != id+".enc" {
		t.Fatalf("upload store after restart: %v, want only %s.enc (awaiting approval)", files, id)
	}
	c = r.login("mila")
	if got := r.uploadOK(c, "cut2.csv", cut); got != cutID {
		t.Fatalf("the upload again made batch %s, want %s", got, cutID)
	}
	if v := r.batchView(c, cutID); v.State != "awaiting_approval" || v.Rows != 4 || v.Counts["planned"] != 4 {
		t.Fatalf("completed upload: %+v", v)
	}
	// A batch run from the CLI is never taken over by an upload.
	if a := r.upload(c, "cut2-again.csv", cut); a.StatusCode != http.StatusConflict {
		t.Fatalf("the same file a third time: %d, want 409", a.StatusCode)
	}
}

// TestXLSXUploadAndReport: a workbook uploads like a CSV (validated, paid
// from memory after approval), and the report downloads as XLSX.
func TestXLSXUploadAndReport(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	r.addUser("mila", "maker")
	r.addUser("petr", "approver")
	mila, petr := r.login("mila"), r.login("petr")
	book := func(rows [][]any) string {
		f := excelize.NewFile()
		defer f.Close()
		for i, row := range rows {
			cell, _ := excelize.CoordinatesToCellName(1, i+1)
			if err := f.SetSheetRow("Sheet1", cell, &row); err != nil {
				t.Fatal(err)
			}
		}
		var b bytes.Buffer
		if err := f.Write(&b); err != nil {
			t.Fatal(err)
		}
		return b.String()
	}
	header := []any{"reference", "amount", "currency", "card_number", "recipient_name"}
	bad := book([][]any{header, {"X-1", "10.00", "RUB", visa, "A"}, {"X-2", "abc", "RUB", visa, "B"}})
	a := r.upload(mila, "payroll.xlsx", bad)
	if a.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(a.Body, `"line": 3`) {
		t.Fatalf("damaged workbook: %d %s", a.StatusCode, a.Body)
	}
	good := book([][]any{header, {"X-1", "10.00", "RUB", visa, "A"}, {"X-2", "12.00", "RUB", "5555555555554444", "B"}})
	id := r.uploadOK(mila, "payroll.xlsx", good)
	if a := r.post(petr, "/api/v1/batches/"+id+"/approve"); a.StatusCode != http.StatusOK {
		t.Fatalf("approve: %d %s", a.StatusCode, a.Body)
	}
	r.waitState(id, "done")
	if paid := r.journalCounts(); paid["X-1"] != 1 || paid["X-2"] != 1 {
		t.Fatalf("journal %v", paid)
	}
	x := r.get(petr, "/api/v1/batches/"+id+"/report?format=xlsx")
	if x.StatusCode != http.StatusOK || !strings.HasPrefix(x.Body, "PK") || !strings.Contains(x.Header.Get("Content-Type"), "spreadsheetml") {
		t.Fatalf("XLSX report: %d %q", x.StatusCode, x.Header.Get("Content-Type"))
	}
	f, err := excelize.OpenReader(strings.NewReader(x.Body))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, _ := f.GetRows(f.GetSheetList()[0])
	if len(rows) < 3 {
		t.Fatalf("XLSX report rows: %v", rows)
	}
	for _, fmtName := range []string{"excel-csv", "excel", "csv", "json"} {
		if a := r.get(petr, "/api/v1/batches/"+id+"/report?format="+fmtName); a.StatusCode != http.StatusOK {
			t.Errorf("report format %s: %d", fmtName, a.StatusCode)
		}
	}
}

// TestHeldCLIBatch: a batch run from the command line with --confirm hold
// shows as awaiting approval; an approver confirms (or rejects) its held
// rows from the console, like `payouts approve` (`reject`).
func TestHeldCLIBatch(t *testing.T) {
	for _, approve := range []bool{true, false} {
		r := newRig(t, sandbox.Config{})
		r.addUser("vera", "viewer")
		r.addUser("petr", "approver")
		viewer, petr := r.login("vera"), r.login("petr")
		data := []byte(manifestCSV([5]string{"HC-1", "10.00", "RUB", visa, "A"}, [5]string{"HC-2", "11.00", "RUB", visa, "B"}))
		sum, err := web.ValidateManifest("held.csv", data, web.DefaultManifestOptions())
		if err != nil {
			t.Fatal(err)
		}
		cfg := r.cfg.Engine
		cfg.Confirm = batch.ConfirmHold
		res, err := batch.Run(context.Background(), r.db, r.client, batch.RunOptions{Source: batch.MemorySource("held.csv", data), Summary: sum, Config: cfg})
		if err != nil || res.Held != 2 {
			t.Fatalf("hold run: %+v %v", res, err)
		}
		id := res.Batch.ID
		v := r.batchView(petr, id)
		if v.State != "awaiting_approval" || v.Pending != web.PendingHeld || v.Source != "cli" {
			t.Fatalf("held CLI batch: %+v", v)
		}
		if !strings.Contains(r.get(petr, "/batches/"+id).Body, `id="approve"`) {
			t.Fatal("no approve button for the approver")
		}
		if a := r.post(viewer, "/api/v1/batches/"+id+"/approve"); a.StatusCode != http.StatusForbidden {
			t.Fatalf("viewer approves: %d", a.StatusCode)
		}
		path := map[bool]string{true: "/approve", false: "/reject"}[approve]
		if a := r.post(petr, "/api/v1/batches/"+id+path); a.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, a.StatusCode, a.Body)
		}
		want := map[bool]ledger.State{true: ledger.StateSucceeded, false: ledger.StateCancelled}[approve]
		poll.Until(t, "held rows settled", func() bool {
			n, _ := r.db.CountRows(context.Background(), id, want)
			return n == 2
		})
		if v := r.batchView(petr, id); v.State != "done" {
			t.Fatalf("after %s: %s", path, v.State)
		}
		paid := r.journalCounts()
		if approve && (paid["HC-1"] != 1 || paid["HC-2"] != 1) || !approve && len(paid) != 0 {
			t.Fatalf("%s: journal %v", path, paid)
		}
		if a := r.post(petr, "/api/v1/batches/"+id+"/approve"); a.StatusCode != http.StatusConflict {
			t.Fatalf("approve a settled CLI batch: %d, want 409", a.StatusCode)
		}
		if ds, _ := r.db.Decisions(context.Background(), id); len(ds) != 1 || !strings.Contains(ds[0].Detail, "by petr in the console") {
			t.Fatalf("decisions: %+v", ds)
		}
	}
}
