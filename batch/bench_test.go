package batch_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/samples"
)

// Settings of BenchmarkEndToEnd, from the environment.
const (
	envBenchRows    = "PAYOUTS_BENCH_ROWS"    // rows per run (default 5000)
	envBenchC       = "PAYOUTS_BENCH_C"       // concurrencies, comma-separated (default 16,64,128)
	envBenchL       = "PAYOUTS_BENCH_L"       // per-call latencies (default 20ms,100ms)
	envBenchDelay   = "PAYOUTS_BENCH_DELAY"   // sandbox ReadyDelay and FinishDelay (default 5ms)
	envBenchWorkers = "PAYOUTS_BENCH_WORKERS" // engine workers (default 2C+16, as `payouts run`)
)

// BenchmarkEndToEnd pays a generated manifest of PAYOUTS_BENCH_ROWS rows
// (default 5,000) through batch.Run — the real client, ledger (group
// commit, synchronous=FULL) and a webhook receiver on loopback, wired as
// `payouts run` wires them — against the sandbox in a child process that
// adds latency L to every call. Each sub-benchmark is one concurrency C
// (client MaxInFlight) and one latency L; one iteration is one whole run,
// so use -count for several runs:
//
//	go test -run '^$' -bench EndToEnd -count 3 -timeout 60m ./batch/
//	PAYOUTS_BENCH_C=64 PAYOUTS_BENCH_L=100ms go test -run '^$' -bench EndToEnd -count 5 ./batch/
//
// Reported per run:
//   - rows/s: rows paid per second of wall time, from the start of
//     batch.Run (batch creation, row insert) to every row final;
//   - ideal-rows/s and %ideal: C/(3·L), three calls per row each holding
//     one of C slots for L (create, start, confirm);
//   - cpu-ms/row: CPU time (user + system) of this process — the processor
//     — per row, during the run; the sandbox's is sandbox-cpu-ms/row;
//   - sign-ms and cpu/3sign: CPU time of one RSA-2048 signature, measured in
//     this process just before the run, and cpu-ms/row over three of them;
//   - req/row, max-inflight: from the client's counters (3 and C when
//     nothing was retried and the slots were kept full).
//
// Every run is checked against the sandbox's journal: every reference paid
// exactly once, with the manifest's amount; otherwise the benchmark fails.
func BenchmarkEndToEnd(b *testing.B) {
	if testing.Short() {
		b.Skip("long benchmark; not under -short")
	}
	rows := envInt(b, envBenchRows, 5000)
	delay := envDuration(b, envBenchDelay, 5*time.Millisecond)
	dir := b.TempDir()
	mpath := filepath.Join(dir, "bench.csv")
	if _, err := samples.WriteLarge(mpath, rows); err != nil {
		b.Fatal(err)
	}
	want := wantPayments(b, mpath)
	for _, c := range envInts(b, envBenchC, []int{16, 64, 128}) {
		for _, l := range envDurations(b, envBenchL, []time.Duration{20 * time.Millisecond, 100 * time.Millisecond}) {
			b.Run(fmt.Sprintf("C=%d/L=%s", c, l), func(b *testing.B) {
				workers := envInt(b, envBenchWorkers, 2*c+16)
				var m runFigures
				for b.Loop() {
					m = endToEndRun(b, mpath, want, c, workers, l, delay)
				}
				ideal := float64(c) / (3 * l.Seconds())
				b.ReportMetric(m.rowsPerSec, "rows/s")
				b.ReportMetric(ideal, "ideal-rows/s")
				b.ReportMetric(100*m.rowsPerSec/ideal, "%ideal")
				b.ReportMetric(ms(m.cpu)/float64(rows), "cpu-ms/row")
				b.ReportMetric(ms(m.sandboxCPU)/float64(rows), "sandbox-cpu-ms/row")
				b.ReportMetric(ms(m.sign), "sign-ms")
				b.ReportMetric(ms(m.cpu)/float64(rows)/(3*ms(m.sign)), "cpu/3sign")
				b.ReportMetric(float64(m.requests)/float64(rows), "req/row")
				b.ReportMetric(float64(m.maxInFlight), "max-inflight")
				b.ReportMetric(m.avgInFlight, "avg-inflight")
				// Little's law: how long one call held its slot, on average.
				b.ReportMetric(1000*m.avgInFlight/(m.rowsPerSec*float64(m.requests)/float64(rows)), "ms/call")
				b.ReportMetric(m.writesPerCommit, "writes/commit")
				b.ReportMetric(m.writesPerRow, "writes/row")
				b.ReportMetric(float64(m.webhookConns)/float64(rows), "hook-conns/row")
				b.ReportMetric(m.machineBusy, "%machine-busy")
				b.ReportMetric(m.cpuPressure, "%cpu-pressure")
			})
		}
	}
}

// runFigures are the measurements of one run.
type runFigures struct {
	rowsPerSec      float64
	cpu, sandboxCPU time.Duration
	sign            time.Duration
	requests        int64
	maxInFlight     int64
	avgInFlight     float64
	machineBusy     float64 // % of both cores busy, every process
	cpuPressure     float64 // % of the time some task waited for a core
	webhookConns    int64   // connections the sandbox opened to deliver webhooks
	writesPerCommit float64
	writesPerRow    float64 // durable ledger writes (transitions, webhooks, marks)
}

// endToEndRun is one run of manifest against a fresh sandbox child and a
// fresh ledger.
func endToEndRun(b *testing.B, mpath string, want map[string]int64, c, workers int, latency, delay time.Duration) runFigures {
	b.StopTimer()
	ctx := context.Background()
	dir := b.TempDir()
	db, err := ledger.Open(ctx, filepath.Join(dir, "payouts.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	intake := batch.NewIntake(db)
	v, err := pike.NewVerifier(pikeKey.Public())
	if err != nil {
		b.Fatal(err)
	}
	// The webhook receiver, as `payouts run --listen` serves it.
	mux := http.NewServeMux()
	mux.Handle("/webhooks/pike", pike.NewWebhookHandler(v, intake.Handle))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	hooks := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	cl := &countingListener{Listener: ln}
	go hooks.Serve(cl)
	defer hooks.Close()

	sb := startSandboxProcess(b, partnerKey, pikeKey, sandboxSettings{
		latency: latency, ready: delay, finish: delay,
		webhookURL: "http://" + ln.Addr().String() + "/webhooks/pike",
	})
	// The client, as `payouts run --concurrency C` builds it.
	tr := &http.Transport{MaxIdleConnsPerHost: c + 4, IdleConnTimeout: 90 * time.Second}
	defer tr.CloseIdleConnections()
	client, err := pike.NewClient(sb.URL, "bench", partnerKey,
		pike.WithMaxInFlight(c), pike.WithRequestTimeout(30*time.Second),
		pike.WithHTTPClient(&http.Client{Transport: tr}))
	if err != nil {
		b.Fatal(err)
	}
	key, err := batch.FingerprintKeyFromSigner(partnerKey)
	if err != nil {
		b.Fatal(err)
	}
	fp, err := batch.NewFingerprinter(key)
	if err != nil {
		b.Fatal(err)
	}
	sum, err := manifest.ReadFile(mpath, manifest.Options{}, nil)
	if err != nil {
		b.Fatal(err)
	}
	sign := signCPU(b, 200)

	sampled := sampleInFlight(client)
	m0 := sampleMachine()
	cpu0, t0 := selfCPU(b), time.Now()
	b.StartTimer()
	res, err := batch.Run(ctx, db, client, batch.RunOptions{
		Manifest: mpath, Summary: sum, Intake: intake,
		Config: batch.Config{Workers: workers, Fingerprinter: fp},
	})
	b.StopTimer()
	wall, cpu := time.Since(t0), selfCPU(b)-cpu0
	avgInFlight := sampled()
	busy, pressure, _ := machineLoad(m0, sampleMachine())
	if err != nil {
		b.Fatalf("run: %v", err)
	}
	if got := res.Counts[ledger.StateSucceeded]; got != len(want) {
		b.Fatalf("got %d rows succeeded (%v), want %d", got, res.Counts, len(want))
	}
	checkJournal(b, sb, want)
	st := client.Stats()
	ws := db.WriterStats()
	f := runFigures{
		rowsPerSec: float64(len(want)) / wall.Seconds(),
		cpu:        cpu, sandboxCPU: sb.Close(), sign: sign,
		requests: st.Requests, maxInFlight: st.MaxInFlight, avgInFlight: avgInFlight,
		machineBusy: busy, cpuPressure: pressure, webhookConns: cl.n.Load(),
	}
	if ws.Commits > 0 {
		f.writesPerCommit = float64(ws.Writes) / float64(ws.Commits)
	}
	f.writesPerRow = float64(ws.Writes) / float64(len(want))
	b.StartTimer()
	return f
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// sampleInFlight samples the client's requests in flight every 5 ms until
// the returned function is called, which returns their mean.
func sampleInFlight(c *pike.Client) func() float64 {
	stop := make(chan struct{})
	mean := make(chan float64)
	go func() {
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		var sum, n float64
		for {
			select {
			case <-t.C:
				sum += float64(c.Stats().InFlight)
				n++
			case <-stop:
				mean <- sum / max(n, 1)
				return
			}
		}
	}()
	return func() float64 {
		close(stop)
		return <-mean
	}
}

// checkJournal fails the benchmark unless the sandbox paid every reference
// of want exactly once, with its amount, and nothing else.
func checkJournal(b *testing.B, sb *sandboxProcess, want map[string]int64) {
	b.Helper()
	seen := map[string]bool{}
	for _, p := range sb.Journal(b) {
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

// wantPayments reads what the manifest should pay: reference → minor units.
func wantPayments(tb testing.TB, path string) map[string]int64 {
	tb.Helper()
	want := map[string]int64{}
	_, err := manifest.ReadFile(path, manifest.Options{}, func(r manifest.Row) error {
		want[r.Reference] = r.Amount
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	return want
}

// signCPU is the CPU time of one RSA-2048 signature of a request-sized
// body with the partner's key, averaged over n, in this process.
func signCPU(tb testing.TB, n int) time.Duration {
	tb.Helper()
	body := []byte(`{"session_id":"ps_3230","payment_method":{"type":"card","card":{"type":"bank_card","bank_card":{"number":"4242424242424242"}}},"participant_details":{"recipient":{"full_name":"Ivanov Ivan"}},"metadata":"b1/EMP-0042-2026-11"}`)
	cpu0 := selfCPU(tb)
	for range n {
		if _, err := partnerKey.Sign(body); err != nil {
			tb.Fatal(err)
		}
	}
	return (selfCPU(tb) - cpu0) / time.Duration(n)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func envInt(tb testing.TB, name string, def int) int {
	tb.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		tb.Fatalf("%s=%q: want a positive integer", name, s)
	}
	return n
}

func envDuration(tb testing.TB, name string, def time.Duration) time.Duration {
	tb.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		tb.Fatalf("%s=%q: want a duration", name, s)
	}
	return d
}

func envInts(tb testing.TB, name string, def []int) []int {
	tb.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 {
			tb.Fatalf("%s=%q: want positive integers separated by commas", name, s)
		}
		out = append(out, n)
	}
	return out
}

func envDurations(tb testing.TB, name string, def []time.Duration) []time.Duration {
	tb.Helper()
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	var out []time.Duration
	for _, f := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(f))
		if err != nil || d <= 0 {
			tb.Fatalf("%s=%q: want positive durations separated by commas", name, s)
		}
		out = append(out, d)
	}
	return slices.Clip(out)
}
