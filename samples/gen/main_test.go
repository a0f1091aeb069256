package main

import (
	"bytes"
	"testing"

	"github.com/payouts/payouts/batch/manifest"
)

// TestGeneratedManifestIsValid: the generator's output passes every check,
// duplicate payouts included, and the same seed gives the same file.
func TestGeneratedManifestIsValid(t *testing.T) {
	for _, rows := range []int{1, 2, 10, 3001} {
		var a, b bytes.Buffer
		if err := write(&a, rows, 7); err != nil {
			t.Fatal(err)
		}
		if err := write(&b, rows, 7); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a.Bytes(), b.Bytes()) {
			t.Errorf("rows %d: two runs with seed 7 differ", rows)
		}
		sum, err := manifest.Read(bytes.NewReader(a.Bytes()), manifest.Options{}, nil)
		if err != nil {
			t.Fatalf("rows %d: generated manifest is invalid: %v", rows, err)
		}
		if sum.Rows != rows || len(sum.Warnings) != 0 {
			t.Errorf("rows %d: got %d rows, %d warnings", rows, sum.Rows, len(sum.Warnings))
		}
	}
	var c bytes.Buffer
	if err := write(&c, 10, 8); err != nil {
		t.Fatal(err)
	}
	var a bytes.Buffer
	_ = write(&a, 10, 7)
	if bytes.Equal(a.Bytes(), c.Bytes()) {
		t.Error("seeds 7 and 8 give the same file")
	}
}
