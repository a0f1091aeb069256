package main

import (
	"context"
	"fmt"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/ledger"
)

// rerunCommand implements `payouts rerun`.
type rerunCommand struct {
	app *App

	manifest        manifestFlags
	pike            pikeFlags
	ledger          ledgerFlag
	logs            logFlags
	batch           string
	listen          string
	wait            time.Duration
	pollAfter       time.Duration
	includeMismatch bool
	reportPath      string
	reportFmt       string
}

func (c *rerunCommand) Name() string { return "rerun" }
func (c *rerunCommand) Synopsis() string {
	return "new attempts for rows whose last attempt failed definitively"
}
func (c *rerunCommand) Usage() string {
	return `Usage: payouts rerun --batch ID [MANIFEST] [flags]

Gives a new attempt (a new Pike session with new idempotency keys) to every row
of the batch whose last attempt failed or was cancelled definitively, and pays
them. With MANIFEST (a corrected copy of the batch's file), those rows take the
new card, amount, name, email and description, matched by reference; the
changes are recorded in the ledger. Without it, the batch's own file is read
again (it holds the card numbers, which the ledger never stores).

Succeeded rows are never sent again. Rows in review (Pike reported an error
that only Pike support can resolve) and rows whose outcome is still unknown
are listed, not retried. Rows cancelled for a mismatch need --include-mismatch.

Example:
  payouts rerun --batch 3f9c2a7d41e0b6aa payroll-2026-11-fixed.csv --report rerun.csv`
}

func (c *rerunCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet(c.app, c)
	c.manifest.register(fs)
	c.pike.register(fs)
	c.ledger.register(fs)
	c.logs.register(fs)
	fs.StringVar(&c.batch, "batch", "", "batch id")
	fs.env("batch", "PAYOUTS_BATCH")
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8080", "webhook listener address; '' to rely on polling")
	fs.env("listen", "PAYOUTS_LISTEN")
	fs.DurationVar(&c.wait, "wait", 30*time.Minute, "how long to wait for final results")
	fs.env("wait", "PAYOUTS_WAIT")
	fs.DurationVar(&c.pollAfter, "poll-after", 2*time.Minute, "ask Pike with session/status about a row that waited this long")
	fs.env("poll-after", "PAYOUTS_POLL_AFTER")
	fs.BoolVar(&c.includeMismatch, "include-mismatch", false, "also retry rows cancelled because their session did not match")
	fs.StringVar(&c.reportPath, "report", "", "write the reconciliation report to `FILE` at the end")
	fs.env("report", "PAYOUTS_REPORT")
	fs.StringVar(&c.reportFmt, "report-format", "csv", "csv or json")
	fs.env("report-format", "PAYOUTS_REPORT_FORMAT")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	if c.batch == "" || fs.NArg() > 1 {
		return usageErrorf("rerun needs --batch ID and at most one MANIFEST")
	}
	if err := c.pike.check(); err != nil {
		return err
	}
	mopts, err := c.manifest.options()
	if err != nil {
		return err
	}
	log, err := c.logs.logger(c.app.Stderr)
	if err != nil {
		return err
	}
	env, err := c.app.connect(ctx, &c.pike, &c.ledger, log)
	if err != nil {
		return err
	}
	defer env.close()
	b, err := env.db.Batch(ctx, c.batch)
	if err != nil {
		return usageErrorf("batch %s: %v — `payouts status` lists batches", c.batch, err)
	}
	path := fs.Arg(0)
	if path == "" {
		path = b.ManifestName
	}
	if _, err := batch.ReadManifestFile(path, mopts, nil); err != nil {
		return c.app.manifestRefusal(path, err)
	}
	lst, err := listenWebhooks(ctx, c.listen, env.verifier, env.intake, log)
	if err != nil {
		return &ExitError{Code: ExitInfra, Err: err}
	}
	defer lst.close()
	progress := c.app.progress(log, b.RowCount)
	res, plan, err := batch.Rerun(c.app.interruptible(ctx), env.db, env.client, batch.RerunOptions{
		BatchID: c.batch, Manifest: path, ManifestOptions: mopts, IncludeMismatch: c.includeMismatch,
		SettleOptions: batch.SettleOptions{
			Config: batch.Config{PollAfter: c.pollAfter, Logger: log, Fingerprinter: env.fingerprinter, Workers: c.pike.workers()},
			Wait:   c.wait, Intake: env.intake, Progress: progress.update,
			Owner: ledger.CurrentOwner("payouts rerun " + c.batch),
		},
	})
	progress.done()
	for _, r := range plan.Retried {
		fmt.Fprintf(c.app.Stdout, "retried   line %-5d %-24s", r.Row.Line, r.Row.Reference)
		for _, ch := range r.Changes {
			fmt.Fprintf(c.app.Stdout, "  %s", ch)
		}
		fmt.Fprintln(c.app.Stdout)
	}
	for _, r := range plan.Kept {
		fmt.Fprintf(c.app.Stdout, "not retried line %-5d %-24s %s %s\n", r.Line, r.Reference, r.State, r.FailureCode)
	}
	for _, r := range plan.Unchanged {
		fmt.Fprintf(c.app.Stdout, "already %s, never sent again: line %d %s (the manifest's changes to it are ignored)\n", r.State, r.Line, r.Reference)
	}
	if err != nil {
		return c.app.runFailure(err)
	}
	return c.app.finish(ctx, env.db, res, c.reportPath, c.reportFmt, "rerun")
}
