package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"unicode/utf8"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/internal/pan"
	"github.com/payouts/payouts/ledger"
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

Reads the ledger only; never talks to Pike.

Without --batch: one line per batch in the ledger, newest first: id,
creation time (UTC), rows, manifest file and the rows per state.
With --batch: the batch's rows counted and summed per state and currency,
what was paid of the manifest's total per currency, then, first 20 of each,
the rows needing attention (failed, cancelled, mismatch, review, with Pike's
failure code) and the rows not finished yet (with what each waits for).
` + "`payouts report`" + ` lists every row.

Examples:
  payouts status --ledger /var/lib/payouts/payouts.db
  payouts status --batch 3f9c2a7d41e0b6aa`
}

func (c *statusCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet(c.app, c)
	c.ledger.register(fs)
	fs.StringVar(&c.batch, "batch", "", "show one batch in detail (ids are in the table without --batch)")
	fs.env("batch", "PAYOUTS_BATCH")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	if fs.NArg() > 0 {
		return usageErrorf("status takes no arguments — did you mean --batch %s?", fs.Arg(0))
	}
	db, err := c.ledger.open(ctx, c.app, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	if c.batch != "" {
		if c.batch, err = resolveBatch(ctx, db, c.batch); err != nil {
			return err
		}
		if err := printBatchSummary(ctx, c.app.Stdout, db, c.batch); err != nil {
			return err
		}
		return c.app.statusNext(ctx, db, c.batch)
	}
	batches, err := db.Batches(ctx)
	if err != nil {
		return err
	}
	if len(batches) == 0 {
		fmt.Fprintln(c.app.Stdout, "no batches in this ledger")
		return nil
	}
	tw := tabwriter.NewWriter(c.app.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "batch\tcreated (UTC)\trows\tmanifest\tstates")
	for _, b := range batches {
		counts, err := batch.CountsOf(ctx, db, b.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", b.ID, b.CreatedAt.UTC().Format("2006-01-02 15:04:05"), b.RowCount,
			filepath.Base(b.ManifestName), countsLine(counts))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	return nil
}

// minBatchPrefix is the shortest prefix that may name a batch (git's 4).
const minBatchPrefix = 4

// resolveBatch returns the id of the batch that id names: the batch of
// that id, or, like git, the only batch whose id starts with it. No batch,
// or a prefix several batches share (they are listed), is a usage error
// (exit 2) naming the way out; a ledger that cannot tell is infrastructure.
func resolveBatch(ctx context.Context, db *ledger.DB, id string) (string, error) {
	if pan.Contains(id) {
		// Pasted where the batch id goes; never echoed.
		return "", usageErrorf("--batch holds a card number (%s), never a batch id — `payouts status` lists the batches", pan.Scrub(id))
	}
	_, err := db.Batch(ctx, id)
	switch {
	case err == nil:
		return id, nil
	case !errors.Is(err, ledger.ErrNotFound):
		return "", fmt.Errorf("batch %s: %w", id, err)
	}
	if utf8.RuneCountInString(id) < minBatchPrefix {
		// "approve --batch 3 --yes" must not act on whichever batch happens
		// to start with 3.
		return "", usageErrorf("no batch %s in ledger %s, and a shortened batch id needs at least %d characters — `payouts status` lists the batches", id, db.Path(), minBatchPrefix)
	}
	batches, err := db.Batches(ctx)
	if err != nil {
		return "", fmt.Errorf("list batches: %w", err)
	}
	var found []string
	for _, b := range batches {
		if id != "" && strings.HasPrefix(b.ID, id) {
			found = append(found, b.ID)
		}
	}
	switch len(found) {
	case 0:
		return "", usageErrorf("no batch %s in ledger %s — `payouts status` lists the batches", id, db.Path())
	case 1:
		return found[0], nil
	}
	slices.Sort(found)
	return "", usageErrorf("batch id %s is ambiguous: it starts %s — give more of it", id, strings.Join(found, ", "))
}

// statusNext ends `status --batch` with the next steps, as a run of the
// batch would: rows held for approval (hold mode) wait for a person.
func (a *App) statusNext(ctx context.Context, db *ledger.DB, id string) error {
	b, err := db.Batch(ctx, id)
	if err != nil {
		return fmt.Errorf("batch %s: %w", id, err)
	}
	counts, err := batch.CountsOf(ctx, db, id)
	if err != nil {
		return err
	}
	if err := printDecisions(ctx, a.Stdout, db, id); err != nil {
		return err
	}
	res := batch.Result{Batch: b, Counts: counts}
	if batch.ParseBatchOptions(b.Options).Confirm == batch.ConfirmHold {
		res.Held = counts[ledger.StateAwaitingConfirm]
	}
	return a.nextSteps(ctx, a.Stdout, db, res)
}

// printDecisions lists who approved or rejected rows of the batch, and
// when, from the batch's audit log.
func printDecisions(ctx context.Context, w io.Writer, db *ledger.DB, id string) error {
	decisions, err := db.Decisions(ctx, id)
	if err != nil {
		return fmt.Errorf("decisions of batch %s: %w", id, err)
	}
	if len(decisions) > 0 {
		fmt.Fprintln(w, "Approvals:")
	}
	for _, e := range decisions {
		fmt.Fprintf(w, "  %s UTC  %s\n", e.At.UTC().Format("2006-01-02 15:04:05"), e.Detail)
	}
	return nil
}
