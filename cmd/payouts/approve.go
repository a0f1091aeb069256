package main

import (
	"context"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/ledger"
)

// approveCommand implements `payouts approve` and `payouts reject`.
type approveCommand struct {
	app    *App
	reject bool

	pike       pikeFlags
	ledger     ledgerFlag
	logs       logFlags
	batch      string
	listen     string
	wait       time.Duration
	pollAfter  time.Duration
	reportPath string
	reportFmt  string
}

func (c *approveCommand) Name() string {
	if c.reject {
		return "reject"
	}
	return "approve"
}

func (c *approveCommand) Synopsis() string {
	if c.reject {
		return "cancel every row of a held batch waiting for confirmation"
	}
	return "confirm every row of a held batch waiting for confirmation"
}

func (c *approveCommand) Usage() string {
	if c.reject {
		return `Usage: payouts reject --batch ID [flags]

Cancels (session/cancel) every row of a batch run with --confirm hold that
waits for confirmation, then waits for Pike's results. Nothing of the batch is
confirmed meanwhile. Rejected rows end cancelled and can be paid later with
` + "`payouts rerun`" + `.

Example:
  payouts reject --batch 3f9c2a7d41e0b6aa`
	}
	return `Usage: payouts approve --batch ID [flags]

Confirms every row of a batch run with --confirm hold that waits for
confirmation. Each session is fetched with session/status and checked against
its row again first (amount, currency, card last4, reference, metadata); a
session that does not match is cancelled, not confirmed. Then waits for Pike's
results like a run. Pike cancels payouts not confirmed within 240 minutes.

Example:
  payouts approve --batch 3f9c2a7d41e0b6aa --report approved.csv`
}

func (c *approveCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet(c.app, c)
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
	fs.StringVar(&c.reportPath, "report", "", "write the reconciliation report to `FILE` at the end")
	fs.env("report", "PAYOUTS_REPORT")
	fs.StringVar(&c.reportFmt, "report-format", "csv", "csv or json")
	fs.env("report-format", "PAYOUTS_REPORT_FORMAT")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	if c.batch == "" || fs.NArg() > 0 {
		return usageErrorf("%s needs --batch ID and no arguments", c.Name())
	}
	if err := c.pike.check(); err != nil {
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
	if _, err := env.db.Batch(ctx, c.batch); err != nil {
		return usageErrorf("batch %s: %v — `payouts status` lists batches", c.batch, err)
	}
	lst, err := listenWebhooks(ctx, c.listen, env.verifier, env.intake, log)
	if err != nil {
		return &ExitError{Code: ExitInfra, Err: err}
	}
	defer lst.close()
	n, err := env.db.CountRows(ctx, c.batch, ledger.StateAwaitingConfirm)
	if err != nil {
		return &ExitError{Code: ExitInfra, Err: err}
	}
	log.Info(c.Name()+" batch", "batch", c.batch, "awaiting_confirm", n)
	o := batch.SettleOptions{
		Config: batch.Config{PollAfter: c.pollAfter, Logger: log, Fingerprinter: env.fingerprinter, Workers: c.pike.workers()},
		Wait:   c.wait, Intake: env.intake,
		Owner: ledger.CurrentOwner("payouts " + c.Name()),
	}
	progress := c.app.progress(log, 0)
	o.Progress = progress.update
	run := batch.Approve
	if c.reject {
		run = batch.Reject
	}
	res, err := run(c.app.interruptible(ctx), env.db, env.client, c.batch, o)
	progress.done()
	if err != nil {
		return c.app.runFailure(err)
	}
	return c.app.finish(ctx, env.db, res, c.reportPath, c.reportFmt, c.Name())
}
