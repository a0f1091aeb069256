package main

import (
	"context"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/ledger"
)

// serveCommand implements `payouts serve`.
type serveCommand struct {
	app   *App
	flags payingFlags
	scan  time.Duration
	web   consoleFlags
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

With --web ADDR it also serves the finance console (see README, "The finance
console"): sign-in, upload with whole-file validation, four-eyes approval,
live progress, reports. An approved upload is paid by this process with the
engine of run (--confirm auto, every check) from the uploaded file, kept
encrypted beside the ledger until every row is final.

Example:
  payouts serve --listen 0.0.0.0:8080 --ledger /var/lib/payouts/payouts.db
  payouts serve --web 10.0.0.5:8443 --tls-cert console.crt --tls-key console.key`
}

func (c *serveCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet(c.app, c)
	c.flags.register(fs, false)
	fs.DurationVar(&c.scan, "scan-every", 30*time.Second, "how often to look for batches with rows in flight")
	fs.env("scan-every", "PAYOUTS_SCAN_EVERY")
	c.web.register(fs)
	c.flags.ledger.registerFingerprintKey(fs)
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("serve takes no arguments")
	}
	if err := c.web.check(); err != nil {
		return err
	}
	// The console loads uploads into the ledger: it fingerprints cards.
	c.flags.cards = c.web.addr != ""
	pay, err := c.flags.open(ctx, c.app)
	if err != nil {
		return err
	}
	defer pay.close()
	if c.web.addr != "" {
		con, err := c.web.start(ctx, pay, &c.flags.ledger, c.flags.config(pay), pay.log)
		if err != nil {
			return err
		}
		defer con.close()
	}
	err = batch.Serve(ctx, pay.db, pay.client, batch.SettleOptions{
		Config: c.flags.config(pay), Intake: pay.intake, Owner: ledger.CurrentOwner("payouts serve"),
	}, c.scan)
	if err != nil {
		return err
	}
	return nil
}
