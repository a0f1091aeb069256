// Package poll is how the tests wait for something to happen: they poll
// the condition it stands for, never sleep for a time they hope is long
// enough. It is imported only by tests.
package poll

import (
	"testing"
	"time"
)

// Deadline is how long Until polls before it gives up. It is not a timing
// assertion: it only turns a hang into a failure, so it is generous enough
// for a loaded machine running the race detector.
const Deadline = 30 * time.Second

// Interval is the pause between two looks at the condition.
const Interval = 5 * time.Millisecond

// Until polls cond until it holds. After Deadline it fails t with
// "gave up waiting for WHAT", so what should name the awaited condition.
func Until(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(Deadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(Interval)
	}
}
