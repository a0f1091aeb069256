package main_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

var (
	tortureFull  = flag.Bool("torture.full", false, "run the full crash torture (2,000 rows, at least 100 kills)")
	tortureRows  = flag.Int("torture.rows", 0, "rows in the crash torture's manifest (default 200, 2,000 with -torture.full)")
	tortureKills = flag.Int("torture.kills", 0, "SIGKILLs before the torture lets a run finish (default 10, 100 with -torture.full)")
	tortureSeed  = flag.Uint64("torture.seed", 0, "seed of the manifest, the faults and the kill times (default: from the clock, printed)")
)

// tortureFaults are the sandbox's faults during the torture: moderate, so
// that the batch still finishes, and every kind at once — including error
// answers that are not proof (internal_error, provider_timeout,
// provider_issuer_unavailable at 400, 500 and 503, before and after
// applying), answers held back, webhooks replayed long after and forged,
// and other merchants' signed webhooks copying our rows' metadata.
func tortureFaults() sandbox.Faults {
	return sandbox.Faults{
		Latency: 15 * time.Millisecond, LatencyJitter: 30 * time.Millisecond,
		FailBeforeApply: 0.03, FailAfterApply: 0.03, DropAfterApply: 0.03,
		FailAnswers:       sandbox.AmbiguousAnswers(),
		DuplicateWebhooks: 0.1, ReorderWebhooks: 0.1, DropWebhooks: 0.1,
		ReplayWebhooks: 0.05, ForgedWebhooks: 0.02, ForeignWebhooks: 0.03,
		MismatchAmount: 0.02,
	}
}

// TestCrashTorture runs a manifest through the real binary against a
// faulty sandbox, killing the runner with SIGKILL at random moments and
// starting it again with the same command until the batch is done, then
// judges the result from the sandbox's journal of money actually moved.
//
// The reduced version (200 rows, at least 10 kills) runs in the normal
// suite; -torture.full runs 2,000 rows with at least 100 kills:
//
//	go test ./cmd/payouts -run TestCrashTorture -torture.full -v -timeout 30m
func TestCrashTorture(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("crash torture skipped in -short mode")
	}
	rows, kills := 200, 10
	if *tortureFull {
		rows, kills = 2000, 100
	}
	if *tortureRows > 0 {
		rows = *tortureRows
	}
	if *tortureKills > 0 {
		kills = *tortureKills
	}
	seed := *tortureSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("torture: %d rows, at least %d kills, seed %d (rerun with -torture.seed %d)", rows, kills, seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x70c7))

	r := newRig(t, sandbox.Config{
		Faults: tortureFaults(), Seed: int64(seed),
		ReadyDelay: 20 * time.Millisecond, FinishDelay: 20 * time.Millisecond, SlowDelay: 700 * time.Millisecond,
		WebhookRetryBase: 100 * time.Millisecond, WebhookRetryMax: time.Second, WebhookGiveUp: 20 * time.Second,
	})
	mrows := tortureManifest(rng, rows)
	mpath := r.writeManifest("torture.csv", mrows)
	want, sum := expectations(t, mpath, manifest.Options{})
	batchID := batch.BatchIDFor(sum.SHA256)
	// A few payouts end badly after confirm, by rule rather than by card.
	for i := 5; i < rows; i += 97 {
		r.sb.Inject(sandbox.Rule{Method: pike.MethodConfirm, Reference: mrows[i].Ref, Fault: sandbox.FaultSessionError})
	}
	for i := 11; i < rows; i += 89 {
		r.sb.Inject(sandbox.Rule{Method: pike.MethodConfirm, Reference: mrows[i].Ref, Fault: sandbox.FaultDeclineAfterConfirm})
	}
	scan := newPANScanner(t, mpath)
	scan.known = []string{batchID}

	start := time.Now()
	var (
		runs, killed, early int
		noBatch             int // kills before the batch and its rows were in the ledger
		codes               = map[int]int{}
		rawHits             []panHit
		state               []ledger.Row
	)
	deadline := time.Now().Add(max(3*time.Minute, time.Duration(rows)*150*time.Millisecond))
	for {
		if time.Now().After(deadline) {
			t.Fatalf("the batch did not settle in time: %d runs, %d kills, states %v", runs, killed, countStates(state))
		}
		runs++
		format := []string{"json", "text"}[runs%2]
		p := r.command(r.runArgs(mpath, "--poll-after", "300ms", "--wait", "30s", "--concurrency", "8",
			"--request-timeout", "5s", "--log-level", "debug", "--log-format", format,
			"--report", filepath.Join(r.out, fmt.Sprintf("report-%03d.csv", runs)))...)
		r.waitPortFree()
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan int, 1)
		go func() { exited <- p.wait(t) }()
		var code int
		if killed < kills {
			// Some kills right after start: validation, row insertion,
			// lease takeover, the first intents.
			delay := time.Duration(150+rng.IntN(1200)) * time.Millisecond
			if rng.IntN(10) < 3 {
				delay = time.Duration(rng.IntN(150)) * time.Millisecond
			}
			if done := settledCount(state); float64(done)/float64(rows) > float64(killed)/float64(kills)+0.1 {
				// Ahead of the kills: shorter runs, so that the batch does
				// not settle before every kill was made.
				delay = time.Duration(rng.IntN(250)) * time.Millisecond
			}
			if runs <= 2 { // the batch is being created: validation, row insertion
				delay = time.Duration(rng.IntN(40)) * time.Millisecond
			}
			select {
			case code = <-exited:
			case <-time.After(delay):
				_ = p.cmd.Process.Signal(syscall.SIGKILL)
				code = <-exited
				if code == -int(syscall.SIGKILL) {
					killed++
					if delay < 150*time.Millisecond {
						early++
					}
				}
			}
		} else {
			code = <-exited
		}
		codes[code]++
		_, stderr := p.output()
		if strings.Contains(stderr, "DATA RACE") {
			t.Fatalf("run %d: data race in the runner:\n%s", runs, tail(stderr, 4000))
		}
		if code >= 0 && code != 0 && code != 1 {
			t.Fatalf("run %d exited %d, want 0 or 1 (or killed):\n%s", runs, code, tail(stderr, 4000))
		}
		// What the runner left on disk, before this test opens the ledger.
		rawHits = append(rawHits, scanLedgerFiles(t, scan, r.ledger, fmt.Sprintf("after-run-%03d/", runs))...)
		state = ledgerRows(t, r.ledger, batchID)
		if code == -int(syscall.SIGKILL) && len(state) == 0 {
			noBatch++
		}
		if settled(state, rows) {
			break
		}
	}
	elapsed := time.Since(start)
	if killed < kills {
		t.Errorf("the batch settled after %d kills, want at least %d: the torture proves less than it should (slow the sandbox down)", killed, kills)
	}

	totals := checkJournal(t, r.sb, want, state)
	code, report, stderr := r.exec("report", "--ledger", r.ledger, "--batch", batchID, "--format", "json")
	if code != 0 {
		t.Fatalf("payouts report exited %d: %s", code, stderr)
	}
	checkReportTotals(t, []byte(report), totals)
	r.exec("report", "--ledger", r.ledger, "--batch", batchID)
	r.exec("report", "--ledger", r.ledger, "--batch", batchID, "--format", "excel-csv", "--output", filepath.Join(r.out, "report-excel.csv"))
	r.exec("status", "--ledger", r.ledger, "--batch", batchID)

	st := r.sb.Stats()
	t.Logf("torture: %d rows settled in %s over %d runs: %d SIGKILLs (%d within 150 ms of start, %d before the batch was in the ledger), exit codes %v",
		rows, elapsed.Round(time.Millisecond), runs, killed, early, noBatch, codes)
	t.Logf("torture: ledger %v", countStates(state))
	t.Logf("torture: journal %d payouts, totals %v (minor units)", len(r.sb.Journal()), totals)
	t.Logf("torture: sandbox requests %v; faults %v; idempotency repeats %d; sessions %d, payouts %d",
		st.Requests, st.Faults, st.IdempotencyRepeats, st.Sessions, st.Payouts)
	t.Logf("torture: webhooks queued %d, sent %d, delivered %d, failed attempts %d, dropped %d, given up %d",
		st.WebhooksQueued, st.WebhooksSent, st.WebhooksDelivered, st.WebhooksFailed, st.WebhooksDropped, st.WebhooksGivenUp)

	// Card numbers: every byte the runs left in the ledger files (above,
	// run by run), then everything in out/ now: logs, reports, the ledger.
	hits, files, size := scan.scanDir(t, r.out)
	vals, valueHits := scan.sqliteValues(t, r.ledger)
	t.Logf("card scan: %d files (%d bytes) in out/, plus the ledger files after each of %d runs, %d secrets",
		files, size, runs, len(scan.secrets))
	judge(t, "card scan", append(append(rawHits, hits...), valueHits...), vals)
}

// tortureManifest writes n rows: mostly the sandbox's success cards and
// other Luhn-valid cards, with every test card that ends badly sprinkled
// in, several currencies, and amounts unique per row.
func tortureManifest(rng *rand.Rand, n int) []manifestRow {
	names := []string{"Иванов Иван", "Петрова Анна", "Сидоров Пётр", "Anna Müller", "John Smith", "Jean Dubois", "Sofia Rossi", "O'Connor Liam"}
	descs := []string{"Зарплата за ноябрь 2026", "Аванс", "Contractor invoice 2026-11", "Premium Q4", "", "Компенсация расходов"}
	special := []struct {
		every int
		card  string
	}{
		{29, sandbox.CardNotExist}, {31, sandbox.CardExpired}, {23, sandbox.CardNoWebhooks}, {37, sandbox.CardSlow},
		{41, sandbox.CardMismatch}, {43, sandbox.CardExceedsLimit}, {47, sandbox.CardSessionError},
	}
	success := []string{sandbox.CardVisa, sandbox.CardMastercard, sandbox.CardMir}
	rows := make([]manifestRow, n)
	for i := range rows {
		card := success[i%3]
		if rng.IntN(4) == 0 {
			card = randomCard(rng)
		}
		for _, s := range special {
			if i%s.every == s.every-1 {
				card = s.card
			}
		}
		cur, minor := "RUB", int64(100000+137*i)
		switch {
		case i%25 == 11:
			cur, minor = "JPY", int64(10000+i)
		case i%50 == 23:
			cur, minor = "KWD", int64(5000+i)
		case i%10 == 3:
			cur, minor = "EUR", int64(5000+i)
		case i%10 == 7:
			cur, minor = "USD", int64(7000+i)
		}
		email := ""
		if i%3 == 0 {
			email = "employee" + strconv.Itoa(i+1) + "@example.com"
		}
		rows[i] = manifestRow{
			Ref: fmt.Sprintf("TRT-%05d", i+1), Amount: manifest.FormatAmount(minor, cur), Currency: cur, Card: card,
			Name: names[rng.IntN(len(names))], Email: email, Description: descs[rng.IntN(len(descs))],
		}
	}
	return rows
}

// randomCard returns a Luhn-valid 16-digit Visa or Mastercard number that
// is none of the sandbox's test cards (they all start 4000, 4242, 5555 or 2200).
func randomCard(rng *rand.Rand) string {
	for {
		b := []byte{"45"[rng.IntN(2)]}
		for len(b) < 15 {
			b = append(b, byte('0'+rng.IntN(10)))
		}
		for c := byte('0'); c <= '9'; c++ {
			if luhn(string(append(b, c))) {
				b = append(b, c)
				break
			}
		}
		s := string(b)
		if !strings.HasPrefix(s, "4000") && !strings.HasPrefix(s, "4242") && !strings.HasPrefix(s, "5555") {
			return s
		}
	}
}

// scanLedgerFiles scans the ledger and its -wal and -shm as they are now.
func scanLedgerFiles(t *testing.T, s *panScanner, path, prefix string) []panHit {
	t.Helper()
	var hits []panHit
	for _, name := range []string{path, path + "-wal", path + "-shm", path + "-journal"} {
		b, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		hits = append(hits, s.scan(prefix+filepath.Base(name), b)...)
	}
	return hits
}

// settledCount is the number of rows final or in review.
func settledCount(rows []ledger.Row) int {
	n := 0
	for _, r := range rows {
		if r.State.Final() || r.State == ledger.StateReview {
			n++
		}
	}
	return n
}

func countStates(rows []ledger.Row) map[ledger.State]int {
	c := map[ledger.State]int{}
	for _, r := range rows {
		c[r.State]++
	}
	return c
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
