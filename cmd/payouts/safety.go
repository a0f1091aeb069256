package main

import (
	"fmt"
	"sort"
	"strings"

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
	maxAmount totalsFlag
	maxTotal  totalsFlag
}

func (f *capFlags) register(fs *flagSet) {
	fs.Var(&f.maxAmount, "max-amount", "refuse to run if any row pays more than `CUR:AMOUNT` (repeatable, one per currency; in the variable separate them with ';')")
	fs.env("max-amount", "PAYOUTS_MAX_AMOUNT")
	fs.Var(&f.maxTotal, "max-total", "refuse to run if the batch pays more than `CUR:AMOUNT` in total (repeatable, one per currency; in the variable separate them with ';')")
	fs.env("max-total", "PAYOUTS_MAX_TOTAL")
}

// capRow is one payment a command is about to make.
type capRow struct {
	line      int
	reference string
	amount    int64
	currency  string
}

// exceeded returns every cap the payments exceed: the rows over
// --max-amount (the first 100), which visit hands to add, and the
// currencies whose total (totals) is over --max-total.
func (f *capFlags) exceeded(visit func(add func(capRow)) error, totals map[string]int64) ([]string, error) {
	var problems []string
	err := visit(func(r capRow) {
		if limit, ok := f.maxAmount[r.currency]; ok && r.amount > limit && len(problems) < 100 {
			problems = append(problems, fmt.Sprintf("line %d, reference %s: %s %s exceeds --max-amount %s %s",
				r.line, r.reference, manifest.FormatAmount(r.amount, r.currency), r.currency, manifest.FormatAmount(limit, r.currency), r.currency))
		}
	})
	if err != nil {
		return nil, err
	}
	for cur, limit := range f.maxTotal {
		if total := totals[cur]; total > limit {
			problems = append(problems, fmt.Sprintf("total %s %s exceeds --max-total %s %s",
				manifest.FormatAmount(total, cur), cur, manifest.FormatAmount(limit, cur), cur))
		}
	}
	sort.Strings(problems)
	return problems, nil
}

// capRefusal prints the caps exceeded and refuses (exit 2), or returns nil
// if there are none.
func (a *App) capRefusal(what string, problems []string) error {
	if len(problems) == 0 {
		return nil
	}
	for _, p := range problems {
		fmt.Fprintln(a.Stderr, "  "+p)
	}
	return usageErrorf("%s: refused, safety caps exceeded; nothing was sent", what)
}

// totalsFlag is a repeatable CUR:AMOUNT flag.
type totalsFlag map[string]int64

func (t *totalsFlag) String() string {
	if t == nil || len(*t) == 0 {
		return ""
	}
	var parts []string
	for cur, v := range *t {
		parts = append(parts, cur+":"+manifest.FormatAmount(v, cur))
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

func (t *totalsFlag) Set(s string) error {
	for _, part := range strings.Split(s, ";") {
		if strings.TrimSpace(part) == "" {
			continue
		}
		cur, minor, err := manifest.ParseTotal(strings.TrimSpace(part))
		if err != nil {
			return err
		}
		if *t == nil {
			*t = totalsFlag{}
		}
		(*t)[cur] = minor
	}
	return nil
}
