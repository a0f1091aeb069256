package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// manifestCorpus is where the broken manifests live (batch/manifest owns
// them); the golden outputs of `payouts validate` are validateGoldenDir.
const manifestCorpus = "../../batch/manifest/testdata"

// validateGoldenDir holds the golden outputs (refresh with
// go test ./cmd/payouts -run ValidateGolden -update).
const validateGoldenDir = "testdata/validate"

// runApp runs the command line in-process.
func runApp(t *testing.T, env map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	app := &App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}
	code = app.Main(context.Background(), args)
	return code, out.String(), errb.String()
}

type validateCase struct {
	name string   // golden file name
	file string   // manifest, relative to the repository root
	args []string // extra flags
	exit int
}

func validateCases(t *testing.T) []validateCase {
	cases := []validateCase{
		{"samples-payroll", "samples/payroll.csv", nil, 0},
		{"samples-payroll-semicolon", "samples/payroll-semicolon.csv", nil, 0},
		{"samples-payroll-errors", "samples/payroll-errors.csv", nil, 2},
		{"samples-payroll-control-totals", "samples/payroll.csv", []string{"--expect-rows", "21", "--expect-total", "RUB:1320191.48", "--expect-total", "EUR:5550.50"}, 2},
		{"samples-payroll-control-totals-ok", "samples/payroll.csv", []string{"--expect-rows", "20", "--expect-total", "RUB:1 320 191,49", "--expect-total", "EUR:5550.50", "--expect-total", "USD:4075"}, 0},
		{"extra-columns-allowed", "batch/manifest/testdata/extra-columns.csv", []string{"--allow-extra-columns"}, 0},
		{"duplicates-allowed", "batch/manifest/testdata/duplicates.csv", []string{"--allow-duplicates"}, 2},
		{"duplicate-payout-allowed", "batch/manifest/testdata/duplicate-payout.csv", []string{"--allow-duplicates"}, 0},
		{"max-rows", "samples/payroll.csv", []string{"--max-rows", "5"}, 2},
		{"caps", "samples/payroll.csv", []string{"--max-amount", "RUB:100000", "--max-amount", "EUR:2000", "--max-total", "USD:4000"}, 2},
	}
	files, err := filepath.Glob(filepath.Join(manifestCorpus, "*.csv"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus in %s: %v", manifestCorpus, err)
	}
	valid := map[string]bool{"bom-comma-crlf": true, "cyrillic": true}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".csv")
		exit := 2
		if valid[name] {
			exit = 0
		}
		cases = append(cases, validateCase{name, "batch/manifest/testdata/" + filepath.Base(f), nil, exit})
	}
	return cases
}

// TestValidateGolden runs `payouts validate` on the samples and the corpus
// of broken files, in text and JSON, against golden outputs (refresh with
// go test ./cmd/payouts -run ValidateGolden -update).
func TestValidateGolden(t *testing.T) {
	for _, tc := range validateCases(t) {
		for _, format := range []string{"text", "json"} {
			t.Run(tc.name+"/"+format, func(t *testing.T) {
				args := append([]string{"validate", "../../" + tc.file, "--format", format}, tc.args...)
				code, stdout, stderr := runApp(t, nil, args...)
				if code != tc.exit {
					t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.exit, stdout, stderr)
				}
				if stderr != "" {
					t.Errorf("stderr: %s", stderr)
				}
				got := "# payouts " + strings.Join(args, " ") + "\n# exit " + strconv.Itoa(code) + "\n" + stdout
				got = strings.ReplaceAll(got, "../../", "")
				ext := map[string]string{"text": ".txt", "json": ".json.txt"}[format]
				checkTextGolden(t, filepath.Join(validateGoldenDir, tc.name+ext), got)
				if format == "json" {
					var v struct {
						Valid       bool `json:"valid"`
						ErrorsTotal int  `json:"errors_total"`
					}
					if err := json.Unmarshal([]byte(stdout), &v); err != nil {
						t.Fatalf("output is not JSON: %v", err)
					}
					if v.Valid != (tc.exit == 0) || (v.ErrorsTotal == 0) != (tc.exit == 0) {
						t.Errorf("JSON valid %v, errors_total %d; want valid %v", v.Valid, v.ErrorsTotal, tc.exit == 0)
					}
				}
			})
		}
	}
}

// TestValidateNeverShowsCardNumbers: no output of validate, in any format,
// contains a card number of the input, written as in the file or as digits.
func TestValidateNeverShowsCardNumbers(t *testing.T) {
	checked := 0
	for _, tc := range validateCases(t) {
		data, err := os.ReadFile("../../" + tc.file)
		if err != nil {
			t.Fatal(err)
		}
		pans := cardNumbersIn(string(data))
		for _, format := range []string{"text", "json"} {
			args := append([]string{"validate", "../../" + tc.file, "--format", format}, tc.args...)
			_, stdout, stderr := runApp(t, nil, args...)
			for _, p := range pans {
				if strings.Contains(stdout, p) || strings.Contains(stderr, p) {
					t.Errorf("%s (%s) shows card number %s", tc.name, format, p)
				}
			}
			checked += len(pans)
		}
	}
	if checked < 100 {
		t.Errorf("only %d card numbers checked; the corpus should have many more", checked)
	}
}

// cardNumbersIn returns the Luhn-valid runs of 13–19 digits in s (single
// spaces or dashes between digits allowed), as written and as digits only.
func cardNumbersIn(s string) []string {
	var out []string
	var digits []byte
	start, end := -1, -1
	sep := false
	flush := func() {
		if n := len(digits); n >= 13 && n <= 19 && luhnValid(digits) {
			out = append(out, string(digits), s[start:end])
		}
		digits, start, sep = digits[:0], -1, false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= '0' && c <= '9':
			if start < 0 {
				start = i
			}
			digits = append(digits, c)
			end, sep = i+1, false
		case (c == ' ' || c == '-') && len(digits) > 0 && !sep:
			sep = true
		default:
			flush()
		}
	}
	flush()
	return out
}

func luhnValid(d []byte) bool {
	sum, double := 0, false
	for i := len(d) - 1; i >= 0; i-- {
		v := int(d[i] - '0')
		if double {
			if v *= 2; v > 9 {
				v -= 9
			}
		}
		sum += v
		double = !double
	}
	return sum%10 == 0
}

func TestValidateUsage(t *testing.T) {
	sample := "../../samples/payroll.csv"
	dups := manifestCorpus + "/duplicates.csv"
	tests := []struct {
		name   string
		env    map[string]string
		args   []string
		exit   int
		output string // part of stdout or stderr
	}{
		{"valid", nil, []string{"validate", sample}, 0, "valid, 20 rows"},
		{"flags before the file", nil, []string{"validate", "--format", "json", sample}, 0, `"valid": true`},
		{"flags after the file", nil, []string{"validate", sample, "--format", "json"}, 0, `"valid": true`},
		{"no file", nil, []string{"validate"}, 2, "exactly one MANIFEST"},
		{"two files", nil, []string{"validate", sample, sample}, 2, "exactly one MANIFEST"},
		{"bad format", nil, []string{"validate", sample, "--format", "xml"}, 2, "--format"},
		{"unknown flag", nil, []string{"validate", sample, "--frobnicate"}, 2, "frobnicate"},
		{"bad expect-total", nil, []string{"validate", sample, "--expect-total", "RUB:1,500"}, 2, "ambiguous"},
		{"expect-total twice", nil, []string{"validate", sample, "--expect-total", "RUB:1", "--expect-total", "rub:2"}, 2, "given twice"},
		{"max-amount twice", nil, []string{"validate", sample, "--max-amount", "RUB:1000000", "--max-amount", "rub:1"}, 2, "given twice"},
		{"max-total twice in the environment", map[string]string{"PAYOUTS_MAX_TOTAL": "EUR:1;eur:1000000"}, []string{"validate", sample}, 2, "given twice"},
		{"negative expect-rows", nil, []string{"validate", sample, "--expect-rows", "-1"}, 2, "--expect-rows"},
		{"missing file", nil, []string{"validate", "/nonexistent/payroll.csv"}, 2, "no such file — check the path"},
		{"directory", nil, []string{"validate", manifestCorpus}, 2, "it is a directory"},
		{"duplicates refused", nil, []string{"validate", dups}, 2, "duplicate"},
		{"duplicate payout refused", nil, []string{"validate", manifestCorpus + "/duplicate-payout.csv"}, 2, "allow duplicates (--allow-duplicates)"},
		{"duplicate payout allowed", nil, []string{"validate", manifestCorpus + "/duplicate-payout.csv", "--allow-duplicates"}, 0, "Warnings:"},
		{"duplicate payout allowed by the environment", map[string]string{"PAYOUTS_ALLOW_DUPLICATES": "true"}, []string{"validate", manifestCorpus + "/duplicate-payout.csv"}, 0, `line 2 ("DP-1")`},
		{"expected totals from the environment", map[string]string{"PAYOUTS_EXPECT_TOTAL": "RUB:1320191.49;EUR:5550.50;USD:4075.00", "PAYOUTS_EXPECT_ROWS": "20"}, []string{"validate", sample}, 0, "valid"},
		{"expected totals from the environment differ", map[string]string{"PAYOUTS_EXPECT_TOTAL": "RUB:1320191.49"}, []string{"validate", sample}, 2, "no expected total was given for EUR"},
		{"help", nil, []string{"help", "validate"}, 0, "Example"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := runApp(t, tt.env, tt.args...)
			if code != tt.exit {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.exit, stdout, stderr)
			}
			if !strings.Contains(stdout+stderr, tt.output) {
				t.Errorf("output does not contain %q\nstdout:\n%s\nstderr:\n%s", tt.output, stdout, stderr)
			}
		})
	}
}

// TestManifestFlagsOptions: what `payouts run` gets from the shared flags.
func TestManifestFlagsOptions(t *testing.T) {
	fs := newFlagSet(&App{Stdout: &bytes.Buffer{}, Getenv: func(string) string { return "" }}, &validateCommand{})
	var m manifestFlags
	m.register(fs)
	if err := fs.parse([]string{"--allow-extra-columns", "--allow-duplicates", "--expect-rows", "3", "--expect-total", "rub:10", "--expect-total", "JPY:1 500", "--max-rows", "7"}); err != nil {
		t.Fatal(err)
	}
	o, err := m.options()
	if err != nil {
		t.Fatal(err)
	}
	if !o.AllowExtraColumns || !o.AllowDuplicates || o.ExpectRows != 3 || o.MaxRows != 7 || o.ExpectTotals["RUB"] != 1000 || o.ExpectTotals["JPY"] != 1500 || len(o.ExpectTotals) != 2 {
		t.Errorf("options = %+v", o)
	}
}

// TestValidateNextRunArgs: the next step of a valid file is a command that
// can be pasted: the path quoted for a shell, the reading flags kept.
func TestValidateNextRunArgs(t *testing.T) {
	m := &manifestFlags{encoding: "windows-1251", sheet: "Лист 1"}
	if got, want := m.runArgs("/tmp/it's here.csv"), `'/tmp/it'\''s here.csv' --encoding windows-1251 --sheet 'Лист 1'`; got != want {
		t.Errorf("runArgs = %s, want %s", got, want)
	}
	if got := (&manifestFlags{encoding: "utf-8"}).runArgs("samples/payroll.csv"); got != "samples/payroll.csv" {
		t.Errorf("runArgs = %s, want the path alone", got)
	}
}
