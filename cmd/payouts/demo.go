package main

import (
	"context"
	"crypto/rsa"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
	"github.com/payouts/payouts/samples"
)

// demoCommand implements `payouts demo`.
type demoCommand struct {
	app      *App
	dir      string
	manifest string
	report   string
}

func (c *demoCommand) Name() string { return "demo" }
func (c *demoCommand) Synopsis() string {
	return "sandbox + samples/payroll.csv + run + report, all local"
}
func (c *demoCommand) Usage() string {
	return `Usage: payouts demo [--dir DIR] [--manifest FILE] [--report FILE]

Runs the whole product locally with no setup: generates throwaway partner keys,
starts the Pike sandbox on a free loopback port (with its own webhook key),
listens for webhooks, validates and pays samples/payroll.csv (built in) through
the sandbox, prints the summary and writes the reconciliation report. The
sample uses the sandbox's test cards, so every outcome shows: succeeded,
failed (card errors), cancelled for an amount mismatch, held for review (Pike
session error), a payout found by polling because its webhooks never came.

Example:
  go run ./cmd/payouts demo`
}

// Run pays a manifest end to end on this machine: a workspace, throwaway
// keys, a sandbox Pike, a ledger of its own, the payouts, the report, and
// the sandbox's journal to compare against. The steps are wiring of the
// same pieces `payouts run` uses, so the demo shows the real product.
func (c *demoCommand) Run(ctx context.Context, args []string) error {
	if err := c.parse(args); err != nil {
		return helpOK(err)
	}
	log, err := c.app.logger()
	if err != nil {
		return err
	}
	ws, err := c.workspace()
	if err != nil {
		return err
	}
	keys, err := loadDemoKeys(ws.dir)
	if err != nil {
		return err
	}
	sb, err := startDemoSandbox(keys)
	if err != nil {
		return err
	}
	defer sb.close()
	fmt.Fprintf(c.app.Stdout, "Pike sandbox on %s, webhooks to http://%s%s, ledger and keys in %s\n\n", sb.url, sb.hookAddr, WebhookPath, ws.dir)
	lf, err := c.openLedger(ctx, ws.dir)
	if err != nil {
		return err
	}
	env, lst, err := c.connect(ctx, keys, sb, lf, log)
	if err != nil {
		return err
	}
	defer env.close()
	defer lst.close()
	res, err := c.pay(ctx, env, ws.manifest, log)
	if err != nil {
		return err
	}
	err = c.app.finish(ctx, env.db, res, ws.report, "csv", false)
	c.printJournal(sb.sb.Journal(), lf.path, res.Batch.ID)
	return demoOutcome(err)
}

// parse reads the flags. The demo needs none: each has a default that
// makes `payouts demo` work on a bare machine.
func (c *demoCommand) parse(args []string) error {
	fs := newFlagSet(c.app, c)
	fs.StringVar(&c.dir, "dir", "", "working directory for keys, the ledger and the report (default: a new temporary directory)")
	fs.env("dir", "PAYOUTS_DEMO_DIR")
	fs.StringVar(&c.manifest, "manifest", "", "manifest to pay (default: the built-in samples/payroll.csv)")
	fs.env("manifest", "PAYOUTS_DEMO_MANIFEST")
	fs.StringVar(&c.report, "report", "", "where to write the reconciliation report (default: DIR/demo-report.csv)")
	fs.env("report", "PAYOUTS_DEMO_REPORT")
	if err := fs.parse(args); err != nil {
		return err // errHelp included: Run turns it into exit 0
	}
	if fs.NArg() > 0 {
		return usageErrorf("demo takes no arguments")
	}
	return nil
}

// demoWorkspace is where the demo keeps what it makes, so a user can look
// at (and re-use with other commands) everything afterwards.
type demoWorkspace struct {
	dir, report, manifest string
}

// workspace creates the working directory (a fresh temporary one unless
// --dir) and fills in the defaults that live in it: the report path, and
// the built-in sample written out as the manifest when none was given.
func (c *demoCommand) workspace() (demoWorkspace, error) {
	ws := demoWorkspace{dir: c.dir, report: c.report, manifest: c.manifest}
	var err error
	if ws.dir == "" {
		if ws.dir, err = os.MkdirTemp("", "payouts-demo-"); err != nil {
			return ws, err
		}
	} else if err := os.MkdirAll(ws.dir, 0o700); err != nil {
		return ws, err
	}
	if ws.report == "" {
		ws.report = filepath.Join(ws.dir, "demo-report.csv")
	}
	if ws.manifest == "" {
		ws.manifest = filepath.Join(ws.dir, "payroll.csv")
		if err := os.WriteFile(ws.manifest, samples.Payroll, 0o600); err != nil {
			return ws, err
		}
	}
	return ws, nil
}

// demoKeys are the two key pairs a real deployment is given: the
// partner's (signs our requests) and Pike's (signs its webhooks). Their
// files are kept so the processor loads them the way it does in production.
type demoKeys struct {
	partnerPriv, pikePub string // PEM files the processor reads
	partner, pike        *rsa.PrivateKey
}

// loadDemoKeys writes both pairs under dir/keys and loads the private
// halves the sandbox needs.
func loadDemoKeys(dir string) (demoKeys, error) {
	var k demoKeys
	privPath, _, err := writeKeyPair(filepath.Join(dir, "keys"), "partner")
	if err != nil {
		return k, &ExitError{Code: ExitInfra, Err: fmt.Errorf("demo keys: %w (pass an empty --dir)", err)}
	}
	k.partnerPriv = privPath
	if k.partner, err = pike.LoadPrivateKey(privPath); err != nil {
		return k, err
	}
	pikePriv, pikePub, err := writeKeyPair(filepath.Join(dir, "keys"), "sandbox-pike")
	if err != nil {
		return k, &ExitError{Code: ExitInfra, Err: err}
	}
	k.pikePub = pikePub
	if k.pike, err = pike.LoadPrivateKey(pikePriv); err != nil {
		return k, err
	}
	return k, nil
}

// demoSandbox is the sandbox Pike the demo pays through, served on a free
// loopback port, and the address its webhooks go to.
type demoSandbox struct {
	sb            *sandbox.Sandbox
	srv           *http.Server
	url, hookAddr string
}

// startDemoSandbox starts a sandbox whose delays are cut to fractions of a
// second, so every outcome shows within the demo's wait. The webhook
// port is picked first because the sandbox must know where to send.
func startDemoSandbox(keys demoKeys) (*demoSandbox, error) {
	hookLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	d := &demoSandbox{hookAddr: hookLn.Addr().String()}
	hookLn.Close()
	d.sb, err = sandbox.New(sandbox.Config{
		PartnerKey: &keys.partner.PublicKey, SigningKey: keys.pike, Project: "demo",
		WebhookURL: "http://" + d.hookAddr + WebhookPath,
		ReadyDelay: 150 * time.Millisecond, FinishDelay: 150 * time.Millisecond, SlowDelay: 2 * time.Second,
		WebhookRetryBase: 200 * time.Millisecond, WebhookRetryMax: 2 * time.Second, WebhookGiveUp: 30 * time.Second,
	})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		d.sb.Close()
		return nil, err
	}
	d.srv = &http.Server{Handler: d.sb, ReadHeaderTimeout: 5 * time.Second}
	go d.srv.Serve(ln)
	d.url = "http://" + ln.Addr().String()
	return d, nil
}

// close stops serving, then stops the sandbox's own timers and webhooks.
func (d *demoSandbox) close() {
	d.srv.Close()
	d.sb.Close()
}

// openLedger creates the demo's own ledger in dir, never the deployment's.
func (c *demoCommand) openLedger(ctx context.Context, dir string) (*ledgerFlag, error) {
	lf := &ledgerFlag{path: filepath.Join(dir, "payouts.db")}
	if err := lf.resolve(c.app.Getenv); err != nil {
		return nil, err
	}
	if err := c.app.initLedger(ctx, lf, false, io.Discard); err != nil {
		return nil, err
	}
	return lf, nil
}

// connect wires the processor to the sandbox as `payouts run` would be
// wired to Pike, and listens for the sandbox's webhooks. The caller closes
// both.
func (c *demoCommand) connect(ctx context.Context, keys demoKeys, sb *demoSandbox, lf *ledgerFlag, log *slog.Logger) (*env, *listener, error) {
	pf := pikeFlags{url: sb.url, project: "demo", privateKey: keys.partnerPriv, publicKey: keys.pikePub, version: "v1", concurrency: 8, timeout: 10 * time.Second}
	env, err := c.app.connect(ctx, &pf, lf, log, true)
	if err != nil {
		return nil, nil, err
	}
	lst, err := listenWebhooks(ctx, sb.hookAddr, env.verifier, env.intake, log)
	if err != nil {
		env.close()
		return nil, nil, err
	}
	return env, lst, nil
}

// pay validates file and pays it. Its errors are already the ones
// `payouts run` gives for the same failures.
func (c *demoCommand) pay(ctx context.Context, env *env, file string, log *slog.Logger) (batch.Result, error) {
	sum, err := manifest.ReadFile(file, manifest.Options{}, nil)
	if err != nil {
		return batch.Result{}, c.app.manifestRefusal(file, err)
	}
	fmt.Fprintf(c.app.Stdout, "Validated %s: %d rows.\n", file, sum.Rows)
	cfg := batch.Config{PollAfter: 2 * time.Second, Logger: log, Fingerprinter: env.fingerprinter}
	progress := c.app.progress(log, sum.Rows)
	res, err := batch.Run(c.app.interruptible(ctx), env.db, env.client, batch.RunOptions{
		Manifest: file, Summary: sum, Config: cfg, Wait: 45 * time.Second, Intake: env.intake,
		Watch: progress.watch, Owner: ledger.CurrentOwner("payouts demo"),
	})
	progress.done()
	if err != nil {
		return res, c.app.runFailure(err)
	}
	return res, nil
}

// printJournal prints what the sandbox actually paid, to set beside the
// ledger's summary above it, and how to look at the batch again.
func (c *demoCommand) printJournal(paid []sandbox.Payment, ledgerPath, batchID string) {
	total := sandbox.Totals(paid)
	fmt.Fprintf(c.app.Stdout, "\nThe sandbox's journal (the money it actually moved): %d payouts", len(paid))
	for _, cur := range slices.Sorted(maps.Keys(total)) {
		fmt.Fprintf(c.app.Stdout, "; %s %s", money(total[cur], cur), strings.ToUpper(cur))
	}
	fmt.Fprintf(c.app.Stdout, ".\nTry: payouts status --ledger %s --batch %s\n", ledgerPath, batchID)
}

// demoOutcome is the demo's exit: failed payouts are part of the demo
// (every outcome is shown on purpose), so a partial batch exits 0.
func demoOutcome(err error) error {
	if ee, ok := err.(*ExitError); ok && ee.Code == ExitPartial {
		return nil
	}
	return err
}
