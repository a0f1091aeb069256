package manifest_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/payouts/payouts/batch/manifest"
)

func TestParseCard(t *testing.T) {
	tests := []struct{ in, want string }{
		{"4242424242424242", "4242424242424242"},
		{" 4242 4242 4242 4242 ", "4242424242424242"},
		{"4242-4242-4242-4242", "4242424242424242"},
		{"4242\u00a04242\u00a04242\u00a04242", "4242424242424242"},
		{"2200000000000004", "2200000000000004"},
		{"5555555555554444", "5555555555554444"},
		{"4222222222222", "4222222222222"},             // 13 digits
		{"6200000000000000000", "6200000000000000000"}, // 19 digits
	}
	for _, tt := range tests {
		got, err := manifest.ParseCard(tt.in)
		if err != nil || got.Digits() != tt.want {
			t.Errorf("ParseCard(%q) = %s, %v; want %s", tt.in, got.Mask(), err, tt.want)
		}
	}
}

func TestParseCardRefuses(t *testing.T) {
	tests := []struct {
		in     string
		damage bool   // also ErrSpreadsheetDamage
		msg    string // part of the message
	}{
		{"", false, "empty"},
		{"4242424242424241", false, "Luhn"},
		{"4242424242424240", false, "15th"}, // Luhn fails, and the 16th digit is 0: the hint suspects a spreadsheet
		{"424242424242", false, "12 digits"},
		{"42424242424242424242", false, "20 digits"},
		{"4242x4242424242424", false, "contains 'x'"},
		{"4242/4242/4242/4242", false, "contains '/'"},
		{"４２４２４２４２４２４２４２４２", false, "non-ASCII"},
		{"4.24242E+15", true, "scientific notation"},
		{"4,24242E+15", true, "scientific notation"},
		{"4.24242e15", true, "scientific notation"},
		{"4242424242424240.0", true, "ends in .0"},
		{"4242424242424240,00", true, "ends in ,00"},
		{"'4242424242424242", true, "apostrophe"},
		{"’4242424242424242", true, "apostrophe"},
		{`="4242424242424242"`, true, "formula"},
		{"=4242424242424242", true, "formula"},
	}
	for _, tt := range tests {
		got, err := manifest.ParseCard(tt.in)
		if err == nil {
			t.Errorf("ParseCard(%q) = %s, want an error", tt.in, got.Mask())
			continue
		}
		if !errors.Is(err, manifest.ErrCard) {
			t.Errorf("ParseCard(%q) error %q does not wrap ErrCard", tt.in, err)
		}
		if got := errors.Is(err, manifest.ErrSpreadsheetDamage); got != tt.damage {
			t.Errorf("ParseCard(%q) error %q: errors.Is ErrSpreadsheetDamage = %v, want %v", tt.in, err, got, tt.damage)
		}
		if !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("ParseCard(%q) error %q, want it to mention %q", tt.in, err, tt.msg)
		}
		if strings.Contains(err.Error(), "42424242") {
			t.Errorf("ParseCard(%q) error %q shows the digits", tt.in, err)
		}
	}
}

func TestPANAccessors(t *testing.T) {
	p, err := manifest.ParseCard("4242 4242 4242 4242")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ name, got, want string }{
		{"Mask", p.Mask(), "424242******4242"},
		{"BIN", p.BIN(), "424242"},
		{"Last4", p.Last4(), "4242"},
		{"Digits", p.Digits(), "4242424242424242"},
		{"Mask 13", manifest.PAN("4222222222222").Mask(), "422222***2222"},
		{"Mask short", manifest.PAN("1234").Mask(), "****"},
	} {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
}

// TestPANNeverPrints: every way of printing a PAN or a row holding one
// shows the masked form only.
func TestPANNeverPrints(t *testing.T) {
	const digits = "4242424242424242"
	p := manifest.PAN(digits)
	row := manifest.Row{Line: 2, Reference: "R-1", Amount: 100, Currency: "RUB", Card: p, RecipientName: "Ivan"}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%10s", "%-30v"} {
		outs = append(outs, fmt.Sprintf(verb, p), fmt.Sprintf(verb, row), fmt.Sprintf(verb, &row))
	}
	outs = append(outs, fmt.Sprint(p), fmt.Sprintln(row), p.String(), p.GoString())
	js, err := json.Marshal(row)
	if err != nil {
		t.Fatal(err)
	}
	outs = append(outs, string(js))
	var logs bytes.Buffer
	for _, h := range []slog.Handler{slog.NewTextHandler(&logs, nil), slog.NewJSONHandler(&logs, nil)} {
		l := slog.New(h)
		l.Info("row", "card", p, "row", row)
		l.Info("any", slog.Any("card", p))
	}
	outs = append(outs, logs.String())
	for _, out := range outs {
		if strings.Contains(out, digits) {
			t.Errorf("output shows the full card number: %s", out)
		}
	}
	if !strings.Contains(string(js), "424242******4242") || !strings.Contains(logs.String(), "424242******4242") {
		t.Errorf("masked card missing from JSON %s or logs %s", js, logs.String())
	}
}
