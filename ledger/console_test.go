package ledger_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/payouts/payouts/ledger"
)

var cli = ledger.AuditEntry{Actor: "cli:root"}

func tokenHash(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

func TestParseRoles(t *testing.T) {
	got, err := ledger.ParseRoles(" Maker, approver,maker ")
	if err != nil || len(got) != 2 || got[0] != ledger.RoleApprover || got[1] != ledger.RoleMaker {
		t.Fatalf("ParseRoles = %v, %v; want [approver maker]", got, err)
	}
	for _, bad := range []string{"", " , ", "root", "maker,boss"} {
		if _, err := ledger.ParseRoles(bad); err == nil {
			t.Errorf("ParseRoles(%q): no error", bad)
		}
	}
}

func TestUsers(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		if err := db.AddUser(ctx, "alice", []ledger.Role{ledger.RoleMaker}, "hash-a", cli); err != nil {
			t.Fatal(err)
		}
		if err := db.AddUser(ctx, "alice", []ledger.Role{ledger.RoleViewer}, "hash-b", cli); !errors.Is(err, ledger.ErrExists) {
			t.Fatalf("second AddUser alice: got %v, want ErrExists", err)
		}
		if err := db.AddUser(ctx, "bad name", []ledger.Role{ledger.RoleViewer}, "h", cli); !errors.Is(err, ledger.ErrInvalidChange) {
			t.Fatalf("AddUser with a space: got %v, want ErrInvalidChange", err)
		}
		u, err := db.User(ctx, "alice")
		if err != nil || !u.Has(ledger.RoleMaker) || u.Has(ledger.RoleApprover) || u.Disabled {
			t.Fatalf("User alice = %+v, %v", u, err)
		}
		if h, _ := db.UserPasswordHash(ctx, "alice"); h != "hash-a" {
			t.Fatalf("hash = %q, want hash-a", h)
		}
		if err := db.SetUserPassword(ctx, "alice", "hash-c", cli); err != nil {
			t.Fatal(err)
		}
		if h, _ := db.UserPasswordHash(ctx, "alice"); h != "hash-c" {
			t.Fatalf("hash after passwd = %q, want hash-c", h)
		}
		if err := db.DisableUser(ctx, "nobody", cli); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("DisableUser nobody: got %v, want ErrNotFound", err)
		}
		if err := db.DisableUser(ctx, "alice", cli); err != nil {
			t.Fatal(err)
		}
		if u, _ := db.User(ctx, "alice"); !u.Disabled {
			t.Fatal("alice not disabled")
		}
		log, err := db.AuditLog(ctx, ledger.AuditFilter{})
		if err != nil {
			t.Fatal(err)
		}
		var actions []string
		for _, e := range log {
			actions = append(actions, e.Action)
		}
		if got, want := strings.Join(actions, " "), "user_disable user_passwd user_add"; got != want {
			t.Fatalf("audit actions = %q, want %q", got, want)
		}
	})
}

func TestLoginLockout(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
		db.Now = func() time.Time { return now }
		if err := db.AddUser(ctx, "bob", []ledger.Role{ledger.RoleApprover}, "h", cli); err != nil {
			t.Fatal(err)
		}
		p := ledger.LockPolicy{MaxFailures: 3, LockFor: 15 * time.Minute}
		for i := 1; i <= 3; i++ {
			u, err := db.LoginFailed(ctx, "bob", p, ledger.AuditEntry{RemoteAddr: "10.0.0.9"})
			if err != nil {
				t.Fatal(err)
			}
			if locked := u.Locked(now); locked != (i == 3) {
				t.Fatalf("after %d failures locked = %v", i, locked)
			}
		}
		if u, _ := db.User(ctx, "bob"); !u.Locked(now.Add(14*time.Minute)) || u.Locked(now.Add(15*time.Minute)) {
			t.Fatalf("bob locked until %v, want %v", u.LockedUntil, now.Add(15*time.Minute))
		}
		// An unknown name is audited too, and creates nothing.
		if u, err := db.LoginFailed(ctx, "mallory", p, ledger.AuditEntry{}); err != nil || u.Name != "" {
			t.Fatalf("LoginFailed mallory = %+v, %v", u, err)
		}
		log, _ := db.AuditLog(ctx, ledger.AuditFilter{})
		var locked, failed int
		for _, e := range log {
			switch e.Action {
			case "account_locked":
				locked++
			case "login_failed":
				failed++
				if e.Actor == "bob" && e.RemoteAddr != "10.0.0.9" {
					t.Errorf("remote addr = %q", e.RemoteAddr)
				}
			}
		}
		if locked != 1 || failed != 4 {
			t.Fatalf("audit: %d account_locked, %d login_failed; want 1, 4", locked, failed)
		}
	})
}

func TestSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		now := time.Date(2026, 11, 30, 10, 0, 0, 0, time.UTC)
		db.Now = func() time.Time { return now }
		if err := db.AddUser(ctx, "carol", []ledger.Role{ledger.RoleViewer}, "h", cli); err != nil {
			t.Fatal(err)
		}
		open := func(tok string) {
			t.Helper()
			s := ledger.Session{TokenSHA256: tokenHash(tok), User: "carol", ExpiresAt: now.Add(8 * time.Hour)}
			if err := db.LoginSucceeded(ctx, "carol", s, ledger.AuditEntry{}); err != nil {
				t.Fatal(err)
			}
		}
		idle := 30 * time.Minute
		open("t1")
		if _, u, err := db.SessionUser(ctx, tokenHash("t1"), idle); err != nil || u.Name != "carol" {
			t.Fatalf("SessionUser = %+v, %v", u, err)
		}
		if _, _, err := db.SessionUser(ctx, tokenHash("t2"), idle); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("unknown token: got %v, want ErrNotFound", err)
		}
		// Seen at +20 min keeps it alive past the first 30 minutes.
		now = now.Add(20 * time.Minute)
		if _, _, err := db.SessionUser(ctx, tokenHash("t1"), idle); err != nil {
			t.Fatal(err)
		}
		now = now.Add(25 * time.Minute)
		if _, _, err := db.SessionUser(ctx, tokenHash("t1"), idle); err != nil {
			t.Fatalf("session used 25 min ago: %v", err)
		}
		now = now.Add(31 * time.Minute)
		if _, _, err := db.SessionUser(ctx, tokenHash("t1"), idle); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("idle session: got %v, want ErrNotFound", err)
		}
		// Absolute expiry, however busy.
		open("t3")
		for i := 0; i < 17; i++ {
			now = now.Add(29 * time.Minute)
			_, _, err := db.SessionUser(ctx, tokenHash("t3"), idle)
			if want := i < 16; (err == nil) != want {
				t.Fatalf("after %v: err %v", time.Duration(i+1)*29*time.Minute, err)
			}
		}
		// Logout, and disabling ends sessions.
		open("t4")
		if err := db.DeleteSession(ctx, tokenHash("t4")); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.SessionUser(ctx, tokenHash("t4"), idle); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("after logout: %v", err)
		}
		open("t5")
		if err := db.DisableUser(ctx, "carol", cli); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.SessionUser(ctx, tokenHash("t5"), idle); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("after disable: %v", err)
		}
	})
}

func TestConsoleBatchFourEyes(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		db := openTest(t)
		ctx := context.Background()
		newBatch(t, db, "b1", "R1")
		e := ledger.AuditEntry{Actor: "alice", Action: "upload"}
		if err := db.CreateConsoleBatch(ctx, ledger.ConsoleBatch{BatchID: "nope", UploadedBy: "alice"}, e); !errors.Is(err, ledger.ErrNotFound) {
			t.Fatalf("console batch of no ledger batch: %v", err)
		}
		if err := db.CreateConsoleBatch(ctx, ledger.ConsoleBatch{BatchID: "b1", FileName: "p.csv", UploadedBy: "alice"}, e); err != nil {
			t.Fatal(err)
		}
		if err := db.CreateConsoleBatch(ctx, ledger.ConsoleBatch{BatchID: "b1", UploadedBy: "bob"}, e); !errors.Is(err, ledger.ErrExists) {
			t.Fatalf("second upload: %v", err)
		}
		approve := ledger.ConsoleChange{BatchID: "b1", From: ledger.ConsoleAwaitingApproval, To: ledger.ConsolePaying, Approver: "alice"}
		if _, err := db.ChangeConsoleBatch(ctx, approve, ledger.AuditEntry{Actor: "alice", Action: "approve"}); !errors.Is(err, ledger.ErrFourEyes) {
			t.Fatalf("uploader approves: got %v, want ErrFourEyes", err)
		}
		approve.Approver = "bob"
		c, err := db.ChangeConsoleBatch(ctx, approve, ledger.AuditEntry{Actor: "bob", Action: "approve"})
		if err != nil || c.State != ledger.ConsolePaying || c.ApprovedBy != "bob" {
			t.Fatalf("bob approves: %+v, %v", c, err)
		}
		if _, err := db.ChangeConsoleBatch(ctx, approve, ledger.AuditEntry{Actor: "bob", Action: "approve"}); !errors.Is(err, ledger.ErrConflict) {
			t.Fatalf("second approval: got %v, want ErrConflict", err)
		}
		if _, err := db.ChangeConsoleBatch(ctx, ledger.ConsoleChange{BatchID: "b1", From: ledger.ConsolePaying, To: ledger.ConsoleDone}, ledger.AuditEntry{Actor: "server", Action: "done"}); err != nil {
			t.Fatal(err)
		}
		// A rerun asked for by bob needs a third person (or alice).
		rerun := ledger.ConsoleChange{BatchID: "b1", From: ledger.ConsoleDone, To: ledger.ConsoleAwaitingApproval, Rerun: true, RequestedBy: "bob", FileName: "fixed.csv"}
		if _, err := db.ChangeConsoleBatch(ctx, rerun, ledger.AuditEntry{Actor: "bob", Action: "rerun"}); err != nil {
			t.Fatal(err)
		}
		for _, who := range []string{"bob", "alice"} {
			ch := ledger.ConsoleChange{BatchID: "b1", From: ledger.ConsoleAwaitingApproval, To: ledger.ConsolePaying, Approver: who}
			if _, err := db.ChangeConsoleBatch(ctx, ch, ledger.AuditEntry{Actor: who, Action: "approve"}); !errors.Is(err, ledger.ErrFourEyes) {
				t.Fatalf("%s approves the rerun: got %v, want ErrFourEyes", who, err)
			}
		}
		all, err := db.ConsoleBatches(ctx)
		if err != nil || all["b1"].Pending != ledger.PendingRerun || all["b1"].RequestedBy != "bob" {
			t.Fatalf("ConsoleBatches = %+v, %v", all, err)
		}
		log, _ := db.AuditLog(ctx, ledger.AuditFilter{BatchID: "b1"})
		if len(log) != 4 {
			t.Fatalf("audit of b1: %d entries, want 4 (upload, approve, done, rerun): %+v", len(log), log)
		}
	})
}

// TestAuditAppendOnly: the triggers refuse any writer that edits or
// deletes the log, not only this package's code.
func TestAuditAppendOnly(t *testing.T) {
	forEachBackend(t, func(t *testing.T) {
		loc := newLocation(t)
		db, err := ledger.Open(context.Background(), loc)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		ctx := context.Background()
		if err := db.Audit(ctx, ledger.AuditEntry{Actor: "x", Action: "login", Detail: "card 4242424242424242"}); err != nil {
			t.Fatal(err)
		}
		log, _ := db.AuditLog(ctx, ledger.AuditFilter{})
		if len(log) != 1 || strings.Contains(log[0].Detail, "4242424242424242") {
			t.Fatalf("audit detail not scrubbed: %+v", log)
		}
		raw := rawOpen(t, loc)
		for _, q := range []string{`UPDATE audit_log SET actor = 'y'`, `DELETE FROM audit_log`} {
			if _, err := raw.Exec(q); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s: got %v, want append-only refusal", q, err)
			}
		}
	})
}
