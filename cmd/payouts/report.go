package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/payouts/payouts/batch/report"
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

Writes the reconciliation report of a batch from the ledger alone (Pike is
not called): one line per manifest row (row, reference, status, amount,
currency, card masked as 424242******4242, recipient_name, session_id,
payout_id, attempts, failure_code, failure_description, created_at,
finished_at), then, each after an empty line, the summary per currency and
status, the control totals (manifest / submitted / succeeded per currency),
the findings that need a person, each with what to do, and the batch's id,
manifest and SHA-256. Amounts are in major units with the currency's digits.

The report can be regenerated at any time, for example after ` + "`payouts serve`" + `
applied late webhooks; it always agrees with the ledger. Cells a spreadsheet
would run as formulas (starting with = + - @, tab or CR) get a leading
apostrophe. --format json carries the same data for machines, unaltered.

Examples:
  payouts report --batch 3f9c2a7d41e0b6aa --output report.csv --excel
  payouts report --batch 3f9c2a7d41e0b6aa --format json | jq '.findings'`
}

func (c *reportCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet(c.app, c)
	c.ledger.register(fs)
	fs.StringVar(&c.batch, "batch", "", "batch id (payouts status lists them)")
	fs.env("batch", "PAYOUTS_BATCH")
	fs.StringVar(&c.output, "output", "", "write the report to `FILE` (atomically: a reader never sees half a report) instead of standard output")
	fs.env("output", "PAYOUTS_REPORT_OUTPUT")
	fs.StringVar(&c.format, "format", "csv", "report `FORMAT`: csv or json")
	fs.env("format", "PAYOUTS_REPORT_FORMAT")
	fs.BoolVar(&c.excel, "excel", false, "CSV for spreadsheets in a Russian or European locale: UTF-8 BOM, ';' separators, decimal comma")
	fs.env("excel", "PAYOUTS_REPORT_EXCEL")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	if c.batch == "" || fs.NArg() > 0 {
		return usageErrorf("report needs --batch ID and no arguments — `payouts status` lists batches")
	}
	format, err := report.ParseFormat(c.format)
	if err != nil {
		return usageErrorf("--format: %v", err)
	}
	if c.excel && format != report.CSV {
		return usageErrorf("--excel shapes the CSV report for spreadsheets; it cannot be combined with --format %s", format)
	}
	db, err := c.ledger.open(ctx, c.app, nil)
	if err != nil {
		return err
	}
	defer db.Close()
	if c.batch, err = resolveBatch(ctx, db, c.batch); err != nil {
		return err
	}
	if c.output == "" {
		if err := report.Write(ctx, db, c.batch, c.app.Stdout, report.Options{Format: format, Excel: c.excel}); err != nil {
			return err
		}
		return nil
	}
	if err := writeReportFile(ctx, db, c.batch, c.output, string(format), c.excel); err != nil {
		return err
	}
	fmt.Fprintf(c.app.errw(), "report of batch %s written to %s\n", c.batch, c.output)
	return nil
}

// writeReportFile writes the report atomically: to a temporary file in the
// same directory, synced, then renamed, so a reader never sees half a report.
func writeReportFile(ctx context.Context, db *ledger.DB, batchID, path, format string, excel bool) error {
	f, err := report.ParseFormat(format)
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("write report: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := report.Write(ctx, db, batchID, io.Writer(tmp), report.Options{Format: f, Excel: excel}); err != nil {
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
