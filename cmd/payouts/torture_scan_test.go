package main_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/pike/sandbox"
)

// copySample copies samples/NAME into dir and returns the copy's path.
func copySample(t *testing.T, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "samples", name))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestNoCardNumberInAnyOutput drives every command of the real binary that
// writes anything, with errors and faults, debug logs in text and JSON, a
// SIGKILL in the middle of a run, and then scans every byte the product
// wrote (ledger, -wal, -shm after every command that writes it, stdout and stderr of every
// command, every report) for the manifests' card numbers and for any
// Luhn-valid 13–19 digit run. Zero unexplained hits is the only pass.
func TestNoCardNumberInAnyOutput(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("end-to-end card-number scan skipped in -short mode")
	}
	r := newRig(t, sandbox.Config{
		Faults: sandbox.Faults{Latency: 5 * time.Millisecond, LatencyJitter: 20 * time.Millisecond,
			FailBeforeApply: 0.05, FailAfterApply: 0.05, DropAfterApply: 0.05,
			DuplicateWebhooks: 0.2, ReorderWebhooks: 0.2, DropWebhooks: 0.2},
		Seed:       42,
		ReadyDelay: 20 * time.Millisecond, FinishDelay: 20 * time.Millisecond, SlowDelay: 500 * time.Millisecond,
		WebhookRetryBase: 100 * time.Millisecond, WebhookRetryMax: time.Second, WebhookGiveUp: 10 * time.Second,
	})
	payroll := copySample(t, r.in, "payroll.csv")
	broken := copySample(t, r.in, "payroll-errors.csv")
	semicolon := copySample(t, r.in, "payroll-semicolon.csv")
	scan := newPANScanner(t, payroll, broken, semicolon)
	want, sum := expectations(t, payroll, manifest.Options{})
	semiWant, semiSum := expectations(t, semicolon, manifest.Options{})
	for ref, e := range semiWant {
		want[ref] = e
	}
	batchID, semiID := batch.BatchIDFor(sum.SHA256), batch.BatchIDFor(semiSum.SHA256)
	scan.known = []string{batchID, semiID}
	debug := func(format string) []string { return []string{"--log-level", "debug", "--log-format", format} }

	var rawHits []panHit
	snapshot := func() {
		rawHits = append(rawHits, scanLedgerFiles(t, scan, r.ledger, fmt.Sprintf("after-%03d/", r.seq))...)
	}
	expect := func(want int, args ...string) {
		t.Helper()
		code, _, stderr := r.exec(args...)
		switch args[0] {
		case "run", "rerun", "approve", "reject": // the commands that write the ledger
			snapshot()
		}
		if code != want {
			t.Errorf("payouts %s: exit %d, want %d\n%s", strings.Join(args, " "), code, want, tail(stderr, 2000))
		}
	}

	// The demo (its own sandbox, ledger and report, all under out/) runs
	// meanwhile.
	if err := os.MkdirAll(filepath.Join(r.out, "demo"), 0o755); err != nil {
		t.Fatal(err)
	}
	demo := r.command(append([]string{"demo", "--dir", filepath.Join(r.out, "demo"), "--report", filepath.Join(r.out, "demo", "report.csv")}, debug("json")...)...)
	if err := demo.cmd.Start(); err != nil {
		t.Fatal(err)
	}

	// Refusals: nothing valid, nothing sent.
	expect(2, "validate", broken)
	expect(2, "validate", broken, "--format", "json")
	expect(2, append(r.runArgs(broken), debug("json")...)...)
	expect(0, "validate", payroll, "--format", "json")
	expect(0, "validate", semicolon)
	expect(0, append(r.runArgs(payroll, "--dry-run"), debug("text")...)...)

	// A run killed in the middle, then resumed until every row settled.
	rng := rand.New(rand.NewPCG(7, 7))
	for run := 0; ; run++ {
		format := []string{"json", "text"}[run%2]
		p := r.command(append(r.runArgs(payroll, "--poll-after", "300ms", "--wait", "30s",
			"--report", filepath.Join(r.out, fmt.Sprintf("run-%d-report.csv", run))), debug(format)...)...)
		r.waitPortFree()
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		if run == 0 {
			// The scenario: a kill at a random instant of the run, not a wait.
			time.Sleep(time.Duration(150+rng.IntN(300)) * time.Millisecond)
			_ = p.cmd.Process.Signal(syscall.SIGKILL)
		}
		code := p.wait(t)
		snapshot()
		if code != 0 && code != 1 && code != -int(syscall.SIGKILL) {
			_, stderr := p.output()
			t.Fatalf("run %d exited %d:\n%s", run, code, tail(stderr, 2000))
		}
		if settled(ledgerRows(t, r.ledger, batchID), sum.Rows) {
			break
		}
		if run > 10 {
			t.Fatal("the payroll batch did not settle in 10 runs")
		}
	}
	expect(1, append([]string{"rerun", "--batch", batchID, payroll, "--pike-url", r.pikeURL, "--project", "torture",
		"--private-key", r.priv, "--pike-public-key", r.pub, "--ledger", r.ledger, "--listen", r.listen,
		"--poll-after", "300ms", "--wait", "30s"}, debug("json")...)...)

	// Hold mode, then approval.
	// Stopped for approval as asked: exit 0 (DESIGN.md).
	expect(0, append(r.runArgs(semicolon, "--confirm", "hold", "--poll-after", "300ms", "--wait", "20s"), debug("text")...)...)
	expect(0, append([]string{"approve", "--yes", "--batch", semiID, "--pike-url", r.pikeURL, "--project", "torture",
		"--private-key", r.priv, "--pike-public-key", r.pub, "--ledger", r.ledger, "--listen", r.listen,
		"--poll-after", "300ms", "--wait", "20s"}, debug("json")...)...)

	// The receiver after the runs, stopped with SIGTERM.
	serve := r.command(append([]string{"serve", "--pike-url", r.pikeURL, "--project", "torture",
		"--private-key", r.priv, "--pike-public-key", r.pub, "--ledger", r.ledger, "--listen", r.listen,
		"--poll-after", "300ms"}, debug("text")...)...)
	r.waitPortFree()
	if err := serve.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.waitListening()
	_ = serve.cmd.Process.Signal(syscall.SIGTERM)
	serve.wait(t)
	snapshot()

	// Everything that reads the ledger and writes.
	expect(0, "status", "--ledger", r.ledger)
	for _, id := range []string{batchID, semiID} {
		expect(0, "status", "--ledger", r.ledger, "--batch", id)
		expect(0, "report", "--ledger", r.ledger, "--batch", id)
		expect(0, "report", "--ledger", r.ledger, "--batch", id, "--format", "json")
		expect(0, "report", "--ledger", r.ledger, "--batch", id, "--format", "excel-csv")
		expect(0, "report", "--ledger", r.ledger, "--batch", id, "--format", "excel-csv", "--output", filepath.Join(r.out, id+"-excel.csv"))
		expect(0, "report", "--ledger", r.ledger, "--batch", id, "--format", "json", "--output", filepath.Join(r.out, id+".json"))
	}
	if code := demo.wait(t); code != 0 {
		_, stderr := demo.output()
		t.Errorf("payouts demo: exit %d, want 0\n%s", code, tail(stderr, 2000))
	}

	rows := ledgerRows(t, r.ledger, batchID)
	semiRows := ledgerRows(t, r.ledger, semiID)
	t.Logf("payroll batch: %v; semicolon batch: %v; journal %d payouts", countStates(rows), countStates(semiRows), len(r.sb.Journal()))
	checkJournal(t, r.sb, want, append(rows, semiRows...))
	// The demo writes the built-in sample manifest next to its ledger to
	// pay it: that file is the product's input, not its output.
	demoManifest := filepath.Join(r.out, "demo", "payroll.csv")
	if b, err := os.ReadFile(demoManifest); err != nil {
		t.Errorf("demo manifest: %v", err)
	} else if sample, _ := os.ReadFile(payroll); string(b) != string(sample) {
		t.Errorf("demo wrote %s, which is not samples/payroll.csv", demoManifest)
	} else {
		os.Remove(demoManifest)
	}
	hits, files, size := scan.scanDir(t, r.out)
	vals, valueHits := scan.sqliteValues(t, r.ledger)
	demoVals, demoHits := scan.sqliteValues(t, filepath.Join(r.out, "demo", "payouts.db"))
	for v := range demoVals {
		vals[v] = true
	}
	t.Logf("card scan: %d files (%d bytes) in out/, the ledger files after each of %d commands, %d secrets",
		files, size, r.seq, len(scan.secrets))
	judge(t, "card scan", append(append(append(rawHits, hits...), valueHits...), demoHits...), vals)
}

// TestPANScanner proves the scanner finds what it must and excuses only
// what it can explain.
func TestPANScanner(t *testing.T) {
	dir := t.TempDir()
	manifest := filepath.Join(dir, "m.csv")
	if err := os.WriteFile(manifest, []byte("reference,card_number\nA,4111111111111111\nB,5500 0000 0000 0004\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s := newPANScanner(t, manifest)
	s.known = []string{"3f9c2a7d41e0b6aa"}
	tests := []struct {
		name, text string
		manifest   bool // a manifest number must be found
		luhn       bool // an unexplained Luhn-valid run must be found
	}{
		{"plain", `card=4111111111111111 ok`, true, false},
		{"grouped with spaces", `card 4111 1111 1111 1111.`, true, false},
		{"grouped with dashes", `"4111-1111-1111-1111"`, true, false},
		{"manifest card written differently", `x55000000-00000004x`, true, false},
		{"glued to a word", `pan4111111111111111end`, true, false},
		{"inside a longer number", `id 9941111111111111111 `, true, false},
		{"inside a hex identifier", `sha=ab4111111111111111cd`, true, false},
		{"other card", `4012888888881881`, false, true},
		{"other card after a count", `line 12 4012 8888 8888 1881`, false, true},
		{"other card glued to letters", `cardx4012888888881881y`, false, true},
		{"other card in a short hex token", `ab4012888888881881cd`, false, true},
		{"masked", `411111******1111`, false, false},
		{"twelve digits", `424242424242`, false, false},
		{"timestamp", `2026-11-24T20:57:11.368933891Z`, false, false},
		{"sha256 coincidence", `d19f162275b17444a8366b1e4d75138a63832079116638cdd9355844b3a86d8b`, false, false},
		{"uuid coincidence", `1ab9a066-9678-8344-8880-905438f17b08`, false, false},
		{"batch id", `batch 4012888888881881 `, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var manifest, luhn bool
			for _, h := range s.scan("x", []byte(tt.text)) {
				manifest = manifest || h.Manifest
				luhn = luhn || (!h.Manifest && h.Why == "")
			}
			if manifest != tt.manifest || luhn != tt.luhn {
				t.Errorf("scan %q: got manifest hit %v, unexplained Luhn hit %v; want %v, %v", tt.text, manifest, luhn, tt.manifest, tt.luhn)
			}
		})
	}

	// SQLite adjacency: excused only when stored values cover the run.
	vals := newValueIndex(map[string]bool{"TRT-00138": true, "2026-11-24T20:57:11.368933891Z": true})
	b := []byte("succeededTRT-001382026-11-24T20:57:11.368933891Z")
	from := strings.Index(string(b), "00138")
	if why := excuseAdjacent(b, from, from+len("001382026-11-24"), vals); why == "" {
		t.Error("adjacent reference and timestamp: got no excuse, want one")
	}
	b = []byte("succeededTRT-001394012888888881881")
	from = strings.Index(string(b), "00139")
	if why := excuseAdjacent(b, from, len(b), vals); why != "" {
		t.Errorf("a card after a reference that is not stored: got excuse %q, want none", why)
	}
}
