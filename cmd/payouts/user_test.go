package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike/sandbox"
	"github.com/payouts/payouts/web"
)

// runAppStdin is runApp with stdin.
func runAppStdin(t *testing.T, env map[string]string, stdin string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	app := &App{Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }}
	code := app.Main(context.Background(), args)
	return code, out.String(), errb.String()
}

func TestUserCommand(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PAYOUTS_LEDGER": filepath.Join(dir, "payouts.db")}
	if code, _, stderr := runApp(t, env, "init"); code != ExitOK {
		t.Fatalf("init: %d %s", code, stderr)
	}
	steps := []struct {
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"correct horse battery\n", []string{"user", "add", "anna", "--role", "maker,viewer", "--password-stdin"}, ExitOK, "user anna: add done"},
		{"correct horse battery\n", []string{"user", "add", "anna", "--role", "maker", "--password-stdin"}, ExitUsage, "already exists"},
		{"short\n", []string{"user", "add", "boris", "--role", "approver", "--password-stdin"}, ExitUsage, "at least 12"},
		{"a long enough password\n", []string{"user", "add", "boris", "--role", "boss", "--password-stdin"}, ExitUsage, "unknown role"},
		{"", []string{"user", "add", "boris", "--role", "approver"}, ExitUsage, "--password-stdin"},
		{"another long password\n", []string{"user", "add", "boris", "--role", "approver", "--password-stdin"}, ExitOK, "done"},
		{"", []string{"user", "disable", "nobody"}, ExitUsage, "no user nobody"},
		{"", []string{"user", "disable", "boris"}, ExitOK, "done"},
		{"a brand new password\n", []string{"user", "passwd", "anna", "--password-stdin"}, ExitOK, "done"},
		{"", []string{"user", "frobnicate"}, ExitUsage, "unknown subcommand"},
	}
	for _, s := range steps {
		code, stdout, stderr := runAppStdin(t, env, s.stdin, s.args...)
		if code != s.code || !strings.Contains(stdout+stderr, s.want) {
			t.Errorf("%v: exit %d, want %d; output %q, want it to contain %q", s.args, code, s.code, stdout+stderr, s.want)
		}
	}
	code, stdout, _ := runApp(t, env, "user", "list")
	if code != ExitOK || !strings.Contains(stdout, "anna") || !strings.Contains(stdout, "maker,viewer") || !strings.Contains(stdout, "disabled") {
		t.Fatalf("user list: exit %d\n%s", code, stdout)
	}
	db, err := ledger.Open(context.Background(), env["PAYOUTS_LEDGER"])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	h, _ := db.UserPasswordHash(context.Background(), "anna")
	if ok, err := web.CheckPassword(h, "a brand new password"); !ok || err != nil {
		t.Fatalf("anna's new password does not check: %v %v", ok, err)
	}
	if ok, _ := web.CheckPassword(h, "correct horse battery"); ok {
		t.Fatal("anna's old password still checks")
	}
	log, _ := db.AuditLog(context.Background(), ledger.AuditFilter{})
	if len(log) != 4 || !strings.HasPrefix(log[0].Actor, "cli") {
		t.Fatalf("audit log: %+v, want 4 entries by the cli", log)
	}
}

func TestServeWebRefusals(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"PAYOUTS_LEDGER": filepath.Join(dir, "payouts.db")}
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--web", "0.0.0.0:8443"}, "refusing plain HTTP on a non-loopback address"},
		{[]string{"serve", "--web", ":8443"}, "refusing plain HTTP"},
		{[]string{"serve", "--web", "127.0.0.1:8443", "--tls-cert", "c.pem"}, "--tls-cert and --tls-key go together"},
		{[]string{"serve", "--tls-cert", "c.pem", "--tls-key", "k.pem"}, "add --web ADDR"},
		{[]string{"serve", "--web", "nonsense"}, "give HOST:PORT"},
		{[]string{"serve", "--max-amount", "RUB:100"}, "add --web ADDR"},
		{[]string{"serve", "--web", "127.0.0.1:8443", "--upload-limit", "0"}, "must be positive"},
	}
	for _, c := range cases {
		code, stdout, stderr := runApp(t, env, c.args...)
		if code != ExitUsage || !strings.Contains(stdout+stderr, c.want) {
			t.Errorf("%v: exit %d, want 2 with %q; got %s%s", c.args, code, c.want, stdout, stderr)
		}
	}
	for _, ok := range []string{"127.0.0.1:0", "localhost:0", "[::1]:0"} {
		f := consoleFlags{addr: ok, uploadLimit: 1, sessionIdle: 1, sessionMax: 1}
		if err := f.check(); err != nil {
			t.Errorf("--web %s: %v", ok, err)
		}
	}
	f := consoleFlags{addr: "10.1.2.3:8443", behindProxy: true, uploadLimit: 1, sessionIdle: 1, sessionMax: 1}
	if err := f.check(); err != nil {
		t.Errorf("behind a TLS proxy: %v", err)
	}
}

// TestRunRefusesConsoleBatchAwaitingApproval: the same file is the same
// batch, so `payouts run` of a file uploaded to the console must not pay
// it before a second person approved it there.
func TestRunRefusesConsoleBatchAwaitingApproval(t *testing.T) {
	p := newCLIPike(t, sandbox.Config{})
	path := p.manifest("console.csv", okRows()...)
	sum, err := manifest.ReadFile(path, manifest.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	id := batch.BatchIDFor(sum.SHA256)
	ctx := context.Background()
	db, err := ledger.Open(ctx, p.env["PAYOUTS_LEDGER"])
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.CreateBatch(ctx, ledger.Batch{ID: id, ManifestName: "upload console.csv", ManifestSHA256: sum.SHA256, RowCount: sum.Rows, Totals: sum.Totals}); err != nil {
		t.Fatal(err)
	}
	if err := db.CreateConsoleBatch(ctx, ledger.ConsoleBatch{BatchID: id, FileName: "console.csv", UploadedBy: "mila"}, ledger.AuditEntry{Actor: "mila", Action: "upload"}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	code, _, stderr := p.run("run", path)
	if code != ExitUsage || !strings.Contains(stderr, "waits for another person's approval") {
		t.Fatalf("run of a console batch awaiting approval: exit %d\n%s", code, stderr)
	}
	// A rerun from the command line would bypass the console's second
	// person too.
	code, _, stderr = p.run("rerun", "--batch", id, path)
	if code != ExitUsage || !strings.Contains(stderr, "rerun its failed rows there") {
		t.Fatalf("rerun of a console batch from the command line: exit %d\n%s", code, stderr)
	}
	if n := p.requests(); n != 0 {
		t.Fatalf("%d requests reached Pike, want none", n)
	}
}

func TestKeygenDataKey(t *testing.T) {
	p := filepath.Join(t.TempDir(), "k", "console-data.key")
	if code, stdout, stderr := runApp(t, nil, "keygen", "--data-key", p); code != ExitOK || !strings.Contains(stdout, "data key") {
		t.Fatalf("keygen --data-key: exit %d %s%s", code, stdout, stderr)
	}
	if _, err := web.ReadDataKey(p); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runApp(t, nil, "keygen", "--data-key", p); code != ExitUsage || !strings.Contains(stderr, "refusing to overwrite") {
		t.Fatalf("second keygen --data-key: exit %d %s", code, stderr)
	}
}
