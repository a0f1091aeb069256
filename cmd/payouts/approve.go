package main

import (
	"context"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/ledger"
)

// approveCommand implements `payouts approve` and `payouts reject`.
type approveCommand struct {
	app    *App
	reject bool

	flags payingFlags
	batch string
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
results like a run. Pike cancels payouts not confirmed within ` + confirmDeadline + `.

Example:
  payouts approve --batch 3f9c2a7d41e0b6aa --report approved.csv`
}

func (c *approveCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet(c.app, c)
	c.flags.register(fs, true)
	fs.StringVar(&c.batch, "batch", "", "batch id")
	fs.env("batch", "PAYOUTS_BATCH")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	if c.batch == "" || fs.NArg() > 0 {
		return usageErrorf("%s needs --batch ID and no arguments", c.Name())
	}
	pay, err := c.flags.open(ctx, c.app)
	if err != nil {
		return err
	}
	defer pay.close()
	if _, err := pay.db.Batch(ctx, c.batch); err != nil {
		return usageErrorf("batch %s: %v — `payouts status` lists batches", c.batch, err)
	}
	n, err := pay.db.CountRows(ctx, c.batch, ledger.StateAwaitingConfirm)
	if err != nil {
		return err
	}
	pay.log.Info(c.Name()+" batch", "batch", c.batch, "awaiting_confirm", n)
	progress := c.app.progress(pay.log, 0)
	o := batch.SettleOptions{
		Config: c.flags.config(pay), Wait: c.flags.wait, Intake: pay.intake, Watch: progress.watch,
		Owner: ledger.CurrentOwner("payouts " + c.Name()),
	}
	run := batch.Approve
	if c.reject {
		run = batch.Reject
	}
	res, err := run(c.app.interruptible(ctx), pay.db, pay.client, c.batch, o)
	progress.done()
	if err != nil {
		return c.app.runFailure(err)
	}
	return c.app.finish(ctx, pay.db, res, c.flags.reportPath, c.flags.reportFmt, c.flags.reportExcel)
}
