package batch_test

import (
	"os"
	"testing"
)

// knownBug skips a scenario that fails because of a known, reported engine
// bug (issue 13, finding n) so the suite stays green while it is fixed.
// PAYOUTS_KNOWN_BUGS=1 runs it anyway: that is how the fix is checked,
// and the skip is deleted with the fix.
func knownBug(t testing.TB, finding int, why string) {
	t.Helper()
	if os.Getenv("PAYOUTS_KNOWN_BUGS") != "" {
		return
	}
	t.Skipf("known bug, issue 13 finding %d: %s (PAYOUTS_KNOWN_BUGS=1 runs it)", finding, why)
}
