package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/ledger"
)

// rerunCommand implements `payouts rerun`.
type rerunCommand struct {
	app *App

	manifest        manifestFlags
	flags           payingFlags
	safety          safetyFlags
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
them, with rows of the batch never attempted yet. With MANIFEST (a corrected
copy of the batch's file), those rows take the new card, amount, name, email
and description, matched by reference; the changes are recorded in the ledger.
Without it, the batch's own file is read again (it holds the card numbers,
which the ledger never stores).

Succeeded rows are never sent again. Rows in review (Pike reported an error
that only Pike support can resolve) and rows whose outcome is still unknown
are listed, not retried. Rows cancelled for a mismatch need --include-mismatch.
A correction in MANIFEST for a row that is not retried (paid, not attempted
yet, in flight, in review...) is refused with the row and why: nothing is
sent until the manifest says only what will be done (exit 2).

--max-amount and --max-total apply to what the rerun pays: the corrected
amounts of the retried rows and the rows not attempted yet. --dry-run prints
each row it would retry with its changes (amount, card, name...), the totals
per currency, and sends and writes nothing. --confirm hold stops the rows
before they are confirmed, for payouts approve (and keeps the batch held for
payouts serve); without --confirm the batch keeps the mode it was run with.

Example:
  payouts rerun --batch 3f9c2a7d41e0b6aa payroll-2026-11-fixed.csv --dry-run
  payouts rerun --batch 3f9c2a7d41e0b6aa payroll-2026-11-fixed.csv --max-total RUB:500000 --report rerun.csv`
}

func (c *rerunCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet(c.app, c)
	c.manifest.register(fs)
	c.flags.register(fs, true)
	c.flags.registerCards(fs)
	c.safety.register(fs, "", "print the rows that would be retried, with their corrections, and the totals; send nothing, write nothing")
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
	mode, err := c.safety.confirmMode()
	if err != nil {
		return err
	}
	mopts, err := c.manifest.options()
	if err != nil {
		return err
	}
	if c.safety.dryRun {
		return c.dryRun(ctx, fs.Arg(0), mopts)
	}
	pay, err := c.flags.open(ctx, c.app)
	if err != nil {
		return err
	}
	defer pay.close()
	path, b, err := c.manifestOf(ctx, pay.db, fs.Arg(0), mopts)
	if err != nil {
		return err
	}
	cfg := c.flags.config(pay)
	cfg.Confirm = mode
	if mode == "" {
		cfg.Confirm = batch.ParseBatchOptions(b.Options).Confirm
	}
	if cfg.Confirm == batch.ConfirmHold {
		c.app.say("hold mode: rows stop when ready to confirm; `payouts approve --batch " + c.batch + "` confirms them (within " + confirmDeadline + ", or Pike cancels them).")
	}
	progress := c.app.progress(pay.log, b.RowCount)
	res, plan, err := batch.Rerun(c.app.interruptible(ctx), pay.db, pay.client, batch.RerunOptions{
		BatchID: c.batch, Manifest: path, ManifestOptions: mopts, IncludeMismatch: c.includeMismatch,
		Check: func(plan batch.RerunPlan) error { return c.checkCaps(plan) },
		SettleOptions: batch.SettleOptions{
			Config: cfg, Wait: c.flags.wait, Intake: pay.intake, Watch: progress.watch,
			Owner: ledger.CurrentOwner("payouts rerun " + c.batch),
		},
	})
	progress.done()
	var ue *usageError
	switch {
	case errors.Is(err, batch.ErrCorrectionsNotApplied):
		printNotApplied(c.app.errw(), plan)
		return usageErrorf("%v — take those corrections out of %s, or do what each line says", err, path)
	case errors.As(err, &ue):
		return err
	}
	printRerunPlan(c.app.Stdout, plan, false)
	if err != nil {
		return c.app.runFailure(err)
	}
	return c.app.finish(ctx, pay.db, res, c.flags.reportPath, c.flags.reportFmt, c.flags.reportExcel)
}

// manifestOf returns the manifest of the rerun (path, or the batch's own
// file) after validating it, and the batch.
func (c *rerunCommand) manifestOf(ctx context.Context, db *ledger.DB, path string, mopts manifest.Options) (string, ledger.Batch, error) {
	id, err := resolveBatch(ctx, db, c.batch)
	if err != nil {
		return "", ledger.Batch{}, err
	}
	c.batch = id
	if err := refuseConsoleRerun(ctx, db, id); err != nil {
		return "", ledger.Batch{}, err
	}
	b, err := db.Batch(ctx, c.batch)
	if err != nil {
		return "", ledger.Batch{}, err
	}
	if path == "" {
		path = b.ManifestName
	}
	if _, err := manifest.ReadFile(path, mopts, nil); err != nil {
		return "", ledger.Batch{}, c.app.manifestRefusal(path, err)
	}
	return path, b, nil
}

// checkCaps refuses a rerun whose payments exceed the caps.
func (c *rerunCommand) checkCaps(plan batch.RerunPlan) error {
	var rows []capRow
	for _, r := range plan.Retried {
		rows = append(rows, capRow{line: r.Row.Line, reference: r.Row.Reference, amount: r.Amount, currency: r.Currency})
	}
	for _, r := range append(slices.Clip(plan.Pending), plan.Resumed...) {
		rows = append(rows, capRow{line: r.Line, reference: r.Reference, amount: r.Amount, currency: r.Currency})
	}
	problems := c.safety.caps.exceeded(rows, plan.Totals())
	return c.app.capRefusal("rerun of batch "+c.batch, problems)
}

// dryRun prints what the rerun would do; it sends and writes nothing, but
// refuses (exit 2) as the rerun would.
func (c *rerunCommand) dryRun(ctx context.Context, path string, mopts manifest.Options) error {
	log, err := c.app.logger()
	if err != nil {
		return err
	}
	db, err := c.flags.ledger.open(ctx, c.app, c.app.jsonLogger())
	if err != nil {
		return err
	}
	defer db.Close()
	fp, err := c.flags.ledger.fingerprinter(ctx, db, c.flags.pike.signer, log)
	if err != nil {
		return err
	}
	path, b, err := c.manifestOf(ctx, db, path, mopts)
	if err != nil {
		return err
	}
	mode, _ := c.safety.confirmMode()
	if mode == "" {
		mode = batch.ParseBatchOptions(b.Options).Confirm
	}
	plan, err := batch.PlanRerun(ctx, db, batch.RerunOptions{BatchID: c.batch, Manifest: path, ManifestOptions: mopts,
		IncludeMismatch: c.includeMismatch, SettleOptions: batch.SettleOptions{Config: batch.Config{Fingerprinter: fp}}})
	if errors.Is(err, batch.ErrCorrectionsNotApplied) {
		printNotApplied(c.app.errw(), plan)
		return usageErrorf("%v — take those corrections out of %s, or do what each line says", err, path)
	}
	if err != nil {
		return c.app.runFailure(err)
	}
	printRerunPlan(c.app.Stdout, plan, true)
	totals := plan.Totals()
	fmt.Fprintf(c.app.Stdout, "Dry run of a rerun of batch %s (confirm %s): would retry %d rows, start %d never attempted and carry on %d in flight",
		c.batch, mode, len(plan.Retried), len(plan.Pending), len(plan.Resumed))
	for _, cur := range slices.Sorted(maps.Keys(totals)) {
		fmt.Fprintf(c.app.Stdout, "; %s %s", money(totals[cur], cur), cur)
	}
	fmt.Fprintf(c.app.Stdout, "; not retried %d. Nothing was sent and nothing was written.\n", len(plan.Kept))
	return c.checkCaps(plan)
}

// printRerunPlan lists what a rerun did (or, dry, would do) to each row.
func printRerunPlan(w io.Writer, plan batch.RerunPlan, dry bool) {
	retried, start := "retried    ", "started    "
	if dry {
		retried, start = "would retry", "would start"
	}
	for _, r := range plan.Retried {
		fmt.Fprintf(w, "%s line %-5d %-24s %14s %s", retried, r.Row.Line, r.Row.Reference, money(r.Amount, r.Currency), r.Currency)
		for _, ch := range r.Changes {
			fmt.Fprintf(w, "  %s", ch)
		}
		fmt.Fprintln(w)
	}
	for _, r := range plan.Pending {
		fmt.Fprintf(w, "%s line %-5d %-24s %14s %s  never attempted: paid as recorded\n", start, r.Line, r.Reference, money(r.Amount, r.Currency), r.Currency)
	}
	resume := "carried on "
	if dry {
		resume = "would resume"
	}
	for _, r := range plan.Resumed {
		fmt.Fprintf(w, "%s line %-5d %-24s %14s %s  in flight (%s): its outcome is resolved first, then it is paid as recorded\n", resume, r.Line, r.Reference, money(r.Amount, r.Currency), r.Currency, r.State)
	}
	for _, r := range plan.Kept {
		fmt.Fprintf(w, "not retried line %-5d %-24s %s %s\n", r.Line, r.Reference, r.State, r.FailureCode)
	}
}

// printNotApplied lists the corrections a rerun refused, with why.
func printNotApplied(w io.Writer, plan batch.RerunPlan) {
	for _, r := range plan.NotApplied {
		fmt.Fprintf(w, "  line %d, reference %s (%s): %s — not applied: %s\n", r.Row.Line, r.Row.Reference, r.Row.State, strings.Join(r.Changes, "; "), r.Why)
	}
}
