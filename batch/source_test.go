package batch_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"testing"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike/sandbox"
)

// TestRunFromMemory: a manifest held in memory (the console's decrypted
// upload) is paid like a file, with the same checks: the bytes must be
// those validated.
func TestRunFromMemory(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	path := h.manifest("mem.csv", row{ref: "M-1", amount: "10.00", card: "4242424242424242"}, row{ref: "M-2", amount: "20.00", card: "4242424242424242"})
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(path) // nothing is read from disk
	mopts := manifest.Options{AllowDuplicates: true}
	sum, err := manifest.Read(bytes.NewReader(data), mopts, nil)
	if err != nil {
		t.Fatal(err)
	}
	changed := append([]byte(nil), data...)
	changed[len(changed)-3] = 'x'
	_, err = batch.Run(context.Background(), h.db, h.client, batch.RunOptions{
		Source: batch.MemorySource("upload mem.csv", changed), ManifestOptions: mopts, Summary: sum, Config: h.config(), Intake: h.intake,
	})
	if !errors.Is(err, manifest.ErrChanged) && !errors.As(err, new(*manifest.ValidationError)) {
		t.Fatalf("changed bytes: got %v, want a refusal", err)
	}
	h.expectPaid() // nothing
	res, err := batch.Run(context.Background(), h.db, h.client, batch.RunOptions{
		Source: batch.MemorySource("upload mem.csv", data), ManifestOptions: mopts, Summary: sum, Config: h.config(), Intake: h.intake,
	})
	if err != nil {
		t.Fatal(err)
	}
	if !res.OK() || res.Batch.ManifestName != "upload mem.csv" {
		t.Fatalf("result %+v, want every row paid and the source's name recorded", res)
	}
	h.expectStates(res.Batch.ID, map[string]ledger.State{"M-1": ledger.StateSucceeded, "M-2": ledger.StateSucceeded})
	h.expectPaid("M-1", "M-2")
}
