package web_test

import (
	"bytes"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payouts/payouts/pike/sandbox"
	"github.com/payouts/payouts/samples"
	"github.com/payouts/payouts/web"
)

// BenchmarkUpload100k uploads a 100,000-row manifest through the console's
// API: the multipart stream into memory, whole-file validation, encryption
// into the upload store, and the rows (no card numbers) into the ledger.
// It reports the peak Go heap seen during the upload (sampled every 10 ms)
// besides time per upload.
//
//	go test ./web -run '^$' -bench Upload100k -benchtime 3x
func BenchmarkUpload100k(b *testing.B) {
	const rows = 100_000
	path := filepath.Join(b.TempDir(), "large.csv")
	if _, err := samples.WriteLarge(path, rows); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	var peak atomic.Uint64
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		// Each upload is a new file: a fresh ledger, so each pass loads
		// 100,000 rows into an empty ledger, as a real first upload does.
		r := newBenchRig(b)
		c := r.login("mila")
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		fw, _ := mw.CreateFormFile("manifest", "large.csv")
		fw.Write(data)
		mw.Close()
		runtime.GC()
		stop := make(chan struct{})
		done := make(chan struct{})
		go sampleHeap(&peak, stop, done)
		b.StartTimer()
		req, _ := http.NewRequest("POST", r.ts.URL+"/api/v1/batches", &body)
		req.Header.Set("Content-Type", mw.FormDataContentType())
		resp, err := c.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		b.StopTimer()
		close(stop)
		<-done
		if resp.StatusCode != http.StatusCreated || !strings.Contains(string(msg), fmt.Sprintf(`"rows": %d`, rows)) {
			b.Fatalf("upload: %d %s", resp.StatusCode, msg[:min(len(msg), 400)])
		}
		r.stop()
	}
	b.ReportMetric(float64(len(data))/1e6, "file-MB")
	b.ReportMetric(float64(peak.Load())/(1<<20), "peak-heap-MiB")
}

// newBenchRig is a rig with one maker.
func newBenchRig(b *testing.B) *rig {
	b.Helper()
	r := newRig(b, sandbox.Config{})
	r.addUser("mila", "maker")
	return r
}

// sampleHeap records the largest live heap (runtime/metrics) until stop.
func sampleHeap(peak *atomic.Uint64, stop, done chan struct{}) {
	defer close(done)
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		metrics.Read(s)
		if v := s[0].Value.Uint64(); v > peak.Load() {
			peak.Store(v)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// BenchmarkValidate100k is the validation part of an upload alone
// (web.ValidateManifest on the bytes in memory), to split the figure of
// BenchmarkUpload100k between validation and storing.
func BenchmarkValidate100k(b *testing.B) {
	path := filepath.Join(b.TempDir(), "large.csv")
	if _, err := samples.WriteLarge(path, 100_000); err != nil {
		b.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := web.ValidateManifest("large.csv", data, web.DefaultManifestOptions()); err != nil {
			b.Fatal(err)
		}
	}
}
