package sandbox_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/payouts/payouts/internal/pan"
	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

func TestJournalEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	get := func() []sandbox.Payment {
		resp, err := http.Get(e.srv.URL + sandbox.PathJournal)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if strings.Contains(string(raw), sandbox.CardMastercard) {
			t.Fatalf("the journal contains the card number: %s", raw)
		}
		var j []sandbox.Payment
		if err := json.Unmarshal(raw, &j); err != nil || j == nil {
			t.Fatalf("journal %q: %v (want a JSON array)", raw, err)
		}
		return j
	}
	if j := get(); len(j) != 0 {
		t.Fatalf("empty journal: got %v", j)
	}
	id := e.initPayout("j1", sandbox.CardMastercard, 4200, "usd")
	e.waitStatus(id, "", pike.PayoutPending)
	e.call(pike.V1, pike.MethodConfirm, pike.SessionRequest{SessionID: id}, "")
	e.waitStatus(id, pike.SessionAccepted, "")
	j := get()
	sum := sha256.Sum256([]byte(sandbox.CardMastercard))
	if len(j) != 1 || j[0].Reference != "j1" || j[0].Amount != 4200 || j[0].Currency != "usd" ||
		j[0].CardLast4 != "4444" || j[0].CardSHA256 != hex.EncodeToString(sum[:]) || j[0].Metadata != "meta-j1" || j[0].At.IsZero() {
		t.Fatalf("got %+v, want one usd 4200 payment for j1 with the card's last4 and sha256", j)
	}
	if got := e.sb.Journal(); len(got) != 1 || !got[0].At.Equal(j[0].At) || got[0].PayoutID != j[0].PayoutID {
		t.Errorf("Journal() %+v differs from GET %+v", got, j)
	}

	resp, err := http.Get(e.srv.URL + sandbox.PathStats)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st sandbox.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Requests[pike.MethodInitPayout] != 1 || st.Requests[pike.MethodConfirm] != 1 || st.Payouts != 1 {
		t.Errorf("stats: got %+v, want one init and one confirm", st)
	}
}

// TestConcurrentPayouts runs many full flows at once, with duplicated
// confirms racing each other: each payout is paid exactly once.
func TestConcurrentPayouts(t *testing.T) {
	e := newEnv(t, func(c *sandbox.Config) {
		c.Faults = sandbox.Faults{DuplicateWebhooks: 0.5, ReorderWebhooks: 0.3}
	})
	const n = 24
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ref := fmt.Sprintf("c-%02d", i)
			id := e.initPayout(ref, sandbox.CardVisa, int64(100+i), "rub")
			e.waitStatus(id, "", pike.PayoutPending)
			var inner sync.WaitGroup
			for range 3 {
				inner.Go(func() { e.call(pike.V2, pike.MethodConfirm, pike.SessionRequest{SessionID: id}, "") })
			}
			inner.Wait()
			e.waitStatus(id, pike.SessionAccepted, pike.PayoutSucceeded)
		})
	}
	wg.Wait()
	if err := e.sb.Quiesce(context.Background()); err != nil {
		t.Fatal(err)
	}
	j := e.sb.Journal()
	seen := map[string]bool{}
	for _, p := range j {
		if seen[p.Reference] {
			t.Errorf("%s paid twice", p.Reference)
		}
		seen[p.Reference] = true
	}
	if len(j) != n {
		t.Errorf("journal: got %d payments, want %d", len(j), n)
	}
	if st := e.sb.Stats(); st.WebhooksDelivered < 2*n || st.WebhooksPending != 0 {
		t.Errorf("got stats %+v, want every webhook delivered", st)
	}
}

// TestNoPANAnywhere greps every answer, webhook, the journal, the stats and
// the debug log for the card numbers used.
func TestNoPANAnywhere(t *testing.T) {
	e := newEnv(t, nil)
	pans := []string{sandbox.CardVisa, sandbox.CardMastercard, sandbox.CardNotExist, sandbox.CardExceedsLimit, sandbox.CardExpired, "4242424242424241"}
	var out strings.Builder
	for i, pan := range pans {
		ref := fmt.Sprint("pan-", i)
		r := e.call(pike.V1, pike.MethodInitPayout, payoutReq(ref, pan, 100, "rub"), "")
		out.Write(r.Raw)
		if r.Session == nil {
			continue
		}
		id := r.Session.ID
		final := func() bool {
			p := e.status(id).Payout()
			return p.Status == pike.PayoutFailed || p.Status == pike.PayoutSucceeded
		}
		poll.Until(t, "ready or final", func() bool { return final() || e.status(id).Payout().Status == pike.PayoutPending })
		out.Write(e.call(pike.V2, pike.MethodConfirm, pike.SessionRequest{SessionID: id}, "").Raw)
		poll.Until(t, "final", final)
		out.Write(e.call(pike.V2, pike.MethodStatus, pike.SessionRequest{SessionID: id}, "").Raw)
	}
	if err := e.sb.Quiesce(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, h := range e.hooks.hooks("") {
		out.Write(h.Raw)
	}
	j, _ := json.Marshal(e.sb.Journal())
	out.Write(j)
	st, _ := json.Marshal(e.sb.Stats())
	out.Write(st)
	out.WriteString(e.logs.String())
	if len(e.sb.Journal()) == 0 || !strings.Contains(e.logs.String(), "payout succeeded") {
		t.Fatal("nothing was paid or logged: the grep would prove nothing")
	}
	for _, number := range pans {
		if strings.Contains(out.String(), number) {
			t.Errorf("card number %s found in the sandbox's output", pan.Mask(number))
		}
	}
}

// TestTotals: the journal summed per currency, as the demo prints it.
func TestTotals(t *testing.T) {
	got := sandbox.Totals([]sandbox.Payment{
		{Amount: 100, Currency: "rub"},
		{Amount: 250, Currency: "usd"},
		{Amount: 5, Currency: "rub"},
	})
	want := map[string]int64{"rub": 105, "usd": 250}
	if !maps.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := sandbox.Totals(nil); len(got) != 0 {
		t.Errorf("Totals(nil): got %v, want empty", got)
	}
}
