package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
)

// runCommand implements `payouts run`.
type runCommand struct {
	app *App

	manifest manifestFlags
	flags    payingFlags
	engine   engineFlags
	safety   safetyFlags

	batchID string
}

func (c *runCommand) Name() string     { return "run" }
func (c *runCommand) Synopsis() string { return "pay every row of a manifest exactly once" }
func (c *runCommand) Usage() string {
	return `Usage: payouts run MANIFEST [flags]

Validates the whole manifest (nothing is sent if any row is invalid), records
the batch in the ledger, and pays every row through Pike's two-step payout flow:
session/create → session/start/payout → ready_to_confirm → checked
session/confirm (or session/cancel on any mismatch) → payment_finished.

Running the same manifest again resumes the same batch: succeeded rows are
never paid again, rows in flight are resolved with session/status first.
A reference already paid in any batch is skipped.

Example:
  export PIKE_URL=https://proxy-demo.pikepayments.com PIKE_PROJECT=123 \
         PIKE_PRIVATE_KEY=partner.pem PIKE_PUBLIC_KEY=pike.pem
  payouts run payroll-2026-11.csv --expect-rows 250 --expect-total RUB:4150000.00 \
         --max-amount RUB:300000 --report report.csv`
}

// engineFlags are the flags that tune how rows are driven.
type engineFlags struct {
	flow                 string
	leaseWait            time.Duration
	allowRepeatReference bool
}

func (f *engineFlags) register(fs *flagSet) {
	fs.StringVar(&f.flow, "flow", "two-step", "two-step (session/create + start/payout) or single (session/init/payout)")
	fs.env("flow", "PAYOUTS_FLOW")
	fs.DurationVar(&f.leaseWait, "lease-wait", 0, "if another live process holds the batch (e.g. payouts serve finishing it), wait this long for it instead of refusing")
	fs.env("lease-wait", "PAYOUTS_LEASE_WAIT")
	fs.BoolVar(&f.allowRepeatReference, "allow-repeat-reference", false, "pay references that already succeeded in another batch (recorded as an override)")
	fs.env("allow-repeat-reference", "PAYOUTS_ALLOW_REPEAT_REFERENCE")
}

func (f *engineFlags) config(mode batch.ConfirmMode) (batch.Config, error) {
	flow, err := batch.ParseFlow(f.flow)
	if err != nil {
		return batch.Config{}, usageErrorf("--flow: %v", err)
	}
	if f.leaseWait < 0 {
		return batch.Config{}, usageErrorf("--lease-wait must not be negative")
	}
	return batch.Config{Confirm: mode, Flow: flow, LeaseWait: f.leaseWait, AllowRepeatReference: f.allowRepeatReference}, nil
}

func (c *runCommand) flagSet() *flagSet {
	fs := newFlagSet(c.app, c)
	c.manifest.register(fs)
	c.flags.register(fs, true)
	c.flags.registerCards(fs)
	c.engine.register(fs)
	c.safety.register(fs, string(batch.ConfirmAuto), "validate and print what would be paid; send nothing, write nothing")
	fs.StringVar(&c.batchID, "batch", "", "batch id (default: the first 16 hex digits of the manifest's SHA-256)")
	fs.env("batch", "PAYOUTS_BATCH")
	return fs
}

func (c *runCommand) Run(ctx context.Context, args []string) error {
	fs := c.flagSet()
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	if fs.NArg() != 1 {
		return usageErrorf("run needs exactly one MANIFEST argument — see `payouts help run`")
	}
	path := fs.Arg(0)
	if c.batchID != "" {
		if err := batch.CheckBatchID(c.batchID); err != nil {
			return usageErrorf("--batch (PAYOUTS_BATCH): %v; nothing was sent", err)
		}
	}
	mode, err := c.safety.confirmMode()
	if err != nil {
		return err
	}
	cfg, err := c.engine.config(mode)
	if err != nil {
		return err
	}
	mopts, err := c.manifest.options()
	if err != nil {
		return err
	}
	c.safety.caps.apply(&mopts)

	// Fail closed: the whole file is validated, caps included, before
	// anything else.
	sum, err := manifest.ReadFile(path, mopts, nil)
	if err != nil {
		return c.app.manifestRefusal(path, err)
	}
	batchID := c.batchID
	if batchID == "" {
		batchID = batch.BatchIDFor(sum.SHA256)
	}
	if c.safety.dryRun {
		return c.app.dryRun(ctx, path, mopts, batchID, &c.flags.ledger, cfg)
	}

	if err := c.flags.check(); err != nil {
		return err
	}
	if err := c.flags.ledger.resolve(c.app.Getenv); err != nil {
		return err
	}
	c.app.startLine(batchID, sum, c.flags.ledger.path, c.flags.pike.url, cfg.Confirm)
	c.flags.ledger.announced = true
	pay, err := c.flags.open(ctx, c.app)
	if err != nil {
		return err
	}
	defer pay.close()
	if err := refuseConsoleBatch(ctx, pay.db, batchID); err != nil {
		return err
	}
	engine := c.flags.config(pay)
	cfg.PollAfter, cfg.Logger, cfg.Fingerprinter, cfg.Workers = engine.PollAfter, engine.Logger, engine.Fingerprinter, engine.Workers

	if err := c.app.checkBalance(ctx, pay.env, sum, pay.log); err != nil {
		return err
	}
	progress := c.app.progress(pay.log, sum.Rows)
	res, err := batch.Run(c.app.interruptible(ctx), pay.db, pay.client, batch.RunOptions{
		Manifest: path, ManifestOptions: mopts, Summary: sum, BatchID: batchID,
		Config: cfg, Wait: c.flags.wait, Intake: pay.intake, Watch: progress.watch,
		Owner: ledger.CurrentOwner("payouts run " + path),
		// On a PostgreSQL ledger the same run started on several hosts
		// shares the batch: each claims rows (README, "Several hosts").
		Shared: pay.db.Backend() == ledger.BackendPostgres,
	})
	progress.done()
	if err != nil {
		return c.app.runFailure(err)
	}
	return c.app.finish(ctx, pay.db, res, c.flags.reportPath, c.flags.reportFmt, c.flags.reportExcel)
}

// manifestRefusal prints a validation failure and maps it to exit 2, or 3
// when the file could not be read at all.
func (a *App) manifestRefusal(path string, err error) error {
	var ve *manifest.ValidationError
	if errors.As(err, &ve) && onlyCaps(ve) {
		var problems []string
		for _, e := range ve.Errors {
			problems = append(problems, e.Error())
		}
		return a.capRefusal(path, problems)
	}
	if errors.As(err, &ve) {
		fmt.Fprintln(a.errw(), ve.Error())
		return usageErrorf("%s is not valid; nothing was sent — run `payouts validate %s` for the full list", path, path)
	}
	return manifestReadError(path, err)
}

// manifestReadError is the error for a manifest file that cannot be read
// at all: a path that names no file (or a directory) is bad input, exit 2,
// with what to check; a file the process may not read is the machine's
// problem, exit 3.
func manifestReadError(path string, err error) error {
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("cannot read manifest %s: %w", path, err)
	}
	if errors.Is(err, os.ErrNotExist) {
		return usageErrorf("cannot read manifest %s: no such file — check the path; nothing was sent", path)
	}
	if fi, serr := os.Stat(path); serr == nil && fi.IsDir() {
		return usageErrorf("cannot read manifest %s: it is a directory — name the CSV file; nothing was sent", path)
	}
	return usageErrorf("%s: %v; nothing was sent", path, err)
}

// onlyCaps reports whether every problem of ve is a safety cap exceeded:
// the file is valid, and the refusal says which caps to look at.
func onlyCaps(ve *manifest.ValidationError) bool {
	for _, e := range ve.Errors {
		if e.Code != manifest.CodeMaxAmount && e.Code != manifest.CodeMaxTotal {
			return false
		}
	}
	return ve.Total == len(ve.Errors)
}

// runFailure maps an error from a run to an exit code: refusals before any
// money moved are 2, the rest are infrastructure (3).
func (a *App) runFailure(err error) error {
	switch {
	case errors.Is(err, ledger.ErrLeaseHeld):
		return err // another process runs the batch: infrastructure
	case errors.Is(err, ledger.ErrManifestChanged):
		return usageErrorf("%v — the batch id belongs to another manifest; pass another --batch", err)
	case errors.Is(err, batch.ErrManifestChanged), errors.Is(err, batch.ErrNotInBatch), errors.Is(err, batch.ErrNotLoaded),
		errors.Is(err, batch.ErrBatchID):
		return usageErrorf("%v", err)
	}
	return err
}

// checkBalance compares the prefunded wallets (wallet/balance) with what
// the manifest pays and warns when a currency is short: Pike does not
// complete payouts beyond the balance, and a top-up takes days. A short
// balance never stops the run (rows beyond it fail and can be rerun), but
// a Pike that cannot be reached at all does, before any row is touched:
// exit 3, nothing written.
func (a *App) checkBalance(ctx context.Context, env *env, sum manifest.Summary, log *slog.Logger) error {
	bctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	wallets, err := env.client.Balance(bctx)
	if err != nil {
		if pike.Classify(err) == pike.ClassRetryable && ctx.Err() == nil {
			return fmt.Errorf("cannot reach Pike: %w — check --pike-url (PIKE_URL) and the network; nothing was sent", err)
		}
		var ae *pike.APIError
		if errors.As(err, &ae) && ae.Code != pike.CodeAuthorization && errors.Is(err, pike.ErrCredentials) {
			// Not signed or not identified: no call can succeed. (A project
			// without rights to read its balance may still pay.)
			return fmt.Errorf("%w: %w — check the project id (PIKE_PROJECT), the partner key (PIKE_PRIVATE_KEY) and that its public key is registered with Pike; nothing was sent", batch.ErrCredentials, err)
		}
		log.Warn("could not read the wallet balance; paying anyway", "err", err)
		return nil
	}
	have := map[string]int64{}
	for _, w := range wallets {
		have[strings.ToUpper(w.AmountDetails.Currency)] += w.AmountDetails.Amount
	}
	for cur, need := range sum.Totals {
		if bal, ok := have[cur]; ok && bal < need {
			log.Warn("wallet balance below the manifest's total: rows beyond it will fail with insufficient funds",
				"currency", cur, "balance", manifest.FormatAmount(bal, cur), "manifest_total", manifest.FormatAmount(need, cur))
		}
	}
	return nil
}
