package report_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/payouts/payouts/batch/report"
)

// openpyxlScript prints, as JSON, the sheets of a workbook and for some
// cells of Rows their value, openpyxl's data type (s string, n number,
// d date) and number format.
const openpyxlScript = `
import json, sys, openpyxl
wb = openpyxl.load_workbook(sys.argv[1])
ws = wb["Rows"]
cells = {}
for ref in ["B2", "D2", "G2", "H2", "M2", "B4", "D3", "D4"]:
    c = ws[ref]
    cells[ref] = [str(c.value), c.data_type, c.number_format]
print(json.dumps({"sheets": wb.sheetnames, "frozen": ws.freeze_panes, "cells": cells}))
`

// TestXLSXOpenpyxl reads the workbook with a second, independent reader
// (Python's openpyxl), where one is installed: what excelize wrote must be
// what another program sees.
func TestXLSXOpenpyxl(t *testing.T) {
	var python string
	for _, p := range []string{"/usr/bin/python3", "python3"} {
		if path, err := exec.LookPath(p); err == nil && exec.Command(path, "-c", "import openpyxl").Run() == nil {
			python = path
			break
		}
	}
	if python == "" {
		t.Skip("no python3 with openpyxl here (Debian: apt-get install python3-openpyxl)")
	}
	db, id := fixture(t)
	path := filepath.Join(t.TempDir(), "report.xlsx")
	if err := os.WriteFile(path, writeFixture(t, db, id, report.XLSX), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(python, "-c", openpyxlScript, path).Output()
	if err != nil {
		t.Fatalf("openpyxl could not read the workbook: %v", err)
	}
	var got struct {
		Sheets []string
		Frozen string
		Cells  map[string][3]string
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if want := []string{"Rows", "Summary", "Control totals", "Findings"}; len(got.Sheets) != 4 || got.Sheets[0] != want[0] || got.Sheets[3] != want[3] {
		t.Errorf("openpyxl: got sheets %q, want %q", got.Sheets, want)
	}
	if got.Frozen != "A2" {
		t.Errorf("openpyxl: got frozen panes at %q, want A2", got.Frozen)
	}
	for ref, want := range map[string][3]string{
		"B2": {"00123", "s", "@"},
		"D2": {"1500.5", "n", "#,##0.00"},
		"G2": {injection, "s", "@"},
		"H2": {"000777", "s", "@"},
		"M2": {"2026-11-30 09:00:00", "d", "yyyy-mm-dd hh:mm:ss"},
		"B4": {"0042", "s", "@"},
		"D3": {"1500", "n", "#,##0"},
		"D4": {"12.345", "n", "#,##0.000"},
	} {
		if got.Cells[ref] != want {
			t.Errorf("openpyxl Rows!%s: got %q, want %q", ref, got.Cells[ref], want)
		}
	}
}
