package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/payouts/payouts/pike"
)

// TestSandboxRefusesBadFlags: every flag `payouts sandbox` cannot use is a
// usage error (exit 2) naming the flag, before anything listens.
func TestSandboxRefusesBadFlags(t *testing.T) {
	_, pub, err := writeKeyPair(t.TempDir(), "partner")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		args []string
		say  string
	}{
		{"no key", nil, "sandbox needs --partner-public-key FILE"},
		{"argument", []string{"--partner-public-key", pub, "extra"}, `sandbox takes no arguments, got ["extra"]`},
		{"probability", []string{"--partner-public-key", pub, "--drop-webhooks", "1.5"}, "--drop-webhooks 1.5: a probability is between 0 and 1"},
		{"ids", []string{"--partner-public-key", pub, "--ids", "uuid"}, `--ids "uuid": use prefixed, digits or opaque`},
		{"times", []string{"--partner-public-key", pub, "--times", "unix"}, `--times "unix": use micro, offset, seconds, nano or mixed`},
		{"unknown session", []string{"--partner-public-key", pub, "--unknown-session", "gone:200"}, `--unknown-session "gone:200": want CODE:HTTP`},
		{"balance", []string{"--partner-public-key", pub, "--balance", "zzz:100"}, "--balance: bad balance"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runApp(t, nil, append([]string{"sandbox", "--listen", "127.0.0.1:0"}, tt.args...)...)
			if code != ExitUsage || !strings.Contains(stderr, tt.say) {
				t.Errorf("got exit %d, stderr %q; want exit %d saying %q", code, stderr, ExitUsage, tt.say)
			}
		})
	}
}

// TestSandboxServesUntilCancelled: with valid flags the sandbox writes its
// webhook public key, listens, and exits 0 when its context ends.
func TestSandboxServesUntilCancelled(t *testing.T) {
	dir := t.TempDir()
	_, pub, err := writeKeyPair(dir, "partner")
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "pike-public.pem")
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // serve, then stop at once
	app := &App{Stdin: strings.NewReader(""), Stdout: &strings.Builder{}, Stderr: &strings.Builder{}, Getenv: func(string) string { return "" }}
	args := []string{"sandbox", "--listen", "127.0.0.1:0", "--partner-public-key", pub, "--public-key-out", out, "--ids", "digits", "--times", "mixed", "--unknown-session", "invalid_request:400", "--ambiguous-errors"}
	if code := app.Main(ctx, args); code != ExitOK {
		t.Fatalf("got exit %d, want 0\nstderr:\n%s", code, app.Stderr)
	}
	if _, err := pike.LoadPublicKey(out); err != nil {
		t.Errorf("--public-key-out: %v", err)
	}
	stderr := app.Stderr.(*strings.Builder).String()
	for _, want := range []string{"sandbox listening", "sandbox stopped"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("log lacks %q:\n%s", want, stderr)
		}
	}
}
