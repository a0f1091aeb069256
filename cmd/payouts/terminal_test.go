package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike/sandbox"
)

// runAppWith runs the command line in-process with stdin and whether it
// is a terminal.
func (p *cliPike) runWith(stdin string, tty bool, args ...string) (code int, stdout, stderr string) {
	p.t.Helper()
	var out, errb bytes.Buffer
	app := &App{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, StdinTerminal: &tty,
		Getenv: func(k string) string { return p.env[k] }}
	code = app.Main(context.Background(), args)
	return code, out.String(), errb.String()
}

func heldRows() [][5]string {
	return [][5]string{
		{"H-1", "150000", "RUB", sandbox.CardMir, "Иванов Иван"},
		{"H-2", "1500.50", "RUB", sandbox.CardMir, "Петров Пётр"},
		{"H-3", "20", "EUR", sandbox.CardVisa, "Anna Müller"},
	}
}

// TestApproveReject: the preview, the prompt, --yes, --row, --as and the
// identity in the ledger's events and in status.
func TestApproveReject(t *testing.T) {
	p := newCLIPike(t, sandbox.Config{})
	m := p.manifest("held.csv", heldRows()...)
	code, stdout, stderr := p.run("run", m, "--confirm", "hold")
	if code != ExitOK {
		t.Fatalf("hold run: got exit %d, want 0\n%s%s", code, stdout, stderr)
	}
	id := batchIDOf(t, stdout)
	states := func() map[string]ledger.State {
		out := map[string]ledger.State{}
		for ref, r := range p.ledgerRows(id) {
			out[ref] = r.State
		}
		return out
	}
	stillHeld := func(what string, refs ...string) {
		t.Helper()
		s := states()
		for _, ref := range refs {
			if s[ref] != ledger.StateAwaitingConfirm {
				t.Errorf("%s: %s is %s, want still awaiting_confirm", what, ref, s[ref])
			}
		}
	}

	// No terminal, no --yes: refused, nothing done.
	code, stdout, stderr = p.runWith("", false, "approve", "--batch", id)
	if code != ExitUsage || !strings.Contains(stderr, "--yes") {
		t.Errorf("approve without a terminal or --yes: got exit %d, %q; want 2 saying to pass --yes", code, stderr)
	}
	stillHeld("refused approve", "H-1", "H-2", "H-3")

	// The preview, then "n" at the prompt: nothing done.
	code, stdout, stderr = p.runWith("n\n", true, "approve", "--batch", id[:6])
	if code != ExitPartial {
		t.Errorf("approve answered n: got exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	for _, want := range []string{"Approve 3 rows of batch " + id + ": EUR 20.00, RUB 151,500.50", "line 2  H-1  150,000.00 RUB", "The confirm check passes for every row"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("preview does not say %q:\n%s", want, stdout)
		}
	}
	if want := "Approve 3 payouts totalling EUR 20.00, RUB 151,500.50? [y/N] "; !strings.Contains(stderr, want) {
		t.Errorf("prompt: got %q, want %q", stderr, want)
	}
	stillHeld("approve answered n", "H-1", "H-2", "H-3")

	// --row with a reference that is not held, or not there: refused.
	for _, row := range []string{"NOPE", "H-1,NOPE"} {
		if code, _, stderr := p.run("approve", "--batch", id, "--row", row, "--yes"); code != ExitUsage || !strings.Contains(stderr, "NOPE") {
			t.Errorf("approve --row %s: got exit %d, %q; want 2 naming NOPE", row, code, stderr)
		}
	}
	stillHeld("approve of a missing row", "H-1", "H-2", "H-3")

	// One row, yes at the prompt, as a named approver.
	code, stdout, stderr = p.runWith("y\n", true, "approve", "--batch", id, "--row", "H-2", "--as", "Anna (finance)")
	if code != ExitOK {
		t.Fatalf("approve --row H-2: got exit %d, want 0 (the rest stay held as asked)\n%s%s", code, stdout, stderr)
	}
	s := states()
	if s["H-2"] != ledger.StateSucceeded {
		t.Errorf("H-2: got %s, want succeeded", s["H-2"])
	}
	stillHeld("approve --row H-2", "H-1", "H-3")
	if !strings.Contains(stdout, "2 rows waiting for approval") {
		t.Errorf("approve of one row does not name the next step for the others:\n%s", stdout)
	}

	// Reject another by prefix, as a script.
	code, stdout, stderr = p.run("reject", "--batch", id[:5], "--row", "H-3", "--yes", "--as", "Boris")
	if code != ExitPartial {
		t.Errorf("reject --row H-3: got exit %d, want 1 (a row cancelled)\n%s%s", code, stdout, stderr)
	}
	rows := p.ledgerRows(id)
	if r := rows["H-3"]; r.State != ledger.StateCancelled || !strings.Contains(r.FailureDescription, "rejected by Boris") {
		t.Errorf("H-3: got %s %q, want cancelled, rejected by Boris", r.State, r.FailureDescription)
	}
	stillHeld("reject --row H-3", "H-1")
	if !strings.Contains(stdout, "payouts rerun --batch "+id) {
		t.Errorf("reject does not say how to pay the rejected row later:\n%s", stdout)
	}

	// Who did what: the events and status.
	db, err := ledger.Open(context.Background(), p.env["PAYOUTS_LEDGER"])
	if err != nil {
		t.Fatal(err)
	}
	events, err := db.Events(context.Background(), id, rows["H-2"].ID)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	var confirmedBy bool
	for _, e := range events {
		confirmedBy = confirmedBy || (e.To == ledger.StateConfirming && strings.Contains(e.Detail, "approved by Anna (finance)"))
	}
	if !confirmedBy {
		t.Errorf("H-2's confirm event does not name its approver: %+v", events)
	}
	_, stdout, _ = p.run("status", "--batch", id)
	for _, want := range []string{"approved by Anna (finance): 1 row (H-2)", "rejected by Boris: 1 row (H-3)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("status does not say %q:\n%s", want, stdout)
		}
	}
	// And the report: its decision lines.
	_, stdout, _ = p.run("report", "--batch", id)
	for _, want := range []string{"decision,approve,", "approved by Anna (finance): 1 row (H-2)", "decision,reject,", "rejected by Boris: 1 row (H-3)"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("the report does not say %q:\n%s", want, stdout)
		}
	}

	// The last one, by the OS identity by default.
	code, stdout, stderr = p.run("approve", "--batch", id, "--yes")
	if code != ExitPartial { // H-3 was rejected
		t.Errorf("approve the rest: got exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	if s := states(); s["H-1"] != ledger.StateSucceeded {
		t.Errorf("H-1: got %s, want succeeded", s["H-1"])
	}
	if _, stdout, _ = p.run("status", "--batch", id); !strings.Contains(stdout, "approved by "+osIdentity()+": 1 row (H-1)") {
		t.Errorf("status does not name the OS user as approver:\n%s", stdout)
	}
}

// TestBatchPrefix: a unique prefix of a batch id names it on every command
// that takes --batch; an ambiguous one lists the candidates.
func TestBatchPrefix(t *testing.T) {
	p := newCLIPike(t, sandbox.Config{})
	// Batches named by --batch, two of which share a prefix.
	for _, id := range []string{"aa01", "aa02", "bb01"} {
		m := p.manifest("m"+id+".csv", [5]string{"P-" + id, "10", "RUB", sandbox.CardMir, "Иванов Иван"})
		if code, stdout, stderr := p.run("run", m, "--batch", "batch-"+id); code != ExitOK {
			t.Fatalf("run: exit %d\n%s%s", code, stdout, stderr)
		}
	}
	for _, args := range [][]string{{"status", "--batch", "batch-b"}, {"report", "--batch", "batch-b"}} {
		if code, stdout, stderr := p.run(args...); code != ExitOK || !strings.Contains(stdout, "bb01") {
			t.Errorf("payouts %s: got exit %d\n%s%s; want batch-bb01", strings.Join(args, " "), code, stdout, stderr)
		}
	}
	code, _, stderr := p.run("status", "--batch", "batch-a")
	if code != ExitUsage || !strings.Contains(stderr, "ambiguous") || !strings.Contains(stderr, "batch-aa01, batch-aa02") {
		t.Errorf("ambiguous prefix: got exit %d, %q; want 2 listing batch-aa01, batch-aa02", code, stderr)
	}
	if code, _, stderr := p.run("rerun", "--batch", "batch-a", "--dry-run"); code != ExitUsage || !strings.Contains(stderr, "ambiguous") {
		t.Errorf("rerun with an ambiguous prefix: got exit %d, %q; want 2", code, stderr)
	}
	if code, _, stderr := p.run("decide", "--batch", "batch-x", "--reference", "P", "--outcome", "paid", "--note", "n"); code != ExitUsage || !strings.Contains(stderr, "no batch batch-x") {
		t.Errorf("decide with an unknown prefix: got exit %d, %q; want 2", code, stderr)
	}
}

// TestSmallRefusals: flags quoted with --, a Pike URL without a scheme.
func TestSmallRefusals(t *testing.T) {
	p := newCLIPike(t, sandbox.Config{})
	m := p.manifest("m.csv", okRows()...)
	if code, _, stderr := p.run("status", "--foo"); code != ExitUsage || !strings.Contains(stderr, "flag provided but not defined: --foo") {
		t.Errorf("unknown flag: got exit %d, %q; want 2 quoting --foo", code, stderr)
	}
	if code, _, stderr := p.run("run", m, "--concurrency", "x"); code != ExitUsage || !strings.Contains(stderr, `invalid value "x" for flag --concurrency`) {
		t.Errorf("bad flag value: got exit %d, %q; want 2 quoting --concurrency", code, stderr)
	}
	before := p.requests()
	code, _, stderr := p.run("run", m, "--pike-url", "proxy-demo.pikepayments.com")
	if code != ExitUsage || !strings.Contains(stderr, "https://proxy-demo.pikepayments.com") {
		t.Errorf("Pike URL without a scheme: got exit %d, %q; want 2 saying to write https://", code, stderr)
	}
	// --max-amount refusals come in line order, whatever the amounts.
	caps := p.manifest("caps.csv", [5]string{"C-1", "900", "RUB", sandbox.CardMir, "A"}, [5]string{"C-2", "50", "RUB", sandbox.CardVisa, "B"},
		[5]string{"C-3", "500", "RUB", sandbox.CardMastercard, "C"}, [5]string{"C-4", "700", "RUB", sandbox.CardExpired, "D"})
	code, _, stderr = p.run("run", caps, "--max-amount", "RUB:100")
	i2, i4, i5 := strings.Index(stderr, "line 2,"), strings.Index(stderr, "line 4,"), strings.Index(stderr, "line 5,")
	if code != ExitUsage || i2 < 0 || i4 < i2 || i5 < i4 || strings.Contains(stderr, "line 3,") {
		t.Errorf("--max-amount refusal: got exit %d, %q; want 2 listing lines 2, 4, 5 in that order", code, stderr)
	}
	if p.requests() != before {
		t.Error("a refused run sent requests to Pike")
	}
}

// TestInterruptOnlyOnSignal: the "interrupted" notice is printed when a
// signal cancelled the command's context, not when it was cancelled
// because the command ended (main's stop).
func TestInterruptOnlyOnSignal(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cancel func(context.CancelCauseFunc)
		want   bool
	}{
		{"the command ended", func(c context.CancelCauseFunc) { c(nil) }, false},
		{"another cause", func(c context.CancelCauseFunc) { c(errors.New("lease lost")) }, false},
		{"SIGINT", func(c context.CancelCauseFunc) { c(&interruptError{sig: syscall.SIGINT}) }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errb bytes.Buffer
			stopped := 0
			app := &App{Stderr: &errb, Interrupted: func() { stopped++ }}
			ctx, cancel := context.WithCancelCause(context.Background())
			tc.cancel(cancel)
			app.ended(ctx) // what interruptible runs once ctx is done
			if got := strings.Contains(errb.String(), "interrupted:"); got != tc.want || (stopped == 1) != tc.want {
				t.Errorf("got notice %v (%q), signal delivery stopped %d times; want notice %v", got, errb.String(), stopped, tc.want)
			}
		})
	}
}

// TestNotifyContextCause: the root context of main says whether a signal
// ended it.
func TestNotifyContextCause(t *testing.T) {
	ctx, stop := notifyContext(context.Background(), syscall.SIGUSR1)
	defer stop()
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
		t.Fatal(err)
	}
	<-ctx.Done()
	if !signalled(ctx) {
		t.Errorf("context ended by SIGUSR1: signalled = false, cause %v", context.Cause(ctx))
	}
	ctx2, stop2 := notifyContext(context.Background(), syscall.SIGUSR1)
	stop2()
	if signalled(ctx2) {
		t.Errorf("context ended by stop: signalled = true")
	}
}

// jsonLines decodes every line of stderr as a JSON object.
func jsonLines(t *testing.T, what, stderr string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimRight(stderr, "\n"), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("%s: stderr line is not JSON: %q (%v)", what, line, err)
			continue
		}
		out = append(out, rec)
	}
	return out
}

// TestJSONLogs: with --log-format json (or PAYOUTS_LOG_FORMAT) every line
// on stderr of every command is a JSON record, errors included; a run ends
// with one summary record; progress records carry the batch id;
// durations are strings.
func TestJSONLogs(t *testing.T) {
	p := newCLIPike(t, sandbox.Config{})
	m := p.manifest("m.csv", append(okRows(), [5]string{"F-1", "10", "RUB", sandbox.CardExpired, "Орлова Вера"})...)
	code, stdout, stderr := p.run("run", m, "--log-format", "json")
	if code != ExitPartial {
		t.Fatalf("run: got exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	id := batchIDOf(t, stdout)
	recs := jsonLines(t, "run", stderr)
	var start, summary, progress map[string]any
	for _, r := range recs {
		switch r["msg"] {
		case "run":
			start = r
		case "summary":
			summary = r
		case "progress":
			progress = r
		}
		if r["poll_after"] != nil && r["poll_after"] != "20ms" {
			t.Errorf("duration poll_after: got %v, want \"20ms\"", r["poll_after"])
		}
	}
	if start == nil || start["batch"] != id || start["rows"] != 3.0 || start["pike_url"] != p.env["PIKE_URL"] || start["ledger"] != p.env["PAYOUTS_LEDGER"] {
		t.Errorf("start record: got %v", start)
	}
	if tot, _ := start["totals"].(map[string]any); tot["RUB"] != "1510.50" || tot["EUR"] != "20.00" {
		t.Errorf("start record totals: got %v", start["totals"])
	}
	if summary == nil || recs[len(recs)-1]["msg"] != "summary" {
		t.Fatalf("the last record is not the summary: %v", recs[len(recs)-1])
	}
	counts, _ := summary["counts"].(map[string]any)
	sums, _ := summary["sums"].(map[string]any)
	if summary["batch"] != id || summary["exit_code"] != 1.0 || counts["succeeded"] != 2.0 || counts["failed"] != 1.0 {
		t.Errorf("summary: got %v", summary)
	}
	if s, _ := sums["succeeded"].(map[string]any); s["RUB"] != "1500.50" || s["EUR"] != "20.00" {
		t.Errorf("summary sums: got %v", sums)
	}
	if progress == nil || progress["batch"] != id {
		t.Errorf("progress record without the batch id: %v", progress)
	}

	// Errors: usage (after the flags), bad input, infrastructure, every one
	// a JSON record with its exit code; the environment variable too.
	p.env["PAYOUTS_LOG_FORMAT"] = "json"
	defer delete(p.env, "PAYOUTS_LOG_FORMAT")
	for _, tc := range []struct {
		args []string
		code int
	}{
		{[]string{"status", "--nope"}, ExitUsage},
		{[]string{"stauts"}, ExitUsage},
		{[]string{"nonsense"}, ExitUsage},
		{[]string{"status", "--batch", "nope"}, ExitUsage},
		{[]string{"run", p.manifest("bad.csv", [5]string{"B-1", "-5", "RUB", sandbox.CardMir, "X"})}, ExitUsage},
		{[]string{"run", m, "--max-amount", "RUB:1"}, ExitUsage},
		{[]string{"report", "--batch", id, "--ledger", p.dir + "/none.db"}, ExitInfra},
		{[]string{"status"}, ExitOK},
		{[]string{"status", "--batch", id}, ExitOK},
		{[]string{"approve", "--batch", id, "--row", "NOPE"}, ExitUsage},
	} {
		code, _, stderr := p.run(tc.args...)
		if code != tc.code {
			t.Errorf("payouts %s: got exit %d, want %d\n%s", strings.Join(tc.args, " "), code, tc.code, stderr)
		}
		recs := jsonLines(t, strings.Join(tc.args, " "), stderr)
		if tc.code != ExitOK && (len(recs) == 0 || recs[len(recs)-1]["level"] != "ERROR" || recs[len(recs)-1]["exit_code"] != float64(tc.code)) {
			t.Errorf("payouts %s: the last record is not the error with its exit code: %v", strings.Join(tc.args, " "), recs)
		}
	}
}
