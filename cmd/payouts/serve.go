package main

import (
	"context"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/ledger"
)

// serveCommand implements `payouts serve`.
type serveCommand struct {
	app       *App
	pike      pikeFlags
	ledger    ledgerFlag
	logs      logFlags
	listen    string
	pollAfter time.Duration
	scan      time.Duration
}

func (c *serveCommand) Name() string { return "serve" }
func (c *serveCommand) Synopsis() string {
	return "webhook receiver and poller for batches still in flight"
}
func (c *serveCommand) Usage() string {
	return `Usage: payouts serve [flags]

Runs until stopped (SIGINT/SIGTERM). Receives Pike's webhooks on --listen at
` + WebhookPath + ` (verified, stored in the ledger, then answered 200), and
drives every batch that has rows in flight and no live runner: rows are
resolved with session/status, payouts ready to confirm are checked and
confirmed (batches run with --confirm hold stay held), results are recorded.
Use it beside a nightly cron run for webhooks that arrive after the run exits.
It never starts rows that were not started (only a run with the manifest can).

Example:
  payouts serve --listen 0.0.0.0:8080 --ledger /var/lib/payouts/payouts.db`
}

func (c *serveCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet(c.app, c)
	c.pike.register(fs)
	c.ledger.register(fs)
	c.logs.register(fs)
	fs.StringVar(&c.listen, "listen", "127.0.0.1:8080", "webhook listener address (path "+WebhookPath+")")
	fs.env("listen", "PAYOUTS_LISTEN")
	fs.DurationVar(&c.pollAfter, "poll-after", 2*time.Minute, "ask Pike with session/status about a row that waited this long")
	fs.env("poll-after", "PAYOUTS_POLL_AFTER")
	fs.DurationVar(&c.scan, "scan-every", 30*time.Second, "how often to look for batches with rows in flight")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("serve takes no arguments")
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
	if env.verifier == nil {
		log.Warn("no --pike-public-key: webhooks cannot be verified, so none are received; polling only")
	}
	lst, err := listenWebhooks(ctx, c.listen, env.verifier, env.intake, log)
	if err != nil {
		return &ExitError{Code: ExitInfra, Err: err}
	}
	defer lst.close()
	err = batch.Serve(ctx, env.db, env.client, batch.SettleOptions{
		Config: batch.Config{PollAfter: c.pollAfter, Logger: log, Fingerprinter: env.fingerprinter, Workers: c.pike.workers()},
		Intake: env.intake, Owner: ledger.CurrentOwner("payouts serve"),
	}, c.scan)
	if err != nil {
		return &ExitError{Code: ExitInfra, Err: err}
	}
	return nil
}
