package main_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/internal/pgtest"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike"
	"github.com/payouts/payouts/pike/sandbox"
)

// Settings of BenchmarkSharedRunnerProcesses, from the environment.
const (
	envSharedRows    = "PAYOUTS_BENCH_SHARED_ROWS"    // manifest rows (default 600)
	envSharedC       = "PAYOUTS_BENCH_SHARED_C"       // --concurrency of each runner (default 16)
	envSharedLatency = "PAYOUTS_BENCH_SHARED_LATENCY" // sandbox per-call latency (default 100ms)
)

// BenchmarkSharedRunnerProcesses: rows/s of 1, 2 and 3 real `payouts run`
// processes sharing one batch on a PostgreSQL ledger (internal/pgtest's
// throwaway cluster), against a sandbox Pike in this test process that
// answers every call after a fixed latency, with no faults. Each runner has
// the same command line (its own webhook port, its own report file) and
// --concurrency PAYOUTS_BENCH_SHARED_C; the sandbox's webhooks go through a
// round-robin balancer to the runners' listeners. Each iteration is a fresh
// schema (`payouts init`), a fresh sandbox and so a fresh batch:
//
//	go test ./cmd/payouts -run '^$' -bench SharedRunnerProcesses -benchtime 1x -count 2
//
// The time measured is from the start of the runners until every one has
// exited; each must exit 0 (every row of the batch final and paid), and the
// sandbox's journal must hold every reference paid exactly once with its
// amount, or the benchmark fails. Reported: rows/s of the batch,
// rows/s-per-runner (rows/s ÷ runners), ideal-% (rows/s against
// runners·C/(calls per row·latency), what the runners' requests in flight
// allow when nothing else limits them), req/row, and min-share-% and
// max-share-% (the smallest and largest fraction of the batch's
// session/create calls one runner made: how evenly the rows were split),
// runner-cpu-ms/row (user+system CPU of all runner processes together, per
// row) and sandbox-cpu-ms/row (of this process: sandbox and balancer); the
// PostgreSQL server's CPU is not counted. Figures of the last iteration
// except rows/s.
// Skipped without PostgreSQL binaries (pgtest's message says how to enable
// it) and in -short mode; as a benchmark it never runs under plain go test.
func BenchmarkSharedRunnerProcesses(b *testing.B) {
	if testing.Short() {
		b.Skip("long benchmark; not under -short")
	}
	pgtest.Get(b) // skips now, before the build, without PostgreSQL
	rows := benchEnvInts(b, envSharedRows, []int{600})[0]
	conc := benchEnvInts(b, envSharedC, []int{16})[0]
	latency := 100 * time.Millisecond
	if s := os.Getenv(envSharedLatency); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d < 0 {
			b.Fatalf("%s=%q: want a duration such as 100ms", envSharedLatency, s)
		}
		latency = d
	}
	root := b.TempDir()
	bin := benchBuild(b, root)
	keys := benchKeys(b, root)
	mpath := filepath.Join(root, "shared.csv")
	want := benchManifest(b, mpath, rows)
	sum, err := manifest.ReadFile(mpath, manifest.Options{}, func(manifest.Row) error { return nil })
	if err != nil {
		b.Fatal(err)
	}
	batchID := batch.BatchIDFor(sum.SHA256)
	for _, n := range []int{1, 2, 3} {
		b.Run(fmt.Sprintf("runners=%d", n), func(b *testing.B) {
			var wall time.Duration
			var f sharedFigures
			for range b.N {
				b.StopTimer()
				f = benchSharedRun(b, bin, keys, mpath, batchID, want, n, conc, latency)
				wall += f.wall
			}
			rps := float64(rows*b.N) / wall.Seconds()
			b.ReportMetric(rps, "rows/s")
			b.ReportMetric(rps/float64(n), "rows/s-per-runner")
			b.ReportMetric(f.reqPerRow, "req/row")
			if latency > 0 && f.reqPerRow > 0 {
				ideal := float64(n*conc) / (f.reqPerRow * latency.Seconds())
				b.ReportMetric(100*rps/ideal, "ideal-%")
			}
			b.ReportMetric(float64(f.runnerCPU)/float64(time.Millisecond)/float64(rows), "runner-cpu-ms/row")
			b.ReportMetric(float64(f.sandboxCPU)/float64(time.Millisecond)/float64(rows), "sandbox-cpu-ms/row")
			b.ReportMetric(100*f.minShare, "min-share-%")
			b.ReportMetric(100*f.maxShare, "max-share-%")
		})
	}
}

// sharedFigures are the measurements of one shared run.
type sharedFigures struct {
	wall               time.Duration
	runnerCPU          time.Duration // user+system of every runner process
	sandboxCPU         time.Duration // of this process: sandbox, balancer
	reqPerRow          float64
	minShare, maxShare float64 // fractions of the session/create calls
}

// benchSharedRun is one batch paid by n runner processes against a fresh
// sandbox and a fresh PostgreSQL schema. The benchmark timer runs only
// while the runners do.
func benchSharedRun(b *testing.B, bin string, keys benchKeyFiles, mpath, batchID string, want map[string]int64, n, conc int, latency time.Duration) sharedFigures {
	b.Helper()
	dir := b.TempDir()
	pgURL := pgtest.NewSchema(b)
	hookAddr := benchFreeAddr(b)
	sb, err := sandbox.New(sandbox.Config{
		PartnerKey: keys.partner.Public(), SigningKey: keys.pike.Key(), Project: "bench",
		WebhookURL: "http://" + hookAddr + "/webhooks/pike",
		ReadyDelay: time.Millisecond, FinishDelay: time.Millisecond,
		Faults: sandbox.Faults{Latency: latency},
	})
	if err != nil {
		b.Fatal(err)
	}
	defer sb.Close()
	// One listener per runner on the same sandbox, to count which runner
	// created which session (how the rows were split).
	creates := make([]atomic.Int64, n)
	urls := make([]string, n)
	for i := range n {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if strings.HasSuffix(r.URL.Path, pike.MethodSessionCreate) {
				creates[i].Add(1)
			}
			sb.ServeHTTP(w, r)
		}))
		defer srv.Close()
		urls[i] = srv.URL
	}
	listens := make([]string, n)
	for i := range listens {
		listens[i] = benchFreeAddr(b)
	}
	newBalancer(b, hookAddr, listens)

	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir, "TMPDIR=" + dir}
	initCmd := exec.Command(bin, "init", "--ledger", pgURL)
	initCmd.Dir, initCmd.Env = dir, env
	if out, err := initCmd.CombinedOutput(); err != nil {
		b.Fatalf("payouts init: %v\n%s", err, out)
	}
	cmds := make([]*exec.Cmd, n)
	logs := make([]string, n)
	for i := range cmds {
		logs[i] = filepath.Join(dir, fmt.Sprintf("runner-%d.log", i))
		lf, err := os.Create(logs[i])
		if err != nil {
			b.Fatal(err)
		}
		defer lf.Close()
		cmds[i] = exec.Command(bin, "run", mpath,
			"--pike-url", urls[i], "--project", "bench",
			"--private-key", keys.priv, "--pike-public-key", keys.pub,
			"--ledger", pgURL, "--listen", listens[i],
			"--concurrency", strconv.Itoa(conc), "--poll-after", "10s",
			"--report", filepath.Join(dir, fmt.Sprintf("report-%d.csv", i)))
		cmds[i].Dir, cmds[i].Env = dir, env
		cmds[i].Stdout, cmds[i].Stderr = lf, lf
	}

	var self0, self1 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self0)
	b.StartTimer()
	t0 := time.Now()
	for i, c := range cmds {
		if err := c.Start(); err != nil {
			b.Fatalf("start runner %d: %v", i, err)
		}
	}
	errs := make([]error, n)
	for i, c := range cmds {
		errs[i] = c.Wait()
	}
	wall := time.Since(t0)
	b.StopTimer()
	syscall.Getrusage(syscall.RUSAGE_SELF, &self1)

	for i, err := range errs {
		if err != nil {
			log, _ := os.ReadFile(logs[i])
			b.Fatalf("runner %d of %d: %v\n%s", i, n, err, benchTail(log, 4000))
		}
	}
	if testing.Verbose() {
		for i := range logs {
			log, _ := os.ReadFile(logs[i])
			b.Logf("runner %d of %d, %s: its output ends:\n%s", i, n, wall.Round(time.Millisecond), benchTail(log, 1500))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = sb.Quiesce(ctx)
	benchCheckJournal(b, sb, want)
	state := ledgerRows(b, pgURL, batchID)
	if len(state) != len(want) {
		b.Fatalf("ledger: %d rows in batch %s, want %d", len(state), batchID, len(want))
	}
	for _, r := range state {
		if r.State != ledger.StateSucceeded {
			b.Fatalf("ledger: row %s is %s after every runner exited 0, want succeeded", r.Reference, r.State)
		}
	}

	f := sharedFigures{wall: wall, minShare: 1, sandboxCPU: benchCPU(&self1) - benchCPU(&self0)}
	for _, c := range cmds {
		f.runnerCPU += c.ProcessState.UserTime() + c.ProcessState.SystemTime()
	}
	var total int64
	for _, c := range sb.Stats().Requests {
		total += c
	}
	f.reqPerRow = float64(total) / float64(len(want))
	var created int64
	for i := range creates {
		created += creates[i].Load()
	}
	for i := range creates {
		share := float64(creates[i].Load()) / float64(max(created, 1))
		f.minShare, f.maxShare = min(f.minShare, share), max(f.maxShare, share)
	}
	return f
}
