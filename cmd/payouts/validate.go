package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/payouts/payouts/batch/manifest"
)

// validateCommand implements `payouts validate`.
type validateCommand struct {
	app *App

	manifest manifestFlags
	caps     capFlags
	format   string
}

func (c *validateCommand) Name() string { return "validate" }
func (c *validateCommand) Synopsis() string {
	return "parse and validate a manifest; exit 0 valid, 2 not"
}
func (c *validateCommand) Usage() string {
	return `Usage: payouts validate MANIFEST [flags]

Reads the whole manifest and checks every row and the file as a whole,
without sending anything anywhere. Every problem is listed by line and
column with what to do about it, then a summary: rows, totals per currency,
warnings and the file's SHA-256 (the batch id of ` + "`payouts run`" + ` is derived
from it). Card numbers are shown masked (424242******4242).

The same card, amount and currency under two references is refused unless
--allow-duplicates, exactly as ` + "`payouts run`" + ` would refuse it.

Exit codes: 0 valid; 2 invalid (or bad usage); 3 the file cannot be read.

Examples:
  payouts validate samples/payroll.csv
  payouts validate payroll-2026-11.csv --expect-rows 250 \
         --expect-total RUB:4150000.00 --expect-total EUR:2400.00
  payouts validate payroll-2026-11.csv --format json | jq '.errors[] | .line'`
}

func (c *validateCommand) flags() *flagSet {
	fs := newFlagSet(c.app, c)
	c.manifest.register(fs)
	c.caps.register(fs)
	fs.StringVar(&c.format, "format", "text", "output format: text or json")
	fs.env("format", "PAYOUTS_VALIDATE_FORMAT")
	return fs
}

func (c *validateCommand) Run(ctx context.Context, args []string) error {
	fs := c.flags()
	pos, err := manifestParseArgs(fs, args)
	if err != nil {
		return helpOK(err)
	}
	if len(pos) != 1 {
		return usageErrorf("validate needs exactly one MANIFEST argument — see `payouts help validate`")
	}
	if c.format != "text" && c.format != "json" {
		return usageErrorf("--format must be text or json, not %q", c.format)
	}
	opts, err := c.manifest.options()
	if err != nil {
		return err
	}
	c.caps.apply(&opts)
	path := pos[0]
	sum, err := manifest.ReadFile(path, opts, nil)
	var ve *manifest.ValidationError
	if err != nil && !errors.As(err, &ve) {
		return manifestReadError(path, err)
	}
	report := newManifestReport(path, sum, ve)
	if c.format == "json" {
		enc := json.NewEncoder(c.app.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return fmt.Errorf("write output: %w", err)
		}
	} else {
		report.writeText(c.app.Stdout)
		if ve == nil {
			fmt.Fprintf(c.app.Stdout, "\nNext: `payouts run %s` pays it (add --dry-run to see what would be sent first).\n", c.manifest.runArgs(path))
		}
	}
	if ve != nil {
		return &ExitError{Code: ExitUsage}
	}
	return nil
}

// manifestParseArgs parses flags that may come before and after the
// positional arguments (`payouts validate FILE --format json`), which the
// flag package alone stops at, and returns the positional arguments.
func manifestParseArgs(fs *flagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.parse(args); err != nil {
			return nil, err
		}
		if fs.NArg() == 0 {
			return pos, nil
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
		if len(args) == 0 {
			return pos, nil
		}
	}
}

// manifestReport is the outcome of validating a manifest, as printed by
// `payouts validate` (and reusable by other commands).
type manifestReport struct {
	File        string               `json:"file"`
	Valid       bool                 `json:"valid"`
	Rows        int                  `json:"rows"`
	Totals      map[string]string    `json:"totals"`
	TotalsMinor map[string]int64     `json:"totals_minor"`
	SHA256      string               `json:"sha256"`
	Format      string               `json:"format"`             // csv or xlsx
	Encoding    string               `json:"encoding,omitempty"` // of a CSV
	Sheet       string               `json:"sheet,omitempty"`    // of an XLSX
	Delimiter   string               `json:"delimiter"`
	BOM         bool                 `json:"bom"`
	Columns     []string             `json:"columns"`
	ErrorsTotal int                  `json:"errors_total"`
	Errors      []manifestReportItem `json:"errors"`
	Warnings    []manifestReportItem `json:"warnings"`
}

// manifestReportItem is one problem or warning.
type manifestReportItem struct {
	Line    int    `json:"line,omitempty"`
	Column  string `json:"column,omitempty"`
	Value   string `json:"value,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
	text    string
}

func newManifestReport(path string, sum manifest.Summary, ve *manifest.ValidationError) *manifestReport {
	r := &manifestReport{
		File: path, Valid: ve == nil, Rows: sum.Rows, SHA256: sum.SHA256,
		Format: sum.Format, Encoding: sum.Encoding, Sheet: sum.Sheet,
		Delimiter: string(sum.Delimiter), BOM: sum.BOM, Columns: sum.Columns,
		Totals: map[string]string{}, TotalsMinor: map[string]int64{},
		Errors: []manifestReportItem{}, Warnings: []manifestReportItem{},
	}
	if r.Columns == nil {
		r.Columns = []string{}
	}
	for cur, v := range sum.Totals {
		r.Totals[cur] = manifest.FormatAmount(v, cur)
		r.TotalsMinor[cur] = v
	}
	if ve != nil {
		r.ErrorsTotal = ve.Total
		for _, e := range ve.Errors {
			r.Errors = append(r.Errors, newManifestReportItem(e))
		}
	}
	for _, w := range sum.Warnings {
		r.Warnings = append(r.Warnings, newManifestReportItem(w))
	}
	return r
}

func newManifestReportItem(e *manifest.RowError) manifestReportItem {
	it := manifestReportItem{Line: e.Line, Column: e.Column, Value: e.Value, Code: string(e.Code), Hint: e.Hint, text: e.Error()}
	if e.Err != nil {
		it.Message = e.Err.Error()
	}
	return it
}

// writeText prints the report for people: problems, warnings, summary.
func (r *manifestReport) writeText(w io.Writer) {
	if r.Valid {
		fmt.Fprintf(w, "%s: valid, %d rows\n", r.File, r.Rows)
	} else {
		noun := "problems"
		if r.ErrorsTotal == 1 {
			noun = "problem"
		}
		fmt.Fprintf(w, "%s: INVALID, %d %s — nothing can be paid from this file until they are fixed\n", r.File, r.ErrorsTotal, noun)
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Problems:")
		for _, e := range r.Errors {
			fmt.Fprintln(w, "  "+e.text)
		}
		if n := r.ErrorsTotal - len(r.Errors); n > 0 {
			fmt.Fprintf(w, "  … and %d more (not listed)\n", n)
		}
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintln(w)
		fmt.Fprintln(w, "Warnings:")
		for _, e := range r.Warnings {
			fmt.Fprintln(w, "  "+e.text)
		}
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Summary:")
	fmt.Fprintf(w, "  rows:      %d\n", r.Rows)
	curs := make([]string, 0, len(r.Totals))
	for c := range r.Totals {
		curs = append(curs, c)
	}
	sort.Strings(curs)
	if len(curs) == 0 {
		fmt.Fprintln(w, "  totals:    none")
	}
	for _, c := range curs {
		fmt.Fprintf(w, "  total %s: %s\n", c, groupDigits(r.Totals[c]))
	}
	fmt.Fprintf(w, "  warnings:  %d\n", len(r.Warnings))
	switch {
	case r.Format == "xlsx" && r.Sheet != "":
		fmt.Fprintf(w, "  format:    XLSX workbook, sheet %q\n", r.Sheet)
	case r.Format == "xlsx":
		fmt.Fprintln(w, "  format:    XLSX workbook")
	case r.Encoding != "" && r.Encoding != "utf-8":
		fmt.Fprintf(w, "  format:    %s, delimiter %q\n", r.Encoding, r.Delimiter)
	default:
		bom := "no BOM"
		if r.BOM {
			bom = "with BOM"
		}
		fmt.Fprintf(w, "  format:    UTF-8 %s, delimiter %q\n", bom, r.Delimiter)
	}
	if len(r.Columns) > 0 {
		fmt.Fprintf(w, "  columns:   %s\n", strings.Join(r.Columns, ", "))
	}
	sha := r.SHA256
	if sha == "" {
		sha = "(not computed: reading stopped before the end of the file)"
	}
	fmt.Fprintf(w, "  sha256:    %s\n", sha)
}
