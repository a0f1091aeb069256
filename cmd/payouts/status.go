package main

import (
	"context"
	"fmt"
)

// statusCommand implements `payouts status`.
type statusCommand struct {
	app    *App
	ledger ledgerFlag
	batch  string
}

func (c *statusCommand) Name() string     { return "status" }
func (c *statusCommand) Synopsis() string { return "counts and sums by state and currency" }
func (c *statusCommand) Usage() string {
	return `Usage: payouts status [--batch ID]

Without --batch: one line per batch in the ledger, newest first.
With --batch: the batch's rows counted and summed per state and currency,
and the rows that need attention (failed, cancelled, mismatch, review, unknown).

Example:
  payouts status --batch 3f9c2a7d41e0b6aa`
}

func (c *statusCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet(c.app, c)
	c.ledger.register(fs)
	fs.StringVar(&c.batch, "batch", "", "batch id")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("status takes no arguments — did you mean --batch %s?", fs.Arg(0))
	}
	db, err := c.ledger.openExisting(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	if c.batch != "" {
		if _, err := db.Batch(ctx, c.batch); err != nil {
			return usageErrorf("batch %s: %v — `payouts status` lists batches", c.batch, err)
		}
		if err := printBatchSummary(ctx, c.app.Stdout, db, c.batch); err != nil {
			return &ExitError{Code: ExitInfra, Err: err}
		}
		return nil
	}
	batches, err := db.Batches(ctx)
	if err != nil {
		return &ExitError{Code: ExitInfra, Err: err}
	}
	if len(batches) == 0 {
		fmt.Fprintln(c.app.Stdout, "no batches in this ledger")
		return nil
	}
	fmt.Fprintf(c.app.Stdout, "%-18s %-20s %6s  %s\n", "batch", "created", "rows", "states")
	for _, b := range batches {
		counts, err := countsByState(ctx, db, b.ID)
		if err != nil {
			return &ExitError{Code: ExitInfra, Err: err}
		}
		fmt.Fprintf(c.app.Stdout, "%-18s %-20s %6d  %s\n", b.ID, b.CreatedAt.UTC().Format("2006-01-02 15:04:05"), b.RowCount, countsLine(counts))
	}
	return nil
}
