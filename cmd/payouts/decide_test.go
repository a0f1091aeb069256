package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

// TestDecide: a row in review leaves it only by `payouts decide`, with the
// person and the note in the audit trail; not-paid makes it rerunnable.
func TestDecide(t *testing.T) {
	p := newCLIPike(t, sandbox.Config{})
	m := p.manifest("m.csv", [5]string{"ERR-1", "10", "RUB", sandbox.CardSessionError, "Фёдорова Ксения"},
		[5]string{"OK-1", "20", "RUB", sandbox.CardMir, "Иванов Иван"})
	code, stdout, stderr := p.run("run", m)
	if code != ExitPartial {
		t.Fatalf("run: got exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	id := batchIDOf(t, stdout)
	if r := p.ledgerRows(id)["ERR-1"]; r.State != ledger.StateReview {
		t.Fatalf("ERR-1: got %s, want review", r.State)
	}
	for _, tc := range []struct {
		name string
		args []string
		want int
	}{
		{"no note", []string{"--reference", "ERR-1", "--outcome", "not-paid"}, ExitUsage},
		{"bad outcome", []string{"--reference", "ERR-1", "--outcome", "maybe", "--note", "x"}, ExitUsage},
		{"row not in review", []string{"--reference", "OK-1", "--outcome", "not-paid", "--note", "x"}, ExitUsage},
		{"unknown reference", []string{"--reference", "NOPE", "--outcome", "not-paid", "--note", "x"}, ExitUsage},
	} {
		if code, _, stderr := p.run(append([]string{"decide", "--batch", id}, tc.args...)...); code != tc.want {
			t.Errorf("%s: got exit %d, want %d\n%s", tc.name, code, tc.want, stderr)
		}
	}
	if r := p.ledgerRows(id)["ERR-1"]; r.State != ledger.StateReview {
		t.Fatalf("a refused decision moved ERR-1 to %s", r.State)
	}
	code, stdout, stderr = p.run("decide", "--batch", id, "--reference", "ERR-1", "--outcome", "not-paid",
		"--note", "Pike support 1832: nothing paid", "--as", "alice")
	if code != ExitOK || !strings.Contains(stdout, "failed (decided by alice)") || !strings.Contains(stdout, "payouts rerun --batch "+id) {
		t.Fatalf("decide: got exit %d\n%s%s", code, stdout, stderr)
	}
	db, err := ledger.Open(t.Context(), p.env["PAYOUTS_LEDGER"])
	if err != nil {
		t.Fatal(err)
	}
	r := p.ledgerRows(id)["ERR-1"]
	evs, err := db.Events(t.Context(), id, r.ID)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if last := evs[len(evs)-1]; !strings.Contains(last.Detail, "decided by alice") || !strings.Contains(last.Detail, "Pike support 1832") {
		t.Errorf("audit trail: got %q, want the person and the note", last.Detail)
	}
	fixed := p.manifest("fixed.csv", [5]string{"ERR-1", "10", "RUB", sandbox.CardVisa, "Фёдорова Ксения"},
		[5]string{"OK-1", "20", "RUB", sandbox.CardMir, "Иванов Иван"})
	if code, stdout, stderr := p.run("rerun", "--batch", id, fixed); code != ExitOK {
		t.Fatalf("rerun: got exit %d\n%s%s", code, stdout, stderr)
	}
	paid := map[string]int{}
	for _, j := range p.sb.Journal() {
		paid[j.Reference]++
	}
	if paid["ERR-1"] != 1 || paid["OK-1"] != 1 {
		t.Errorf("journal: got %v, want each paid once", paid)
	}
}

// TestCredentialsRefusedIsExit3: a partner key Pike does not know is the
// operator's problem: exit 3, no row failed (issue 13, finding 12: every
// row used to fail authentication_error with exit 1).
func TestCredentialsRefusedIsExit3(t *testing.T) {
	p := newCLIPike(t, sandbox.Config{})
	key, err := pike.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := pike.EncodePrivateKeyPEM(key)
	if err != nil {
		t.Fatal(err)
	}
	wrong := filepath.Join(p.dir, "wrong.pem")
	if err := os.WriteFile(wrong, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	right := p.env["PIKE_PRIVATE_KEY"]
	p.env["PIKE_PRIVATE_KEY"] = wrong
	m := p.manifest("m.csv", okRows()...)
	code, stdout, stderr := p.run("run", m)
	if code != ExitInfra || !strings.Contains(stderr, "credentials") {
		t.Fatalf("got exit %d, want 3 naming the credentials\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	// Stopped at the first signed call (the balance check), before any
	// row was written or any payout call sent.
	for _, m := range []string{pike.MethodSessionCreate, pike.MethodStartPayout, pike.MethodInitPayout} {
		if n := p.sb.Stats().Requests[m]; n != 0 {
			t.Errorf("got %d %s calls, want none", n, m)
		}
	}
	p.env["PIKE_PRIVATE_KEY"] = right
	if code, stdout, stderr := p.run("run", m); code != ExitOK {
		t.Fatalf("with the right key: got exit %d\n%s%s", code, stdout, stderr)
	}
	if n := len(p.sb.Journal()); n != len(okRows()) {
		t.Errorf("got %d payouts, want %d", n, len(okRows()))
	}
}
