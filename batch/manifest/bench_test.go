package manifest_test

import (
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/samples"
)

// writeBenchManifest writes a valid manifest of n rows to path
// (samples.WriteLarge) and returns its size.
func writeBenchManifest(tb testing.TB, path string, n int) int64 {
	tb.Helper()
	size, err := samples.WriteLarge(path, n)
	if err != nil {
		tb.Fatal(err)
	}
	return size
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
