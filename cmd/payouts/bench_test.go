package main_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

// Settings of BenchmarkRunBinary, from the environment.
const (
	envRunRows    = "PAYOUTS_BENCH_RUN_ROWS"    // manifest sizes, comma-separated (default 10000)
	envRunC       = "PAYOUTS_BENCH_RUN_C"       // --concurrency (default 64)
	envRunLatency = "PAYOUTS_BENCH_RUN_LATENCY" // sandbox per-call latency (default 1ms)
)

// BenchmarkRunBinary runs the real `payouts run` binary, as a child process,
// on generated manifests of PAYOUTS_BENCH_RUN_ROWS rows (default 10,000)
// against a sandbox Pike in this test process (per-call latency 1 ms,
// webhooks on), under /usr/bin/time when installed, and reads the child's
// peak memory and CPU time as `/usr/bin/time -v payouts run` prints them.
// (The rusage of a child started straight from this process would count
// this process's resident memory, sandbox included, which the child shares
// until it calls exec.) It shows whether the processor's memory grows with
// the number of rows:
//
//	PAYOUTS_BENCH_RUN_ROWS=10000,30000,100000 go test -run '^$' -bench RunBinary -benchtime 1x -timeout 3h ./cmd/payouts/
//
// Reported per run: rows/s (wall time of the whole command: validation,
// batch creation, payment, report), maxrss-MiB (the child's peak resident
// memory; hwm-MiB is the same from /proc VmHWM, sampled every 100 ms), rss-50%-MiB and rss-90%-MiB (its resident memory when half and
// nine tenths of the rows had been started at the sandbox), the peak
// sampled resident memory before any row was started (rss-setup: validation
// and batch creation), while rows were started (rss-paying) and after
// (rss-finish: last results and the report), cpu-ms/row of
// the child (the processor) and of this process (the sandbox), the
// ledger's size, API calls per row (session/status ones apart), and the
// most payouts started and not yet confirmed at one time, and the most
// webhooks the sandbox held undelivered at one time. Every run is checked against the sandbox's journal:
// every reference paid exactly once with its amount, or the benchmark fails.
func BenchmarkRunBinary(b *testing.B) {
	if testing.Short() {
		b.Skip("long benchmark; not under -short")
	}
	sizes := benchEnvInts(b, envRunRows, []int{10_000})
	conc := benchEnvInts(b, envRunC, []int{64})[0]
	latency := 1 * time.Millisecond
	if s := os.Getenv(envRunLatency); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			b.Fatalf("%s: %v", envRunLatency, err)
		}
		latency = d
	}
	root := b.TempDir()
	bin := benchBuild(b, root)
	keys := benchKeys(b, root)
	for _, n := range sizes {
		b.Run(fmt.Sprintf("rows=%d/C=%d", n, conc), func(b *testing.B) {
			manifest := filepath.Join(root, fmt.Sprintf("rows-%d.csv", n))
			want := benchManifest(b, manifest, n)
			var f binaryFigures
			for b.Loop() {
				f = benchRunBinary(b, bin, keys, manifest, want, conc, latency)
			}
			b.ReportMetric(float64(n)/f.wall.Seconds(), "rows/s")
			b.ReportMetric(float64(f.maxRSS)/(1<<20), "maxrss-MiB")
			b.ReportMetric(float64(f.hwm)/(1<<20), "hwm-MiB")
			b.ReportMetric(float64(f.rssAt50)/(1<<20), "rss-50%-MiB")
			b.ReportMetric(float64(f.rssAt90)/(1<<20), "rss-90%-MiB")
			b.ReportMetric(float64(f.rssSetup)/(1<<20), "rss-setup-MiB")
			b.ReportMetric(float64(f.rssPaying)/(1<<20), "rss-paying-MiB")
			b.ReportMetric(float64(f.rssFinish)/(1<<20), "rss-finish-MiB")
			b.ReportMetric(float64(f.cpu)/float64(time.Millisecond)/float64(n), "cpu-ms/row")
			b.ReportMetric(float64(f.sandboxCPU)/float64(time.Millisecond)/float64(n), "sandbox-cpu-ms/row")
			b.ReportMetric(float64(f.ledgerBytes)/(1<<20), "ledger-MiB")
			b.ReportMetric(float64(f.requests)/float64(n), "req/row")
			b.ReportMetric(float64(f.statusCalls)/float64(n), "status/row")
			b.ReportMetric(float64(f.unconfirmed), "peak-unconfirmed")
			b.ReportMetric(float64(f.hooksPending), "peak-hooks-pending")
		})
	}
}

// binaryFigures are the measurements of one run of the binary.
type binaryFigures struct {
	wall, cpu, sandboxCPU time.Duration
	maxRSS                int64 // bytes
	hwm                   int64 // bytes: VmHWM, last sample before the exit
	// unconfirmed is the most payouts started and not yet confirmed at
	// once (sampled): rows waiting for their confirm.
	unconfirmed int64
	// hooksPending is the most webhooks the sandbox had queued and not yet
	// delivered at once (sampled): a backlog on Pike's side, not ours.
	hooksPending          int64
	requests, statusCalls int64 // API calls the sandbox received
	rssAt50, rssAt90      int64 // bytes
	// Peak sampled resident memory before the first row was started
	// (validation, batch creation), while rows were being started, and
	// after the last one was (waiting for results, report).
	rssSetup, rssPaying, rssFinish int64
	ledgerBytes                    int64
}

// benchKeyFiles are the PEM files of a benchmark's keys.
type benchKeyFiles struct {
	partner, pike *pike.Signer
	priv, pub     string // partner private key, Pike's public key
}

func benchKeys(b *testing.B, dir string) benchKeyFiles {
	b.Helper()
	var k benchKeyFiles
	for _, s := range []**pike.Signer{&k.partner, &k.pike} {
		key, err := pike.GenerateKey()
		if err != nil {
			b.Fatal(err)
		}
		if *s, err = pike.NewSigner(key); err != nil {
			b.Fatal(err)
		}
	}
	priv, err := pike.EncodePrivateKeyPEM(k.partner.Key())
	if err != nil {
		b.Fatal(err)
	}
	pub, err := pike.EncodePublicKeyPEM(k.pike.Public())
	if err != nil {
		b.Fatal(err)
	}
	k.priv, k.pub = filepath.Join(dir, "partner.pem"), filepath.Join(dir, "pike.pem")
	if err := os.WriteFile(k.priv, priv, 0o600); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(k.pub, pub, 0o644); err != nil {
		b.Fatal(err)
	}
	return k
}

// benchRunBinary is one `payouts run` of manifest against a fresh sandbox
// and a fresh ledger.
func benchRunBinary(b *testing.B, bin string, keys benchKeyFiles, manifest string, want map[string]int64, conc int, latency time.Duration) binaryFigures {
	b.Helper()
	dir := b.TempDir()
	listen := benchFreeAddr(b)
	sb, err := sandbox.New(sandbox.Config{
		PartnerKey: keys.partner.Public(), SigningKey: keys.pike.Key(), Project: "bench",
		WebhookURL: "http://" + listen + "/webhooks/pike",
		ReadyDelay: time.Millisecond, FinishDelay: time.Millisecond,
		Faults: sandbox.Faults{Latency: latency},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	srv := httptest.NewServer(sb)
	defer srv.Close()

	ledgerPath := filepath.Join(dir, "payouts.db")
	stderr, err := os.Create(filepath.Join(dir, "stderr.log"))
	if err != nil {
		b.Fatal(err)
	}
	defer stderr.Close()
	initCmd := exec.Command(bin, "init", "--ledger", ledgerPath)
	initCmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir}
	if out, err := initCmd.CombinedOutput(); err != nil {
		b.Fatalf("payouts init: %v\n%s", err, out)
	}
	args := []string{"run", manifest,
		"--pike-url", srv.URL, "--project", "bench",
		"--private-key", keys.priv, "--pike-public-key", keys.pub,
		"--ledger", ledgerPath, "--listen", listen,
		"--concurrency", strconv.Itoa(conc), "--report", filepath.Join(dir, "report.csv")}
	// The peak memory comes from /usr/bin/time when there is one: the
	// rusage of a child started straight from this process would count this
	// process's own resident memory (sandbox included), which the child's
	// image shares until it calls exec. Without it, from /proc VmHWM.
	timeFile := filepath.Join(dir, "time.txt")
	timed := false
	cmd := exec.Command(bin, args...)
	if _, err := os.Stat("/usr/bin/time"); err == nil {
		cmd = exec.Command("/usr/bin/time", append([]string{"-f", "%M %U %S", "-o", timeFile, bin}, args...)...)
		timed = true
	}
	cmd.Dir = dir
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir}
	cmd.Stdout, cmd.Stderr = stderr, stderr

	var self0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self0)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	// Sample the processor's resident memory against the rows started.
	type sample struct{ started, rss int64 }
	var samples []sample
	var hwm, unconfirmed, hooksPending int64
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(100 * time.Millisecond)
	pid := cmd.Process.Pid
	var werr error
wait:
	for {
		select {
		case werr = <-done:
			break wait
		case <-tick.C:
			if timed && pid == cmd.Process.Pid {
				if child, ok := benchChildPID(pid); ok {
					pid = child
				}
				continue
			}
			st := sb.Stats()
			unconfirmed = max(unconfirmed, st.Requests[pike.MethodStartPayout]-st.Requests[pike.MethodConfirm])
			hooksPending = max(hooksPending, st.WebhooksPending)
			if rss, peak, ok := benchProcRSS(pid); ok {
				samples = append(samples, sample{st.Payouts, rss})
				hwm = max(hwm, peak)
			}
		}
	}
	tick.Stop()
	wall := time.Since(t0)
	var self1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self1)
	if werr != nil {
		log, _ := os.ReadFile(stderr.Name())
		b.Fatalf("payouts run: %v\n%s", werr, benchTail(log, 4000))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = sb.Quiesce(ctx)
	benchCheckJournal(b, sb, want)

	f := binaryFigures{wall: wall, sandboxCPU: benchCPU(&self1) - benchCPU(&self0)}
	f.hwm, f.unconfirmed, f.hooksPending = hwm, unconfirmed, hooksPending
	st := sb.Stats()
	for _, n := range st.Requests {
		f.requests += n
	}
	f.statusCalls = st.Requests[pike.MethodStatus]
	if timed {
		f.maxRSS, f.cpu = benchReadTime(b, timeFile)
	} else if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		f.cpu, f.maxRSS = benchCPU(ru), hwm
	}
	n := int64(len(want))
	for _, s := range samples {
		switch {
		case s.started == 0:
			f.rssSetup = max(f.rssSetup, s.rss)
		case s.started < n:
			f.rssPaying = max(f.rssPaying, s.rss)
		default:
			f.rssFinish = max(f.rssFinish, s.rss)
		}
		if f.rssAt50 == 0 && s.started >= n/2 {
			f.rssAt50 = s.rss
		}
		if f.rssAt90 == 0 && s.started >= n*9/10 {
			f.rssAt90 = s.rss
		}
	}
	for _, name := range []string{"payouts.db", "payouts.db-wal"} {
		if st, err := os.Stat(filepath.Join(dir, name)); err == nil {
			f.ledgerBytes += st.Size()
		}
	}
	return f
}

// benchCheckJournal fails the benchmark unless the sandbox paid every
// reference of want exactly once, with its amount, and nothing else.
func benchCheckJournal(b *testing.B, sb *sandbox.Sandbox, want map[string]int64) {
	b.Helper()
	seen := make(map[string]bool, len(want))
	for _, p := range sb.Journal() {
		amount, ok := want[p.Reference]
		switch {
		case !ok:
			b.Errorf("journal: %s paid, want not paid", p.Reference)
		case seen[p.Reference]:
			b.Errorf("journal: %s paid twice", p.Reference)
		case p.Amount != amount || p.Currency != "rub":
			b.Errorf("journal: %s paid %d %s, want %d rub", p.Reference, p.Amount, p.Currency, amount)
		}
		seen[p.Reference] = true
	}
	if len(seen) != len(want) {
		b.Errorf("journal: %d references paid, want %d", len(seen), len(want))
	}
	if b.Failed() {
		b.FailNow()
	}
}

// benchManifest writes a valid manifest of n rows (the shape of
// `go run ./samples/gen`: the sandbox's success cards, no card paid the same
// amount twice) and returns what each reference should be paid, in kopecks.
func benchManifest(b *testing.B, path string, n int) map[string]int64 {
	b.Helper()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	cards := []string{sandbox.CardMir, sandbox.CardVisa, sandbox.CardMastercard}
	want := make(map[string]int64, n)
	fmt.Fprintln(w, "reference,amount,currency,card_number,recipient_name,email,description")
	for i := range n {
		minor := int64(50000 + i/len(cards))
		ref := fmt.Sprintf("RUN-%08d", i)
		want[ref] = minor
		fmt.Fprintf(w, "%s,%d.%02d,RUB,%s,Иванов Иван Иванович,employee%d@example.com,Зарплата за ноябрь 2026\n", ref, minor/100, minor%100, cards[i%len(cards)], i)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	return want
}

// benchBuild builds cmd/payouts (without -race) into dir.
func benchBuild(b *testing.B, dir string) string {
	b.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		b.Skipf("the go tool is not on PATH: %v", err)
	}
	bin := filepath.Join(dir, "payouts")
	if out, err := exec.Command(goTool, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// benchFreeAddr returns a loopback address whose port was free a moment ago.
func benchFreeAddr(b *testing.B) string {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// benchProcRSS reads a process's resident memory now and its peak
// (VmRSS, VmHWM) from /proc (Linux).
func benchProcRSS(pid int) (rss, peak int64, ok bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, false
	}
	kb := func(v string) int64 {
		n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		return n * 1024
	}
	for line := range strings.Lines(string(data)) {
		if v, found := strings.CutPrefix(line, "VmRSS:"); found {
			rss, ok = kb(v), true
		}
		if v, found := strings.CutPrefix(line, "VmHWM:"); found {
			peak = kb(v)
		}
	}
	return rss, peak, ok
}

// benchChildPID returns the first child of pid (Linux).
func benchChildPID(pid int) (int, bool) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0, false
	}
	f := strings.Fields(string(data))
	if len(f) == 0 {
		return 0, false
	}
	child, err := strconv.Atoi(f[0])
	return child, err == nil
}

// benchReadTime reads `/usr/bin/time -f "%M %U %S"`: max RSS and CPU time.
func benchReadTime(b *testing.B, path string) (maxRSS int64, cpu time.Duration) {
	b.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	var kb int64
	var user, sys float64
	if _, err := fmt.Sscanf(lines[len(lines)-1], "%d %f %f", &kb, &user, &sys); err != nil {
		b.Fatalf("/usr/bin/time output %q: %v", data, err)
	}
	return kb * 1024, time.Duration((user + sys) * float64(time.Second))
}

func benchCPU(ru *syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func benchTail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func benchEnvInts(b *testing.B, name string, def []int) []int {
	b.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			b.Fatalf("%s=%q: want positive integers separated by commas", name, s)
		}
		out = append(out, n)
	}
	return slices.Clip(out)
}
