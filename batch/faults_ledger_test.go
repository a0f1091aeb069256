package batch_test

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

// Ledger faults: the ledger stops accepting writes in the middle of a run.
// The run must stop with an error (exit 3 in the CLI), and nothing may
// have been sent to Pike whose intent the ledger does not hold: every
// session that has a payout is known to the ledger, and every payout that
// was confirmed belongs to a row whose confirm intent was recorded. After
// the fault is gone the same batch resumes and every row is paid once.

// faultLedgerRows is the manifest of the ledger fault tests: enough rows
// in flight at once that the fault lands in the middle of the batch.
func faultLedgerRows() []row {
	var rows []row
	for i := range 24 {
		rows = append(rows, row{ref: fmt.Sprintf("LF-%02d", i+1), amount: strconv.Itoa(100 + i), card: sandbox.CardMir})
	}
	return rows
}

// expectNothingUnrecorded checks, against a ledger reopened after the
// fault, that Pike holds nothing the ledger did not record first.
// waitPikeAtRest waits until no payout of rows is in progress at Pike:
// every started payout waits for a confirm and every confirmed one has
// finished, so Pike's journal holds all the money the stopped run moved.
func waitPikeAtRest(t *testing.T, sb *sandbox.Sandbox, rows []row) {
	t.Helper()
	poll.Until(t, "every payout confirmed before the fault to finish at Pike", func() bool {
		for _, r := range rows {
			for _, s := range sb.SessionsFor(r.ref) {
				if p := s.Payout(); p != nil && p.Status == pike.PayoutInProgress {
					return false
				}
			}
		}
		return true
	})
}

func expectNothingUnrecorded(t *testing.T, db *ledger.DB, sb *sandbox.Sandbox, rows []row) (started, confirmed int) {
	t.Helper()
	ctx := context.Background()
	paid := map[string]string{} // session → reference
	for _, p := range sb.Journal() {
		paid[p.SessionID] = p.Reference
	}
	for _, r := range rows {
		for _, s := range sb.SessionsFor(r.ref) {
			if len(s.Payouts) == 0 {
				continue // created, never started: harmless
			}
			started++
			att, row, err := db.AttemptBySession(ctx, s.ID)
			if err != nil {
				t.Errorf("%s: Pike started a payout in session %s that the ledger does not know (%v): start was sent before its intent was recorded", r.ref, s.ID, err)
				continue
			}
			if row.Reference != r.ref || att.N != row.Attempt {
				t.Errorf("%s: session %s is attempt %d of %s in the ledger, want the live attempt of %s", r.ref, s.ID, att.N, row.Reference, r.ref)
			}
			if _, ok := paid[s.ID]; !ok {
				continue
			}
			confirmed++
			switch row.State {
			case ledger.StateConfirming, ledger.StateConfirmed, ledger.StateSucceeded, ledger.StateUnknown:
			default:
				t.Errorf("%s: Pike paid session %s, the ledger has the row %s: confirm was sent before its intent was recorded", r.ref, s.ID, row.State)
			}
		}
	}
	return started, confirmed
}

// faultBlackHole sends the sandbox's webhooks to a receiver that answers
// 200 and stores nothing, so that only session/status informs the runner
// and no delivery is left retrying.
func faultBlackHole(h *harness) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	h.t.Cleanup(srv.Close)
	h.sb.SetWebhookURL(srv.URL)
}

// chattr sets or clears the immutable attribute of paths.
func chattr(flag string, paths ...string) error {
	out, err := exec.Command("chattr", append([]string{flag}, paths...)...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("chattr %s: %v: %s", flag, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// TestFaultLedgerReadOnly makes the ledger's files and directory immutable
// (chattr +i) while a run is in the middle of its batch: from then on
// every write to the open database file, its WAL or the directory fails with
// EPERM, which is what a file system remounted read-only does to a
// running process. chmod cannot do this: permissions are checked when a
// file is opened, not on writes to an open descriptor, and root ignores
// them. Needs CAP_LINUX_IMMUTABLE and a file system with the attribute
// (ext4, xfs, btrfs); skipped otherwise.
func TestFaultLedgerReadOnly(t *testing.T) {
	h := newHarness(t, sandbox.Config{Faults: sandbox.Faults{Latency: 10 * time.Millisecond, LatencyJitter: 10 * time.Millisecond}})
	probe := filepath.Join(h.dir, "probe")
	if err := os.WriteFile(probe, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := chattr("+i", probe); err != nil {
		t.Skipf("cannot make files immutable here (%v): the read-only ledger fault needs root (CAP_LINUX_IMMUTABLE) on ext4/xfs/btrfs", err)
	}
	chattr("-i", probe)
	dbPath := h.db.Path()
	// Not the -shm: SQLite maps it into memory, and a write fault on a
	// mapped immutable file kills the process with SIGBUS; it holds no
	// data that outlives the connections anyway.
	frozen := []string{dbPath, dbPath + "-wal", h.dir}
	t.Cleanup(func() { chattr("-i", frozen...) })

	rows := faultLedgerRows()
	path := h.manifest("m.csv", rows...)
	mopts := manifest.Options{AllowDuplicates: true}
	sum, err := manifest.ReadFile(path, mopts, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg := h.config()
	cfg.StopGrace = 200 * time.Millisecond
	done := make(chan error, 1)
	var res batch.Result
	go func() {
		var err error
		res, err = batch.Run(context.Background(), h.db, h.client, batch.RunOptions{
			Manifest: path, ManifestOptions: mopts, Summary: sum, Config: cfg, Wait: 20 * time.Second,
			Intake: h.intake, LeaseTTL: time.Second,
		})
		done <- err
	}()
	poll.Until(t, "two payouts made at Pike", func() bool { return len(h.sb.Journal()) >= 2 })
	if err := chattr("+i", frozen...); err != nil {
		t.Fatal(err)
	}
	var runErr error
	select {
	case runErr = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("the run did not stop after the ledger became read-only")
	}
	if runErr == nil {
		t.Fatalf("run on a read-only ledger: got no error (counts %v), want an infrastructure error", res.Counts)
	}
	t.Logf("run stopped with: %v", runErr)
	// A webhook that cannot be stored is not acknowledged: Pike sends it again.
	body := []byte(`{"type":"payment_finished","session":{"id":"ps_999","status":"accepted","payments":[{"id":"po_999","status":"succeeded"}]}}`)
	sig, err := pikeKey.Sign(body)
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodPost, h.hooks.URL+"/webhooks/pike", bytes.NewReader(body))
	req.Header.Set(pike.HeaderSign, sig)
	req.Header.Set("Content-Type", "application/json")
	hc := &http.Client{Timeout: 5 * time.Second}
	t0 := time.Now()
	if resp, err := hc.Do(req); err != nil {
		t.Errorf("webhook to a read-only ledger: %v after %v", err, time.Since(t0))
	} else {
		resp.Body.Close()
		t.Logf("webhook to a read-only ledger: HTTP %d after %v", resp.StatusCode, time.Since(t0))
		if resp.StatusCode == http.StatusOK {
			t.Error("webhook to a read-only ledger: got HTTP 200, want an error status (it was not stored)")
		}
	}
	faultBlackHole(h) // the old DB handle must not take webhooks any more
	waitPikeAtRest(t, h.sb, rows)

	if err := chattr("-i", frozen...); err != nil {
		t.Fatal(err)
	}
	db, err := ledger.Open(context.Background(), dbPath)
	if err != nil {
		t.Fatalf("reopen ledger: %v", err)
	}
	defer db.Close()
	started, confirmed := expectNothingUnrecorded(t, db, h.sb, rows)
	t.Logf("at the fault: %d payouts started, %d paid at Pike, all recorded first", started, confirmed)
	if started == 0 || started == len(rows) && confirmed == len(rows) {
		t.Errorf("the fault landed outside the batch (%d started, %d paid of %d): the test proves nothing", started, confirmed, len(rows))
	}

	// Writable again: the same batch resumes once the dead run's lease has
	// expired (its last heartbeat older than LeaseTTL); until then Run
	// refuses before it touches a row.
	poll.Until(t, "the dead run's lease to expire", func() bool {
		res, err = batch.Run(context.Background(), db, h.client, batch.RunOptions{
			Manifest: path, ManifestOptions: mopts, Summary: sum, Config: cfg, Wait: 20 * time.Second, LeaseTTL: time.Second,
		})
		return !errors.Is(err, ledger.ErrLeaseHeld)
	})
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if got := res.Counts[ledger.StateSucceeded]; got != len(rows) {
		t.Errorf("after resume got %v, want %d succeeded", res.Counts, len(rows))
	}
	var refs []string
	for _, r := range rows {
		refs = append(refs, r.ref)
	}
	h.expectPaid(refs...)
}

// Environment of the disk-full helper process.
const (
	envDiskFull     = "PAYOUTS_FAULTS_DISKFULL"
	envDiskFullPike = "PAYOUTS_FAULTS_PIKE_URL"
	envDiskFullKey  = "PAYOUTS_FAULTS_KEY"
	envDiskFullMan  = "PAYOUTS_FAULTS_MANIFEST"
	envDiskFullRoom = "PAYOUTS_FAULTS_HEADROOM"
	diskFullResult  = "DISKFULL-RESULT "
)

// diskFullReport is what the helper process reports.
type diskFullReport struct {
	Limit  int64        `json:"limit"`
	Err    string       `json:"err"`
	Counts batch.Counts `json:"counts"`
}

// TestFaultLedgerDiskFull runs the batch in a helper process whose file
// size limit (RLIMIT_FSIZE, what `ulimit -f` sets) lets the ledger's WAL
// grow by only a little: the first commit beyond it fails with EFBIG, as
// on a full disk. The limit must apply to the runner's process only,
// hence the helper. A tmpfs of a few kilobytes would do the same but needs
// mount rights; SQLite's max_page_count would need a connection the ledger
// does not expose.
func TestFaultLedgerDiskFull(t *testing.T) {
	if os.Getenv(envDiskFull) != "" {
		t.Skip("inside the helper process")
	}
	h := newHarness(t, sandbox.Config{Faults: sandbox.Faults{Latency: 10 * time.Millisecond, LatencyJitter: 10 * time.Millisecond}})
	keyPEM, err := pike.EncodePrivateKeyPEM(partnerKey.Key())
	if err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(h.dir, "partner.pem")
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	mopts := manifest.Options{AllowDuplicates: true}
	// How far 1 MiB of WAL gets depends on how many changes the ledger
	// groups into each commit, which depends on the machine's speed: if the
	// fault misses the batch, another batch is tried with less or more room.
	var paid []string // references of batches the helper finished despite the limit
	room := 1 << 20
	for try := 1; ; try++ {
		if try > 5 {
			t.Fatal("the disk-full fault never landed in the middle of a batch")
		}
		var rows []row
		for _, r := range faultLedgerRows() {
			r.ref = fmt.Sprintf("T%d-%s", try, r.ref)
			rows = append(rows, r)
		}
		path := h.manifest(fmt.Sprintf("m%d.csv", try), rows...)
		sum, err := manifest.ReadFile(path, mopts, nil)
		if err != nil {
			t.Fatal(err)
		}
		// The batch exists before the helper starts: the limit is for the run.
		if _, _, err := batch.Prepare(context.Background(), h.db, path, mopts, sum, "", h.fp, batch.BatchOptions{}); err != nil {
			t.Fatal(err)
		}
		// Only the helper writes the ledger meanwhile: no webhooks to this
		// process's intake, the helper polls.
		faultBlackHole(h)
		// An empty WAL, so that the limit counts from zero and no automatic
		// checkpoint (at about 4 MB) restarts the WAL under the limit.
		walCheckpoint(t, h.db.Path())
		rep := diskFullHelper(t, h, path, keyPath, room)
		waitPikeAtRest(t, h.sb, rows)
		started, confirmed := expectNothingUnrecorded(t, h.db, h.sb, rows)
		if rep.Err == "" {
			t.Logf("try %d: the helper finished the batch within %d bytes (counts %v): less room", try, rep.Limit, rep.Counts)
			for _, r := range rows {
				paid = append(paid, r.ref)
			}
			room /= 2
			continue
		}
		t.Logf("try %d: helper run (file size limit %d bytes) stopped with: %s; counts %v", try, rep.Limit, rep.Err, rep.Counts)
		t.Logf("try %d: at the fault %d payouts started, %d paid at Pike, all recorded first", try, started, confirmed)
		if started == 0 {
			room = min(2*room, 3<<20)
			h.sb.SetWebhookURL(h.hooks.URL + "/webhooks/pike")
			if _, err := h.run(context.Background(), path, h.config()); err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				paid = append(paid, r.ref)
			}
			continue
		}

		// Room again: this process resumes the batch (the helper is dead,
		// its lease is taken over at once).
		h.sb.SetWebhookURL(h.hooks.URL + "/webhooks/pike")
		res := h.mustRun(path, h.config())
		if got := res.Counts[ledger.StateSucceeded]; got != len(rows) {
			t.Errorf("after resume got %v, want %d succeeded", res.Counts, len(rows))
		}
		for _, r := range rows {
			paid = append(paid, r.ref)
		}
		h.expectPaid(paid...)
		return
	}
}

// walCheckpoint moves the WAL into the database file and truncates it.
func walCheckpoint(t *testing.T, path string) {
	t.Helper()
	db, err := sql.Open("sqlite3", "file:"+path+"?_busy_timeout=5000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var busy, logFrames, done int
	if err := db.QueryRow(`PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &logFrames, &done); err != nil || busy != 0 {
		t.Fatalf("checkpoint: busy %d, err %v", busy, err)
	}
}

// diskFullHelper runs the batch of manifest path in the helper process
// with room bytes of file size left for the WAL.
func diskFullHelper(t *testing.T, h *harness, path, keyPath string, room int) diskFullReport {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestFaultLedgerDiskFullChild$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), envDiskFull+"="+h.db.Path(), envDiskFullPike+"="+h.pikeSrv.URL,
		envDiskFullKey+"="+keyPath, envDiskFullMan+"="+path, envDiskFullRoom+"="+strconv.Itoa(room))
	out, err := cmd.CombinedOutput()
	var rep diskFullReport
	for _, line := range strings.Split(string(out), "\n") {
		if s, ok := strings.CutPrefix(line, diskFullResult); ok {
			if jerr := json.Unmarshal([]byte(s), &rep); jerr != nil {
				t.Fatalf("helper result %q: %v", s, jerr)
			}
		}
	}
	if rep.Limit == 0 {
		t.Fatalf("helper process gave no result (err %v):\n%s", err, out)
	}
	return rep
}

// TestFaultLedgerDiskFullChild is the helper process of
// TestFaultLedgerDiskFull; it does nothing in a normal test run.
func TestFaultLedgerDiskFullChild(t *testing.T) {
	dbPath := os.Getenv(envDiskFull)
	if dbPath == "" {
		t.Skip("helper process of TestFaultLedgerDiskFull")
	}
	ctx := context.Background()
	key, err := pike.LoadPrivateKey(os.Getenv(envDiskFullKey))
	if err != nil {
		t.Fatal(err)
	}
	signer, err := pike.NewSigner(key)
	if err != nil {
		t.Fatal(err)
	}
	client, err := pike.NewClient(os.Getenv(envDiskFullPike), "test-project", signer, pike.WithMaxInFlight(8),
		pike.WithRetryPolicy(pike.RetryPolicy{MaxAttempts: 4, BaseDelay: 5 * time.Millisecond, MaxDelay: 50 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	fk, err := batch.FingerprintKeyFromSigner(signer)
	if err != nil {
		t.Fatal(err)
	}
	fp, err := batch.NewFingerprinter(fk)
	if err != nil {
		t.Fatal(err)
	}
	db, err := ledger.Open(ctx, dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	room, _ := strconv.ParseInt(os.Getenv(envDiskFullRoom), 10, 64)
	var size int64
	for _, p := range []string{dbPath + "-wal"} {
		if fi, err := os.Stat(p); err == nil {
			size = max(size, fi.Size())
		}
	}
	limit := size + room
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: uint64(limit), Max: old.Max}); err != nil {
		t.Fatal(err)
	}
	path := os.Getenv(envDiskFullMan)
	mopts := manifest.Options{AllowDuplicates: true}
	sum, err := manifest.ReadFile(path, mopts, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, runErr := batch.Run(ctx, db, client, batch.RunOptions{
		Manifest: path, ManifestOptions: mopts, Summary: sum, Wait: 15 * time.Second,
		Config: batch.Config{PollAfter: 100 * time.Millisecond, PollMax: 400 * time.Millisecond, RetryAfter: 10 * time.Millisecond,
			StopGrace: 2 * time.Second, Workers: 16, Fingerprinter: fp},
	})
	_ = syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old)
	rep := diskFullReport{Limit: limit, Counts: res.Counts}
	if runErr != nil {
		rep.Err = runErr.Error()
	}
	b, _ := json.Marshal(rep)
	fmt.Println(diskFullResult + string(b))
}
