package main

import (
	"context"
	"fmt"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/ledger"
)

// rerunCommand implements `payouts rerun`.
type rerunCommand struct {
	app *App

	manifest        manifestFlags
	flags           payingFlags
	batch           string
	includeMismatch bool
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
	c.flags.register(fs, true)
	c.flags.registerCards(fs)
	fs.StringVar(&c.batch, "batch", "", "batch id")
	fs.env("batch", "PAYOUTS_BATCH")
	fs.BoolVar(&c.includeMismatch, "include-mismatch", false, "also retry rows cancelled because their session did not match")
	fs.env("include-mismatch", "PAYOUTS_INCLUDE_MISMATCH")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	if c.batch == "" || fs.NArg() > 1 {
		return usageErrorf("rerun needs --batch ID and at most one MANIFEST")
	}
	mopts, err := c.manifest.options()
	if err != nil {
		return err
	}
	pay, err := c.flags.open(ctx, c.app)
	if err != nil {
		return err
	}
	defer pay.close()
	b, err := pay.db.Batch(ctx, c.batch)
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
	progress := c.app.progress(pay.log, b.RowCount)
	res, plan, err := batch.Rerun(c.app.interruptible(ctx), pay.db, pay.client, batch.RerunOptions{
		BatchID: c.batch, Manifest: path, ManifestOptions: mopts, IncludeMismatch: c.includeMismatch,
		SettleOptions: batch.SettleOptions{
			Config: c.flags.config(pay), Wait: c.flags.wait, Intake: pay.intake, Progress: progress.update,
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
	return c.app.finish(ctx, pay.db, res, c.flags.reportPath, c.flags.reportFmt, c.flags.reportExcel, "rerun")
}
