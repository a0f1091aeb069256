package main_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/internal/poll"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

// raceEnabled is set by torture_race_test.go when the tests run with -race.
var raceEnabled bool

// tortureRace builds the binary under test with -race (only when the tests
// themselves run with -race, whose runtime the build then shares): a data
// race in the runner while it is being killed and restarted fails the
// test. Off by default: a race-instrumented runner is several times slower
// and the package would outgrow its minute; batch's own tests run the
// engine under -race.
var tortureRace = flag.Bool("torture.race", false, "with -race: build the payouts binary under test with -race too")

// rig is the real `payouts` binary wired to an in-process sandbox Pike on
// loopback: keys in PEM files, the sandbox's webhooks pointed at the
// runner's --listen address (the same port on every restart), and a
// directory that receives every byte the product writes.
type rig struct {
	t   *testing.T
	bin string
	// in holds what the test gives the product (keys, manifests); out holds
	// everything the product writes (ledger, logs, reports) and nothing else.
	in, out string
	sb      *sandbox.Sandbox
	pikeURL string
	listen  string // host:port of the runner's webhook listener
	priv    string // partner private key, PEM
	pub     string // Pike's webhook public key, PEM
	ledger  string
	seq     int // commands run, to name their output files
	// pikeConns counts the sandbox's open client connections.
	pikeConns atomic.Int64
}

// buildPayouts builds cmd/payouts into dir (with -race if -torture.race).
func buildPayouts(t *testing.T, dir string) string {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("the go tool is not on PATH: %v", err)
	}
	bin := filepath.Join(dir, "payouts")
	args := []string{"build", "-o", bin}
	if raceEnabled && *tortureRace {
		args = append(args, "-race")
	}
	cmd := exec.Command(goTool, append(args, ".")...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// newRig builds the binary and starts the sandbox. cfg's keys, project and
// webhook URL are filled in.
func newRig(t *testing.T, cfg sandbox.Config) *rig {
	t.Helper()
	root := t.TempDir()
	r := &rig{t: t, in: filepath.Join(root, "in"), out: filepath.Join(root, "out")}
	for _, d := range []string{r.in, r.out} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	r.bin = buildPayouts(t, root)

	partner, err := pike.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	pikeKey, err := pike.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	privPEM, err := pike.EncodePrivateKeyPEM(partner)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM, err := pike.EncodePublicKeyPEM(&pikeKey.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	r.priv, r.pub = filepath.Join(r.in, "partner.pem"), filepath.Join(r.in, "pike.pem")
	if err := os.WriteFile(r.priv, privPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(r.pub, pubPEM, 0o644); err != nil {
		t.Fatal(err)
	}

	r.listen = freeAddr(t)
	cfg.PartnerKey, cfg.SigningKey, cfg.Project = &partner.PublicKey, pikeKey, "torture"
	cfg.WebhookURL = "http://" + r.listen + "/webhooks/pike"
	r.sb, err = sandbox.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(r.sb)
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		switch st {
		case http.StateNew:
			r.pikeConns.Add(1)
		case http.StateClosed, http.StateHijacked:
			r.pikeConns.Add(-1)
		}
	}
	srv.Start()
	r.pikeURL = srv.URL
	r.ledger = filepath.Join(r.out, "payouts.db")
	t.Cleanup(func() {
		r.sb.Close()
		srv.Close()
	})
	if code, stdout, stderr := r.exec("init", "--ledger", r.ledger); code != 0 {
		t.Fatalf("payouts init: exit %d\n%s%s", code, stdout, stderr)
	}
	return r
}

// freeAddr returns a loopback address whose port is free now and lies
// below the kernel's ephemeral range, so that no outgoing connection (the
// sandbox's webhooks, the client's requests) can take it while the runner
// that listens on it is down between a kill and a restart.
func freeAddr(t *testing.T) string {
	t.Helper()
	lo := 32768
	if b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if n, err := strconv.Atoi(f[0]); err == nil {
				lo = n
			}
		}
	}
	for range 100 {
		port := 10000 + mrand.IntN(max(lo-10000, 1000))
		ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		if err == nil {
			addr := ln.Addr().String()
			ln.Close()
			return addr
		}
	}
	t.Fatal("no free port below the ephemeral range")
	return ""
}

// proc is one `payouts` process. Its stdout and stderr go to files in
// r.out named after the command: they are part of what the product wrote.
type proc struct {
	cmd            *exec.Cmd
	stdout, stderr string // file paths
	files          []*os.File
}

// command prepares `payouts args...` with a clean environment (no PIKE_* or
// PAYOUTS_* from the caller).
func (r *rig) command(args ...string) *proc {
	r.t.Helper()
	r.seq++
	base := filepath.Join(r.out, fmt.Sprintf("%03d-%s", r.seq, args[0]))
	p := &proc{stdout: base + ".stdout", stderr: base + ".stderr"}
	for _, name := range []string{p.stdout, p.stderr} {
		f, err := os.Create(name)
		if err != nil {
			r.t.Fatal(err)
		}
		p.files = append(p.files, f)
	}
	p.cmd = exec.Command(r.bin, args...)
	p.cmd.Dir = r.in
	p.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + r.in, "TMPDIR=" + r.in,
		"GORACE=halt_on_error=1 exitcode=66"}
	p.cmd.Stdout, p.cmd.Stderr = p.files[0], p.files[1]
	return p
}

// wait waits for the process and returns its exit code (minus the signal
// number if a signal ended it).
func (p *proc) wait(t *testing.T) int {
	t.Helper()
	err := p.cmd.Wait()
	for _, f := range p.files {
		f.Close()
	}
	return exitCodeOf(t, err)
}

// output returns what the process wrote so far.
func (p *proc) output() (stdout, stderr string) {
	o, _ := os.ReadFile(p.stdout)
	e, _ := os.ReadFile(p.stderr)
	return string(o), string(e)
}

// exec runs `payouts args...` to its end and returns its exit code and
// output.
func (r *rig) exec(args ...string) (code int, stdout, stderr string) {
	r.t.Helper()
	p := r.command(args...)
	if err := p.cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	code = p.wait(r.t)
	stdout, stderr = p.output()
	return code, stdout, stderr
}

func exitCodeOf(t *testing.T, err error) int {
	t.Helper()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -int(ws.Signal())
		}
		return ee.ExitCode()
	}
	t.Fatalf("run payouts: %v", err)
	return 0
}

// runArgs are the arguments of `payouts run` against the rig.
func (r *rig) runArgs(manifest string, extra ...string) []string {
	args := []string{"run", manifest,
		"--pike-url", r.pikeURL, "--project", "torture",
		"--private-key", r.priv, "--pike-public-key", r.pub,
		"--ledger", r.ledger, "--listen", r.listen,
	}
	return append(args, extra...)
}

// manifestRow is one row of a manifest a test writes.
type manifestRow struct {
	Ref, Amount, Currency, Card, Name, Email, Description string
}

// writeManifest writes rows as a CSV manifest in r.in.
func (r *rig) writeManifest(name string, rows []manifestRow) string {
	r.t.Helper()
	var b bytes.Buffer
	w := csv.NewWriter(&b)
	w.Write([]string{"reference", "amount", "currency", "card_number", "recipient_name", "email", "description"})
	for _, row := range rows {
		w.Write([]string{row.Ref, row.Amount, row.Currency, row.Card, row.Name, row.Email, row.Description})
	}
	w.Flush()
	path := filepath.Join(r.in, name)
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		r.t.Fatal(err)
	}
	return path
}

// expected is what the journal may show for a manifest: per reference the
// amount in minor units, the lower-case currency and the card's SHA-256.
type expected struct {
	amount   int64
	currency string
	cardSHA  string
}

// expectations reads a valid manifest with the product's own parser.
func expectations(t *testing.T, path string, opts manifest.Options) (map[string]expected, manifest.Summary) {
	t.Helper()
	want := map[string]expected{}
	sum, err := manifest.ReadFile(path, opts, func(r manifest.Row) error {
		h := sha256.Sum256([]byte(r.Card.Digits()))
		want[r.Reference] = expected{amount: r.Amount, currency: strings.ToLower(r.Currency), cardSHA: hex.EncodeToString(h[:])}
		return nil
	})
	if err != nil {
		t.Fatalf("manifest %s: %v", path, err)
	}
	return want, sum
}

// ledgerRows opens the ledger after the runners are gone and returns
// every row of the batch, or nil if the batch does not exist yet.
func ledgerRows(t *testing.T, path, batchID string) []ledger.Row {
	t.Helper()
	if _, err := os.Stat(path); err != nil && !ledger.IsPostgresURL(path) {
		return nil
	}
	db, err := ledger.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("open ledger: %v", err)
	}
	defer db.Close()
	if _, err := db.Batch(context.Background(), batchID); errors.Is(err, ledger.ErrNotFound) {
		return nil
	} else if err != nil {
		t.Fatalf("batch %s: %v", batchID, err)
	}
	var rows []ledger.Row
	for row, err := range db.Rows(context.Background(), batchID) {
		if err != nil {
			t.Fatalf("rows: %v", err)
		}
		rows = append(rows, row)
	}
	return rows
}

// settled reports whether every row is final or held for review.
func settled(rows []ledger.Row, want int) bool {
	if len(rows) != want {
		return false
	}
	for _, r := range rows {
		if !r.State.Final() && r.State != ledger.StateReview {
			return false
		}
	}
	return true
}

// checkJournal judges the sandbox's journal against the manifest and the
// ledger: no reference paid twice; every payment is a manifest reference
// with its amount, currency and card; a reference was paid if and only if
// its row is succeeded. It returns the journal's totals per currency.
func checkJournal(t *testing.T, sb *sandbox.Sandbox, want map[string]expected, rows []ledger.Row) map[string]int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = sb.Quiesce(ctx)
	paid := map[string]int{}
	totals := map[string]int64{}
	for _, p := range sb.Journal() {
		paid[p.Reference]++
		totals[p.Currency] += p.Amount
		w, ok := want[p.Reference]
		switch {
		case !ok:
			t.Errorf("journal: paid %s, which is not in the manifest (session %s, %d %s)", p.Reference, p.SessionID, p.Amount, p.Currency)
		case p.Amount != w.amount || p.Currency != w.currency:
			t.Errorf("journal: %s paid %d %s, want %d %s (session %s)", p.Reference, p.Amount, p.Currency, w.amount, w.currency, p.SessionID)
		case p.CardSHA256 != w.cardSHA:
			t.Errorf("journal: %s paid to another card (last4 %s, session %s)", p.Reference, p.CardLast4, p.SessionID)
		}
	}
	for ref, n := range paid {
		if n > 1 {
			t.Errorf("journal: %s paid %d times, want at most once", ref, n)
		}
	}
	for _, r := range rows {
		if got := paid[r.Reference] > 0; got != (r.State == ledger.StateSucceeded) {
			t.Errorf("row %d %s: ledger says %s (%s %s), journal says paid=%v", r.Line, r.Reference, r.State, r.FailureCode, r.FailureDescription, got)
		}
	}
	return totals
}

// reportJSON is the part of `payouts report --format json` the tests read.
type reportJSON struct {
	BatchID string `json:"batch_id"`
	Control []struct {
		Currency  string `json:"currency"`
		Manifest  string `json:"manifest"`
		Submitted string `json:"submitted"`
		Succeeded string `json:"succeeded"`
	} `json:"control_totals"`
}

// checkReportTotals compares the succeeded control totals of the JSON
// report with the journal's totals (minor units, lower-case currency).
func checkReportTotals(t *testing.T, report []byte, journal map[string]int64) {
	t.Helper()
	var rep reportJSON
	if err := json.Unmarshal(report, &rep); err != nil {
		t.Fatalf("report json: %v", err)
	}
	got := map[string]string{}
	for _, c := range rep.Control {
		got[strings.ToUpper(c.Currency)] = c.Succeeded
	}
	for cur, minor := range journal {
		up := strings.ToUpper(cur)
		if w := manifest.FormatAmount(minor, up); got[up] != w {
			t.Errorf("report: succeeded %s %s, journal paid %s %s", got[up], up, w, up)
		}
	}
	for cur, s := range got {
		if _, ok := journal[strings.ToLower(cur)]; !ok && s != manifest.FormatAmount(0, cur) {
			t.Errorf("report: succeeded %s %s, journal paid nothing in %s", s, cur, cur)
		}
	}
}

// waitPortFree waits until the runner's webhook port is closed again, so the
// next runner can bind it. SIGKILL closes it with the process, but the
// kernel may take a moment.
func (r *rig) waitPortFree() {
	r.t.Helper()
	poll.Until(r.t, "the webhook port "+r.listen+" to be free", func() bool {
		ln, err := net.Listen("tcp", r.listen)
		if err != nil {
			return false
		}
		ln.Close()
		return true
	})
}

// waitListening waits until a command just started listens on the webhook
// port: it is up, with its signal handlers installed.
func (r *rig) waitListening() {
	r.t.Helper()
	poll.Until(r.t, "a listener on "+r.listen, func() bool {
		c, err := net.Dial("tcp", r.listen)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}

// waitPikeIdle waits until no client is connected to the sandbox: after a
// runner is killed, requests it had written but the sandbox had not yet
// read are still served (and counted) until the kernel's close of its
// connections reaches the server.
func (r *rig) waitPikeIdle() {
	r.t.Helper()
	poll.Until(r.t, "the sandbox to have no client connection left after the runner ended", func() bool { return r.pikeConns.Load() == 0 })
}
