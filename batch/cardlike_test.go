package batch_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/internal/pan"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike/sandbox"
)

// TestCardLikeReferenceNeverReachesPike: a reference shaped like a card
// number used to pass validation; the ledger then masked it in the stored
// webhooks, the confirm check saw another reference and metadata, and the
// row ended mismatch on every run. Validation refuses it now, before any
// request (issue 13, finding 7).
func TestCardLikeReferenceNeverReachesPike(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	const ref = "7000000000000005" // Luhn-valid, 16 digits
	path := h.manifest("m.csv", row{ref: ref, amount: "1500.00", card: sandbox.CardVisa})
	mopts := manifest.Options{}
	sum, err := manifest.ReadFile(path, mopts, nil)
	if err == nil {
		res, err := batch.Run(context.Background(), h.db, h.client, batch.RunOptions{
			Manifest: path, ManifestOptions: mopts, Summary: sum, Config: h.config(), Intake: h.intake,
		})
		if err != nil {
			t.Fatalf("got the manifest accepted and the run failing: %v; want the manifest refused", err)
		}
		t.Fatalf("got the manifest accepted; the row ended %q; want the manifest refused at validation", h.states(res.Batch.ID)[ref])
	}
	var ve *manifest.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, manifest.ErrReference) {
		t.Fatalf("got %v, want a validation error about the reference", err)
	}
	if re := ve.Errors[0]; re.Line != 2 || re.Column != "reference" || strings.Contains(re.Error(), ref) {
		t.Errorf("got %q, want it addressed to line 2, column reference, without the number", re.Error())
	}
	if n := len(h.sb.Journal()); n != 0 {
		t.Errorf("got %d payments in the journal, want none", n)
	}
	if states := h.states(batch.BatchIDFor(sum.SHA256)); len(states) != 0 {
		t.Errorf("got ledger rows %v, want none", states)
	}
}

// TestRowKeyIsNeverScrubbed: the metadata of every session (RowKey) must
// reach the confirm check unchanged from the webhooks the ledger stores
// scrubbed. Its parts are the batch id's first 16 characters, the attempt
// and the reference, joined by ':', which ends a number; validation refuses
// references and batch ids that hold a card number, and the default batch
// id never holds one.
func TestRowKeyIsNeverScrubbed(t *testing.T) {
	// 1eb2465596692783: 13 digits in a row that pass the Luhn check.
	const cardLike = "1eb2465596692783" + "00000000000000000000000000000000" + "0123456789abcdef"
	if id := batch.BatchIDFor(cardLike); id == cardLike[:16] || pan.Contains(id) || id != batch.BatchIDFor(cardLike) {
		t.Errorf("BatchIDFor(%s…): got %s, want the next 16 hex digits that hold no card number, the same every time", cardLike[:16], id)
	}
	if id := batch.BatchIDFor("1eb2465596692783" + "4242424242424242" + "4000000000000002" + "5555555555554444"); pan.Contains(id) || len(id) != 16 {
		t.Errorf("BatchIDFor of four card-like windows: got %q, want a 16-character id without a card number", id)
	}
	refs := []string{"EMP-0042-2026-11", "PAY-2026-11-0001", "ЗП-2026-11-001", "INV-4081781009991234567", "R1", "2026-11-05-0001"}
	for i := range 200000 {
		sum := sha256.Sum256([]byte(strconv.Itoa(i)))
		id := batch.BatchIDFor(hex.EncodeToString(sum[:]))
		if err := batch.CheckBatchID(id); err != nil {
			t.Fatalf("BatchIDFor gave %s, which CheckBatchID refuses: %v", id, err)
		}
		ref := refs[i%len(refs)]
		if key := ledger.RowKey(id, ref, 1+i%3); pan.Scrub(key) != key {
			t.Fatalf("RowKey(%s, %s): got %q scrubbed to %q, want it unchanged", id, ref, key, pan.Scrub(key))
		}
	}
	for _, id := range []string{"payroll-2026-11", "0123456789abcdef", "b-1"} {
		if err := batch.CheckBatchID(id); err != nil {
			t.Errorf("CheckBatchID(%q): got %v, want nil", id, err)
		}
	}
	for _, id := range []string{"4242424242424242", "4242.4242.4242.4242", "nov-7000000000000005", "424242424242424242424242"} {
		if err := batch.CheckBatchID(id); !errors.Is(err, batch.ErrBatchID) || strings.Contains(err.Error(), id) {
			t.Errorf("CheckBatchID(%q): got %v, want ErrBatchID without the id", id, err)
		}
	}
}

// TestPrepareRefusesCardLikeBatchID: the engine's entry point refuses such
// an id before writing anything, for callers that skip the command line.
func TestPrepareRefusesCardLikeBatchID(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	path := h.manifest("m.csv", row{ref: "EMP-1", amount: "1500.00", card: sandbox.CardVisa})
	sum, err := manifest.ReadFile(path, manifest.Options{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = batch.Prepare(context.Background(), h.db, path, manifest.Options{}, sum, "4242424242424242", h.fp, batch.BatchOptions{})
	if !errors.Is(err, batch.ErrBatchID) {
		t.Fatalf("got %v, want ErrBatchID", err)
	}
	if bs, err := h.db.Batches(context.Background()); err != nil || len(bs) != 0 {
		t.Errorf("got batches %v (%v), want none", bs, err)
	}
}

// TestPrepareRefusesCardNumberInManifestPath: the manifest's path is kept
// in the ledger; a file named with a card number is refused before
// anything is written.
func TestPrepareRefusesCardNumberInManifestPath(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	path := h.manifest("pay-4242424242424242.csv", row{ref: "R1", amount: "10", card: sandbox.CardVisa})
	if _, err := h.run(context.Background(), path, h.config()); !errors.Is(err, batch.ErrBatchID) {
		t.Fatalf("got %v, want ErrBatchID", err)
	}
	if bs, err := h.db.Batches(context.Background()); err != nil || len(bs) != 0 {
		t.Errorf("got %d batches (%v), want none", len(bs), err)
	}
	h.expectPaid()
}
