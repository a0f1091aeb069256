package main

import (
	"context"
	"fmt"
	"io"
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
	logs     logFlags
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

func (c *demoCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet(c.app, c)
	c.logs.register(fs)
	fs.StringVar(&c.dir, "dir", "", "working directory for keys, the ledger and the report (default: a new temporary directory)")
	fs.env("dir", "PAYOUTS_DEMO_DIR")
	fs.StringVar(&c.manifest, "manifest", "", "manifest to pay (default: the built-in samples/payroll.csv)")
	fs.env("manifest", "PAYOUTS_DEMO_MANIFEST")
	fs.StringVar(&c.report, "report", "", "where to write the reconciliation report (default: DIR/demo-report.csv)")
	fs.env("report", "PAYOUTS_DEMO_REPORT")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("demo takes no arguments")
	}
	log, err := c.logs.logger(c.app.Stderr)
	if err != nil {
		return err
	}
	dir := c.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "payouts-demo-"); err != nil {
			return err
		}
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	report := c.report
	if report == "" {
		report = filepath.Join(dir, "demo-report.csv")
	}
	file := c.manifest
	if file == "" {
		file = filepath.Join(dir, "payroll.csv")
		if err := os.WriteFile(file, samples.Payroll, 0o600); err != nil {
			return err
		}
	}

	// Keys: the partner's pair and the sandbox's webhook pair.
	privPath, _, err := writeKeyPair(filepath.Join(dir, "keys"), "partner")
	if err != nil {
		return &ExitError{Code: ExitInfra, Err: fmt.Errorf("demo keys: %w (pass an empty --dir)", err)}
	}
	partner, err := pike.LoadPrivateKey(privPath)
	if err != nil {
		return err
	}
	pikePriv, pikePub, err := writeKeyPair(filepath.Join(dir, "keys"), "sandbox-pike")
	if err != nil {
		return &ExitError{Code: ExitInfra, Err: err}
	}
	pikeKey, err := pike.LoadPrivateKey(pikePriv)
	if err != nil {
		return err
	}

	// The webhook listener needs a port before the sandbox knows its URL.
	hookLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	hookAddr := hookLn.Addr().String()
	hookLn.Close()

	sb, err := sandbox.New(sandbox.Config{
		PartnerKey: &partner.PublicKey, SigningKey: pikeKey, Project: "demo",
		WebhookURL: "http://" + hookAddr + WebhookPath,
		ReadyDelay: 150 * time.Millisecond, FinishDelay: 150 * time.Millisecond, SlowDelay: 2 * time.Second,
		WebhookRetryBase: 200 * time.Millisecond, WebhookRetryMax: 2 * time.Second, WebhookGiveUp: 30 * time.Second,
	})
	if err != nil {
		return err
	}
	defer sb.Close()
	sbLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sbSrv := &http.Server{Handler: sb, ReadHeaderTimeout: 5 * time.Second}
	go sbSrv.Serve(sbLn)
	defer sbSrv.Close()
	sandboxURL := "http://" + sbLn.Addr().String()
	fmt.Fprintf(c.app.Stdout, "Pike sandbox on %s, webhooks to http://%s%s, ledger and keys in %s\n\n", sandboxURL, hookAddr, WebhookPath, dir)

	pf := pikeFlags{url: sandboxURL, project: "demo", privateKey: privPath, publicKey: pikePub, version: "v1", concurrency: 8, timeout: 10 * time.Second}
	// The demo's own ledger, never the deployment's.
	lf := ledgerFlag{path: filepath.Join(dir, "payouts.db")}
	if err := lf.resolve(c.app.Getenv); err != nil {
		return err
	}
	if err := c.app.initLedger(ctx, &lf, false, io.Discard); err != nil {
		return err
	}
	env, err := c.app.connect(ctx, &pf, &lf, &c.logs, log, true)
	if err != nil {
		return err
	}
	defer env.close()
	lst, err := listenWebhooks(ctx, hookAddr, env.verifier, env.intake, log)
	if err != nil {
		return err
	}
	defer lst.close()

	mopts := manifest.Options{}
	sum, err := manifest.ReadFile(file, mopts, nil)
	if err != nil {
		return c.app.manifestRefusal(file, err)
	}
	fmt.Fprintf(c.app.Stdout, "Validated %s: %d rows.\n", file, sum.Rows)
	cfg := batch.Config{PollAfter: 2 * time.Second, Logger: log, Fingerprinter: env.fingerprinter}
	progress := c.app.progress(log, sum.Rows)
	res, err := batch.Run(c.app.interruptible(ctx), env.db, env.client, batch.RunOptions{
		Manifest: file, Summary: sum, Config: cfg, Wait: 45 * time.Second, Intake: env.intake,
		Progress: progress.update, Owner: ledger.CurrentOwner("payouts demo"),
	})
	progress.done()
	if err != nil {
		return c.app.runFailure(err)
	}
	err = c.app.finish(ctx, env.db, res, report, "csv", false)
	paid := sb.Journal()
	var total = map[string]int64{}
	for _, p := range paid {
		total[p.Currency] += p.Amount
	}
	fmt.Fprintf(c.app.Stdout, "\nThe sandbox's journal (the money it actually moved): %d payouts", len(paid))
	for _, cur := range slices.Sorted(maps.Keys(total)) {
		fmt.Fprintf(c.app.Stdout, "; %s %s", manifest.FormatAmount(total[cur], cur), strings.ToUpper(cur))
	}
	fmt.Fprintf(c.app.Stdout, ".\nTry: payouts status --ledger %s --batch %s\n", lf.path, res.Batch.ID)
	if ee, ok := err.(*ExitError); ok && ee.Code == ExitPartial {
		return nil // failures are part of the demo: every outcome is shown on purpose
	}
	return err
}
