package poll_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/payouts/payouts/internal/poll"
)

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 3 {
			time.Sleep(time.Millisecond) // the scenario: something that takes a while
			n.Add(1)
		}
	}()
	poll.Until(t, "three increments", func() bool { return n.Load() == 3 })
	if got := n.Load(); got != 3 {
		t.Errorf("got %d, want 3", got)
	}
}
