package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/ledger"
)

// reportCommand implements `payouts report`.
type reportCommand struct {
	app    *App
	ledger ledgerFlag
	batch  string
	output string
	format string
	excel  bool
}

func (c *reportCommand) Name() string     { return "report" }
func (c *reportCommand) Synopsis() string { return "write the reconciliation report of a batch" }
func (c *reportCommand) Usage() string {
	return `Usage: payouts report --batch ID [--output FILE] [--format csv|json] [--excel]

Writes the reconciliation report of a batch from the ledger: one line per
manifest row (row, reference, status, amount, currency, masked card,
recipient_name, session_id, payout_id, attempts, failure_code,
failure_description, created_at, finished_at), then the summary per currency
and status, control totals (manifest / submitted / succeeded) and findings
that need a person, each with what to do. It can be regenerated at any time,
for example after late webhooks. Cells a spreadsheet would run as formulas
are neutralised.

Example:
  payouts report --batch 3f9c2a7d41e0b6aa --output report.csv --excel`
}

func (c *reportCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet(c.app, c)
	c.ledger.register(fs)
	fs.StringVar(&c.batch, "batch", "", "batch id (payouts status lists them)")
	fs.StringVar(&c.output, "output", "", "write to FILE instead of standard output")
	fs.StringVar(&c.format, "format", "csv", "csv or json")
	fs.BoolVar(&c.excel, "excel", false, "CSV for spreadsheets: UTF-8 BOM and ';' separators")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	if c.batch == "" || fs.NArg() > 0 {
		return usageErrorf("report needs --batch ID and no arguments — `payouts status` lists batches")
	}
	if _, err := batch.ParseReportFormat(c.format); err != nil {
		return usageErrorf("--format: %v", err)
	}
	db, err := c.ledger.openExisting(ctx)
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Batch(ctx, c.batch); err != nil {
		return usageErrorf("batch %s: %v — `payouts status` lists batches", c.batch, err)
	}
	if c.output == "" {
		if err := batch.WriteReport(ctx, db, c.batch, c.app.Stdout, batch.ReportOptions{Format: batch.ReportFormat(c.format), Excel: c.excel}); err != nil {
			return &ExitError{Code: ExitInfra, Err: err}
		}
		return nil
	}
	if err := writeReportFile(ctx, db, c.batch, c.output, c.format, c.excel); err != nil {
		return &ExitError{Code: ExitInfra, Err: err}
	}
	fmt.Fprintf(c.app.Stderr, "report of batch %s written to %s\n", c.batch, c.output)
	return nil
}

// writeReportFile writes the report atomically: to a temporary file in the
// same directory, synced, then renamed, so a reader never sees half a report.
func writeReportFile(ctx context.Context, db *ledger.DB, batchID, path, format string, excel bool) error {
	f, err := batch.ParseReportFormat(format)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := batch.WriteReport(ctx, db, batchID, io.Writer(tmp), batch.ReportOptions{Format: f, Excel: excel}); err != nil {
		tmp.Close()
		return fmt.Errorf("write report: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("write report: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o640); err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	return os.Rename(tmp.Name(), path)
}
