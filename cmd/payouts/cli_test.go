package main

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/csv"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

// cliPike is an in-process Pike sandbox on loopback with a partner key
// pair on disk, and the environment that points the command line at it.
// No webhook key is configured, so runs learn results by polling.
type cliPike struct {
	t   *testing.T
	dir string
	sb  *sandbox.Sandbox
	srv *httptest.Server
	env map[string]string
}

// cliPartnerKey is one partner key for every test of the package (RSA key
// generation is the slow part of setting up a test).
var cliPartnerKey = sync.OnceValues(func() (*rsa.PrivateKey, []byte) {
	key, err := pike.GenerateKey()
	if err != nil {
		panic(err)
	}
	b, err := pike.EncodePrivateKeyPEM(key)
	if err != nil {
		panic(err)
	}
	return key, b
})

func newCLIPike(t *testing.T, cfg sandbox.Config) *cliPike {
	t.Helper()
	dir := t.TempDir()
	key, pemBytes := cliPartnerKey()
	priv := filepath.Join(dir, "partner-private.pem")
	if err := os.WriteFile(priv, pemBytes, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.PartnerKey, cfg.Project = &key.PublicKey, "cli-test"
	if cfg.ReadyDelay == 0 {
		cfg.ReadyDelay, cfg.FinishDelay, cfg.SlowDelay = 5*time.Millisecond, 5*time.Millisecond, 50*time.Millisecond
	}
	sb, err := sandbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p := &cliPike{t: t, dir: dir, sb: sb, srv: httptest.NewServer(sb)}
	t.Cleanup(func() {
		p.srv.Close()
		p.sb.Close()
	})
	p.env = map[string]string{
		"PIKE_URL":            p.srv.URL,
		"PIKE_PROJECT":        "cli-test",
		"PIKE_PRIVATE_KEY":    priv,
		"PAYOUTS_LEDGER":      filepath.Join(dir, "payouts.db"),
		"PAYOUTS_POLL_AFTER":  "20ms",
		"PAYOUTS_WAIT":        "30s",
		"PAYOUTS_CONCURRENCY": "4",
	}
	if code, stdout, stderr := p.run("init"); code != ExitOK {
		t.Fatalf("payouts init: exit %d\n%s%s", code, stdout, stderr)
	}
	return p
}

// ledgerLine is what every command that opens the ledger prints first on
// stderr.
func (p *cliPike) ledgerLine() string {
	return "ledger: " + p.env["PAYOUTS_LEDGER"] + " (sqlite)\n"
}

// run runs the command line in-process against the sandbox.
func (p *cliPike) run(args ...string) (code int, stdout, stderr string) {
	p.t.Helper()
	return runApp(p.t, p.env, args...)
}

// manifest writes a manifest of rows {reference, amount, currency, card, name}.
func (p *cliPike) manifest(name string, rows ...[5]string) string {
	p.t.Helper()
	var b bytes.Buffer
	cw := csv.NewWriter(&b)
	cw.Write([]string{"reference", "amount", "currency", "card_number", "recipient_name"})
	for _, r := range rows {
		cw.Write(r[:])
	}
	cw.Flush()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		p.t.Fatal(err)
	}
	return path
}

// requests is the number of API calls the sandbox received.
func (p *cliPike) requests() int64 {
	var n int64
	for _, c := range p.sb.Stats().Requests {
		n += c
	}
	return n
}

// ledgerRows opens the ledger read-only-ish after a command and returns
// the rows of batch id by reference.
func (p *cliPike) ledgerRows(id string) map[string]ledger.Row {
	p.t.Helper()
	db, err := ledger.Open(context.Background(), p.env["PAYOUTS_LEDGER"])
	if err != nil {
		p.t.Fatal(err)
	}
	defer db.Close()
	out := map[string]ledger.Row{}
	for r, err := range db.Rows(context.Background(), id) {
		if err != nil {
			p.t.Fatal(err)
		}
		out[r.Reference] = r
	}
	return out
}

// batchIDOf returns the batch id `payouts run` prints for a manifest.
func batchIDOf(t *testing.T, stdout string) string {
	t.Helper()
	for _, line := range strings.Split(stdout, "\n") {
		if rest, ok := strings.CutPrefix(line, "Batch "); ok {
			return strings.Fields(rest)[0]
		}
	}
	t.Fatalf("no batch id in:\n%s", stdout)
	return ""
}

func okRows() [][5]string {
	return [][5]string{
		{"OK-1", "1500.50", "RUB", sandbox.CardMir, "Иванов Иван"},
		{"OK-2", "20", "EUR", sandbox.CardVisa, "Anna Müller"},
	}
}

// TestExitCodes runs the command line in-process and checks the exit code
// of each outcome, and that every refusal sent nothing to Pike.
func TestExitCodes(t *testing.T) {
	t.Run("0: every row succeeded", func(t *testing.T) {
		p := newCLIPike(t, sandbox.Config{})
		m := p.manifest("ok.csv", okRows()...)
		code, stdout, stderr := p.run("run", m)
		if code != ExitOK {
			t.Fatalf("got exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		if n := len(p.sb.Journal()); n != 2 {
			t.Errorf("got %d payouts in the sandbox's journal, want 2", n)
		}
		// The same manifest again: nothing more is paid, still 0.
		if code, _, _ := p.run("run", m); code != ExitOK {
			t.Errorf("second run: got exit %d, want 0", code)
		}
		if n := len(p.sb.Journal()); n != 2 {
			t.Errorf("after a second run got %d payouts, want still 2", n)
		}
	})

	t.Run("1: some rows failed", func(t *testing.T) {
		p := newCLIPike(t, sandbox.Config{})
		m := p.manifest("fail.csv", append(okRows(), [5]string{"BAD", "10", "RUB", sandbox.CardNotExist, "Пётр Петров"})...)
		code, stdout, stderr := p.run("run", m)
		if code != ExitPartial {
			t.Fatalf("got exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		if !strings.Contains(stdout, "card_number_does_not_exist") {
			t.Errorf("summary does not name the failure:\n%s", stdout)
		}
	})

	t.Run("1: rows held, then cancelled by reject", func(t *testing.T) {
		p := newCLIPike(t, sandbox.Config{})
		m := p.manifest("hold.csv", okRows()...)
		code, stdout, stderr := p.run("run", m, "--confirm", "hold")
		if code != ExitOK {
			t.Fatalf("hold run: got exit %d, want 0 (stopped for approval as asked)\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		// The confirm deadline, once, as a clock time.
		if n := strings.Count(stdout+stderr, "waiting for approval"); n != 1 || !regexp.MustCompile(`waiting for approval; approve by \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC`).MatchString(stdout) {
			t.Errorf("hold run: got %d deadlines, want one saying by when (UTC) to approve:\n%s", n, stdout)
		}
		id := batchIDOf(t, stdout)
		code, stdout, stderr = p.run("reject", "--batch", id, "--yes")
		if code != ExitPartial {
			t.Fatalf("reject: got exit %d, want 1 (rows cancelled)\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		for ref, r := range p.ledgerRows(id) {
			if r.State != ledger.StateCancelled {
				t.Errorf("%s: got %s, want cancelled", ref, r.State)
			}
		}
		if n := len(p.sb.Journal()); n != 0 {
			t.Errorf("got %d payouts after reject, want none", n)
		}
	})

	t.Run("1: outcome unknown at exit", func(t *testing.T) {
		p := newCLIPike(t, sandbox.Config{})
		m := p.manifest("unknown.csv", okRows()...)
		// OK-1's session/start/payout is applied but its answer lost, and
		// Pike answers no status call about it: the run cannot know, and
		// must say so.
		p.sb.Inject(sandbox.Rule{Method: pike.MethodStartPayout, Reference: "OK-1", Fault: sandbox.FaultDropAfterApply})
		p.sb.Inject(sandbox.Rule{Method: pike.MethodStatus, Reference: "OK-1", Fault: sandbox.FaultFailBeforeApply, Times: 1 << 30})
		code, stdout, stderr := p.run("run", m, "--wait", "2s")
		if code != ExitPartial {
			t.Fatalf("got exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		rows := p.ledgerRows(batchIDOf(t, stdout))
		if s := rows["OK-1"].State; s != ledger.StateUnknown {
			t.Errorf("OK-1: got state %s, want unknown", s)
		}
		if !strings.Contains(stdout, "OK-1") {
			t.Errorf("the summary does not list OK-1 as needing attention:\n%s", stdout)
		}
	})

	// Refusals: exit 2, and not one request reaches Pike.
	refusals := []struct {
		name string
		env  map[string]string
		args func(p *cliPike) []string
		say  string // part of stderr
	}{
		{"invalid manifest", nil, func(p *cliPike) []string {
			return []string{"run", p.manifest("bad.csv", [5]string{"R1", "10", "RUB", "4242424242424241", "Иван"})}
		}, "payouts validate"},
		{"unknown flag", nil, func(p *cliPike) []string {
			return []string{"run", p.manifest("m.csv", okRows()...), "--frobnicate"}
		}, "frobnicate"},
		{"missing manifest argument", nil, func(p *cliPike) []string { return []string{"run"} }, "MANIFEST"},
		{"manifest file does not exist", nil, func(p *cliPike) []string {
			return []string{"run", filepath.Join(p.dir, "no-such.csv")}
		}, "no-such.csv: no such file — check the path"},
		{"two manifest arguments", nil, func(p *cliPike) []string {
			m := p.manifest("m.csv", okRows()...)
			return []string{"run", m, m}
		}, "MANIFEST"},
		{"--max-amount exceeded", nil, func(p *cliPike) []string {
			return []string{"run", p.manifest("m.csv", okRows()...), "--max-amount", "RUB:1000"}
		}, "--max-amount"},
		{"--max-total exceeded", nil, func(p *cliPike) []string {
			return []string{"run", p.manifest("m.csv", okRows()...), "--max-total", "EUR:19.99"}
		}, "--max-total"},
		{"--max-total exceeded from the environment", map[string]string{"PAYOUTS_MAX_TOTAL": "RUB:100;EUR:100"}, func(p *cliPike) []string {
			return []string{"run", p.manifest("m.csv", okRows()...)}
		}, "--max-total"},
		{"duplicates without --allow-duplicates", nil, func(p *cliPike) []string {
			return []string{"run", p.manifest("dup.csv", [5]string{"D1", "10", "RUB", sandbox.CardMir, "Иван"}, [5]string{"D2", "10", "RUB", sandbox.CardMir, "Иван"})}
		}, "--allow-duplicates"},
		{"--expect-total differs", nil, func(p *cliPike) []string {
			return []string{"run", p.manifest("m.csv", okRows()...), "--expect-total", "RUB:1500.51", "--expect-total", "EUR:20"}
		}, "payouts validate"},
		{"bad --confirm", nil, func(p *cliPike) []string {
			return []string{"run", p.manifest("m.csv", okRows()...), "--confirm", "sometimes"}
		}, "--confirm"},
		{"bad value in the environment", map[string]string{"PAYOUTS_CONCURRENCY": "lots"}, func(p *cliPike) []string {
			return []string{"run", p.manifest("m.csv", okRows()...)}
		}, "PAYOUTS_CONCURRENCY"},
		{"no Pike URL", map[string]string{"PIKE_URL": ""}, func(p *cliPike) []string {
			return []string{"run", p.manifest("m.csv", okRows()...)}
		}, "PIKE_URL"},
		{"unknown command", nil, func(p *cliPike) []string { return []string{"pay"} }, "unknown command"},
		{"no command", nil, func(p *cliPike) []string { return nil }, "no command"},
		{"report without --batch", nil, func(p *cliPike) []string { return []string{"report"} }, "--batch"},
		{"approve without --batch", nil, func(p *cliPike) []string { return []string{"approve"} }, "--batch"},
	}
	for _, tt := range refusals {
		t.Run("2: "+tt.name, func(t *testing.T) {
			p := newCLIPike(t, sandbox.Config{})
			// A ledger that does not exist yet: no refusal may create it.
			p.env["PAYOUTS_LEDGER"] = filepath.Join(p.dir, "refused.db")
			for k, v := range tt.env {
				p.env[k] = v
			}
			code, stdout, stderr := p.run(tt.args(p)...)
			if code != ExitUsage {
				t.Errorf("got exit %d, want 2\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			if !strings.Contains(stderr, tt.say) {
				t.Errorf("stderr does not say %q:\n%s", tt.say, stderr)
			}
			if n := p.requests(); n != 0 {
				t.Errorf("got %d requests to Pike (%v), want none", n, p.sb.Stats().Requests)
			}
			if _, err := os.Stat(p.env["PAYOUTS_LEDGER"]); err == nil {
				t.Errorf("a refusal created the ledger %s", p.env["PAYOUTS_LEDGER"])
			}
		})
	}

	// Infrastructure: exit 3, nothing sent.
	infra := []struct {
		name  string
		setup func(p *cliPike) []string
		say   string
	}{
		{"bad key file", func(p *cliPike) []string {
			bad := filepath.Join(p.dir, "bad.pem")
			os.WriteFile(bad, []byte("-----BEGIN PRIVATE KEY-----\nbm90IGEga2V5\n-----END PRIVATE KEY-----\n"), 0o600)
			p.env["PIKE_PRIVATE_KEY"] = bad
			return []string{"run", p.manifest("m.csv", okRows()...)}
		}, "private key"},
		{"missing key file", func(p *cliPike) []string {
			p.env["PIKE_PRIVATE_KEY"] = filepath.Join(p.dir, "nope.pem")
			return []string{"run", p.manifest("m.csv", okRows()...)}
		}, "private key"},
		{"ledger path unwritable", func(p *cliPike) []string {
			file := filepath.Join(p.dir, "not-a-dir")
			os.WriteFile(file, nil, 0o600)
			p.env["PAYOUTS_LEDGER"] = filepath.Join(file, "payouts.db")
			return []string{"run", p.manifest("m.csv", okRows()...)}
		}, "ledger"},
	}
	for _, tt := range infra {
		t.Run("3: "+tt.name, func(t *testing.T) {
			p := newCLIPike(t, sandbox.Config{})
			args := tt.setup(p)
			code, stdout, stderr := p.run(args...)
			if code != ExitInfra {
				t.Errorf("got exit %d, want 3\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			if !strings.Contains(stderr, tt.say) {
				t.Errorf("stderr does not say %q:\n%s", tt.say, stderr)
			}
			if n := p.requests(); n != 0 {
				t.Errorf("got %d requests to Pike, want none", n)
			}
		})
	}

	t.Run("3: Pike unreachable", func(t *testing.T) {
		p := newCLIPike(t, sandbox.Config{})
		p.srv.Close()
		code, stdout, stderr := p.run("run", p.manifest("m.csv", okRows()...), "--wait", "1s")
		if code != ExitInfra {
			t.Errorf("got exit %d, want 3\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
	})
}

// TestDemo runs `payouts demo` end to end in-process: every outcome shows,
// the report is written, and no output holds a card number.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	report := filepath.Join(dir, "demo-report.csv")
	var out, errb bytes.Buffer
	app := &App{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }}
	code := app.Main(context.Background(), []string{"demo", "--dir", dir, "--report", report})
	if code != ExitOK {
		t.Fatalf("got exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	stdout := out.String()
	for _, want := range []string{"succeeded", "failed", "mismatch", "review", "report written to " + report, "journal"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("demo output lacks %q:\n%s", want, stdout)
		}
	}
	rep, err := os.ReadFile(report)
	if err != nil {
		t.Fatalf("report: %v", err)
	}
	records, err := csv.NewReader(bytes.NewReader(rep)).ReadAll()
	if err == nil {
		t.Fatal("report read as one CSV table, want sections of different widths after the rows")
	}
	r := csv.NewReader(bytes.NewReader(rep))
	r.FieldsPerRecord = -1
	if records, err = r.ReadAll(); err != nil {
		t.Fatalf("report is not CSV: %v", err)
	}
	states := map[string]int{}
	rows := 0
	for _, rec := range records[1:] {
		if len(rec) != len(reportColumns) {
			break
		}
		rows++
		states[rec[2]]++
	}
	if rows != 20 {
		t.Errorf("got %d report rows, want the sample's 20", rows)
	}
	for _, s := range []string{"succeeded", "failed", "mismatch", "review"} {
		if states[s] == 0 {
			t.Errorf("report has no %s row (states %v)", s, states)
		}
	}
	pans := cardNumbersIn(string(mustRead(t, "../../samples/payroll.csv")))
	for _, pan := range pans {
		for name, b := range map[string]string{"stdout": stdout, "stderr": errb.String(), "report": string(rep)} {
			if strings.Contains(b, pan) {
				t.Errorf("%s holds card number %s", name, pan)
			}
		}
	}
	// The ledger it left is usable by the other commands.
	code, st, se := runApp(t, nil, "status", "--ledger", filepath.Join(dir, "payouts.db"))
	if code != ExitOK || !strings.Contains(st, "payroll.csv") {
		t.Errorf("status of the demo ledger: exit %d\n%s%s", code, st, se)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestDemoMakesItsDirectory: `payouts demo --dir DIR` with a DIR that does
// not exist yet creates it, as `keygen --out` does.
func TestDemoMakesItsDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "new", "demo")
	code, stdout, stderr := runApp(t, nil, "demo", "--dir", dir, "--report", filepath.Join(t.TempDir(), "r.csv"))
	if code != ExitOK {
		t.Fatalf("got exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
}

// TestRunDryRun checks that `payouts run --dry-run` skips what the engine
// would skip — rows of the batch already started, references paid in
// another batch unless --allow-repeat-reference — and sends nothing.
func TestRunDryRun(t *testing.T) {
	p := newCLIPike(t, sandbox.Config{})
	m := p.manifest("ok.csv", okRows()...)
	code, stdout, stderr := p.run("run", m)
	if code != ExitOK {
		t.Fatalf("run: got exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	id := batchIDOf(t, stdout)
	more := p.manifest("more.csv", okRows()[0], [5]string{"NEW-1", "10", "RUB", sandbox.CardMir, "Пётр Петров"})
	before := p.requests()
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"the same manifest again", []string{"run", m, "--dry-run"}, []string{
			"  skip       line 2 OK-1: already succeeded in batch " + id + "\n",
			"  skip       line 3 OK-2: already succeeded in batch " + id + "\n",
			": would pay 0 rows; skip 2.",
		}},
		{"a reference paid in another batch", []string{"run", more, "--dry-run"}, []string{
			"  skip       line 2 OK-1: already paid in batch " + id + "\n",
			"  would pay  line 3     NEW-1",
			": would pay 1 rows; 10.00 RUB; skip 1.",
		}},
		{"--allow-repeat-reference", []string{"run", more, "--dry-run", "--allow-repeat-reference"}, []string{
			"  would pay  line 2     OK-1",
			": would pay 2 rows; 1,510.50 RUB; skip 0.",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := p.run(tc.args...)
			if code != ExitOK {
				t.Fatalf("got exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
			}
			for _, want := range tc.want {
				if !strings.Contains(stdout, want) {
					t.Errorf("dry run does not say %q:\n%s", want, stdout)
				}
			}
		})
	}
	if n := p.requests(); n != before {
		t.Errorf("dry runs sent %d requests to Pike, want none", n-before)
	}
}
