package main

import (
	"strings"
	"testing"

	"github.com/payouts/payouts/pike/sandbox"
)

// TestRunRefusesCardLikeIdentities: a reference or a --batch id that looks
// like a card number would be masked by the ledger in every stored webhook
// and never match its row again (issue 13, finding 7). `payouts run`
// refuses both with exit 2 before anything is sent, and never echoes the
// number.
func TestRunRefusesCardLikeIdentities(t *testing.T) {
	tests := []struct {
		name   string
		ref    string
		args   []string
		number string // must not be shown
		say    string
	}{
		{"reference", "7000000000000005", nil, "7000000000000005", "would be masked"},
		{"grouped reference", "7000 0000 0000 0005", nil, "7000 0000 0000 0005", "would be masked"},
		{"batch id", "OK-1", []string{"--batch", "4242424242424242"}, "4242424242424242", "--batch"},
		{"batch id with dots", "OK-1", []string{"--batch", "4242.4242.4242.4242"}, "4242.4242.4242.4242", "--batch"},
		{"batch id whose metadata prefix is a card number", "OK-1", []string{"--batch", "424242424242424242424242"}, "424242424242424242424242", "--batch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newCLIPike(t, sandbox.Config{})
			m := p.manifest("m.csv", [5]string{tt.ref, "1500.50", "RUB", sandbox.CardMir, "Иванов Иван"})
			code, stdout, stderr := p.run(append([]string{"run", m}, tt.args...)...)
			if code != ExitUsage {
				t.Fatalf("got exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, ExitUsage, stdout, stderr)
			}
			if !strings.Contains(stderr, "looks like a card number") || !strings.Contains(stderr, tt.say) {
				t.Errorf("got stderr %q, want it to say the value looks like a card number (%q)", stderr, tt.say)
			}
			if strings.Contains(stdout+stderr, tt.number) {
				t.Errorf("the output shows %s:\n%s%s", tt.number, stdout, stderr)
			}
			if n := p.requests(); n != 0 {
				t.Errorf("got %d requests to Pike, want none", n)
			}
		})
	}
}
