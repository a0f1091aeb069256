package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

// TestOneLedgerWhereverTheRunStarts: without --ledger, every command uses
// the same per-user ledger, wherever it is started, and says which; a
// ledger that was never made is refused, not created.
func TestOneLedgerWhereverTheRunStarts(t *testing.T) {
	p := newCLIPike(t, sandbox.Config{})
	delete(p.env, "PAYOUTS_LEDGER")
	home := filepath.Join(t.TempDir(), "home")
	p.env["HOME"] = home
	want := filepath.Join(home, ".local", "state", "payouts", "payouts.db")
	body := mustRead(t, p.manifest("m.csv", okRows()...))
	dirA, dirB := t.TempDir(), t.TempDir()
	for _, d := range []string{dirA, dirB} {
		if err := os.WriteFile(filepath.Join(d, "payroll.csv"), body, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	t.Chdir(dirA)
	code, stdout, stderr := p.run("init")
	if code != ExitOK || !strings.Contains(stdout, "created ledger "+want) || stderr != "ledger: "+want+" (sqlite)\n" {
		t.Fatalf("init: got exit %d\nstdout:\n%s\nstderr:\n%s\nwant 0 creating %s", code, stdout, stderr, want)
	}
	for path, mode := range map[string]os.FileMode{filepath.Dir(want): 0o700, want: 0o600, filepath.Join(filepath.Dir(want), "fingerprint.key"): 0o600} {
		if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != mode {
			t.Errorf("%s: got %v (%v), want mode %v", path, fi.Mode().Perm(), err, mode)
		}
	}
	if code, stdout, _ := p.run("init"); code != ExitOK || !strings.Contains(stdout, "already exists") {
		t.Errorf("init again: got exit %d\n%s; want 0 saying the ledger already exists", code, stdout)
	}
	code, stdout, stderr = p.run("run", "payroll.csv")
	// run's first line names the ledger (with the batch, totals and Pike).
	if first, _, _ := strings.Cut(stderr, "\n"); code != ExitOK || !strings.HasPrefix(first, "batch ") || !strings.Contains(first, "; ledger "+want+" (sqlite);") {
		t.Fatalf("run in %s: got exit %d\nstdout:\n%s\nstderr:\n%s\nwant 0, naming %s first", dirA, code, stdout, stderr, want)
	}
	if n := len(p.sb.Journal()); n != 2 {
		t.Fatalf("got %d payouts after the first run, want 2", n)
	}

	// The same manifest from another directory: the same ledger, nothing
	// paid twice.
	t.Chdir(dirB)
	if code, stdout, stderr := p.run("run", "payroll.csv"); code != ExitOK {
		t.Fatalf("run in %s: got exit %d\nstdout:\n%s\nstderr:\n%s", dirB, code, stdout, stderr)
	}
	if n := len(p.sb.Journal()); n != 2 {
		t.Errorf("got %d payouts after the same manifest ran from another directory, want still 2", n)
	}
	if code, stdout, _ := p.run("status"); code != ExitOK || !strings.Contains(stdout, "payroll.csv") {
		t.Errorf("status in %s: got exit %d\n%s; want the batch", dirB, code, stdout)
	}
	for _, d := range []string{dirA, dirB} {
		if left, _ := filepath.Glob(filepath.Join(d, "*.db*")); len(left) > 0 {
			t.Errorf("a ledger was made in the working directory: %v", left)
		}
	}

	// XDG_STATE_HOME moves the default; a ledger never made there is
	// refused before anything is sent or written.
	state := t.TempDir()
	p.env["XDG_STATE_HOME"] = state
	missing := filepath.Join(state, "payouts", "payouts.db")
	before := p.requests()
	for _, args := range [][]string{{"run", "payroll.csv"}, {"rerun", "--batch", "x"}, {"approve", "--batch", "x"},
		{"reject", "--batch", "x"}, {"serve"}, {"status"}, {"report", "--batch", "x"}} {
		code, stdout, stderr := p.run(args...)
		if code != ExitInfra || !strings.Contains(stderr, "no ledger at "+missing) || !strings.Contains(stderr, "payouts init") {
			t.Errorf("%s without a ledger: got exit %d\nstdout:\n%s\nstderr:\n%s\nwant 3 naming %s and `payouts init`", args[0], code, stdout, stderr, missing)
		}
	}
	if _, err := os.Stat(filepath.Dir(missing)); err == nil {
		t.Errorf("a command made %s", filepath.Dir(missing))
	}
	if n := p.requests(); n != before {
		t.Errorf("commands refused for want of a ledger sent %d requests to Pike, want none", n-before)
	}
}

// rotatePartnerKey gives the partner a new key pair and registers it with
// the sandbox (same project, same sessions): the old key no longer works.
func (p *cliPike) rotatePartnerKey() {
	p.t.Helper()
	key, err := pike.GenerateKey()
	if err != nil {
		p.t.Fatal(err)
	}
	pemBytes, err := pike.EncodePrivateKeyPEM(key)
	if err != nil {
		p.t.Fatal(err)
	}
	path := filepath.Join(p.dir, "partner-private-rotated.pem")
	if err := os.WriteFile(path, pemBytes, 0o600); err != nil {
		p.t.Fatal(err)
	}
	if err := p.sb.SetPartnerKey(&key.PublicKey); err != nil {
		p.t.Fatal(err)
	}
	p.env["PIKE_PRIVATE_KEY"] = path
}

// cardMismatches counts the card_mismatch events of a batch.
func (p *cliPike) cardMismatches(id string) int {
	n := 0
	for _, e := range p.events(id) {
		if e.Reason == "card_mismatch" {
			n++
		}
	}
	return n
}

// gate holds every session/create request from the moment it is armed
// until it is opened, and says when the first one arrived.
type gate struct {
	next    http.Handler
	armed   bool
	arrived chan struct{}
	open    chan struct{}
	once    sync.Once
}

func (g *gate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if g.armed && strings.HasSuffix(r.URL.Path, "/"+pike.MethodSessionCreate) {
		g.once.Do(func() { close(g.arrived) })
		<-g.open
	}
	g.next.ServeHTTP(w, r)
}

// TestPartnerKeyRotation: a batch made before the partner key is rotated
// is paid after it, its cards recognised: the fingerprint key does not
// depend on the partner key.
func TestPartnerKeyRotation(t *testing.T) {
	t.Run("rows not started yet start", func(t *testing.T) {
		p := newCLIPike(t, sandbox.Config{})
		var rows [][5]string
		for i := range 40 {
			rows = append(rows, [5]string{"ROT-" + string(rune('A'+i/26)) + string(rune('A'+i%26)), "10", "RUB", sandbox.CardMir, "Иван"})
		}
		m := p.manifest("m.csv", rows...)
		sum, err := manifest.ReadFile(m, manifest.Options{AllowDuplicates: true}, nil)
		if err != nil {
			t.Fatal(err)
		}
		id := batch.BatchIDFor(sum.SHA256)

		// A run interrupted once it sends its first session/create: the
		// batch is made, most rows are not started.
		g := &gate{next: p.sb, armed: true, arrived: make(chan struct{}), open: make(chan struct{})}
		srv := httptest.NewServer(g)
		defer srv.Close()
		p.env["PIKE_URL"] = srv.URL
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan int, 1)
		var out, errb bytes.Buffer
		go func() {
			app := &App{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return p.env[k] }}
			done <- app.Main(ctx, []string{"run", m, "--allow-duplicates", "--concurrency", "1"})
		}()
		<-g.arrived
		cancel()
		close(g.open)
		if code := <-done; code == ExitOK {
			t.Fatalf("interrupted run: got exit 0, want it interrupted\n%s%s", out.String(), errb.String())
		}
		planned := 0
		for _, r := range p.ledgerRows(id) {
			if r.State == ledger.StatePlanned {
				planned++
			}
		}
		if planned == 0 {
			t.Fatal("no row left unstarted by the interrupted run: the test proves nothing")
		}

		g.armed = false
		p.rotatePartnerKey()
		code, stdout, stderr := p.run("run", m, "--allow-duplicates", "--wait", "20s")
		if code != ExitOK {
			t.Errorf("run after the rotation: got exit %d, want 0\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		if n := p.cardMismatches(id); n != 0 {
			t.Errorf("got %d card_mismatch events after the rotation, want none", n)
		}
		if n := len(p.sb.Journal()); n != len(rows) {
			t.Errorf("got %d payouts, want %d (each row once; %d were not started before the rotation)", n, len(rows), planned)
		}
	})

	t.Run("rerun sees the same cards", func(t *testing.T) {
		p := newCLIPike(t, sandbox.Config{})
		m := p.manifest("m.csv", [5]string{"OK-1", "10", "RUB", sandbox.CardMir, "Иван"},
			[5]string{"BAD-1", "20", "RUB", sandbox.CardNotExist, "Пётр"})
		code, stdout, stderr := p.run("run", m)
		if code != ExitPartial {
			t.Fatalf("run: got exit %d, want 1\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
		}
		id := batchIDOf(t, stdout)
		p.rotatePartnerKey()
		_, stdout, stderr = p.run("rerun", "--batch", id, m)
		retried := ""
		for _, line := range strings.Split(stdout, "\n") {
			if strings.Contains(line, "BAD-1") && strings.HasPrefix(line, "retried") {
				retried = line
			}
		}
		if retried == "" {
			t.Fatalf("rerun did not retry BAD-1\nstdout:\n%s\nstderr:\n%s", stdout, stderr)
		}
		if strings.Contains(retried, "card") {
			t.Errorf("rerun calls BAD-1's card changed after the partner key changed: %q", retried)
		}
		if r := p.ledgerRows(id)["BAD-1"]; r.Attempt != 2 {
			t.Errorf("BAD-1: got attempt %d, want 2", r.Attempt)
		}
	})
}

// TestFingerprintKeyChecked: a wrong or missing fingerprint key stops run
// and rerun before anything is sent (exit 3), naming the key file.
func TestFingerprintKeyChecked(t *testing.T) {
	for _, tt := range []struct {
		name  string
		setup func(t *testing.T, key string)
		say   string
	}{
		{"wrong key", func(t *testing.T, key string) {
			other := filepath.Join(t.TempDir(), "other.key")
			if _, err := batch.WriteFingerprintKey(other); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(key, mustRead(t, other), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "is not the key of ledger"},
		{"missing key", func(t *testing.T, key string) {
			if err := os.Remove(key); err != nil {
				t.Fatal(err)
			}
		}, "no fingerprint key at"},
		{"damaged key", func(t *testing.T, key string) {
			if err := os.WriteFile(key, []byte("not a key\n"), 0o600); err != nil {
				t.Fatal(err)
			}
		}, "fingerprint key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newCLIPike(t, sandbox.Config{})
			m := p.manifest("m.csv", okRows()...)
			code, stdout, _ := p.run("run", m)
			if code != ExitOK {
				t.Fatalf("first run: exit %d", code)
			}
			id := batchIDOf(t, stdout)
			key := filepath.Join(p.dir, "fingerprint.key")
			tt.setup(t, key)
			before := p.requests()
			for _, args := range [][]string{{"run", m}, {"rerun", "--batch", id}, {"init"}} {
				code, stdout, stderr := p.run(args...)
				if code != ExitInfra || !strings.Contains(stderr, key) || !strings.Contains(stderr, tt.say) {
					t.Errorf("%s: got exit %d\nstdout:\n%s\nstderr:\n%s\nwant 3 naming %s and saying %q", args[0], code, stdout, stderr, key, tt.say)
				}
			}
			if n := p.requests(); n != before {
				t.Errorf("sent %d requests to Pike, want none", n-before)
			}
			// Commands that never fingerprint a card do not need the key.
			if code, _, stderr := p.run("status", "--batch", id); code != ExitOK {
				t.Errorf("status: got exit %d\n%s", code, stderr)
			}
		})
	}
}

// TestLegacyFingerprints: a ledger made before fingerprint key files keeps
// the fingerprints derived from the partner key, and moves to a key file
// with `payouts init --migrate-fingerprints` once no row is in flight.
func TestLegacyFingerprints(t *testing.T) {
	p := newCLIPike(t, sandbox.Config{})
	legacy := filepath.Join(p.dir, "legacy", "payouts.db")
	if err := os.MkdirAll(filepath.Dir(legacy), 0o700); err != nil {
		t.Fatal(err)
	}
	db, err := ledger.Open(context.Background(), legacy) // as an older payouts made it
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
	p.env["PAYOUTS_LEDGER"] = legacy
	m := p.manifest("m.csv", [5]string{"OK-1", "10", "RUB", sandbox.CardMir, "Иван"},
		[5]string{"BAD-1", "20", "RUB", sandbox.CardNotExist, "Пётр"})
	code, stdout, stderr := p.run("run", m)
	if code != ExitPartial || !strings.Contains(stderr, "--migrate-fingerprints") {
		t.Fatalf("run on a legacy ledger: got exit %d, want 1 with a warning naming --migrate-fingerprints\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	id := batchIDOf(t, stdout)
	if code, stdout, _ := p.run("init"); code != ExitOK || !strings.Contains(stdout, "--migrate-fingerprints") {
		t.Errorf("init on a legacy ledger: got exit %d\n%s; want 0 explaining --migrate-fingerprints", code, stdout)
	}
	key := filepath.Join(filepath.Dir(legacy), "fingerprint.key")
	if _, err := os.Stat(key); err == nil {
		t.Errorf("init without --migrate-fingerprints made %s", key)
	}
	code, stdout, stderr = p.run("init", "--migrate-fingerprints")
	if code != ExitOK || !strings.Contains(stdout, "cleared the 2 card fingerprints") {
		t.Fatalf("init --migrate-fingerprints: got exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}

	// Now the partner key can change: the failed row is rerun with its
	// card checked against a new fingerprint, and paid.
	p.rotatePartnerKey()
	fixed := p.manifest("fixed.csv", [5]string{"OK-1", "10", "RUB", sandbox.CardMir, "Иван"},
		[5]string{"BAD-1", "20", "RUB", sandbox.CardVisa, "Пётр"})
	code, stdout, stderr = p.run("rerun", "--batch", id, fixed)
	if code != ExitOK || strings.Contains(stderr, "--migrate-fingerprints") {
		t.Fatalf("rerun after the migration: got exit %d, want 0 without the legacy warning\nstdout:\n%s\nstderr:\n%s", code, stdout, stderr)
	}
	if !strings.Contains(stdout, "card 400000…0002 → 424242…4242") {
		t.Errorf("rerun does not show BAD-1's new card:\n%s", stdout)
	}
	if r := p.ledgerRows(id)["BAD-1"]; r.CardFingerprint == "" || r.State != ledger.StateSucceeded {
		t.Errorf("BAD-1: got %s with fingerprint %q, want succeeded with a new fingerprint", r.State, r.CardFingerprint)
	}
	if n := len(p.sb.Journal()); n != 2 {
		t.Errorf("got %d payouts, want 2", n)
	}
}
