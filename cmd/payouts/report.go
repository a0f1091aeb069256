package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

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
	return `Usage: payouts report --batch ID [--output FILE] [--format csv|excel-csv|json|xlsx]

Writes the reconciliation report of a batch from the ledger alone (Pike is
not called): one line per manifest row (row, reference, status, amount,
currency, card masked as 424242******4242, recipient_name, session_id,
payout_id, attempts, failure_code, failure_description, created_at,
finished_at, description, email), then, each after an empty line, the
summary per currency and status, the control totals (manifest / submitted /
succeeded per currency), the findings that need a person, each with what to
do, and the batch's id, manifest and SHA-256. Amounts are in major units with
the currency's digits.

The report can be regenerated at any time, for example after ` + "`payouts serve`" + `
applied late webhooks; it always agrees with the ledger. Cells a spreadsheet
would run as formulas (starting with = + - @, tab or CR) get a leading
apostrophe.

Formats:
  csv        RFC 4180 with ',' and '.', for scripts and imports
  excel-csv  for a spreadsheet opened by double-click (Russian or European
             locale): UTF-8 BOM, ';', decimal commas; references and ids
             written as ="00123" so leading zeros survive
  json       the same data for machines, unaltered
  xlsx       an Excel workbook: sheets Rows, Summary, Control totals,
             Findings; text as text, amounts as numbers, times as UTC dates.
             Needs --output (or standard output redirected to a file)

Examples:
  payouts report --batch 3f9c2a7d41e0b6aa --output report.xlsx --format xlsx
  payouts report --batch 3f9c2a7d41e0b6aa --output report.csv --format excel-csv
  payouts report --batch 3f9c2a7d41e0b6aa --format json | jq '.findings'`
}

func (c *reportCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet(c.app, c)
	c.ledger.register(fs)
	fs.StringVar(&c.batch, "batch", "", "batch id (payouts status lists them)")
	fs.env("batch", "PAYOUTS_BATCH")
	fs.StringVar(&c.output, "output", "", "write the report to `FILE` (atomically: a reader never sees half a report) instead of standard output")
	fs.env("output", "PAYOUTS_REPORT_OUTPUT")
	fs.StringVar(&c.format, "format", "csv", "report `FORMAT`: "+formatList)
	fs.env("format", "PAYOUTS_REPORT_FORMAT")
	fs.BoolVar(&c.excel, "excel", false, "deprecated: use --format excel-csv")
	fs.env("excel", "PAYOUTS_REPORT_EXCEL")
	fs.hide("excel")
	if err := fs.parse(args); err != nil {
		return helpOK(err)
	}
	if c.batch == "" || fs.NArg() > 0 {
		return usageErrorf("report needs --batch ID and no arguments — `payouts status` lists batches")
	}
	format, err := reportFormat(c.format, c.excel, "--format", "--excel", "PAYOUTS_REPORT_EXCEL")
	if err != nil {
		return err
	}
	if c.excel {
		if log := c.app.jsonLogger(); log != nil {
			log.Warn(excelDeprecation("--excel", "PAYOUTS_REPORT_EXCEL", "--format"))
		} else {
			fmt.Fprintln(c.app.errw(), "payouts: "+excelDeprecation("--excel", "PAYOUTS_REPORT_EXCEL", "--format"))
		}
	}
	if err := checkReportPath(c.output, format, "--output", "--format"); err != nil {
		return err
	}
	if c.output == "" && format.Binary() && isTerminal(c.app.Stdout) {
		return usageErrorf("--format %s writes a binary workbook, not text for a terminal: add --output FILE.xlsx (or redirect standard output to a file)", format)
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
		if err := report.Write(ctx, db, c.batch, c.app.Stdout, report.Options{Format: format}); err != nil {
			return err
		}
		return nil
	}
	if err := writeReportFile(ctx, db, c.batch, c.output, string(format), false); err != nil {
		return err
	}
	fmt.Fprintf(c.app.errw(), "report of batch %s written to %s\n", c.batch, c.output)
	return nil
}

// formatList is the help's list of report formats.
const formatList = "csv, excel-csv (a CSV for spreadsheets: BOM, ';', decimal commas, ids kept as text), json or xlsx (an Excel workbook)"

// reportFormat parses a report format flag (--format, --report-format),
// folding in its deprecated boolean spelling (--excel, --report-excel),
// which means excel-csv and cannot be combined with another format.
func reportFormat(format string, excel bool, flagName, aliasName, aliasEnv string) (report.Format, error) {
	f, err := report.ParseFormat(format)
	if err != nil {
		return "", usageErrorf("%s: %v", flagName, err)
	}
	if !excel {
		return f, nil
	}
	switch f {
	case report.CSV, report.ExcelCSV:
		return report.ExcelCSV, nil
	}
	return "", usageErrorf("%s (or %s) asks for the Excel CSV; it cannot be combined with %s %s — use %s excel-csv alone", aliasName, aliasEnv, flagName, f, flagName)
}

// excelDeprecation is the one line (printed, or logged) when the
// deprecated boolean spelling of excel-csv was used.
func excelDeprecation(aliasName, aliasEnv, flagName string) string {
	return fmt.Sprintf("%s (%s) is deprecated and will be removed: use %s excel-csv (PAYOUTS_REPORT_FORMAT=excel-csv)", aliasName, aliasEnv, flagName)
}

// checkReportPath refuses a report file named .xlsx in a text format: a
// spreadsheet would refuse to open it.
func checkReportPath(path string, f report.Format, pathFlag, formatFlag string) error {
	if strings.EqualFold(filepath.Ext(path), ".xlsx") && f != report.XLSX {
		return usageErrorf("%s %s names an Excel workbook but the report format is %s: add %s xlsx", pathFlag, path, f, formatFlag)
	}
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
