package ledger_test

import (
	"context"
	"errors"
	"testing"

	"github.com/payouts/payouts/ledger"
)

// TestAddUserRefusesCaseVariant: "Anna" is refused while "anna" exists:
// two accounts that read as the same person would let one person be both
// uploader and approver (four eyes compares names exactly).
func TestAddUserRefusesCaseVariant(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	if err := db.AddUser(ctx, "anna", []ledger.Role{ledger.RoleMaker}, "$argon2id$x", cli); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"Anna", "ANNA", "aNNa"} {
		if err := db.AddUser(ctx, n, []ledger.Role{ledger.RoleApprover}, "$argon2id$x", cli); !errors.Is(err, ledger.ErrExists) {
			t.Errorf("add %q beside anna: %v, want ErrExists", n, err)
		}
	}
}

// TestConsoleApprovalNeedsAnApprover: the ledger itself refuses to move a
// console batch from awaiting_approval to paying without an approver
// (ErrFourEyes): four eyes does not rest on every caller setting Approver.
func TestConsoleApprovalNeedsAnApprover(t *testing.T) {
	db := openTest(t)
	ctx := context.Background()
	newBatch(t, db, "b1", "R1")
	if err := db.CreateConsoleBatch(ctx, ledger.ConsoleBatch{BatchID: "b1", FileName: "p.csv", UploadedBy: "alice"}, ledger.AuditEntry{Actor: "alice", Action: "upload"}); err != nil {
		t.Fatal(err)
	}
	_, err := db.ChangeConsoleBatch(ctx, ledger.ConsoleChange{BatchID: "b1", From: ledger.ConsoleAwaitingApproval, To: ledger.ConsolePaying}, ledger.AuditEntry{Actor: "x", Action: "approve"})
	if !errors.Is(err, ledger.ErrFourEyes) {
		t.Fatalf("approval without an approver: %v, want ErrFourEyes", err)
	}
	if cb, _ := db.ConsoleBatch(ctx, "b1"); cb.State != ledger.ConsoleAwaitingApproval {
		t.Fatalf("state %s after a refused approval", cb.State)
	}
}
