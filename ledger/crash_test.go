package ledger_test

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/payouts/payouts/ledger"
)

var crashKills = flag.Int("ledger.crash.kills", 10, "how many times TestCrashRecovery SIGKILLs its writer")

const (
	crashEnv     = "LEDGER_CRASH_CHILD" // the ledger path; set only in the child
	crashRound   = "LEDGER_CRASH_ROUND"
	crashWorkers = 8
)

// crashCycle is the loop each child worker drives its rows through; it
// touches attempts, sessions, failures, reruns and the risk key.
var crashCycle = map[ledger.State]ledger.State{
	ledger.StatePlanned:         ledger.StateCreating,
	ledger.StateCreating:        ledger.StateCreated,
	ledger.StateCreated:         ledger.StateStarting,
	ledger.StateStarting:        ledger.StateAwaitingConfirm,
	ledger.StateAwaitingConfirm: ledger.StateConfirming,
	ledger.StateConfirming:      ledger.StateConfirmed,
	ledger.StateConfirmed:       ledger.StateFailed,
	ledger.StateFailed:          ledger.StatePlanned,
}

// TestCrashChild is the child of TestCrashRecovery: it commits changes in a
// loop from several goroutines and prints each one's token only after
// Apply (or AddEvent, RecordWebhook) returned, until it is killed.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("only run as the child of TestCrashRecovery")
	}
	round := os.Getenv(crashRound)
	ctx := context.Background()
	db, err := ledger.Open(ctx, path)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(3)
	}
	var out sync.Mutex
	report := func(token string) {
		out.Lock()
		defer out.Unlock()
		os.Stdout.WriteString(token + "\n") // one write: a line is whole or absent
	}
	var wg sync.WaitGroup
	for w := range 2 * crashWorkers {
		wg.Go(func() {
			batch := "crashA"
			if w >= crashWorkers {
				batch = "crashB" // same references as crashA: contends for risk keys
			}
			r, err := db.RowByReference(ctx, batch, fmt.Sprintf("R%d", w%crashWorkers))
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(3)
			}
			for seq := 0; ; seq++ {
				token := fmt.Sprintf("r%s-w%d-%d", round, w, seq)
				switch seq % 16 {
				case 7:
					if err := db.AddEvent(ctx, ledger.Event{BatchID: batch, RowID: r.ID, Reason: "note", Detail: token}); err != nil {
						fmt.Fprintln(os.Stderr, err)
						os.Exit(3)
					}
					report(token)
					continue
				case 11:
					if _, _, err := db.RecordWebhook(ctx, ledger.Webhook{BodySHA256: token, Body: []byte(token)}); err != nil {
						fmt.Fprintln(os.Stderr, err)
						os.Exit(3)
					}
					report(token)
					continue
				}
				c := step(r, crashCycle[r.State])
				c.Detail = token
				if c.To == ledger.StateCreated {
					c.SessionID = fmt.Sprintf("ps_%s_%d_%d", batch, r.ID, r.Attempt)
				}
				if c.To == ledger.StateFailed {
					c.Failure = &ledger.Failure{Code: "declined", Description: token}
				}
				next, err := db.Apply(ctx, c)
				if errors.Is(err, ledger.ErrReferenceBusy) {
					time.Sleep(time.Millisecond) // back off: another worker holds the reference
					continue
				}
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				report(token)
				r = next
			}
		})
	}
	wg.Wait()
}

// TestCrashRecovery kills a writing child with SIGKILL at random moments.
// After each kill the ledger must pass integrity_check, hold every change
// the child reported as committed, and be consistent (no half-applied
// change). The next child resumes from what the ledger says.
func TestCrashRecovery(t *testing.T) {
	if os.Getenv(crashEnv) != "" {
		t.Skip("child")
	}
	forEachBackend(t, testCrashRecovery)
}

func testCrashRecovery(t *testing.T) {
	ctx := context.Background()
	path := newLocation(t)
	db, err := ledger.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	refs := make([]string, crashWorkers)
	for i := range refs {
		refs[i] = fmt.Sprintf("R%d", i)
	}
	newBatch(t, db, "crashA", refs...)
	newBatch(t, db, "crashB", refs...)
	db.Close()

	total := 0
	for round := range *crashKills {
		reported := runAndKill(t, path, round)
		total += len(reported)
		checkAfterCrash(t, path, reported)
		if t.Failed() {
			t.Fatalf("round %d failed", round)
		}
	}
	t.Logf("%d kills, %d reported changes all present", *crashKills, total)
}

// runAndKill starts a child, lets it commit a random number of changes, then
// SIGKILLs it at once and returns the tokens it reported.
func runAndKill(t *testing.T, path string, round int) []string {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"="+path, fmt.Sprintf("%s=%d", crashRound, round))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killAfter := 1 + rand.IntN(200)
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var reported []string
	timeout := time.After(60 * time.Second)
	killed := false
	for !killed {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("round %d: child exited before the kill: %v\n%s", round, cmd.Wait(), stderr.String())
			}
			if strings.HasPrefix(l, "r") {
				reported = append(reported, l)
			}
			if len(reported) >= killAfter {
				time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond) // land anywhere in the next group
				_ = cmd.Process.Signal(syscall.SIGKILL)
				killed = true
			}
		case <-timeout:
			_ = cmd.Process.Signal(syscall.SIGKILL)
			t.Fatalf("round %d: child stalled after %d changes\n%s", round, len(reported), stderr.String())
		}
	}
	// Whole lines written before the kill count too; a torn last line
	// cannot happen (one write per line) and would be ignored by Scanner's
	// token check below anyway.
	for l := range lines {
		if strings.HasPrefix(l, "r") && strings.Count(l, "-") == 2 {
			reported = append(reported, l)
		}
	}
	_ = cmd.Wait()
	return reported
}

func checkAfterCrash(t *testing.T, path string, reported []string) {
	t.Helper()
	ctx := context.Background()
	raw := rawOpen(t, path)
	// SQLite's file is written by the killed process itself: check it. A
	// PostgreSQL server outlives its killed client, and checks foreign
	// keys on every statement.
	if !ledger.IsPostgresURL(path) {
		var integrity string
		if err := raw.QueryRow("PRAGMA integrity_check").Scan(&integrity); err != nil || integrity != "ok" {
			t.Errorf("integrity_check: got %q, %v; want ok", integrity, err)
		}
		var fk int
		if err := raw.QueryRow("SELECT count(*) FROM pragma_foreign_key_check").Scan(&fk); err != nil || fk != 0 {
			t.Errorf("foreign_key_check: got %d violations, %v", fk, err)
		}
	}
	// Every event token and webhook, once.
	seen := map[string]int{}
	rs, err := raw.Query(`SELECT detail FROM events UNION ALL SELECT body_sha256 FROM webhooks`)
	if err != nil {
		t.Fatal(err)
	}
	for rs.Next() {
		var d string
		_ = rs.Scan(&d)
		token, _, _ := strings.Cut(d, ";") // Apply appends "; attempt N opened"
		seen[token]++
	}
	rs.Close()
	raw.Close()
	for _, tok := range reported {
		switch seen[tok] {
		case 1:
		case 0:
			t.Errorf("change %s was reported committed but is not in the ledger", tok)
		default:
			t.Errorf("change %s is in the ledger %d times", tok, seen[tok])
		}
	}

	db, err := ledger.Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer db.Close()
	for _, batch := range []string{"crashA", "crashB"} {
		for r, err := range db.Rows(ctx, batch) {
			if err != nil {
				t.Fatal(err)
			}
			checkRowConsistent(t, db, r)
		}
	}
}

// checkRowConsistent: the row, its attempts and its events tell one story.
func checkRowConsistent(t *testing.T, db *ledger.DB, r ledger.Row) {
	t.Helper()
	ctx := context.Background()
	evs, err := db.Events(ctx, r.BatchID, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	last := ledger.StatePlanned
	transitions := 0
	for _, e := range evs {
		if e.To != "" && e.Reason != "note" {
			if e.Reason != "inserted" && e.From != last {
				t.Errorf("row %d: event %d goes %s → %s after %s", r.ID, e.ID, e.From, e.To, last)
			}
			last = e.To
			transitions++
		}
	}
	if last != r.State {
		t.Errorf("row %d: state %s but last event says %s", r.ID, r.State, last)
	}
	atts, _ := db.Attempts(ctx, r.ID)
	if len(atts) != r.Attempt {
		t.Errorf("row %d: live attempt %d but %d attempts", r.ID, r.Attempt, len(atts))
	}
	inFlight := r.State != ledger.StatePlanned && r.State != ledger.StateFailed
	if (r.RiskKey != "") != inFlight {
		t.Errorf("row %d in %s: risk key %q", r.ID, r.State, r.RiskKey)
	}
}
