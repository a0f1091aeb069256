package manifest_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/payouts/payouts/batch/manifest"
)

// writeBenchManifest writes a valid manifest of n rows to path: unique
// references, the sandbox's success cards, amounts that never repeat for a
// card (the same shape as `go run ./samples/gen`).
func writeBenchManifest(tb testing.TB, path string, n int) int64 {
	tb.Helper()
	f, err := os.Create(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	cards := []string{"2200000000000004", "4242424242424242", "5555555555554444"}
	names := []string{"Иванов Иван Иванович", "Петрова Анна Сергеевна", "John Smith", "Anna Müller"}
	fmt.Fprintln(w, "reference,amount,currency,card_number,recipient_name,email,description")
	for i := range n {
		minor := 50000 + i/len(cards)
		email := ""
		if i%3 == 0 {
			email = fmt.Sprintf("employee%d@example.com", i)
		}
		fmt.Fprintf(w, "BENCH-%08d,%d.%02d,RUB,%s,%s,%s,Зарплата за ноябрь 2026\n", i, minor/100, minor%100, cards[i%len(cards)], names[i%len(names)], email)
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		tb.Fatal(err)
	}
	return st.Size()
}

// BenchmarkRead1M validates a generated 1,000,000-row manifest and
// reports rows/s, the peak Go heap while validating, and the process's max
// RSS. Run it alone:
//
//	go test -run '^$' -bench Read1M -benchtime 3x ./batch/manifest/
func BenchmarkRead1M(b *testing.B) {
	const rows = 1_000_000
	path := filepath.Join(b.TempDir(), "bench.csv")
	size := writeBenchManifest(b, path, rows)
	runtime.GC()

	// Sample the live heap while validating.
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(5 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				metrics.Read(s)
				if v := s[0].Value.Uint64(); v > peak.Load() {
					peak.Store(v)
				}
			}
		}
	}()
	b.SetBytes(size)
	b.ResetTimer()
	for b.Loop() {
		sum, err := manifest.ReadFile(path, manifest.Options{}, nil)
		if err != nil || sum.Rows != rows {
			b.Fatalf("ReadFile: %d rows, %v", sum.Rows, err)
		}
	}
	b.StopTimer()
	close(stop)
	<-done
	b.ReportMetric(float64(rows)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "maxrss-MiB")
	}
}

// BenchmarkReadRow is the per-row cost on a small file.
func BenchmarkReadRow(b *testing.B) {
	path := filepath.Join(b.TempDir(), "small.csv")
	writeBenchManifest(b, path, 10_000)
	b.ResetTimer()
	for b.Loop() {
		if _, err := manifest.ReadFile(path, manifest.Options{}, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(10_000)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
}
