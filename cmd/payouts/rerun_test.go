package main

import (
	"context"
	"strings"
	"testing"

	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike/sandbox"
)

// failedBatch runs a manifest in which BAD-1's card does not exist: OK-1
// is paid, BAD-1 fails. It returns the batch id and a corrected manifest
// raising BAD-1 from 20 to 5000 RUB on a good card.
func failedBatch(t *testing.T, p *cliPike) (id, fixed string) {
	t.Helper()
	m := p.manifest("m.csv", [5]string{"OK-1", "10", "RUB", sandbox.CardMir, "Иван"},
		[5]string{"BAD-1", "20", "RUB", sandbox.CardNotExist, "Пётр"})
	code, stdout, stderr := p.run("run", m)
	if code != ExitPartial {
		t.Fatalf("run: got exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	fixed = p.manifest("fixed.csv", [5]string{"OK-1", "10", "RUB", sandbox.CardMir, "Иван"},
		[5]string{"BAD-1", "5000", "RUB", sandbox.CardVisa, "Пётр Петров"})
	return batchIDOf(t, stdout), fixed
}

// untouched checks a refused or dry rerun sent nothing and wrote nothing.
func untouched(t *testing.T, p *cliPike, id string, requests int64, events int) {
	t.Helper()
	if n := p.requests(); n != requests {
		t.Errorf("sent %d requests to Pike, want none", n-requests)
	}
	if r := p.ledgerRows(id)["BAD-1"]; r.State != ledger.StateFailed || r.Attempt != 1 || r.Amount != 2000 {
		t.Errorf("BAD-1: got %s attempt %d amount %d, want failed attempt 1 amount 2000 (untouched)", r.State, r.Attempt, r.Amount)
	}
	if n := len(p.events(id)); n != events {
		t.Errorf("got %d events, want %d: the ledger was written", n, events)
	}
}

// events returns a batch's events.
func (p *cliPike) events(id string) []ledger.Event {
	p.t.Helper()
	db, err := ledger.Open(context.Background(), p.env["PAYOUTS_LEDGER"], ledger.MustExist())
	if err != nil {
		p.t.Fatal(err)
	}
	defer db.Close()
	evs, err := db.Events(context.Background(), id, 0)
	if err != nil {
		p.t.Fatal(err)
	}
	return evs
}

func TestRerunCaps(t *testing.T) {
	p := newCLIPike(t, sandbox.Config{})
	id, fixed := failedBatch(t, p)
	before, events := p.requests(), len(p.events(id))
	for _, tt := range []struct{ flag, say string }{
		{"--max-amount=RUB:1000", "line 3, reference BAD-1: 5000.00 RUB exceeds --max-amount 1000.00 RUB"},
		{"--max-total=RUB:4999", "total 5000.00 RUB exceeds --max-total 4999.00 RUB"},
	} {
		code, stdout, stderr := p.run("rerun", "--batch", id, fixed, tt.flag)
		if code != ExitUsage || !strings.Contains(stderr, tt.say) || !strings.Contains(stderr, "nothing was sent") {
			t.Errorf("rerun %s: got exit %d\nstdout:\n%s\nstderr:\n%s\nwant 2 saying %q", tt.flag, code, stdout, stderr, tt.say)
		}
		untouched(t, p, id, before, events)
	}
	// Within the caps it pays the corrected amount.
	code, stdout, stderr := p.run("rerun", "--batch", id, fixed, "--max-amount", "RUB:5000", "--max-total", "RUB:5000")
	if code != ExitOK {
		t.Fatalf("rerun within the caps: got exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if r := p.ledgerRows(id)["BAD-1"]; r.State != ledger.StateSucceeded || r.Amount != 500000 {
		t.Errorf("BAD-1: got %s amount %d, want succeeded 500000", r.State, r.Amount)
	}
}

func TestRerunDryRun(t *testing.T) {
	p := newCLIPike(t, sandbox.Config{})
	id, fixed := failedBatch(t, p)
	before, events := p.requests(), len(p.events(id))
	code, stdout, stderr := p.run("rerun", "--batch", id, fixed, "--dry-run")
	if code != ExitOK {
		t.Fatalf("dry run: got exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"would retry line 3     BAD-1                          5,000.00 RUB  amount 20.00 RUB → 5000.00 RUB  card 400000…0002 → 424242…4242  recipient_name \"Пётр\" → \"Пётр Петров\"\n",
		"would retry 1 rows, start 0 never attempted and carry on 0 in flight; 5,000.00 RUB; not retried 0. Nothing was sent and nothing was written.",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("dry run does not say %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "OK-1") {
		t.Errorf("dry run lists the paid row OK-1, which nothing changes:\n%s", stdout)
	}
	if !strings.HasPrefix(stderr, p.ledgerLine()) {
		t.Errorf("dry run does not name its ledger first:\n%s", stderr)
	}
	untouched(t, p, id, before, events)
	// A dry run over the caps says so, as the rerun would.
	if code, _, stderr := p.run("rerun", "--batch", id, fixed, "--dry-run", "--max-amount", "RUB:100"); code != ExitUsage || !strings.Contains(stderr, "exceeds --max-amount") {
		t.Errorf("dry run over the caps: got exit %d\n%s; want 2", code, stderr)
	}
	untouched(t, p, id, before, events)
}

func TestRerunRefusesCorrectionsOfRowsNotRetried(t *testing.T) {
	p := newCLIPike(t, sandbox.Config{})
	id, _ := failedBatch(t, p)
	before, events := p.requests(), len(p.events(id))
	paid := p.manifest("paid.csv", [5]string{"OK-1", "99", "RUB", sandbox.CardMir, "Иван"},
		[5]string{"BAD-1", "20", "RUB", sandbox.CardVisa, "Пётр"})
	for _, args := range [][]string{{"rerun", "--batch", id, paid}, {"rerun", "--batch", id, paid, "--dry-run"}} {
		code, stdout, stderr := p.run(args...)
		if code != ExitUsage || !strings.Contains(stderr, "line 2, reference OK-1 (succeeded): amount 10.00 RUB → 99.00 RUB — not applied: already paid") {
			t.Errorf("%s: got exit %d\nstdout:\n%s\nstderr:\n%s\nwant 2 naming OK-1's correction and why", strings.Join(args, " "), code, stdout, stderr)
		}
		untouched(t, p, id, before, events)
	}
}

func TestRerunHold(t *testing.T) {
	p := newCLIPike(t, sandbox.Config{})
	id, fixed := failedBatch(t, p)
	code, stdout, stderr := p.run("rerun", "--batch", id, fixed, "--confirm", "hold")
	if code != ExitOK || !strings.Contains(stdout, "waiting for approval") {
		t.Fatalf("rerun --confirm hold: got exit %d, want 0 waiting for approval\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if r := p.ledgerRows(id)["BAD-1"]; r.State != ledger.StateAwaitingConfirm {
		t.Fatalf("BAD-1: got %s, want awaiting_confirm", r.State)
	}
	if n := len(p.sb.Journal()); n != 1 {
		t.Fatalf("got %d payouts before approval, want 1 (OK-1)", n)
	}
	// The batch is held from now on: status says so, and serve would not
	// confirm it (it follows the batch's mode).
	if _, stdout, _ := p.run("status", "--batch", id); !strings.Contains(stdout, "held for approval") {
		t.Errorf("status does not show BAD-1 held:\n%s", stdout)
	}
	if code, stdout, stderr := p.run("approve", "--batch", id, "--yes"); code != ExitOK {
		t.Fatalf("approve: got exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if r := p.ledgerRows(id)["BAD-1"]; r.State != ledger.StateSucceeded || r.Amount != 500000 {
		t.Errorf("BAD-1: got %s amount %d, want succeeded 500000", r.State, r.Amount)
	}
}
