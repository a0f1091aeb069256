package sandbox_test

import (
	"testing"

	"github.com/payouts/payouts/pike/sandbox"
)

func TestParseIDFormat(t *testing.T) {
	for _, tt := range []struct {
		name string
		want sandbox.IDFormat
		ok   bool
	}{
		{"prefixed", sandbox.IDPrefixed, true},
		{"digits", sandbox.IDDigits, true},
		{"opaque", sandbox.IDOpaque, true},
		{"Prefixed", 0, false},
		{"", 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sandbox.ParseIDFormat(tt.name)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("ParseIDFormat(%q) = %v, %v; want %v, ok %v", tt.name, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestParseTimeFormat(t *testing.T) {
	for _, tt := range []struct {
		name string
		want sandbox.TimeFormat
		ok   bool
	}{
		{"micro", sandbox.TimeMicroZ, true},
		{"offset", sandbox.TimeOffset, true},
		{"seconds", sandbox.TimeSeconds, true},
		{"nano", sandbox.TimeNano, true},
		{"mixed", sandbox.TimeMixed, true},
		{"rfc3339", 0, false},
		{"", 0, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sandbox.ParseTimeFormat(tt.name)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("ParseTimeFormat(%q) = %v, %v; want %v, ok %v", tt.name, got, err, tt.want, tt.ok)
			}
		})
	}
}

func TestParseErrorAnswer(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want sandbox.ErrorAnswer
		ok   bool
	}{
		{"session_not_found:404", sandbox.ErrorAnswer{Code: "session_not_found", HTTPStatus: 404}, true},
		{"invalid_request:400", sandbox.ErrorAnswer{Code: "invalid_request", HTTPStatus: 400}, true},
		{"internal_error:599", sandbox.ErrorAnswer{Code: "internal_error", HTTPStatus: 599}, true},
		{"session_not_found:200", sandbox.ErrorAnswer{}, false}, // not an error status
		{"session_not_found:600", sandbox.ErrorAnswer{}, false},
		{":404", sandbox.ErrorAnswer{}, false},
		{"session_not_found", sandbox.ErrorAnswer{}, false},
		{"session_not_found:four", sandbox.ErrorAnswer{}, false},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got, err := sandbox.ParseErrorAnswer(tt.in)
			if (err == nil) != tt.ok || got != tt.want {
				t.Errorf("ParseErrorAnswer(%q) = %+v, %v; want %+v, ok %v", tt.in, got, err, tt.want, tt.ok)
			}
		})
	}
}
