package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike/sandbox"
)

// TestLockoutNotBypassedByParallelGuesses: wrong passwords sent all at
// once must not each get a password check: at most MaxFailures (5) of them
// are answered 401, the rest are refused as locked (429), and a right
// password sent in the same burst after them does not open a session.
func TestLockoutNotBypassedByParallelGuesses(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	r.addUser("anna", "maker")
	const n = 24
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := r.browser()
			pw := "wrong password number " + string(rune('a'+i))
			codes[i] = r.do(c, "POST", "/api/v1/login", "application/json", strings.NewReader(`{"username":"anna","password":"`+pw+`"}`)).StatusCode
		}()
	}
	wg.Wait()
	checked := 0
	for _, c := range codes {
		switch c {
		case http.StatusUnauthorized:
			checked++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("parallel wrong password: %d", c)
		}
	}
	if checked > 5 {
		t.Fatalf("%d of %d parallel wrong passwords were checked (answered 401), want at most 5: the lockout is bypassed by sending guesses at once", checked, n)
	}
	c := r.browser()
	if got := r.do(c, "POST", "/api/v1/login", "application/json", strings.NewReader(`{"username":"anna","password":"`+password+`"}`)).StatusCode; got == http.StatusOK {
		t.Fatal("right password accepted after a burst of wrong ones: the account should be locked")
	}
}

// TestRerunFileSwappedAfterRequestNotPaid: the rerun's file is checked
// against the SHA-256 recorded when it was asked for (and shown to the
// approver) before anything is sent: a different file in the store (a
// second rerun request racing the first, another server, a tampered
// store) is not paid.
func TestRerunFileSwappedAfterRequestNotPaid(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	r.addUser("mila", "maker")
	r.addUser("petr", "approver")
	mila, petr := r.login("mila"), r.login("petr")
	first := manifestCSV([5]string{"SW-1", "10.00", "RUB", visa, "A"}, [5]string{"SW-2", "20.00", "RUB", sandbox.CardNotExist, "B"})
	id := r.uploadOK(mila, "sw.csv", first)
	if a := r.post(petr, "/api/v1/batches/"+id+"/approve"); a.StatusCode != http.StatusOK {
		t.Fatalf("approve: %d", a.StatusCode)
	}
	r.waitState(id, "done")
	fixed := manifestCSV([5]string{"SW-2", "20.00", "RUB", "5555555555554444", "B"})
	ct, body := multipartBody("sw-fixed.csv", fixed)
	if a := r.do(mila, "POST", "/api/v1/batches/"+id+"/rerun", ct, body); a.StatusCode != http.StatusAccepted {
		t.Fatalf("rerun: %d %s", a.StatusCode, a.Body)
	}
	// Another file lands under the rerun's name: another card, another amount.
	other := manifestCSV([5]string{"SW-2", "25.00", "RUB", "4000056655665556", "B"})
	if err := r.uploads.Put(id+".rerun", []byte(other)); err != nil {
		t.Fatal(err)
	}
	if a := r.post(petr, "/api/v1/batches/"+id+"/approve"); a.StatusCode != http.StatusOK {
		t.Fatalf("approve the rerun: %d %s", a.StatusCode, a.Body)
	}
	poll.Until(t, "the payer refuses the changed file", func() bool {
		return strings.Contains(string(r.log.Bytes()), "changed")
	})
	r.stop()
	for _, p := range r.sb.Journal() {
		if p.Reference == "SW-2" {
			sum := sha256.Sum256([]byte("4000056655665556"))
			if p.CardSHA256 == hex.EncodeToString(sum[:]) || p.Amount == 2500 {
				t.Fatalf("the swapped rerun file was paid: %+v", p)
			}
			t.Fatalf("SW-2 paid from a file other than the approved one: %+v", p)
		}
	}
	cb, err := r.db.ConsoleBatch(context.Background(), id)
	if err != nil || cb.State != ledger.ConsolePaying {
		t.Fatalf("console batch after the refusal: %+v %v", cb, err)
	}
}

// TestNoCardNumberFromFormFields: a card number typed into the form's
// expect_total or expect_rows field (a paste into the wrong box) is not
// echoed by the answer (API or page) nor kept in the audit log.
func TestNoCardNumberFromFormFields(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	r.addUser("mila", "maker")
	mila := r.login("mila")
	const card = "4000056655665556"
	good := manifestCSV([5]string{"PF-1", "10.00", "RUB", visa, "A"})
	for _, f := range [][]string{
		{"expect_total", card},
		{"expect_total", "RUB:" + card},
		{"expect_total", card + ":10.00"},
		{"expect_rows", card},
		{"expect_rows", "1 " + card},
	} {
		a := r.upload(mila, "pf.csv", good, f...)
		if a.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("%s=%q: %d, want 422", f[0], f[1], a.StatusCode)
		}
		if strings.Contains(a.Body, card) {
			t.Errorf("%s=%q: the API answer shows the card number:\n%s", f[0], f[1], a.Body)
		}
		ct, body := multipartBody("pf.csv", good, f...)
		p := r.do(mila, "POST", "/upload", ct, body)
		if strings.Contains(p.Body, card) {
			t.Errorf("%s=%q: the upload page shows the card number", f[0], f[1])
		}
	}
	log, _ := r.db.AuditLog(context.Background(), ledger.AuditFilter{})
	for _, e := range log {
		if strings.Contains(e.Detail, card) {
			t.Errorf("audit entry %s holds the card number", e.Action)
		}
	}
}

// TestEventsStreamEndsWithSession: the live-progress stream of a batch
// stops when its session ends (logout, or the user disabled), not only
// when the batch is done: a signed-out or disabled user must not keep
// reading a batch's progress.
func TestEventsStreamEndsWithSession(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	r.addUser("mila", "maker")
	r.addUser("vera", "viewer")
	mila := r.login("mila")
	id := r.uploadOK(mila, "ev.csv", manifestCSV([5]string{"EV-1", "10.00", "RUB", visa, "A"}))
	for _, end := range []string{"logout", "disable"} {
		vera := r.login("vera")
		req, _ := http.NewRequest("GET", r.ts.URL+"/batches/"+id+"/events", nil)
		resp, err := vera.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("events: %d", resp.StatusCode)
		}
		buf := make([]byte, 4096)
		if _, err := resp.Body.Read(buf); err != nil {
			t.Fatal(err)
		}
		var closed sync.WaitGroup
		closed.Add(1)
		var ended atomicBool
		go func() {
			defer closed.Done()
			for {
				if _, err := resp.Body.Read(buf); err != nil {
					ended.set()
					return
				}
			}
		}()
		switch end {
		case "logout":
			if a := r.post(vera, "/api/v1/logout"); a.StatusCode != http.StatusOK {
				t.Fatalf("logout: %d", a.StatusCode)
			}
		case "disable":
			if err := r.db.DisableUser(context.Background(), "vera", ledger.AuditEntry{Actor: "test"}); err != nil {
				t.Fatal(err)
			}
		}
		poll.Until(t, "the events stream ends after "+end, ended.get)
		resp.Body.Close()
		closed.Wait()
	}
}

type atomicBool struct {
	mu sync.Mutex
	v  bool
}

func (b *atomicBool) set() { b.mu.Lock(); b.v = true; b.mu.Unlock() }
func (b *atomicBool) get() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.v
}

// TestLoginNextNoOpenRedirect: the page to return to after sign-in stays
// on this site: a browser reads a backslash as a slash and drops tabs and
// newlines, so "/./\evil.com" (cleaned by http.Redirect to "/\evil.com")
// and "/<TAB>/evil.com" would send a user who just signed in elsewhere.
func TestLoginNextNoOpenRedirect(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	r.addUser("anna", "maker")
	for _, next := range []string{"/./\\evil.example", "/.\\/evil.example", "/\t/evil.example", "/\r\n/evil.example", "/%5C/evil.example", "/.//evil.example", "/a/../\\evil.example"} {
		form := "username=anna&password=" + strings.ReplaceAll(password, " ", "+") + "&next=" + urlQueryEscape(next)
		a := r.do(r.browser(), "POST", "/login", "application/x-www-form-urlencoded", strings.NewReader(form))
		if a.StatusCode != http.StatusSeeOther {
			t.Fatalf("login with next %q: %d", next, a.StatusCode)
		}
		loc := a.Header.Get("Location")
		// What a browser makes of it: tabs and newlines removed, \ read as /.
		b := strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(loc)
		if !strings.HasPrefix(b, "/") || strings.HasPrefix(b, "//") {
			t.Errorf("next %q: redirected to %q, which a browser reads as %q: another site", next, loc, b)
		}
	}
}

func urlQueryEscape(s string) string { return url.QueryEscape(s) }

// TestConcurrentDecisions: approvals and rejections of one batch sent at
// once are decided once: exactly one succeeds, the rest are conflicts,
// and the batch is paid at most once.
func TestConcurrentDecisions(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	r.addUser("mila", "maker")
	r.addUser("petr", "approver")
	r.addUser("ivan", "approver")
	mila := r.login("mila")
	id := r.uploadOK(mila, "cd.csv", manifestCSV([5]string{"CD-1", "10.00", "RUB", visa, "A"}))
	clients := []*http.Client{r.login("petr"), r.login("ivan"), r.login("petr"), r.login("ivan")}
	paths := []string{"/approve", "/reject", "/approve", "/approve"}
	codes := make([]int, len(clients))
	var wg sync.WaitGroup
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes[i] = r.post(clients[i], "/api/v1/batches/"+id+paths[i]).StatusCode
		}()
	}
	wg.Wait()
	ok := 0
	for i, c := range codes {
		switch c {
		case http.StatusOK:
			ok++
		case http.StatusConflict:
		default:
			t.Fatalf("%s: %d", paths[i], c)
		}
	}
	if ok != 1 {
		t.Fatalf("%d decisions succeeded (%v), want exactly 1", ok, codes)
	}
	poll.Until(t, "decided", func() bool {
		cb, err := r.db.ConsoleBatch(context.Background(), id)
		return err == nil && (cb.State == ledger.ConsoleDone || cb.State == ledger.ConsoleRejected)
	})
	if n := r.journalCounts()["CD-1"]; n > 1 {
		t.Fatalf("CD-1 paid %d times", n)
	}
}

// TestProblemsCSVScrubsCardNumbers: the problems download echoes what the
// page sends; a card number in it (a page older than a scrub, a script)
// does not come back in the answer.
func TestProblemsCSVScrubsCardNumbers(t *testing.T) {
	r := newRig(t, sandbox.Config{})
	r.addUser("mila", "maker")
	mila := r.login("mila")
	const card = "4000056655665556"
	ps := `[{"line":2,"column":"card_number ` + card + `","message":"\"` + card + `\": bad"}]`
	a := r.do(mila, "POST", "/problems.csv", "application/x-www-form-urlencoded", strings.NewReader("problems="+url.QueryEscape(ps)))
	if a.StatusCode != http.StatusOK {
		t.Fatalf("problems.csv: %d %s", a.StatusCode, a.Body)
	}
	if strings.Contains(a.Body, card) {
		t.Fatalf("problems.csv echoes the card number:\n%s", a.Body)
	}
}
