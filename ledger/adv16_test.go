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
