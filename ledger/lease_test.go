package ledger_test

import (
	"context"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/payouts/payouts/ledger"
)

// fakeClock is a settable clock, safe to read from the writer goroutine.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2026, 11, 5, 3, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// deadPID returns the PID of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skipf("cannot run true: %v", err)
	}
	return cmd.Process.Pid
}

func TestLeaseLiveRefused(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		newBatch(t, db, "b", "R")
		me := ledger.CurrentOwner("payouts run payroll.csv")
		l, err := db.AcquireLease(ctx, "b", me, time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		other := ledger.Owner{Host: me.Host, PID: me.PID, Command: "payouts run again.csv"}
		_, err = db.AcquireLease(ctx, "b", other, time.Minute)
		var held *ledger.LeaseHeldError
		if !errors.As(err, &held) || !errors.Is(err, ledger.ErrLeaseHeld) {
			t.Fatalf("got %v, want *LeaseHeldError", err)
		}
		if held.Owner != me {
			t.Errorf("got holder %+v, want %+v", held.Owner, me)
		}
		msg := err.Error()
		for _, want := range []string{me.Host, "pid " + strconv.Itoa(me.PID), "payouts run payroll.csv", "wait for it to finish"} {
			if !strings.Contains(msg, want) {
				t.Errorf("message %q lacks %q", msg, want)
			}
		}
		if err := l.Heartbeat(ctx); err != nil {
			t.Errorf("Heartbeat: %v", err)
		}
		if err := l.Release(ctx); err != nil {
			t.Fatal(err)
		}
		l2, err := db.AcquireLease(ctx, "b", other, time.Minute)
		if err != nil {
			t.Fatalf("after release: %v", err)
		}
		if err := l.Release(ctx); !errors.Is(err, ledger.ErrLeaseLost) {
			t.Errorf("release twice: got %v, want ErrLeaseLost", err)
		}
		_ = l2.Release(ctx)
	})
}

func TestLeaseTakeoverDeadPID(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		newBatch(t, db, "b", "R")
		host := ledger.CurrentOwner("").Host
		crashed := ledger.Owner{Host: host, PID: deadPID(t), Command: "payouts run (crashed)"}
		old, err := db.AcquireLease(ctx, "b", crashed, time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		l, err := db.AcquireLease(ctx, "b", ledger.CurrentOwner("payouts run"), time.Hour)
		if err != nil {
			t.Fatalf("lease of a dead process: got %v, want a takeover", err)
		}
		if err := old.Heartbeat(ctx); !errors.Is(err, ledger.ErrLeaseLost) {
			t.Errorf("old holder heartbeat: got %v, want ErrLeaseLost", err)
		}
		if err := l.Heartbeat(ctx); err != nil {
			t.Errorf("new holder heartbeat: %v", err)
		}
		evs, _ := db.Events(ctx, "b", 0)
		last := evs[len(evs)-1]
		if last.Reason != "lease_takeover" || !strings.Contains(last.Detail, "process has exited") {
			t.Errorf("got event %+v, want lease_takeover saying the process exited", last)
		}
		// A dead PID on another host proves nothing: refused until stale.
		if _, err := db.AcquireLease(ctx, "c", ledger.Owner{Host: "elsewhere", PID: deadPID(t)}, time.Hour); err != nil {
			t.Fatal(err)
		}
		if _, err := db.AcquireLease(ctx, "c", ledger.CurrentOwner("x"), time.Hour); !errors.Is(err, ledger.ErrLeaseHeld) {
			t.Errorf("other host: got %v, want ErrLeaseHeld", err)
		}
	})
}

func TestLeaseTakeoverStaleHeartbeat(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		clock := newFakeClock()
		db.Now = clock.Now
		ctx := context.Background()
		newBatch(t, db, "b", "R")
		// Alive (this very process) but silent.
		first, err := db.AcquireLease(ctx, "b", ledger.CurrentOwner("first"), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		clock.Advance(50 * time.Second)
		if err := first.Heartbeat(ctx); err != nil {
			t.Fatal(err)
		}
		clock.Advance(50 * time.Second) // 50s since the heartbeat: still live
		if _, err := db.AcquireLease(ctx, "b", ledger.CurrentOwner("second"), time.Minute); !errors.Is(err, ledger.ErrLeaseHeld) {
			t.Fatalf("fresh heartbeat: got %v, want ErrLeaseHeld", err)
		}
		clock.Advance(11 * time.Second) // 61s: stale
		second, err := db.AcquireLease(ctx, "b", ledger.CurrentOwner("second"), time.Minute)
		if err != nil {
			t.Fatalf("stale heartbeat: got %v, want a takeover", err)
		}
		if err := first.Heartbeat(ctx); !errors.Is(err, ledger.ErrLeaseLost) {
			t.Errorf("first after takeover: got %v, want ErrLeaseLost", err)
		}
		if second.Owner().Command != "second" || second.BatchID() != "b" {
			t.Errorf("got %+v on %s", second.Owner(), second.BatchID())
		}
	})
}
