package main

import (
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/payouts/payouts/batch/manifest"
)

// manifestFlags are the flags that say how a manifest is read and what it
// must add up to, shared by `payouts validate` and `payouts run`.
type manifestFlags struct {
	allowExtraColumns bool
	allowDuplicates   bool
	expectRows        int
	expectTotals      amountsFlag
	maxRows           int
	encoding          string
	sheet             string
}

// register defines the manifest flags on fs.
func (m *manifestFlags) register(fs *flagSet) {
	fs.BoolVar(&m.allowExtraColumns, "allow-extra-columns", false, "accept (and ignore) columns the manifest format does not know")
	fs.env("allow-extra-columns", "PAYOUTS_ALLOW_EXTRA_COLUMNS")
	fs.BoolVar(&m.allowDuplicates, "allow-duplicates", false, "accept the same card, amount and currency under two references (reported as a warning)")
	fs.env("allow-duplicates", "PAYOUTS_ALLOW_DUPLICATES")
	fs.IntVar(&m.expectRows, "expect-rows", 0, "the manifest must have exactly `N` rows (control total; 0 = not checked)")
	fs.env("expect-rows", "PAYOUTS_EXPECT_ROWS")
	fs.Var(&m.expectTotals, "expect-total", "the manifest must pay exactly `CUR:AMOUNT` in that currency, e.g. RUB:150000.00 (repeatable, one per currency; every currency of the file then needs one; in the variable separate them with ';')")
	fs.env("expect-total", "PAYOUTS_EXPECT_TOTAL")
	fs.IntVar(&m.maxRows, "max-rows", manifest.DefaultMaxRows, "refuse a manifest with more than `N` rows")
	fs.env("max-rows", "PAYOUTS_MAX_ROWS")
	fs.StringVar(&m.encoding, "encoding", "utf-8", "character encoding of a CSV manifest: utf-8, windows-1251 (Russian Excel's plain \"CSV\") or windows-1252; give the same one to every run and rerun of the file")
	fs.env("encoding", "PAYOUTS_ENCODING")
	fs.StringVar(&m.sheet, "sheet", "", "worksheet of an XLSX manifest to read (default: the first visible one)")
	fs.env("sheet", "PAYOUTS_SHEET")
}

// options returns the manifest.Options the flags ask for, or a usage
// error.
func (m *manifestFlags) options() (manifest.Options, error) {
	if m.expectRows < 0 {
		return manifest.Options{}, usageErrorf("--expect-rows must not be negative")
	}
	if m.maxRows <= 0 {
		return manifest.Options{}, usageErrorf("--max-rows must be positive")
	}
	o := manifest.Options{
		AllowExtraColumns: m.allowExtraColumns,
		AllowDuplicates:   m.allowDuplicates,
		ExpectRows:        m.expectRows,
		MaxRows:           m.maxRows,
		Encoding:          m.encoding,
		Sheet:             m.sheet,
	}
	if _, err := manifest.EncodingName(m.encoding); err != nil {
		return manifest.Options{}, usageErrorf("--encoding %q: want utf-8, windows-1251 or windows-1252", m.encoding)
	}
	o.ExpectTotals = maps.Clone(map[string]int64(m.expectTotals))
	return o, nil
}

// amountsFlag is a repeatable CUR:AMOUNT flag (--expect-total,
// --max-amount, --max-total), parsed by manifest.ParseTotal; one value may
// also hold several separated by ';' (amounts may contain ',' and spaces).
// A currency given twice is an error: which of two limits or totals was
// meant is not for the program to guess.
type amountsFlag map[string]int64

func (t *amountsFlag) String() string {
	if t == nil || len(*t) == 0 {
		return ""
	}
	parts := make([]string, 0, len(*t))
	for cur, v := range *t {
		parts = append(parts, cur+":"+manifest.FormatAmount(v, cur))
	}
	sort.Strings(parts)
	return strings.Join(parts, ";")
}

func (t *amountsFlag) Set(s string) error {
	for part := range strings.SplitSeq(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		cur, minor, err := manifest.ParseTotal(part)
		if err != nil {
			return err
		}
		if *t == nil {
			*t = amountsFlag{}
		}
		if _, dup := (*t)[cur]; dup {
			return fmt.Errorf("%s given twice; give one amount per currency", cur)
		}
		(*t)[cur] = minor
	}
	return nil
}

// runArgs is the manifest argument of a `payouts run` of path, with the
// reading flags it needs again (the file's encoding and sheet).
func (m *manifestFlags) runArgs(path string) string {
	args := []string{shellWord(path)}
	if m.encoding != "" && m.encoding != "utf-8" {
		args = append(args, "--encoding", shellWord(m.encoding))
	}
	if m.sheet != "" {
		args = append(args, "--sheet", shellWord(m.sheet))
	}
	return strings.Join(args, " ")
}

// shellWord quotes s for a POSIX shell when it holds anything but letters,
// digits and / . _ - : characters.
func shellWord(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789/._-:") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
