package pike_test

import (
	"testing"

	"github.com/payouts/payouts/pike"
)

func TestLuhnValid(t *testing.T) {
	tests := []struct {
		digits string
		want   bool
	}{
		{"4242424242424242", true},
		{"2200000000000004", true},
		{"4000000000000002", true},
		{"4242424242424241", false},
		{"4242424242424240", false}, // a spreadsheet's 15-digit precision loss
		{"0", true},
		{"", false},
		{"4242-4242", false}, // digits only
		{"42424242424242４2", false},
	}
	for _, tt := range tests {
		if got := pike.LuhnValid(tt.digits); got != tt.want {
			t.Errorf("LuhnValid(%q) = %v, want %v", tt.digits, got, tt.want)
		}
	}
}
