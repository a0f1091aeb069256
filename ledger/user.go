package ledger

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Role is what a console user may do.
type Role string

// Console roles.
const (
	RoleMaker    Role = "maker"    // upload manifests, ask for reruns
	RoleApprover Role = "approver" // approve or reject what another person asked for
	RoleViewer   Role = "viewer"   // read batches, download reports
	RoleAdmin    Role = "admin"    // manage users (from the CLI)
)

var roles = []Role{RoleMaker, RoleApprover, RoleViewer, RoleAdmin}

// ParseRoles parses "maker,approver" into roles, refusing unknown ones and
// an empty list. The result is sorted and without repeats.
func ParseRoles(s string) ([]Role, error) {
	var out []Role
	for _, f := range strings.Split(s, ",") {
		r := Role(strings.ToLower(strings.TrimSpace(f)))
		if r == "" {
			continue
		}
		if !slices.Contains(roles, r) {
			return nil, fmt.Errorf("unknown role %q: the roles are maker, approver, viewer and admin", f)
		}
		if !slices.Contains(out, r) {
			out = append(out, r)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no role given: the roles are maker, approver, viewer and admin")
	}
	slices.Sort(out)
	return out, nil
}

func joinRoles(rs []Role) string {
	ss := make([]string, len(rs))
	for i, r := range rs {
		ss[i] = string(r)
	}
	return strings.Join(ss, ",")
}

// User is a console user. The password hash is kept apart (UserPasswordHash).
type User struct {
	Name         string
	Roles        []Role
	Disabled     bool
	FailedLogins int       // wrong passwords in a row
	LockedUntil  time.Time // zero: not locked
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Has reports whether u has role r.
func (u User) Has(r Role) bool { return slices.Contains(u.Roles, r) }

// Locked reports whether u is locked out at now.
func (u User) Locked(now time.Time) bool { return now.Before(u.LockedUntil) }

// CheckUserName refuses names that cannot be shown or typed safely.
func CheckUserName(name string) error {
	if name == "" || len(name) > 64 {
		return fmt.Errorf("user name must be 1 to 64 characters: %w", ErrInvalidChange)
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._-@", r)) {
			return fmt.Errorf("user name %q: use letters, digits and . _ - @ only: %w", name, ErrInvalidChange)
		}
	}
	return nil
}

const userColumns = `name, roles, disabled, failed_logins, locked_until, created_at, updated_at`

func scanUser(s scanner) (User, error) {
	var u User
	var roles string
	var locked, created, updated sql.NullString
	if err := s.Scan(&u.Name, &roles, &u.Disabled, &u.FailedLogins, &locked, &created, &updated); err != nil {
		return User{}, err
	}
	for _, r := range strings.Split(roles, ",") {
		if r != "" {
			u.Roles = append(u.Roles, Role(r))
		}
	}
	u.LockedUntil, u.CreatedAt, u.UpdatedAt = parseTime(locked), parseTime(created), parseTime(updated)
	return u, nil
}

// AddUser creates a console user with a password hash made by the caller
// and records it in the audit log (by). Returns an error wrapping ErrExists
// if the name is taken, in any case ("Anna" beside "anna" would be one
// person with two accounts, to approve her own uploads).
func (db *DB) AddUser(ctx context.Context, name string, rs []Role, passwordHash string, by AuditEntry) error {
	if err := CheckUserName(name); err != nil {
		return err
	}
	if len(rs) == 0 || passwordHash == "" {
		return fmt.Errorf("add user %s: roles and a password are required: %w", name, ErrInvalidChange)
	}
	return db.userTx(ctx, "add user "+name, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM console_users WHERE lower(name) = lower(?)`, name).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrExists
		}
		now := fmtTime(db.now())
		if _, err := tx.ExecContext(ctx, `INSERT INTO console_users (name, roles, password_hash, created_at, updated_at) VALUES (?, ?, ?, ?, ?)`,
			name, joinRoles(rs), passwordHash, now, now); err != nil {
			return err
		}
		by.Action, by.Detail = "user_add", fmt.Sprintf("user %s added with roles %s", name, joinRoles(rs))
		return db.insertAudit(ctx, tx, by)
	})
}

// SetUserPassword replaces a user's password hash, clears a lockout, ends
// every session of the user, and records it. Returns ErrNotFound if there
// is no such user.
func (db *DB) SetUserPassword(ctx context.Context, name, passwordHash string, by AuditEntry) error {
	if passwordHash == "" {
		return fmt.Errorf("set password of %s: empty hash: %w", name, ErrInvalidChange)
	}
	return db.userTx(ctx, "set password of "+name, func(tx *sql.Tx) error {
		if err := updateUser(ctx, tx, name, `password_hash = ?, failed_logins = 0, locked_until = NULL, updated_at = ?`, passwordHash, fmtTime(db.now())); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE user_name = ?`, name); err != nil {
			return err
		}
		by.Action, by.Detail = "user_passwd", "password of "+name+" changed; its sessions ended"
		return db.insertAudit(ctx, tx, by)
	})
}

// DisableUser disables a user and ends every session of the user. Returns
// ErrNotFound if there is no such user.
func (db *DB) DisableUser(ctx context.Context, name string, by AuditEntry) error {
	return db.userTx(ctx, "disable user "+name, func(tx *sql.Tx) error {
		if err := updateUser(ctx, tx, name, `disabled = 1, updated_at = ?`, fmtTime(db.now())); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM console_sessions WHERE user_name = ?`, name); err != nil {
			return err
		}
		by.Action, by.Detail = "user_disable", "user "+name+" disabled; its sessions ended"
		return db.insertAudit(ctx, tx, by)
	})
}

func updateUser(ctx context.Context, tx *sql.Tx, name, set string, args ...any) error {
	res, err := tx.ExecContext(ctx, `UPDATE console_users SET `+set+` WHERE name = ?`, append(args, name)...)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ErrNotFound
	}
	return nil
}

// userTx runs fn in a write transaction, wrapping its error with what.
func (db *DB) userTx(ctx context.Context, what string, fn func(*sql.Tx) error) error {
	tx, err := db.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// User returns the user called name. Returns ErrNotFound if there is none.
func (db *DB) User(ctx context.Context, name string) (User, error) {
	u, err := scanUser(db.rdb.QueryRowContext(ctx, `SELECT `+userColumns+` FROM console_users WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("user %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("user %s: %w", name, err)
	}
	return u, nil
}

// UserPasswordHash returns the stored password hash of name. Returns
// ErrNotFound if there is no such user.
func (db *DB) UserPasswordHash(ctx context.Context, name string) (string, error) {
	var h string
	err := db.rdb.QueryRowContext(ctx, `SELECT password_hash FROM console_users WHERE name = ?`, name).Scan(&h)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("user %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("user %s: %w", name, err)
	}
	return h, nil
}

// Users returns every user, by name.
func (db *DB) Users(ctx context.Context) ([]User, error) {
	rs, err := db.rdb.QueryContext(ctx, `SELECT `+userColumns+` FROM console_users ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("users: %w", err)
	}
	defer rs.Close()
	var out []User
	for rs.Next() {
		u, err := scanUser(rs)
		if err != nil {
			return nil, fmt.Errorf("users: %w", err)
		}
		out = append(out, u)
	}
	return out, rs.Err()
}

// LockPolicy is how many wrong passwords in a row lock an account, and for
// how long.
type LockPolicy struct {
	MaxFailures int
	LockFor     time.Duration
}

// LoginFailed records a wrong password for name (if such a user exists):
// the counter grows, and reaching p.MaxFailures locks the account for
// p.LockFor. The attempt is audited either way (an unknown name too, as
// the name given). It returns the user as now stored (zero if unknown).
func (db *DB) LoginFailed(ctx context.Context, name string, p LockPolicy, e AuditEntry) (User, error) {
	var u User
	err := db.userTx(ctx, "record failed login", func(tx *sql.Tx) error {
		now := db.now()
		_, err := tx.ExecContext(ctx, `UPDATE console_users SET failed_logins = failed_logins + 1, updated_at = ? WHERE name = ?`, fmtTime(now), name)
		if err != nil {
			return err
		}
		u, err = scanUser(tx.QueryRowContext(ctx, `SELECT `+userColumns+` FROM console_users WHERE name = ?`, name))
		if errors.Is(err, sql.ErrNoRows) {
			u, err = User{}, nil
		}
		if err != nil {
			return err
		}
		e.Actor, e.Action = name, "login_failed"
		if e.Detail == "" {
			e.Detail = "wrong user name or password"
		}
		if u.Name != "" && p.MaxFailures > 0 && u.FailedLogins >= p.MaxFailures && !u.Locked(now) {
			u.LockedUntil = now.Add(p.LockFor)
			if _, err := tx.ExecContext(ctx, `UPDATE console_users SET locked_until = ?, failed_logins = 0 WHERE name = ?`, fmtTime(u.LockedUntil), name); err != nil {
				return err
			}
			if err := db.insertAudit(ctx, tx, e); err != nil {
				return err
			}
			e.Action, e.Detail = "account_locked", fmt.Sprintf("%d wrong passwords in a row: locked until %s", p.MaxFailures, u.LockedUntil.Format(time.RFC3339))
		}
		return db.insertAudit(ctx, tx, e)
	})
	return u, err
}

// LoginSucceeded clears the wrong-password counter of name, opens session
// s and audits the login, in one transaction. Returns ErrNotFound if there
// is no such user.
func (db *DB) LoginSucceeded(ctx context.Context, name string, s Session, e AuditEntry) error {
	return db.userTx(ctx, "record login", func(tx *sql.Tx) error {
		if err := updateUser(ctx, tx, name, `failed_logins = 0, updated_at = ?`, fmtTime(db.now())); err != nil {
			return err
		}
		if err := db.insertSession(ctx, tx, s); err != nil {
			return err
		}
		e.Actor, e.Action = name, "login"
		return db.insertAudit(ctx, tx, e)
	})
}

// Session is a console web session. Only the SHA-256 of its token is kept.
type Session struct {
	TokenSHA256 string
	User        string
	RemoteAddr  string
	CreatedAt   time.Time
	LastSeenAt  time.Time
	ExpiresAt   time.Time // absolute expiry
}

func (db *DB) insertSession(ctx context.Context, tx *sql.Tx, s Session) error {
	if len(s.TokenSHA256) != 64 || s.ExpiresAt.IsZero() {
		return fmt.Errorf("session: a token hash and an expiry are required: %w", ErrInvalidChange)
	}
	now := db.now()
	if s.CreatedAt.IsZero() {
		s.CreatedAt = now
	}
	if s.LastSeenAt.IsZero() {
		s.LastSeenAt = now
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO console_sessions (token_sha256, user_name, remote_addr, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		s.TokenSHA256, s.User, s.RemoteAddr, fmtTime(s.CreatedAt), fmtTime(s.LastSeenAt), fmtTime(s.ExpiresAt))
	return err
}

// touchEvery is how stale last_seen_at may get before a request writes it
// again (a write per request would be waste).
const touchEvery = time.Minute

// SessionUser returns the session with the token hash and its user, if the
// session is neither past its absolute expiry nor idle longer than idle,
// and the user is not disabled; it marks the session seen. An expired
// session is deleted. Returns ErrNotFound otherwise.
func (db *DB) SessionUser(ctx context.Context, tokenSHA256 string, idle time.Duration) (Session, User, error) {
	var s Session
	var created, seen, exp sql.NullString
	err := db.rdb.QueryRowContext(ctx, `SELECT token_sha256, user_name, remote_addr, created_at, last_seen_at, expires_at FROM console_sessions WHERE token_sha256 = ?`,
		tokenSHA256).Scan(&s.TokenSHA256, &s.User, &s.RemoteAddr, &created, &seen, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, User{}, fmt.Errorf("session: %w", ErrNotFound)
	}
	if err != nil {
		return Session{}, User{}, fmt.Errorf("session: %w", err)
	}
	s.CreatedAt, s.LastSeenAt, s.ExpiresAt = parseTime(created), parseTime(seen), parseTime(exp)
	now := db.now()
	if !now.Before(s.ExpiresAt) || (idle > 0 && now.Sub(s.LastSeenAt) >= idle) {
		_ = db.DeleteSession(ctx, tokenSHA256)
		return Session{}, User{}, fmt.Errorf("session expired: %w", ErrNotFound)
	}
	u, err := db.User(ctx, s.User)
	if err != nil {
		return Session{}, User{}, err
	}
	if u.Disabled {
		return Session{}, User{}, fmt.Errorf("user %s is disabled: %w", u.Name, ErrNotFound)
	}
	if now.Sub(s.LastSeenAt) >= touchEvery {
		if _, err := db.wdb.ExecContext(ctx, `UPDATE console_sessions SET last_seen_at = ? WHERE token_sha256 = ?`, fmtTime(now), tokenSHA256); err != nil {
			return Session{}, User{}, fmt.Errorf("session: %w", err)
		}
		s.LastSeenAt = now
	}
	return s, u, nil
}

// DeleteSession ends a session (logout). Deleting a session that does not
// exist is not an error.
func (db *DB) DeleteSession(ctx context.Context, tokenSHA256 string) error {
	if _, err := db.wdb.ExecContext(ctx, `DELETE FROM console_sessions WHERE token_sha256 = ?`, tokenSHA256); err != nil {
		return fmt.Errorf("delete session: %w", err)
	}
	return nil
}
