package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xuri/excelize/v2"
	"golang.org/x/text/encoding/charmap"

	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike/sandbox"
)

// xlsxManifest writes a workbook of rows (the first is the header) to
// name; cells are written by their Go type, so numbers are number cells.
func (p *cliPike) xlsxManifest(name string, rows ...[]any) string {
	p.t.Helper()
	f := excelize.NewFile()
	defer f.Close()
	if err := f.SetSheetName("Sheet1", "Payroll"); err != nil {
		p.t.Fatal(err)
	}
	for r, row := range rows {
		for c, v := range row {
			cell, _ := excelize.CoordinatesToCellName(c+1, r+1)
			if err := f.SetCellValue("Payroll", cell, v); err != nil {
				p.t.Fatal(err)
			}
		}
	}
	path := filepath.Join(p.dir, name)
	if err := f.SaveAs(path); err != nil {
		p.t.Fatal(err)
	}
	return path
}

var xlsxManifestHeader = []any{"reference", "amount", "currency", "card_number", "recipient_name", "description"}

// TestRunXLSX: `payouts run` pays an XLSX manifest end to end (validate,
// load, reread for the card numbers with the SHA-256 check), and `rerun`
// takes a corrected workbook.
func TestRunXLSX(t *testing.T) {
	p := newCLIPike(t, sandbox.Config{})
	m := p.xlsxManifest("payroll.xlsx", xlsxManifestHeader,
		[]any{"00123", 1500.5, "RUB", sandbox.CardMir, "Иванов Иван", "Bonus\nNovember"},
		[]any{"X-2", "85,000.00", "RUB", sandbox.CardVisa, "Anna Müller"},
		[]any{"X-3", 20, "EUR", sandbox.CardNotExist, "Boris"},
	)
	if code, stdout, stderr := p.run("validate", m); code != ExitOK || !strings.Contains(stdout, `format:    XLSX workbook, sheet "Payroll"`) {
		t.Fatalf("validate: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr := p.run("run", m)
	if code != ExitPartial {
		t.Fatalf("run: got exit %d, want 1 (X-3 fails)\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	id := batchIDOf(t, stdout)
	rows := p.ledgerRows(id)
	if r := rows["00123"]; r.State != ledger.StateSucceeded || r.Amount != 150050 || r.Description != "Bonus November" || r.Line != 2 {
		t.Errorf("00123: %s amount %d description %q line %d; want succeeded 150050 \"Bonus November\" line 2", r.State, r.Amount, r.Description, r.Line)
	}
	if r := rows["X-2"]; r.State != ledger.StateSucceeded || r.Amount != 8500000 {
		t.Errorf("X-2: %s amount %d, want succeeded 8500000", r.State, r.Amount)
	}
	if r := rows["X-3"]; r.State != ledger.StateFailed || r.Line != 4 {
		t.Errorf("X-3: %s line %d, want failed line 4", r.State, r.Line)
	}
	if n := len(p.sb.Journal()); n != 2 { // the journal holds paid payouts
		t.Errorf("sandbox journal has %d payouts, want 2", n)
	}
	fixed := p.xlsxManifest("fixed.xlsx", xlsxManifestHeader,
		[]any{"00123", 1500.5, "RUB", sandbox.CardMir, "Иванов Иван", "Bonus\nNovember"},
		[]any{"X-2", "85,000.00", "RUB", sandbox.CardVisa, "Anna Müller"},
		[]any{"X-3", 20, "EUR", sandbox.CardMastercard, "Boris"},
	)
	if code, stdout, stderr := p.run("rerun", "--batch", id, fixed); code != ExitOK {
		t.Fatalf("rerun: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if r := p.ledgerRows(id)["X-3"]; r.State != ledger.StateSucceeded {
		t.Errorf("X-3 after rerun: %s, want succeeded", r.State)
	}

	// A card stored as a number is refused before anything is sent.
	before := p.requests()
	bad := p.xlsxManifest("bad.xlsx", xlsxManifestHeader, []any{"N-1", 10, "RUB", 4242424242424242, "Ivan"})
	code, stdout, stderr = p.run("run", bad)
	if code != ExitUsage || !strings.Contains(stdout+stderr, "line 2, column card_number") || !strings.Contains(stdout+stderr, "stored as a number") {
		t.Errorf("card as a number: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, "4242424242424242") {
		t.Errorf("output shows the card number")
	}
	if p.requests() != before {
		t.Errorf("a refused manifest sent %d requests", p.requests()-before)
	}
}

// TestRunWindows1251: a Windows-1251 CSV is refused with one problem that
// names the encoding; with --encoding it is paid, resumed and rerun.
func TestRunWindows1251(t *testing.T) {
	p := newCLIPike(t, sandbox.Config{})
	write := func(name, content string) string {
		b, err := charmap.Windows1251.NewEncoder().String(content)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(p.dir, name)
		if err := os.WriteFile(path, []byte(b), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	const header = "reference;amount;currency;card_number;recipient_name;description\r\n"
	m := write("ru.csv", header+
		"RU-1;1500,50;RUB;"+sandbox.CardMir+";Иванов Иван;Зарплата\r\n"+
		"RU-2;2 000,00;RUB;"+sandbox.CardNotExist+";Петрова Анна;Премия\r\n")
	code, stdout, stderr := p.run("run", m)
	if code != ExitUsage || strings.Count(stdout+stderr, "line ") != 1 || !strings.Contains(stdout+stderr, "--encoding windows-1251") {
		t.Fatalf("run without --encoding: exit %d, want 2 with one problem naming windows-1251\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if p.requests() != 0 {
		t.Fatalf("sent %d requests for a refused file", p.requests())
	}
	code, stdout, stderr = p.run("run", m, "--encoding", "windows-1251")
	if code != ExitPartial {
		t.Fatalf("run --encoding windows-1251: exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	id := batchIDOf(t, stdout)
	if r := p.ledgerRows(id)["RU-1"]; r.State != ledger.StateSucceeded || r.RecipientName != "Иванов Иван" || r.Description != "Зарплата" {
		t.Errorf("RU-1: %s %q %q", r.State, r.RecipientName, r.Description)
	}
	// Running it again (a resume) reads it with the same encoding and pays
	// nothing more.
	if n := len(p.sb.Journal()); n != 1 {
		t.Errorf("journal has %d payouts after the run, want 1", n)
	}
	if code, stdout, stderr := p.run("run", m, "--encoding", "windows-1251"); code != ExitPartial {
		t.Errorf("second run: exit %d\n%s%s", code, stdout, stderr)
	}
	if n := len(p.sb.Journal()); n != 1 {
		t.Errorf("journal has %d payouts after two runs, want still 1", n)
	}
	fixed := write("ru-fixed.csv", header+
		"RU-1;1500,50;RUB;"+sandbox.CardMir+";Иванов Иван;Зарплата\r\n"+
		"RU-2;2 000,00;RUB;"+sandbox.CardVisa+";Петрова Анна;Премия\r\n")
	if code, stdout, stderr := p.run("rerun", "--batch", id, fixed, "--encoding", "windows-1251"); code != ExitOK {
		t.Fatalf("rerun: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if r := p.ledgerRows(id)["RU-2"]; r.State != ledger.StateSucceeded || r.RecipientName != "Петрова Анна" {
		t.Errorf("RU-2 after rerun: %s %q", r.State, r.RecipientName)
	}
	if code, _, stderr := p.run("validate", m, "--encoding", "koi8-r"); code != ExitUsage || !strings.Contains(stderr, "--encoding") {
		t.Errorf("--encoding koi8-r: exit %d %s", code, stderr)
	}
}
