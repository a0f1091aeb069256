package main_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/pike/sandbox"
)

// requestsTotal is every API call the sandbox has seen.
func requestsTotal(sb *sandbox.Sandbox) int64 {
	var n int64
	for _, c := range sb.Stats().Requests {
		n += c
	}
	return n
}

// TestTortureReadOnlyLedger runs the binary on a ledger it may read but
// not write (a batch left in flight by a killed run): it must stop with
// exit 3 before sending anything to Pike. As root, the run is made as the
// user nobody (root ignores file permissions); otherwise the files are
// made read-only. The mid-run version is batch's TestFaultLedgerReadOnly.
func TestTortureReadOnlyLedger(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("binary test skipped in -short mode")
	}
	r := newRig(t, sandbox.Config{Faults: sandbox.Faults{Latency: 30 * time.Millisecond}})
	var rows []manifestRow
	for i := range 30 {
		rows = append(rows, manifestRow{Ref: "RO-" + strconv.Itoa(i+1), Amount: strconv.Itoa(100+i) + ".00", Currency: "RUB", Card: sandbox.CardMir, Name: "Иванов Иван"})
	}
	mpath := r.writeManifest("ro.csv", rows)
	want, sum := expectations(t, mpath, manifest.Options{})
	batchID := batch.BatchIDFor(sum.SHA256)
	args := r.runArgs(mpath, "--poll-after", "300ms", "--wait", "30s")

	// A run killed in the middle leaves rows in flight.
	p := r.command(args...)
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "20 requests at Pike", func() bool { return requestsTotal(r.sb) >= 20 })
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	p.wait(t)
	r.waitPikeIdle() // what the killed run had sent is served and counted
	if settled(ledgerRows(t, r.ledger, batchID), len(rows)) {
		t.Fatal("the batch settled before the kill: the test proves nothing")
	}

	// Read-only for the next run.
	ledgerFiles := []string{r.ledger, r.ledger + "-wal", r.ledger + "-shm"}
	p = r.command(append(args, "--log-level", "debug")...)
	if os.Geteuid() == 0 {
		root := filepath.Dir(r.in)
		for _, d := range []string{filepath.Dir(root), root, r.in, r.out} {
			if err := os.Chmod(d, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		for _, f := range append(ledgerFiles, r.priv, mpath, r.pub) {
			os.Chmod(f, 0o644) // readable by nobody, writable by root only
		}
		p.cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	} else {
		for _, f := range ledgerFiles {
			os.Chmod(f, 0o444)
		}
		os.Chmod(r.out, 0o555)
		t.Cleanup(func() { os.Chmod(r.out, 0o755) })
	}
	before, paid := requestsTotal(r.sb), len(r.sb.Journal())
	r.waitPortFree()
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	code := p.wait(t)
	_, stderr := p.output()
	if code != 3 {
		t.Errorf("run on a read-only ledger: exit %d, want 3\n%s", code, tail(stderr, 2000))
	}
	if !strings.Contains(stderr, "ledger") {
		t.Errorf("run on a read-only ledger: stderr does not name the ledger:\n%s", tail(stderr, 2000))
	}
	if n := requestsTotal(r.sb); n != before || len(r.sb.Journal()) != paid {
		t.Errorf("run on a read-only ledger sent %d requests to Pike, want none", n-before)
	}
	t.Logf("read-only run: exit %d: %s", code, errorLine(stderr))

	// Writable again (and as root): the same command finishes the batch.
	os.Chmod(r.out, 0o755)
	for _, f := range ledgerFiles {
		os.Chmod(f, 0o600)
	}
	if code, _, stderr := r.exec(args...); code != 0 {
		t.Fatalf("resume: exit %d\n%s", code, tail(stderr, 2000))
	}
	checkJournal(t, r.sb, want, ledgerRows(t, r.ledger, batchID))
}

// TestTortureSecondRunner starts a second `payouts run` of a batch while
// the first is paying it: the second exits 3 naming the first and sends
// Pike nothing that moves money (a wallet/balance read is allowed); the
// first finishes and every row is paid once.
func TestTortureSecondRunner(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("binary test skipped in -short mode")
	}
	r := newRig(t, sandbox.Config{Faults: sandbox.Faults{Latency: 30 * time.Millisecond}})
	var rows []manifestRow
	for i := range 30 {
		rows = append(rows, manifestRow{Ref: "SR-" + strconv.Itoa(i+1), Amount: strconv.Itoa(100+i) + ".00", Currency: "RUB", Card: sandbox.CardVisa, Name: "John Smith"})
	}
	mpath := r.writeManifest("sr.csv", rows)
	want, sum := expectations(t, mpath, manifest.Options{})
	batchID := batch.BatchIDFor(sum.SHA256)

	first := r.command(r.runArgs(mpath, "--poll-after", "300ms", "--wait", "30s")...)
	if err := first.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "10 requests at Pike", func() bool { return requestsTotal(r.sb) >= 10 })
	// Its own webhook port, debug logs: every request it sent would show.
	args := r.runArgs(mpath, "--poll-after", "300ms", "--wait", "30s", "--log-level", "debug")
	for i, a := range args {
		if a == "--listen" {
			args[i+1] = freeAddr(t)
		}
	}
	code, _, stderr := r.exec(args...)
	if code != 3 {
		t.Errorf("second runner: exit %d, want 3\n%s", code, tail(stderr, 2000))
	}
	if !strings.Contains(stderr, "pid "+strconv.Itoa(first.cmd.Process.Pid)) {
		t.Errorf("second runner: stderr does not name the first runner (pid %d):\n%s", first.cmd.Process.Pid, tail(stderr, 2000))
	}
	for _, m := range []string{"session/create", "session/start", "session/init", "session/confirm", "session/cancel"} {
		if strings.Contains(stderr, "pike_method="+m) {
			t.Errorf("second runner sent %s to Pike:\n%s", m, tail(stderr, 2000))
		}
	}
	t.Logf("second runner: exit %d: %s", code, errorLine(stderr))
	if code := first.wait(t); code != 0 {
		_, stderr := first.output()
		t.Fatalf("first runner: exit %d\n%s", code, tail(stderr, 2000))
	}
	checkJournal(t, r.sb, want, ledgerRows(t, r.ledger, batchID))
}

// errorLine is the "payouts: ..." line a failed command ends with.
func errorLine(stderr string) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.HasPrefix(lines[i], "payouts: ") {
			return lines[i]
		}
	}
	return tail(stderr, 300)
}
