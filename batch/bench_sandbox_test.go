package batch_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

// The end-to-end benchmarks run the sandbox Pike in a child process (this
// test binary again, running TestBenchSandboxProcess) so that its CPU —
// verifying every request's RSA signature and signing every webhook — is
// not charged to the processor, whose CPU is read with getrusage of this
// process.

// Environment of the sandbox child process.
const (
	envSandboxDir     = "PAYOUTS_BENCH_SANDBOX_DIR" // keys in; set only in the child
	envSandboxLatency = "PAYOUTS_BENCH_SANDBOX_LATENCY"
	envSandboxReady   = "PAYOUTS_BENCH_SANDBOX_READY"
	envSandboxFinish  = "PAYOUTS_BENCH_SANDBOX_FINISH"
	envSandboxHooks   = "PAYOUTS_BENCH_SANDBOX_WEBHOOKS"
)

// TestBenchSandboxProcess is not a test: it is the sandbox child process of
// the end-to-end benchmarks, and skips unless started by one. It serves a
// sandbox on a loopback port, prints the port's URL on stdout, and serves
// until stdin is closed.
func TestBenchSandboxProcess(t *testing.T) {
	dir := os.Getenv(envSandboxDir)
	if dir == "" {
		t.Skip("the sandbox child process of the end-to-end benchmarks; runs only when started by one")
	}
	partner, err := pike.LoadPublicKey(filepath.Join(dir, "partner.pub.pem"))
	if err != nil {
		t.Fatal(err)
	}
	signing, err := pike.LoadPrivateKey(filepath.Join(dir, "pike.pem"))
	if err != nil {
		t.Fatal(err)
	}
	dur := func(name string) time.Duration {
		d, err := time.ParseDuration(os.Getenv(name))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		return d
	}
	sb, err := sandbox.New(sandbox.Config{
		PartnerKey: partner, SigningKey: signing, Project: "bench",
		WebhookURL:  os.Getenv(envSandboxHooks),
		ReadyDelay:  dur(envSandboxReady),
		FinishDelay: dur(envSandboxFinish),
		Faults:      sandbox.Faults{Latency: dur(envSandboxLatency)},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: sb, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	fmt.Printf("http://%s\n", ln.Addr())
	buf := make([]byte, 1)
	for {
		if _, err := os.Stdin.Read(buf); err != nil {
			break
		}
	}
	srv.Close()
	sb.Close()
}

// sandboxProcess is a running sandbox child process.
type sandboxProcess struct {
	URL  string
	cmd  *exec.Cmd
	stop func() error // closes the child's stdin
}

// sandboxSettings are the child's settings.
type sandboxSettings struct {
	latency, ready, finish time.Duration
	webhookURL             string
}

// startSandboxProcess starts the sandbox child with the partner's public key
// and Pike's signing key, and waits for its URL.
func startSandboxProcess(tb testing.TB, partner, pikeKey *pike.Signer, s sandboxSettings) *sandboxProcess {
	tb.Helper()
	dir := tb.TempDir()
	pub, err := pike.EncodePublicKeyPEM(partner.Public())
	if err != nil {
		tb.Fatal(err)
	}
	priv, err := pike.EncodePrivateKeyPEM(pikeKey.Key())
	if err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "partner.pub.pem"), pub, 0o600); err != nil {
		tb.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "pike.pem"), priv, 0o600); err != nil {
		tb.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestBenchSandboxProcess$", "-test.bench=^$", "-test.count=1")
	cmd.Env = append(os.Environ(),
		envSandboxDir+"="+dir,
		envSandboxLatency+"="+s.latency.String(),
		envSandboxReady+"="+s.ready.String(),
		envSandboxFinish+"="+s.finish.String(),
		envSandboxHooks+"="+s.webhookURL,
	)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	p := &sandboxProcess{cmd: cmd, stop: stdin.Close}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if line := sc.Text(); strings.HasPrefix(line, "http://") {
			p.URL = line
			break
		}
	}
	if p.URL == "" {
		cmd.Process.Kill()
		cmd.Wait()
		tb.Fatalf("sandbox child printed no URL: %v", sc.Err())
	}
	go func() { // drain the rest (the test framework's PASS line)
		for sc.Scan() {
		}
	}()
	tb.Cleanup(func() { p.Close() })
	return p
}

// Journal fetches the sandbox's journal of the money it moved.
func (p *sandboxProcess) Journal(tb testing.TB) []sandbox.Payment {
	tb.Helper()
	resp, err := http.Get(p.URL + sandbox.PathJournal)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close()
	var j []sandbox.Payment
	if err := json.NewDecoder(resp.Body).Decode(&j); err != nil {
		tb.Fatalf("decode journal: %v", err)
	}
	return j
}

// Close stops the child and returns the CPU time it used (user + system).
// Calling it again returns the same figure.
func (p *sandboxProcess) Close() time.Duration {
	if p.cmd.ProcessState == nil {
		p.stop()
		done := make(chan struct{})
		go func() {
			p.cmd.Wait()
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			p.cmd.Process.Kill()
			<-done
		}
	}
	if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		return rusageCPU(ru)
	}
	return 0
}

// rusageCPU is user + system time.
func rusageCPU(ru *syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// selfCPU is the CPU time (user + system) this process has used so far.
func selfCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return rusageCPU(&ru)
}
