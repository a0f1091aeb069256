package main_test

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/internal/pgtest"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike/sandbox"
)

var (
	sharedRowsFlag  = flag.Int("torture.shared.rows", 60, "rows in the shared-batch torture's manifest")
	sharedKillsFlag = flag.Int("torture.shared.kills", 4, "SIGKILLs of runners in the shared-batch torture")
)

// TestSharedTorture: three `payouts run` processes share one batch on a
// PostgreSQL ledger against a faulty sandbox; random runners are SIGKILLed
// and started again, and the PostgreSQL server is restarted once mid-run.
// Webhooks go through a round-robin balancer to whichever runners are up.
// Judged by the sandbox's journal: every reference paid at most once,
// every payable one paid, the report's totals equal the journal's, and no
// card number in anything the product wrote (pg_dump of the ledger
// included).
//
//	go test ./cmd/payouts -run TestSharedTorture -v -torture.shared.rows 600 -torture.shared.kills 30
func TestSharedTorture(t *testing.T) {
	if testing.Short() {
		t.Skip("shared torture skipped in -short mode")
	}
	srv := pgtest.Get(t)
	rows, kills := *sharedRowsFlag, *sharedKillsFlag
	seed := *tortureSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("shared torture: %d rows, 3 runners, %d kills, seed %d (rerun with -torture.seed %d)", rows, kills, seed, seed)
	rng := rand.New(rand.NewPCG(seed, 0x5a7ed))

	r := newRig(t, sandbox.Config{
		Faults: tortureFaults(), Seed: int64(seed),
		ReadyDelay: 20 * time.Millisecond, FinishDelay: 20 * time.Millisecond, SlowDelay: 700 * time.Millisecond,
		WebhookRetryBase: 100 * time.Millisecond, WebhookRetryMax: time.Second, WebhookGiveUp: 30 * time.Second,
	})
	r.ledger = pgtest.NewSchema(t)
	if code, stdout, stderr := r.exec("init", "--ledger", r.ledger); code != 0 {
		t.Fatalf("payouts init: exit %d\n%s%s", code, stdout, stderr)
	}
	mrows := tortureManifest(rng, rows)
	mpath := r.writeManifest("torture.csv", mrows)
	want, sum := expectations(t, mpath, manifest.Options{})
	batchID := batch.BatchIDFor(sum.SHA256)
	scan := newPANScanner(t, mpath)
	scan.known = []string{batchID}

	// The sandbox's webhooks go to r.listen: a balancer in front of the
	// three runners' listeners, as two `serve` behind a load balancer.
	addrs := []string{freeAddr(t), freeAddr(t), freeAddr(t)}
	lb := newBalancer(t, r.listen, addrs)

	type runner struct {
		p      *proc
		exited chan int
	}
	runners := make([]*runner, len(addrs))
	start := func(i int) {
		args := []string{"run", mpath,
			"--pike-url", r.pikeURL, "--project", "torture",
			"--private-key", r.priv, "--pike-public-key", r.pub,
			"--ledger", r.ledger, "--listen", addrs[i],
			"--poll-after", "300ms", "--wait", "60s", "--concurrency", "8",
			"--request-timeout", "5s", "--log-level", "debug", "--log-format", "json",
		}
		waitFree(t, addrs[i])
		p := r.command(args...)
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ru := &runner{p: p, exited: make(chan int, 1)}
		go func() {
			// Not p.wait: t.Fatal must not be called from this goroutine,
			// or exited would never be sent.
			err := p.cmd.Wait()
			for _, f := range p.files {
				f.Close()
			}
			var ee *exec.ExitError
			switch {
			case err == nil:
				ru.exited <- 0
			case errors.As(err, &ee):
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
					ru.exited <- -int(ws.Signal())
					return
				}
				ru.exited <- ee.ExitCode()
			default:
				ru.exited <- -1000
			}
		}()
		runners[i] = ru
	}
	codes := map[int]int{}
	check := func(i, code int) {
		codes[code]++
		_, stderr := runners[i].p.output()
		if code >= 0 && code != 0 && code != 1 {
			t.Errorf("runner %d exited %d, want 0 or 1 (or killed):\n%s", i, code, tail(stderr, 3000))
		}
	}
	for i := range runners {
		start(i)
	}
	began := time.Now()
	killed, restartedDB := 0, false
	for killed < kills {
		time.Sleep(time.Duration(300+rng.IntN(1200)) * time.Millisecond)
		if !restartedDB && killed >= kills/2 {
			if srv.Own() {
				if err := srv.Restart(false); err != nil {
					t.Fatalf("restart PostgreSQL: %v", err)
				}
				t.Logf("PostgreSQL restarted after %s, %d payouts", time.Since(began).Round(time.Millisecond), len(r.sb.Journal()))
			} else {
				t.Logf("PostgreSQL given by %s: not restarted", pgtest.EnvURL)
			}
			restartedDB = true
		}
		i := rng.IntN(len(runners))
		select {
		case code := <-runners[i].exited:
			check(i, code) // it finished by itself: start it again, the batch may not be done
		default:
			_ = runners[i].p.cmd.Process.Signal(syscall.SIGKILL)
			code := <-runners[i].exited
			codes[code]++
			killed++
		}
		start(i) // killed or finished: started again with the same command
	}
	// Let the survivors (and one restarted) finish; start runners again
	// until the batch settles.
	deadline := time.Now().Add(sharedSettle)
	var state []ledger.Row
	for {
		for i, ru := range runners {
			if ru == nil {
				continue
			}
			select {
			case code := <-ru.exited:
				check(i, code)
			case <-time.After(time.Until(deadline)):
				_ = ru.p.cmd.Process.Signal(syscall.SIGABRT) // its goroutines, on stderr
				select {
				case <-ru.exited:
				case <-time.After(10 * time.Second):
					_ = ru.p.cmd.Process.Kill()
					<-ru.exited
				}
				_, stderr := ru.p.output()
				t.Fatalf("runner %d did not finish in time; ledger %v; its log ends:\n%s", i,
					countStates(ledgerRows(t, r.ledger, batchID)), tail(stderr, 60000))
			}
			runners[i] = nil
		}
		state = ledgerRows(t, r.ledger, batchID)
		if settled(state, rows) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the batch did not settle in time: %v", countStates(state))
		}
		t.Logf("batch not settled after the runners ended (%v): starting one more", countStates(state))
		start(0)
	}
	totals := checkJournal(t, r.sb, want, state)
	code, report, stderr := r.exec("report", "--ledger", r.ledger, "--batch", batchID, "--format", "json")
	if code != 0 {
		t.Fatalf("payouts report exited %d: %s", code, stderr)
	}
	checkReportTotals(t, []byte(report), totals)
	st := r.sb.Stats()
	t.Logf("shared torture: %d rows settled in %s: %d SIGKILLs, exit codes %v, webhooks through the balancer %d (%d to a runner that was down)",
		rows, time.Since(began).Round(time.Millisecond), killed, codes, lb.served.Load(), lb.skipped.Load())
	t.Logf("shared torture: ledger %v; journal %d payouts, totals %v", countStates(state), len(r.sb.Journal()), totals)
	t.Logf("shared torture: sandbox requests %v; faults %v; idempotency repeats %d", st.Requests, st.Faults, st.IdempotencyRepeats)

	// Card numbers: everything the runners wrote, and a pg_dump of the
	// ledger. A dump holds hex fingerprints whose digit runs may pass Luhn
	// by chance: only the manifest's own card numbers fail the test there.
	hits, files, size := scan.scanDir(t, r.out)
	judge(t, "card scan of out/", hits, nil)
	dump, err := pgtest.Dump(srv, r.ledger)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(dump, []byte("TRT-00001")) {
		t.Fatal("the pg_dump holds no row: the scan below proves nothing")
	}
	bad := 0
	for _, h := range scan.scan(filepath.Base("pg_dump"), dump) {
		if h.Manifest {
			bad++
			t.Errorf("pg_dump of the ledger: %v", h)
		}
	}
	t.Logf("card scan: %d files (%d bytes) in out/, pg_dump %d bytes: %d manifest card numbers in the dump", files, size, len(dump), bad)
}

// sharedSettle is how long the runners get to settle the batch after the
// last kill.
var sharedSettle = 90 * time.Second

// waitFree waits until addr can be bound (a killed runner's port).
func waitFree(t *testing.T, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ln, err := net.Listen("tcp", addr)
		if err == nil {
			ln.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("port %s still busy", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// balancer hands each webhook to the next runner that answers, as a load
// balancer in front of several webhook receivers does.
type balancer struct {
	backends []string
	next     atomic.Int64
	served   atomic.Int64
	skipped  atomic.Int64
}

func newBalancer(t *testing.T, listen string, backends []string) *balancer {
	b := &balancer{backends: backends}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 10 * time.Second}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(req.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		for range b.backends {
			addr := b.backends[int(b.next.Add(1))%len(b.backends)]
			out, _ := http.NewRequestWithContext(req.Context(), req.Method, "http://"+addr+req.URL.RequestURI(), bytes.NewReader(body))
			out.Header = req.Header.Clone()
			resp, err := client.Do(out)
			if err != nil {
				b.skipped.Add(1)
				continue // that runner is down: the next one
			}
			b.served.Add(1)
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			w.WriteHeader(resp.StatusCode)
			io.Copy(w, resp.Body)
			resp.Body.Close()
			return
		}
		http.Error(w, "no runner up", http.StatusBadGateway)
	})}
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(ln) })
	t.Cleanup(func() {
		srv.Close()
		wg.Wait()
	})
	return b
}
