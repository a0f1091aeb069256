package manifest_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/payouts/payouts/batch/manifest"
)

// TestWindows1251 reads a real Windows-1251 file (what Russian Excel's
// plain "CSV" export writes): without --encoding it is one problem naming
// the encoding and how to save as UTF-8, not one per cell; with it, the
// rows read, and Reread with the same options checks the same SHA-256.
func TestWindows1251(t *testing.T) {
	const path = "testdata/windows-1251.csv"
	sum, err := manifest.ReadFile(path, manifest.Options{}, nil)
	var ve *manifest.ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("ReadFile without encoding: %v, want a ValidationError", err)
	}
	if ve.Total != 1 || len(ve.Errors) != 1 {
		t.Fatalf("%d problems, want exactly 1:\n%v", ve.Total, ve)
	}
	e := ve.Errors[0]
	msg := e.Error()
	for _, want := range []string{"line 2", "not UTF-8", "most likely windows-1251", `"CSV UTF-8 (Comma delimited) (*.csv)"`, "--encoding windows-1251", `"Иванов Иван Иванович"`} {
		if !strings.Contains(msg, want) {
			t.Errorf("problem %q does not say %q", msg, want)
		}
	}
	if !errors.Is(e, manifest.ErrEncoding) || e.Code != manifest.CodeEncoding {
		t.Errorf("problem code %s, want %s", e.Code, manifest.CodeEncoding)
	}
	if sum.SHA256 != "" {
		t.Errorf("SHA256 %q of a file not read to the end, want empty", sum.SHA256)
	}

	opts := manifest.Options{Encoding: "windows-1251"}
	var names []string
	sum, err = manifest.ReadFile(path, opts, func(r manifest.Row) error {
		names = append(names, r.RecipientName+"|"+r.Description)
		return nil
	})
	if err != nil {
		t.Fatalf("ReadFile with windows-1251: %v", err)
	}
	want := []string{"Иванов Иван Иванович|Зарплата за ноябрь", "Петрова Анна|Премия", "Сидоров Пётр|Отпускные; ёлка", "Ёлкина Мария|"}
	if strings.Join(names, "\n") != strings.Join(want, "\n") {
		t.Errorf("rows:\n%s\nwant:\n%s", strings.Join(names, "\n"), strings.Join(want, "\n"))
	}
	if sum.Encoding != "windows-1251" || sum.Format != "csv" || sum.Delimiter != ';' || sum.Rows != 4 || sum.Totals["RUB"] != 150050+200000+35000+120075 {
		t.Errorf("summary %+v", sum)
	}
	n := 0
	if err := manifest.Reread(path, opts, sum.SHA256, func(manifest.Row) error { n++; return nil }); err != nil || n != 4 {
		t.Errorf("Reread with the same options: %d rows, %v; want 4, nil", n, err)
	}
	// Spellings of the option.
	for _, name := range []string{"WINDOWS-1251", "cp1251", "windows_1251"} {
		if _, err := manifest.ReadFile(path, manifest.Options{Encoding: name}, nil); err != nil {
			t.Errorf("Encoding %q: %v", name, err)
		}
	}
}

// TestNotUTF8Once: a 250-row file in a legacy encoding is one problem,
// and a Western one is said to be maybe windows-1252.
func TestNotUTF8Once(t *testing.T) {
	var b strings.Builder
	b.WriteString(manifestHeader)
	for i := range 250 {
		b.WriteString("W-" + strconv.Itoa(i) + "," + strconv.Itoa(i+1) + ",EUR,4242424242424242,J\xfcrgen M\xfcller,,Pr\xe4mie\n")
	}
	_, _, ve := readString(t, b.String(), manifest.Options{})
	if ve == nil || ve.Total != 1 {
		t.Fatalf("problems: %v, want exactly 1", ve)
	}
	msg := ve.Errors[0].Error()
	if !strings.Contains(msg, "maybe windows-1252") || !strings.Contains(msg, `"Jürgen Müller"`) || !strings.Contains(msg, "--encoding windows-1252") {
		t.Errorf("problem %q: want a guess of windows-1252 showing the name as it reads in it", msg)
	}
	_, rows, ve := readString(t, b.String(), manifest.Options{Encoding: "windows-1252"})
	if ve != nil || len(rows) != 250 || rows[0].RecipientName != "Jürgen Müller" {
		t.Fatalf("with windows-1252: %d rows, %v", len(rows), ve)
	}
	// A non-UTF-8 header is the same one problem.
	_, _, ve = readString(t, "reference,amount,currency,card_number,recipient_name,email,\xce\xef\xe8\xf1\xe0\xed\xe8\xe5\nR-1,10,RUB,4242424242424242,Ivan,,\n", manifest.Options{})
	if ve == nil || ve.Total != 1 || !strings.Contains(ve.Errors[0].Error(), "windows-1251") {
		t.Errorf("header not UTF-8: %v, want one problem naming windows-1251", ve)
	}
}

// TestEncodingOption: a UTF-8 file with a BOM read as windows-1251 is a
// mistake said so; an unknown encoding is an options error.
func TestEncodingOption(t *testing.T) {
	_, _, ve := readString(t, "\xef\xbb\xbf"+manifestHeader+"R-1,10,RUB,4242424242424242,Иван,,\n", manifest.Options{Encoding: "windows-1251"})
	if ve == nil || ve.Total != 1 || !errors.Is(ve, manifest.ErrEncoding) || !strings.Contains(ve.Error(), "it is UTF-8") {
		t.Errorf("BOM with windows-1251: %v", ve)
	}
	_, rows, ve := readString(t, manifestHeader+"R-1,10,RUB,4242424242424242,Иван,,\n", manifest.Options{Encoding: "utf-8"})
	if ve != nil || len(rows) != 1 || rows[0].RecipientName != "Иван" {
		t.Errorf("utf-8: %v %v", rows, ve)
	}
	if _, err := manifest.Read(strings.NewReader(manifestHeader), manifest.Options{Encoding: "koi8-r"}, nil); err == nil || !strings.Contains(err.Error(), "unknown encoding") {
		t.Errorf("koi8-r: %v, want an unknown-encoding options error", err)
	}
	// The file's SHA-256 is of its bytes, whatever the encoding.
	path := filepath.Join(t.TempDir(), "ascii.csv")
	content := manifestHeader + "R-1,10,RUB,4242424242424242,Ivan,,\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	a, errA := manifest.ReadFile(path, manifest.Options{}, nil)
	b, errB := manifest.ReadFile(path, manifest.Options{Encoding: "windows-1251"}, nil)
	if errA != nil || errB != nil || a.SHA256 != b.SHA256 || a.SHA256 == "" {
		t.Errorf("SHA-256 utf-8 %q (%v), windows-1251 %q (%v): want equal", a.SHA256, errA, b.SHA256, errB)
	}
}
