package batch_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/payouts/payouts/batch"
	"github.com/payouts/payouts/batch/manifest"
	"github.com/payouts/payouts/internal/refid"
	"github.com/payouts/payouts/ledger"
	"github.com/payouts/payouts/pike/sandbox"
)

// expectOnePaymentPerReference judges from the sandbox's journal that no
// reference was paid twice in any spelling: two payments whose references
// have the same refid.Key are one payee paid twice.
func (h *harness) expectOnePaymentPerReference() {
	h.t.Helper()
	quiesce, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = h.sb.Quiesce(quiesce)
	seen := map[string]string{}
	for _, p := range h.sb.Journal() {
		k := refid.Key(p.Reference)
		if first, ok := seen[k]; ok {
			h.t.Errorf("journal: %q and %q are one reference (key %q), paid twice", first, p.Reference, k)
		}
		seen[k] = p.Reference
	}
}

// payThenRepeat pays reference in a batch of its own, then runs one batch
// per spelling in again: each of those must be skipped as already paid, and
// the journal must show one payment, of the first spelling.
func (h *harness) payThenRepeat(reference string, again ...string) {
	h.t.Helper()
	first := h.mustRun(h.manifest("first.csv", row{ref: reference, amount: "10", card: sandbox.CardMir}), h.config())
	h.expectStates(first.Batch.ID, map[string]ledger.State{reference: ledger.StateSucceeded})
	for i, ref := range again {
		res := h.mustRun(h.manifest(fmt.Sprintf("again-%d.csv", i), row{ref: ref, amount: "10", card: sandbox.CardMir}), h.config())
		h.expectStates(res.Batch.ID, map[string]ledger.State{ref: ledger.StateSkipped})
	}
	h.expectPaid(reference)
	h.expectOnePaymentPerReference()
}

// TestReferenceSharpSInAnotherBatchIsNotPaidAgain: ß and ẞ are one letter in
// two cases. The upper-cased risk key kept them apart (strings.ToUpper
// leaves ß alone) and both were paid.
func TestReferenceSharpSInAnotherBatchIsNotPaidAgain(t *testing.T) {
	newHarness(t, sandbox.Config{}).payThenRepeat("REF-ß", "REF-ẞ", "ref-ss")
}

// TestReferenceDotlessIAndCapitalIAreTwoPayees: PAY-ı and PAY-I are two
// references under Unicode case folding. The upper-cased risk key made them
// one (strings.ToUpper("ı") is "I"), so one row was silently skipped as
// "already paid" and the run still succeeded.
func TestReferenceDotlessIAndCapitalIAreTwoPayees(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	path := h.manifest("m.csv",
		row{ref: "PAY-ı", amount: "10", card: sandbox.CardMir},
		row{ref: "PAY-I", amount: "20", card: sandbox.CardVisa},
		row{ref: "PAY-i", amount: "30", card: sandbox.CardMastercard},
	)
	// PAY-I and PAY-i are one reference: refused as duplicates, never skipped.
	_, err := manifest.ReadFile(path, manifest.Options{}, nil)
	if !errors.Is(err, manifest.ErrDuplicateReference) || !strings.Contains(err.Error(), "line 4") {
		t.Fatalf("got %v, want a duplicate reference on line 4 (PAY-i is PAY-I)", err)
	}
	path = h.manifest("m.csv",
		row{ref: "PAY-ı", amount: "10", card: sandbox.CardMir},
		row{ref: "PAY-I", amount: "20", card: sandbox.CardVisa},
	)
	res := h.mustRun(path, h.config())
	h.expectStates(res.Batch.ID, map[string]ledger.State{"PAY-ı": ledger.StateSucceeded, "PAY-I": ledger.StateSucceeded})
	if !res.OK() || res.Counts[ledger.StateSucceeded] != 2 {
		t.Errorf("got counts %v, want both rows succeeded", res.Counts)
	}
	h.expectPaid("PAY-ı", "PAY-I")
}

// TestReferenceFullWidthIsTheSameReference: ＰＡＹ-１ is PAY-1 typed with an
// East Asian input method. In one file it is a duplicate reference naming
// both lines and both spellings; in another batch it is already paid.
func TestReferenceFullWidthIsTheSameReference(t *testing.T) {
	t.Run("one file", func(t *testing.T) {
		h := newHarness(t, sandbox.Config{})
		one := h.manifest("one.csv",
			row{ref: "ＰＡＹ-１", amount: "10", card: sandbox.CardMir},
			row{ref: "PAY-1", amount: "20", card: sandbox.CardVisa},
		)
		_, err := manifest.ReadFile(one, manifest.Options{}, nil)
		var ve *manifest.ValidationError
		if !errors.As(err, &ve) || len(ve.Errors) != 1 || !errors.Is(ve.Errors[0], manifest.ErrDuplicateReference) {
			t.Fatalf("got %v, want one duplicate reference error", err)
		}
		if re := ve.Errors[0]; re.Line != 3 || re.Column != "reference" ||
			!strings.Contains(re.Error(), "line 2") || !strings.Contains(re.Error(), `"ＰＡＹ-１"`) || !strings.Contains(re.Error(), `"PAY-1"`) {
			t.Errorf("got %q, want line 3, column reference, naming line 2 and both spellings", re)
		}
	})
	t.Run("two batches", func(t *testing.T) {
		newHarness(t, sandbox.Config{}).payThenRepeat("ＰＡＹ-１", "PAY-1", "ｐａｙ－１")
	})
}

// TestRerunMatchesReferencesByKey: a corrected manifest may spell a
// reference another way; the rerun still finds its row (and pays it under
// the spelling the batch was created with).
func TestRerunMatchesReferencesByKey(t *testing.T) {
	h := newHarness(t, sandbox.Config{})
	path := h.manifest("m.csv", row{ref: "REF-ß", amount: "100", card: sandbox.CardNotExist})
	res := h.mustRun(path, h.config())
	h.expectStates(res.Batch.ID, map[string]ledger.State{"REF-ß": ledger.StateFailed})

	fixed := filepath.Join(h.dir, "fixed.csv")
	if err := os.WriteFile(fixed, []byte("reference,amount,currency,card_number,recipient_name\nREF-ẞ,100,RUB,"+sandbox.CardVisa+",Иванов Иван\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.cards["REF-ß"] = sandbox.CardVisa
	_, plan, err := batch.Rerun(context.Background(), h.db, h.client, batch.RerunOptions{
		BatchID: res.Batch.ID, Manifest: fixed,
		SettleOptions: batch.SettleOptions{Config: h.config(), Wait: 20 * time.Second, Intake: h.intake},
	})
	if err != nil {
		t.Fatalf("rerun with REF-ẞ for REF-ß: %v", err)
	}
	if len(plan.Retried) != 1 || plan.Retried[0].Row.Reference != "REF-ß" {
		t.Fatalf("got retried %+v, want the row REF-ß", plan.Retried)
	}
	h.expectStates(res.Batch.ID, map[string]ledger.State{"REF-ß": ledger.StateSucceeded})
	h.expectPaid("REF-ß")
}
