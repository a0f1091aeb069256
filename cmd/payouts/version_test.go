package main

import (
	"runtime"
	"strings"
	"testing"
)

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, stdout, stderr := runApp(t, nil, args...)
		if code != ExitOK || !strings.HasPrefix(stdout, "payouts ") || !strings.Contains(stdout, runtime.Version()) {
			t.Errorf("%v: got exit %d, stdout %q, stderr %q; want 0 and a version line", args, code, stdout, stderr)
		}
	}
}

func TestDidYouMean(t *testing.T) {
	for _, tc := range []struct{ typed, want string }{
		{"versoin", "payouts version"}, {"rn", "payouts run"}, {"staus", "payouts status"}, {"aprove", "payouts approve"},
	} {
		code, _, stderr := runApp(t, nil, tc.typed)
		if code != ExitUsage || !strings.Contains(stderr, "did you mean `"+tc.want+"`") {
			t.Errorf("%s: got exit %d, stderr %q; want 2 and a suggestion of %q", tc.typed, code, stderr, tc.want)
		}
	}
	if code, _, stderr := runApp(t, nil, "frobnicate"); code != ExitUsage || strings.Contains(stderr, "did you mean") {
		t.Errorf("frobnicate: got exit %d, stderr %q; want 2 and no suggestion", code, stderr)
	}
}
