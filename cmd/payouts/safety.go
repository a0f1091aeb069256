package main

import (
	"cmp"
	"fmt"
	"maps"
	"slices"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
)

// safetyFlags are what a command that pays (run, rerun) checks before it
// sends anything: the caps, a dry run, and whether a person confirms.
type safetyFlags struct {
	caps    capFlags
	dryRun  bool
	confirm string
}

// register defines the flags; confirm is --confirm's default ("" for the
// batch's own mode) and dryRun the help of --dry-run.
func (f *safetyFlags) register(fs *flagSet, confirm, dryRun string) {
	f.caps.register(fs)
	fs.BoolVar(&f.dryRun, "dry-run", false, dryRun)
	fs.env("dry-run", "PAYOUTS_DRY_RUN")
	usage := "`MODE`: auto confirms every session that matches its row; hold waits for payouts approve"
	if confirm == "" {
		usage += " (default: the batch's mode, hold if it was run with --confirm hold)"
	}
	fs.StringVar(&f.confirm, "confirm", confirm, usage)
	fs.env("confirm", "PAYOUTS_CONFIRM")
}

// confirmMode is --confirm, "" if it was not given and has no default.
func (f *safetyFlags) confirmMode() (batch.ConfirmMode, error) {
	if f.confirm == "" {
		return "", nil
	}
	mode, err := batch.ParseConfirmMode(f.confirm)
	if err != nil {
		return "", usageErrorf("--confirm: %v", err)
	}
	return mode, nil
}

// capFlags are the safety caps: refuse to start when exceeded.
type capFlags struct {
	maxAmount amountsFlag
	maxTotal  amountsFlag
}

func (f *capFlags) register(fs *flagSet) {
	fs.Var(&f.maxAmount, "max-amount", "refuse to run if any row pays more than `CUR:AMOUNT` (repeatable, one per currency; in the variable separate them with ';')")
	fs.env("max-amount", "PAYOUTS_MAX_AMOUNT")
	fs.Var(&f.maxTotal, "max-total", "refuse to run if the batch pays more than `CUR:AMOUNT` in total (repeatable, one per currency; in the variable separate them with ';')")
	fs.env("max-total", "PAYOUTS_MAX_TOTAL")
}

// apply puts the caps into o, so that reading the manifest refuses a row
// over --max-amount on its line and a total over --max-total (run,
// validate).
func (f *capFlags) apply(o *manifest.Options) {
	o.MaxAmount = maps.Clone(map[string]int64(f.maxAmount))
	o.MaxTotal = maps.Clone(map[string]int64(f.maxTotal))
}

// capRow is one payment a command is about to make.
type capRow struct {
	line      int
	reference string
	amount    int64
	currency  string
}

// exceeded returns every cap the payments exceed, in line order: the rows
// over --max-amount (the first 100), then the currencies whose total
// (totals) is over --max-total. A rerun checks its retries this way; run
// and validate check the manifest through manifest.Options (apply).
func (f *capFlags) exceeded(rows []capRow, totals map[string]int64) []string {
	rows = slices.Clone(rows)
	slices.SortStableFunc(rows, func(a, b capRow) int { return cmp.Compare(a.line, b.line) })
	var problems []string
	for _, r := range rows {
		if limit, ok := f.maxAmount[r.currency]; ok && len(problems) < 100 {
			if err := manifest.OverMaxAmount(r.amount, limit, r.currency); err != nil {
				problems = append(problems, fmt.Sprintf("line %d, reference %s: %v", r.line, r.reference, err))
			}
		}
	}
	curs := slices.Sorted(maps.Keys(f.maxTotal))
	for _, cur := range curs {
		if err := manifest.OverMaxTotal(totals[cur], f.maxTotal[cur], cur); err != nil {
			problems = append(problems, err.Error())
		}
	}
	return problems
}

// capRefusal prints the caps exceeded and refuses (exit 2), or returns nil
// if there are none.
func (a *App) capRefusal(what string, problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	for _, p := range problems {
		fmt.Fprintln(a.errw(), "  "+p)
	}
	return usageErrorf("%s: refused, safety caps exceeded; nothing was sent", what)
}
