package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike/sandbox"
)

// TestApproveOnlyWhatWasPreviewed: approve confirms the rows its preview
// showed (and the person or script agreed to), never a row of the batch
// that reaches ready_to_confirm while approve carries the batch on. Here
// the hold run is stopped (a crash, ^C) while its rows are being started
// at Pike; approve, with nothing waiting for confirmation, previews
// nothing and asks nobody (no terminal, no --yes) — and must confirm
// nothing: the rows it carries on stay held for an approval.
func TestApproveOnlyWhatWasPreviewed(t *testing.T) {
	p := newCLIPike(t, sandbox.Config{})
	m := p.manifest("held.csv",
		[5]string{"F-1", "100", "RUB", sandbox.CardMir, "Иванов Иван"},
		[5]string{"F-2", "999999", "RUB", sandbox.CardVisa, "Mallory"},
	)
	// start/payout is applied, its answer held back: the rows stay starting.
	p.sb.Inject(sandbox.Rule{Method: "session/start/payout", Fault: sandbox.FaultSlowAnswer, Times: 2, Delay: 3 * time.Second})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	var out, errb bytes.Buffer
	go func() {
		tty := false
		app := &App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, StdinTerminal: &tty,
			Getenv: func(k string) string { return p.env[k] }}
		done <- app.Main(ctx, []string{"run", m, "--confirm", "hold"})
	}()
	id := ""
	poll.Until(t, "both rows starting at Pike", func() bool {
		db, err := ledger.Open(context.Background(), p.env["PAYOUTS_LEDGER"])
		if err != nil {
			return false
		}
		defer db.Close()
		bs, err := db.Batches(context.Background())
		if err != nil || len(bs) != 1 {
			return false
		}
		id = bs[0].ID
		n, err := db.CountRows(context.Background(), id, ledger.StateStarting)
		return err == nil && n == 2
	})
	cancel()
	code := <-done
	t.Logf("hold run stopped: exit %d\n%s%s", code, out.String(), errb.String())
	p.sb.ClearRules()

	// No terminal, no --yes.
	code, stdout, stderr := p.runWith("", false, "approve", "--batch", id, "--wait", "20s")
	for ref, r := range p.ledgerRows(id) {
		if r.State == ledger.StateConfirming || r.State == ledger.StateConfirmed || r.State == ledger.StateSucceeded {
			t.Errorf("row %s is %s: approve confirmed a row it never previewed nor asked about (exit %d)\n%s%s", ref, r.State, code, stdout, stderr)
		}
	}
	if t.Failed() {
		return
	}
	// They are held now; an approve previews and confirms them.
	code, stdout, stderr = p.run("approve", "--batch", id, "--yes")
	if code != ExitOK || !strings.Contains(stdout, "F-2") {
		t.Errorf("approve of the held rows: exit %d\n%s%s", code, stdout, stderr)
	}
	for ref, r := range p.ledgerRows(id) {
		if r.State != ledger.StateSucceeded {
			t.Errorf("after approve: %s is %s, want succeeded", ref, r.State)
		}
	}
}

// TestPANTypedIntoFlags: a card number pasted where a batch id or a row's
// reference goes (a person identifying a payout by its card) is echoed in
// the refusal — masked, in text and in JSON logs.
func TestPANTypedIntoFlags(t *testing.T) {
	p := newCLIPike(t, sandbox.Config{})
	m := p.manifest("held.csv", heldRows()...)
	_, stdout, _ := p.run("run", m, "--confirm", "hold")
	id := batchIDOf(t, stdout)
	const card = "4242424242424242"
	for _, args := range [][]string{
		{"status", "--batch", card},
		{"report", "--batch", card},
		{"approve", "--batch", card, "--yes"},
		{"approve", "--batch", id, "--row", card, "--yes"},
		{"reject", "--batch", id, "--row", "H-1," + card, "--yes"},
		{"decide", "--batch", id, "--reference", card, "--outcome", "paid", "--note", "n"},
		{"rerun", "--batch", card, "--dry-run"},
	} {
		for _, format := range []string{"text", "json"} {
			a := append(append([]string{}, args...), "--log-format", format)
			code, stdout, stderr := p.run(a...)
			if code == ExitOK {
				t.Errorf("payouts %s: exit 0, want a refusal", strings.Join(a, " "))
			}
			if strings.Contains(stdout+stderr, card) {
				t.Errorf("payouts %s shows the card number:\n%s%s", strings.Join(a, " "), stdout, stderr)
			}
		}
	}
	for ref, r := range p.ledgerRows(id) {
		if r.State != ledger.StateAwaitingConfirm {
			t.Errorf("%s is %s, want still held", ref, r.State)
		}
	}
}

// TestPANInApproverName: --as is free text recorded in the ledger and the
// logs; a card number typed there is refused (exit 2, nothing done), and
// not echoed, in text and JSON.
func TestPANInApproverName(t *testing.T) {
	p := newCLIPike(t, sandbox.Config{})
	m := p.manifest("held.csv", heldRows()...)
	_, stdout, _ := p.run("run", m, "--confirm", "hold")
	id := batchIDOf(t, stdout)
	const card = "4242424242424242"
	for _, format := range []string{"text", "json"} {
		for _, cmd := range []string{"approve", "reject"} {
			code, stdout, stderr := p.run(cmd, "--batch", id, "--row", "H-1", "--yes", "--as", card, "--log-format", format)
			if code != ExitUsage {
				t.Errorf("%s --as CARD: exit %d, want 2\n%s%s", cmd, code, stdout, stderr)
			}
			if strings.Contains(stdout+stderr, card) {
				t.Errorf("%s --as CARD --log-format %s shows the card number:\n%s%s", cmd, format, stdout, stderr)
			}
		}
	}
	for ref, r := range p.ledgerRows(id) {
		if r.State != ledger.StateAwaitingConfirm {
			t.Errorf("%s is %s, want still held", ref, r.State)
		}
	}
}

// TestBatchPrefixTooShort: a batch id shortened to fewer than 4 characters
// names no batch (like git): `approve --batch 3 --yes` in a script must not
// approve whichever batch happens to start with 3. A full id that short
// still names its batch.
func TestBatchPrefixTooShort(t *testing.T) {
	p := newCLIPike(t, sandbox.Config{})
	m := p.manifest("held.csv", heldRows()...)
	_, stdout, _ := p.run("run", m, "--confirm", "hold")
	id := batchIDOf(t, stdout)
	for _, n := range []int{1, 3} {
		code, stdout, stderr := p.run("approve", "--batch", id[:n], "--yes")
		if code != ExitUsage || !strings.Contains(stderr, "at least 4 characters") {
			t.Errorf("approve --batch %s: exit %d; want 2 asking for 4 characters\n%s%s", id[:n], code, stdout, stderr)
		}
	}
	for ref, r := range p.ledgerRows(id) {
		if r.State != ledger.StateAwaitingConfirm {
			t.Errorf("%s is %s, want still held", ref, r.State)
		}
	}
	if code, stdout, stderr := p.run("status", "--batch", id[:4]); code != ExitOK {
		t.Errorf("status --batch %s: exit %d\n%s%s", id[:4], code, stdout, stderr)
	}
	m2 := p.manifest("short.csv", [5]string{"S-1", "10", "RUB", sandbox.CardMir, "Иванов Иван"})
	if code, stdout, stderr := p.run("run", m2, "--batch", "q1"); code != ExitOK {
		t.Fatalf("run --batch q1: exit %d\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := p.run("status", "--batch", "q1"); code != ExitOK {
		t.Errorf("status --batch q1 (a full id): exit %d\n%s%s", code, stdout, stderr)
	}
}
