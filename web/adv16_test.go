package web_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
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
