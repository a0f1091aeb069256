package main

import (
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/payouts/payouts/internal/pgtest"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike/sandbox"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// TestPostgresLedgerCLI: --ledger (PAYOUTS_LEDGER) takes a postgres:// URL
// wherever it takes a path. Only init makes the tables; every command
// names the ledger first, with its password redacted; nothing prints the
// password, and a second run pays nothing twice.
func TestPostgresLedgerCLI(t *testing.T) {
	u, err := url.Parse(pgtest.NewSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword(u.User.Username(), "hunter2") // trust auth ignores it
	loc := u.String()
	p := newCLIPike(t, sandbox.Config{})
	p.env["PAYOUTS_LEDGER"] = loc
	p.env["PAYOUTS_FINGERPRINT_KEY"] = filepath.Join(p.dir, "pg-fingerprint.key")
	want := "ledger: " + ledger.Redact(loc) + " (postgres)\n"
	if !strings.Contains(want, "xxxxx") {
		t.Fatalf("redacted line %q hides no password", want)
	}
	manifest := p.manifest("m.csv", okRows()...)
	check := func(what string, code, wantCode int, stdout, stderr string) {
		t.Helper()
		if code != wantCode {
			t.Errorf("%s: got exit %d, want %d\nstdout:\n%s\nstderr:\n%s", what, code, wantCode, stdout, stderr)
		}
		// Every command names the ledger first: "ledger: URL (postgres)",
		// or run's start line "batch …; ledger URL (postgres); Pike …".
		named := strings.HasPrefix(stderr, want) ||
			strings.HasPrefix(stderr, "batch ") && strings.Contains(firstLine(stderr), "; ledger "+strings.TrimSuffix(strings.TrimPrefix(want, "ledger: "), "\n")+";")
		if !named {
			t.Errorf("%s: stderr starts %q, want it to name the ledger as %q", what, firstLine(stderr), want)
		}
		if strings.Contains(stdout+stderr, "hunter2") {
			t.Errorf("%s printed the password:\n%s%s", what, stdout, stderr)
		}
	}

	code, stdout, stderr := p.run("run", manifest)
	check("run before init", code, ExitInfra, stdout, stderr)
	if !strings.Contains(stderr, "payouts init") || len(p.sb.Journal()) != 0 {
		t.Errorf("run before init: want a refusal naming payouts init and nothing paid, got %d payouts\n%s", len(p.sb.Journal()), stderr)
	}
	code, stdout, stderr = p.run("init")
	check("init", code, ExitOK, stdout, stderr)
	if !strings.Contains(stdout, "created ledger "+ledger.Redact(loc)) {
		t.Errorf("init: stdout %q, want it to say it created the ledger", stdout)
	}
	code, stdout, stderr = p.run("init")
	check("init again", code, ExitOK, stdout, stderr)
	if !strings.Contains(stdout, "already exists") {
		t.Errorf("init again: stdout %q, want already exists", stdout)
	}
	code, stdout, stderr = p.run("run", manifest)
	check("run", code, ExitOK, stdout, stderr)
	if n := len(p.sb.Journal()); n != 2 {
		t.Fatalf("got %d payouts, want 2", n)
	}
	code, stdout, stderr = p.run("run", manifest)
	check("run again", code, ExitOK, stdout, stderr)
	if n := len(p.sb.Journal()); n != 2 {
		t.Errorf("after the second run: %d payouts, want still 2", n)
	}
	code, stdout, stderr = p.run("status")
	check("status", code, ExitOK, stdout, stderr)
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
