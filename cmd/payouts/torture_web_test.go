package main_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/pike/sandbox"
)

const consolePassword = "correct horse battery staple"

// serveArgs are the arguments of `payouts serve --web` against the rig.
func (r *rig) serveArgs(web string) []string {
	return []string{"serve", "--web", web,
		"--pike-url", r.pikeURL, "--project", "torture",
		"--private-key", r.priv, "--pike-public-key", r.pub,
		"--ledger", r.ledger, "--listen", r.listen,
		"--poll-after", "300ms", "--scan-every", "1s", "--log-level", "debug",
	}
}

// consoleClient is a signed-in console user; every answer it reads is
// kept in out/ for the card-number scan.
type consoleClient struct {
	r    *rig
	base string
	http *http.Client
	n    int
	name string
}

func (r *rig) consoleLogin(base, name string) *consoleClient {
	r.t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &consoleClient{r: r, base: base, http: &http.Client{Jar: jar, Timeout: 30 * time.Second}, name: name}
	if code, body := c.do("POST", "/api/v1/login", "application/json", strings.NewReader(`{"username":"`+name+`","password":"`+consolePassword+`"}`)); code != 200 {
		r.t.Fatalf("login %s: %d %s", name, code, body)
	}
	return c
}

func (c *consoleClient) do(method, path, ctype string, body io.Reader) (int, string) {
	c.r.t.Helper()
	req, _ := http.NewRequest(method, c.base+path, body)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	c.n++
	os.WriteFile(filepath.Join(c.r.out, fmt.Sprintf("answer-%s-%03d.txt", c.name, c.n)), b, 0o600)
	return resp.StatusCode, string(b)
}

func (c *consoleClient) batchState(id string) (string, map[string]int) {
	c.r.t.Helper()
	code, body := c.do("GET", "/api/v1/batches/"+id, "", nil)
	if code != 200 {
		return "", nil
	}
	var v struct {
		State  string         `json:"state"`
		Counts map[string]int `json:"counts"`
	}
	json.Unmarshal([]byte(body), &v)
	return v.State, v.Counts
}

// TestTortureConsoleKilledMidPayment: a batch uploaded and approved in the
// console is being paid by `payouts serve --web` when the process is
// SIGKILLed; a restarted serve resumes it from the encrypted upload. Every
// reference is paid exactly once per the sandbox's journal, the report
// agrees with the journal, and no card number is in any byte the product
// wrote (ledger, logs, upload store, every answer).
func TestTortureConsoleKilledMidPayment(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end console torture skipped in -short mode")
	}
	r := newRig(t, sandbox.Config{ReadyDelay: 20 * time.Millisecond, FinishDelay: 20 * time.Millisecond, SlowDelay: 800 * time.Millisecond,
		WebhookRetryBase: 100 * time.Millisecond, WebhookRetryMax: time.Second, WebhookGiveUp: 10 * time.Second})
	for _, u := range [][2]string{{"mila", "maker"}, {"petr", "approver"}} {
		p := r.command("user", "add", u[0], "--role", u[1], "--password-stdin", "--ledger", r.ledger)
		p.cmd.Stdin = strings.NewReader(consolePassword + "\n")
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if code := p.wait(t); code != 0 {
			_, e := p.output()
			t.Fatalf("user add %s: exit %d %s", u[0], code, e)
		}
	}
	var rows []manifestRow
	for i := 1; i <= 40; i++ {
		card := sandbox.CardVisa
		if i%3 == 0 {
			card = sandbox.CardSlow
		}
		rows = append(rows, manifestRow{Ref: fmt.Sprintf("WEB-%03d", i), Amount: fmt.Sprintf("%d.%02d", 100+i, i), Currency: "RUB", Card: card, Name: "Получатель " + fmt.Sprint(i)})
	}
	path := r.writeManifest("console.csv", rows)
	want, _ := expectations(t, path, manifest.Options{})
	data, _ := os.ReadFile(path)

	web := freeAddr(t)
	base := "http://" + web
	start := func() *proc {
		p := r.command(r.serveArgs(web)...)
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		poll.Until(t, "the console answers", func() bool {
			resp, err := http.Get(base + "/login")
			if err == nil {
				resp.Body.Close()
			}
			return err == nil && resp.StatusCode == 200
		})
		return p
	}
	serve := start()
	mila, petr := r.consoleLogin(base, "mila"), r.consoleLogin(base, "petr")
	var b bytes.Buffer
	mw := multipart.NewWriter(&b)
	fw, _ := mw.CreateFormFile("manifest", "console.csv")
	fw.Write(data)
	mw.Close()
	code, body := mila.do("POST", "/api/v1/batches", mw.FormDataContentType(), &b)
	if code != 201 {
		t.Fatalf("upload: %d %s", code, body)
	}
	var created struct{ ID string }
	json.Unmarshal([]byte(body), &created)
	id := created.ID
	if code, _ := mila.do("POST", "/api/v1/batches/"+id+"/approve", "", nil); code != 403 {
		t.Fatalf("the uploader approves: %d, want 403", code)
	}
	if code, body := petr.do("POST", "/api/v1/batches/"+id+"/approve", "", nil); code != 200 {
		t.Fatalf("approve: %d %s", code, body)
	}
	poll.Until(t, "some rows paid and some not", func() bool {
		_, c := petr.batchState(id)
		return c["succeeded"] > 0 && c["succeeded"] < len(rows)
	})
	if err := serve.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if code := serve.wait(t); code != -int(syscall.SIGKILL) {
		t.Fatalf("serve exit %d, want SIGKILL", code)
	}
	if _, err := os.Stat(filepath.Join(r.out, "uploads", id+".enc")); err != nil {
		t.Fatalf("the encrypted upload is gone after the kill: %v", err)
	}
	serve = start()
	petr = r.consoleLogin(base, "petr") // sessions survive a restart; a fresh one is as good
	poll.Until(t, "the batch is done after the restart", func() bool {
		st, _ := petr.batchState(id)
		return st == "done"
	})
	code, report := petr.do("GET", "/api/v1/batches/"+id+"/report", "", nil)
	if code != 200 {
		t.Fatalf("report: %d", code)
	}
	serve.cmd.Process.Signal(syscall.SIGTERM)
	serve.wait(t)

	// Every reference paid once, as the manifest asked, per the journal.
	paid := map[string]int{}
	for _, p := range r.sb.Journal() {
		paid[p.Reference]++
		e, ok := want[p.Reference]
		if !ok || p.Amount != e.amount || p.Currency != e.currency || p.CardSHA256 != e.cardSHA {
			t.Errorf("journal: %s paid %d %s, not as the manifest asked", p.Reference, p.Amount, p.Currency)
		}
	}
	for ref := range want {
		if paid[ref] != 1 {
			t.Errorf("%s paid %d times, want once", ref, paid[ref])
		}
	}
	// The report agrees with the journal.
	recs, err := csv.NewReader(strings.NewReader(report)).ReadAll()
	if err == nil || strings.Contains(err.Error(), "wrong number of fields") {
		cr := csv.NewReader(strings.NewReader(report))
		cr.FieldsPerRecord = -1
		recs, err = cr.ReadAll()
	}
	if err != nil {
		t.Fatal(err)
	}
	reported := 0
	for _, rec := range recs[1:] {
		if len(rec) < 3 || !strings.HasPrefix(rec[1], "WEB-") {
			continue
		}
		reported++
		if (rec[2] == "succeeded") != (paid[rec[1]] == 1) {
			t.Errorf("report says %s is %s; the journal paid it %d times", rec[1], rec[2], paid[rec[1]])
		}
	}
	if reported != len(rows) {
		t.Errorf("report has %d rows, want %d", reported, len(rows))
	}
	if _, err := os.Stat(filepath.Join(r.out, "uploads", id+".enc")); !os.IsNotExist(err) {
		t.Errorf("the upload was not destroyed after the batch was done: %v", err)
	}
	// The product's TMPDIR (in/) holds only what the test put there: no
	// upload was spilled to a temporary file.
	ents, _ := os.ReadDir(r.in)
	for _, e := range ents {
		switch e.Name() {
		case "partner.pem", "pike.pem", "console.csv":
		default:
			t.Errorf("the product wrote %s into its TMPDIR", e.Name())
		}
	}
	// No card number anywhere the product wrote, nor in any answer.
	scan := newPANScanner(t, path)
	scan.known = []string{id}
	hits, files, size := scan.scanDir(t, r.out)
	vals, valueHits := scan.sqliteValues(t, r.ledger)
	t.Logf("card scan: %d files (%d bytes) in out/ (ledger, serve logs, upload store, %d answers)", files, size, mila.n+petr.n)
	judge(t, "console card scan", append(hits, valueHits...), vals)
}
