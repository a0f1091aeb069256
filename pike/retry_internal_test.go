package pike

import (
	"net/http"
	"testing"
	"time"
)

// TestBackoffBounds checks the full-jitter ceiling: doubling from
// BaseDelay, capped at MaxDelay, never negative.
func TestBackoffBounds(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 10, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}
	ceil := map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 3: 400 * time.Millisecond,
		4: 800 * time.Millisecond, 5: time.Second, 9: time.Second, 60: time.Second}
	for attempt, c := range ceil {
		var maxSeen time.Duration
		for range 2000 {
			d := p.backoff(attempt)
			if d < 0 || d > c {
				t.Fatalf("backoff(%d) = %v, want within [0, %v]", attempt, d, c)
			}
			maxSeen = max(maxSeen, d)
		}
		// Full jitter spreads over the whole range, not a fixed delay.
		if maxSeen < c/2 {
			t.Errorf("backoff(%d): largest of 2000 draws %v, want some above %v", attempt, maxSeen, c/2)
		}
	}
}

func TestRetryPolicyDefaults(t *testing.T) {
	if got := (RetryPolicy{}).withDefaults(); got != DefaultRetryPolicy {
		t.Errorf("got %+v, want %+v", got, DefaultRetryPolicy)
	}
	if got := (RetryPolicy{MaxAttempts: 1, BaseDelay: time.Second, MaxDelay: time.Millisecond}).withDefaults(); got.MaxDelay != time.Second || got.MaxAttempts != 1 {
		t.Errorf("got %+v, want MaxDelay raised to BaseDelay and MaxAttempts kept", got)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0},
		{"0", 0},
		{"-5", 0},
		{"3", 3 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"99999999999", maxRetryAfter},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
		{now.Add(48 * time.Hour).Format(http.TimeFormat), maxRetryAfter},
		{"soon", 0},
		{"1.5", 0},
	}
	for _, tc := range tests {
		if got := parseRetryAfter(tc.in, now); got != tc.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

// TestAPIErrorMasksPANs: whatever Pike puts in an error's code or
// description, the error's text shows card numbers masked.
func TestAPIErrorMasksPANs(t *testing.T) {
	tests := []struct{ in, want string }{
		{"card 4242424242424242 declined", "card 424242******4242 declined"},
		{"card 4242-4242-4242-4242 declined", "card 424242******4242 declined"},
		{"card 4242 4242 4242 4242 declined", "card 424242******4242 declined"},
		{"card 4242.4242.4242.4242 declined", "card 424242******4242 declined"},
		{"card 4242  4242  4242  4242 declined", "card 424242******4242 declined"},
		{"card 7000000000000005 declined", "card 700000******0005 declined"},
		{"amount 150050 rub", "amount 150050 rub"},
		{"session ps_3230", "session ps_3230"},
		{"", ""},
	}
	for _, tc := range tests {
		e := &APIError{Method: MethodStartPayout, HTTPStatus: 400, Code: tc.in, Description: tc.in}
		want := "pike " + MethodStartPayout + ": HTTP 400"
		if tc.want != "" {
			want += ": " + tc.want + ": " + tc.want
		}
		if got := e.Error(); got != want {
			t.Errorf("APIError{%q}.Error(): got %q, want %q", tc.in, got, want)
		}
	}
}
